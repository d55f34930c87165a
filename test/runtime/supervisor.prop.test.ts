import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Restart, Strategy, Supervisor } from '../../src/runtime/index.js';
import { ManualClock, startSupervisor } from '../../src/runtime/index.js';
import { unwrap, W } from './support.js';

type Action = { child: number; how: 'crash' | 'stop' | 'kill' } | { advance: number };

const restartArb = fc.constantFrom<Restart>('permanent', 'transient', 'temporary');
const strategyArb = fc.constantFrom<Strategy>('one_for_one', 'one_for_all', 'rest_for_one');

describe('random crash sequences against a supervisor (property)', () => {
  it('never reports a dead child as running and never exceeds its intensity without exiting', async () => {
    await fc.assert(
      fc.asyncProperty(
        strategyArb,
        fc.array(restartArb, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(
          fc.oneof(
            fc.record({
              child: fc.nat({ max: 3 }),
              how: fc.constantFrom('crash' as const, 'stop' as const, 'kill' as const),
            }),
            fc.record({ advance: fc.integer({ min: 0, max: 600 }) }),
          ),
          { maxLength: 25 },
        ),
        async (strategy, restarts, intensity, actions: Action[]) => {
          const clock = new ManualClock(0);
          const period = 1000;
          const sup: Supervisor = unwrap(
            await startSupervisor(
              restarts.map((restart, i) => ({ id: `c${i}`, start: W.ok(), restart })),
              { strategy, intensity, period },
              { clock },
            ),
          );
          const restartTimes: number[] = [];
          const everStarted = [...unwrap(await sup.whichChildren())].flatMap((c) =>
            typeof c.pid === 'object' ? [c.pid] : [],
          );
          let restartEvents = 0;
          sup.subscribe((r) => {
            // One crash causes at most one restart decision (however many children one_for_all cycles).
            if (r.type === 'restarted') restartEvents++;
            if (r.type === 'progress') everStarted.push(r.pid);
          });
          for (const a of actions) {
            if ('advance' in a) {
              clock.advance(a.advance);
              continue;
            }
            const wc = await sup.whichChildren();
            if (!wc.ok) break;
            // Invariant 1: every pid listed is alive.
            for (const c of wc.value) if (typeof c.pid === 'object') expect(c.pid.alive).toBe(true);
            const running = wc.value.filter((c) => typeof c.pid === 'object');
            const target = running[a.child % Math.max(1, running.length)];
            if (!target || typeof target.pid !== 'object') continue;
            const before = restartEvents;
            if (a.how === 'crash') target.pid.send({ type: 'crash' });
            else if (a.how === 'stop') target.pid.send({ type: 'stop' });
            else target.pid._kill();
            await sup.countChildren(); // barrier: the exit has been handled
            if (restartEvents > before) restartTimes.push(clock.now());
            // Invariant 2: while alive, restarts in any window of `period` never exceed intensity.
            if (sup.alive) {
              const now = clock.now();
              expect(restartTimes.filter((t) => t >= now - period).length).toBeLessThanOrEqual(intensity);
            }
          }
          if (sup.alive) {
            const wc = unwrap(await sup.whichChildren());
            for (const c of wc) if (typeof c.pid === 'object') expect(c.pid.alive).toBe(true);
            await sup.stop();
          }
          // However it ended, an exited supervisor leaves no live child behind.
          expect(sup.exitReason).toBe('shutdown');
          expect(everStarted.filter((p) => p.alive)).toEqual([]);
        },
      ),
      { numRuns: 60 },
    );
  });
});
