/**
 * Retention (pure): which finished tasks are removed, by age and by count, oldest first, and how
 * much of the map a sweep walks.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expiredTasks } from '../../../actors/task-queue/retention.js';

const finished = (...entries: [string, number][]) => new Map(entries);

describe('expiredTasks', () => {
  const policy = { maxAgeMs: 1_000, maxCount: 3 };

  it('removes what finished at least maxAgeMs ago, and keeps the rest', () => {
    const m = finished(['a', 0], ['b', 500], ['c', 1_500]);
    expect(expiredTasks(m, 1_499, policy)).toEqual(['a']);
    expect(expiredTasks(m, 1_500, policy)).toEqual(['a', 'b']);
    expect(expiredTasks(m, 999, policy)).toEqual([]);
  });

  it('beyond maxCount removes the oldest first, however young', () => {
    const m = finished(['a', 10], ['b', 20], ['c', 30], ['d', 40], ['e', 50]);
    expect(expiredTasks(m, 60, policy)).toEqual(['a', 'b']);
    expect(expiredTasks(m, 60, { maxAgeMs: 1_000, maxCount: 1 })).toEqual(['a', 'b', 'c', 'd']);
  });

  it('removes at most `limit` per sweep (the rest go in the next)', () => {
    const m = finished(['a', 0], ['b', 0], ['c', 0], ['d', 0]);
    expect(expiredTasks(m, 5_000, policy, 3)).toEqual(['a', 'b', 'c']);
  });

  it('stops at the first task that is kept: one out of order waits for the one before it', () => {
    // 'late' finished earlier than 'b' but was recorded after it (e.g. another hub's clock).
    const m = finished(['b', 900], ['late', 100]);
    expect(expiredTasks(m, 1_500, policy)).toEqual([]);
    expect(expiredTasks(m, 1_900, policy)).toEqual(['b', 'late']);
  });

  it('property: a prefix of the oldest; what stays is within the count; nothing old stays unless out of order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(10_000), { maxLength: 60 }),
        fc.nat(20_000),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 5_000 }),
        (times, now, maxCount, maxAgeMs) => {
          const sorted = [...times].sort((x, y) => x - y);
          const m = new Map(sorted.map((t, i) => [`t${i}`, t] as [string, number]));
          const out = expiredTasks(m, now, { maxAgeMs, maxCount });
          expect(out).toEqual([...m.keys()].slice(0, out.length));
          const kept = sorted.slice(out.length);
          expect(kept.length).toBeLessThanOrEqual(maxCount);
          // In finish order, every task kept is younger than maxAgeMs.
          for (const t of kept) expect(now - t).toBeLessThan(maxAgeMs);
        },
      ),
    );
  });
});
