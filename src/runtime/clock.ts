/**
 * @module clock
 * Monotonic time in milliseconds, injectable so pure logic (the intensity window, backoff reset)
 * can be tested without sleeping. Timers are NOT abstracted: the runtime uses real `setTimeout`.
 */
import { performance } from 'node:perf_hooks';

export interface Clock {
  /** Monotonic milliseconds; only differences are meaningful. */
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };

/** A clock that only moves when told to: for tests of time-dependent pure logic. */
export class ManualClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
