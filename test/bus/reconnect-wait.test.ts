import { describe, expect, it } from 'vitest';
import { reconnectWait } from '../../src/bus/connection.js';

describe('exponential NATS reconnect waits', () => {
  it('retry at once, then 1 s, 2 s, 4 s ... capped at 60 s', () => {
    const b = { minMs: 1_000, maxMs: 60_000 };
    expect([0, 1, 2, 3, 4, 7, 8, 30].map((d) => reconnectWait(d, b))).toEqual([
      0, 1_000, 2_000, 4_000, 8_000, 60_000, 60_000, 60_000,
    ]);
  });
});
