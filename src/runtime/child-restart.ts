/**
 * @module child-restart
 * What both supervisors keep per child to restart it (docs/runtime.md §2.7, §2.8): whether a
 * retry is pending (OTP's `restarting`), the backoff attempt, when the child last started, and the
 * pending backoff timer. It does NOT decide whether or when to restart (the supervisors do).
 */
import { backoffDelay, nextAttempt } from './backoff.js';
import type { ChildSpec } from './child-spec.js';

export class ChildRestart {
  /** OTP's `{restarting, OldPid}`: a restart failed or is delayed, and a retry is pending. */
  restarting = false;
  /** Backoff bookkeeping; untouched when the spec has no backoff. */
  attempt = 0;
  startedAt = 0;
  timer: NodeJS.Timeout | undefined = undefined;

  constructor(readonly spec: ChildSpec) {}

  /** A (re)start succeeded at `now`. */
  started(now: number): void {
    this.restarting = false;
    if (this.spec.backoff) this.startedAt = now;
  }

  /** No retry pending any more (the child was stopped, removed, or its supervisor is going down). */
  clearRetry(): void {
    this.restarting = false;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /**
   * Marks the child restarting and calls `due` after its backoff delay; the attempt counter
   * resets first if the child had run for `resetAfter` (`ranForMs`). Needs a spec with `backoff`.
   */
  scheduleBackoff(ranForMs: number, due: () => void): { delay: number; attempt: number } {
    const b = this.spec.backoff!;
    const attempt = nextAttempt(this.attempt, ranForMs, b);
    const delay = backoffDelay(attempt, b);
    this.attempt = attempt + 1;
    this.restarting = true;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      due();
    }, delay);
    return { delay, attempt };
  }
}
