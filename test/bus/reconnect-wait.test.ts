import { describe, expect, it } from 'vitest';
import { exponentialReconnect, reconnectWait } from '../../src/bus/connection.js';

describe('exponential NATS reconnect waits', () => {
  const b = { minMs: 1_000, maxMs: 60_000 };

  it('retry at once, then 1 s, 2 s, 4 s ... capped at 60 s', () => {
    expect([0, 1, 2, 3, 4, 7, 8, 30, 10_000].map((d) => reconnectWait(d, b))).toEqual([
      0, 1_000, 2_000, 4_000, 8_000, 60_000, 60_000, 60_000, 60_000,
    ]);
  });

  it('jitter removes up to 20% of a wait, never adds to it', () => {
    expect(reconnectWait(1, b, 0.5)).toBe(900);
    expect(reconnectWait(30, b, 0.999999)).toBe(48_000);
    expect(reconnectWait(0, b, 0.999999)).toBe(0);
  });

  it('draws the jitter once per dial and starts over after a connect', () => {
    const draws = [0.5, 0.25];
    const r = exponentialReconnect(b, () => draws.shift() ?? 0);
    const wait = () => (r.reconnectDelayHandler as () => number)();
    const dial = () => (r.reconnectToServer as () => unknown)();
    expect(wait()).toBe(0);
    dial();
    expect([wait(), wait()]).toEqual([900, 900]);
    dial();
    expect(wait()).toBe(1_900);
    r.connected();
    expect(wait()).toBe(0);
  });
});
