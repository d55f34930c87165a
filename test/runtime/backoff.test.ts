import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, exponentialDelay, normalizeBackoff } from '../../src/runtime/backoff.js';

/** min <= max, factor in [1, 10], jitter in [0, 1]: every shape a caller may pass. */
const shape = fc
  .record({
    min: fc.integer({ min: 1, max: 100_000 }),
    span: fc.integer({ min: 0, max: 10_000_000 }),
    factor: fc.double({ min: 1, max: 10, noNaN: true }),
    jitter: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ min, span, factor, jitter }) => ({ b: { min, max: min + span, factor }, jitter }));
const attempt = fc.integer({ min: 0, max: 10_000 });
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

describe('exponentialDelay', () => {
  it('grows by factor from min and caps at max', () => {
    const b = { min: 100, max: 1_000 };
    expect([0, 1, 2, 3, 4, 10, 10_000].map((n) => exponentialDelay(n, b))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000,
    ]);
    expect([0, 1, 2].map((n) => exponentialDelay(n, { ...b, factor: 3 }))).toEqual([100, 300, 900]);
    expect(exponentialDelay(5, { ...b, factor: 1 })).toBe(100);
  });

  it('removes up to `jitter` of the capped delay, never adds', () => {
    const b = { min: 100, max: 1_000 };
    expect(exponentialDelay(10, b, { jitter: 0.2, random: () => 0 })).toBe(1_000);
    expect(exponentialDelay(10, b, { jitter: 0.2, random: () => 0.5 })).toBe(900);
    expect(exponentialDelay(0, b, { jitter: 0.5, random: () => 0.5 })).toBe(75);
  });

  it('calls random only when there is jitter', () => {
    let calls = 0;
    const random = () => {
      calls++;
      return 0.5;
    };
    exponentialDelay(3, { min: 1, max: 10 }, { random });
    exponentialDelay(3, { min: 1, max: 10 }, { jitter: 0, random });
    expect(calls).toBe(0);
    exponentialDelay(3, { min: 1, max: 10 }, { jitter: 0.1, random });
    expect(calls).toBe(1);
  });

  it('treats a negative or NaN attempt as 0 and a huge one as max', () => {
    const b = { min: 100, max: 1_000 };
    expect(exponentialDelay(-3, b)).toBe(100);
    expect(exponentialDelay(Number.NaN, b)).toBe(100);
    expect(exponentialDelay(Number.POSITIVE_INFINITY, b)).toBe(1_000);
    expect(exponentialDelay(Number.MAX_SAFE_INTEGER, { ...b, factor: 1.000001 })).toBe(1_000);
    expect(exponentialDelay(10_000, { min: 0, max: 1_000 })).toBe(0);
  });

  it('clamps out-of-range jitter and random values into [0, 1]', () => {
    const b = { min: 100, max: 100 };
    expect(exponentialDelay(0, b, { jitter: 2, random: () => 0.5 })).toBe(50);
    expect(exponentialDelay(0, b, { jitter: -1, random: () => 0.5 })).toBe(100);
    expect(exponentialDelay(0, b, { jitter: 0.5, random: () => 7 })).toBe(50);
    expect(exponentialDelay(0, b, { jitter: 0.5, random: () => Number.NaN })).toBe(100);
  });

  it('is monotone non-decreasing in attempt before jitter (property)', () => {
    fc.assert(
      fc.property(shape, attempt, attempt, ({ b }, x, y) => {
        const [lo, hi] = x <= y ? [x, y] : [y, x];
        expect(exponentialDelay(lo, b)).toBeLessThanOrEqual(exponentialDelay(hi, b));
      }),
    );
  });

  it('stays within [(1 - jitter) * base, max] and finite up to attempt 10,000 (property)', () => {
    fc.assert(
      fc.property(shape, attempt, unit, ({ b, jitter }, n, u) => {
        const base = exponentialDelay(n, b);
        const d = exponentialDelay(n, b, { jitter, random: () => u });
        expect(Number.isFinite(d)).toBe(true);
        expect(base).toBeGreaterThanOrEqual(b.min);
        expect(d).toBeLessThanOrEqual(base);
        expect(d).toBeLessThanOrEqual(b.max);
        expect(d).toBeGreaterThanOrEqual((1 - jitter) * base);
        expect(d).toBeGreaterThanOrEqual((1 - jitter) * b.min);
      }),
    );
  });

  it('gives whole, safe integers for whole min, max and factor without jitter, up to attempt 10,000 (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 16 }),
        attempt,
        (min, span, factor, n) => {
          expect(Number.isSafeInteger(exponentialDelay(n, { min, max: min + span, factor }))).toBe(true);
        },
      ),
    );
  });

  it('is deterministic for a given random (property)', () => {
    fc.assert(
      fc.property(shape, attempt, unit, ({ b, jitter }, n, u) => {
        expect(exponentialDelay(n, b, { jitter, random: () => u })).toBe(
          exponentialDelay(n, b, { jitter, random: () => u }),
        );
      }),
    );
  });

  it('is what the supervision backoff uses', () => {
    const b = normalizeBackoff({ min: 20, max: 80, jitter: 0.25 });
    fc.assert(
      fc.property(attempt, unit, (n, u) => {
        expect(backoffDelay(n, b, () => u)).toBe(exponentialDelay(n, b, { jitter: 0.25, random: () => u }));
      }),
    );
  });
});
