import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addRestart } from '../../src/runtime/index.js';
import { RestartWindow } from '../../src/runtime/restart-intensity.js';

describe('addRestart', () => {
  it('allows `intensity` restarts in the window and refuses the next one', () => {
    const limits = { intensity: 2, period: 1000 };
    let w: readonly number[] = [];
    const a = addRestart(w, 0, limits);
    w = a.restarts;
    const b = addRestart(w, 10, limits);
    w = b.restarts;
    const c = addRestart(w, 20, limits);
    expect([a.allowed, b.allowed, c.allowed]).toEqual([true, true, false]);
  });

  it('refuses the first restart when intensity is 0', () => {
    expect(addRestart([], 5, { intensity: 0, period: 1000 }).allowed).toBe(false);
  });

  it('is inclusive at the window edge and forgets restarts older than the period', () => {
    const limits = { intensity: 1, period: 1000 };
    expect(addRestart([0], 1000, limits).allowed).toBe(false); // 0 >= 1000 - 1000: still counts
    expect(addRestart([0], 1001, limits).allowed).toBe(true);
    expect(addRestart([0], 1001, limits).restarts).toEqual([1001]);
  });
});

// Reference model: count the restarts (including this one) whose time lies in [now - period, now].
function model(history: number[], now: number, intensity: number, period: number): boolean {
  return history.filter((t) => t >= now - period).length + 1 <= intensity;
}

describe('addRestart properties', () => {
  const scenario = fc.record({
    intensity: fc.integer({ min: 0, max: 6 }),
    period: fc.integer({ min: 1, max: 2000 }),
    gaps: fc.array(fc.integer({ min: 0, max: 800 }), { maxLength: 60 }),
  });

  it('matches the reference model on every attempt', () => {
    fc.assert(
      fc.property(scenario, ({ intensity, period, gaps }) => {
        // The supervisor stops at the first refusal, so every recorded attempt was allowed
        // except possibly the last; feed attempts until a refusal.
        let w: readonly number[] = [];
        const accepted: number[] = [];
        let now = 0;
        for (const g of gaps) {
          now += g;
          const d = addRestart(w, now, { intensity, period });
          expect(d.allowed).toBe(model(accepted, now, intensity, period));
          if (!d.allowed) return;
          accepted.push(now);
          w = d.restarts;
        }
      }),
    );
  });

  it('never allows more than `intensity` restarts within any window of `period` ms', () => {
    fc.assert(
      fc.property(scenario, ({ intensity, period, gaps }) => {
        let w: readonly number[] = [];
        const allowed: number[] = [];
        let now = 0;
        for (const g of gaps) {
          now += g;
          const d = addRestart(w, now, { intensity, period });
          w = d.restarts;
          if (d.allowed) allowed.push(now);
        }
        for (const t of allowed) {
          expect(allowed.filter((u) => u >= t - period && u <= t).length).toBeLessThanOrEqual(intensity);
        }
      }),
    );
  });

  it('keeps the window bounded: no timestamp older than the period survives', () => {
    fc.assert(
      fc.property(scenario, ({ intensity, period, gaps }) => {
        let w: readonly number[] = [];
        let now = 0;
        for (const g of gaps) {
          now += g;
          w = addRestart(w, now, { intensity, period }).restarts;
          expect(w.every((t) => t >= now - period)).toBe(true);
        }
      }),
    );
  });
});

describe("RestartWindow (the supervisors' incremental form)", () => {
  it('decides every attempt as addRestart does, including after the window is compacted', () => {
    // Long runs of tiny gaps push the window past its compaction threshold (1024 stale
    // entries), small ones exercise the edges.
    const scenario = fc.record({
      intensity: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 200, max: 800 })),
      period: fc.integer({ min: 1, max: 1500 }),
      gaps: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 2000, maxLength: 5000 }),
    });
    fc.assert(
      fc.property(scenario, ({ intensity, period, gaps }) => {
        const limits = { intensity, period };
        const window = new RestartWindow(limits);
        let w: readonly number[] = [];
        let now = 0;
        for (const g of gaps) {
          now += g;
          const reference = addRestart(w, now, limits);
          if (window.add(now) !== reference.allowed) return false;
          if (!reference.allowed) return true;
          w = reference.restarts;
        }
        return true;
      }),
      { numRuns: 100 },
    );
  });

  it('counts exactly at the limit long after its storage was compacted', () => {
    // One restart per ms with period 999 keeps exactly 1000 in the window: always allowed. After
    // 3000 of them (past the compaction threshold) one more in the same ms is the 1001st.
    const window = new RestartWindow({ intensity: 1000, period: 999 });
    for (let t = 0; t < 3000; t++) expect(window.add(t)).toBe(true);
    expect(window.add(2999)).toBe(false);
  });
});
