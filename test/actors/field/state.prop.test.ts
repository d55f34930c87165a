/**
 * The claim rule and its compare-and-set loop (actors/field/state.ts) against a model of a KV cell,
 * with the claimants' reads and writes interleaved in every order fast-check's scheduler tries:
 * exactly one claimant wins, every claimant is told the same winner, and releases and re-claims
 * keep "at most one holder" at every revision.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CasCell, casApply, claimChange, releaseChange } from '../../../actors/field/state.js';
import type { Pheromone } from '../../../src/protocol/field.js';

const pheromone: Pheromone = {
  v: 1,
  id: 'p1',
  type: 'request.code.review',
  selector: '',
  payload: {},
  timestamp: 0,
  source: 'a',
  ttl: null,
  expiresAt: null,
  claimedBy: null,
  claimedAt: null,
  taskId: null,
  event: 'emitted',
  eventAt: 0,
  eventBy: 'a',
};

/** One KV key: get and compare-and-set update, each a step the scheduler orders. */
function modelCell(s: fc.Scheduler, start: Pheromone) {
  let value = start;
  let revision = 1;
  const history: Pheromone[] = [start];
  const cell: CasCell<Pheromone> = {
    get: () => s.schedule(Promise.resolve()).then(() => ({ value, revision })),
    update: (next, expected) =>
      s.schedule(Promise.resolve()).then(() => {
        if (expected !== revision) return { ok: false as const };
        value = next;
        revision++;
        history.push(next);
        return { ok: true as const, revision };
      }),
  };
  return { cell, history, current: () => value };
}

describe('claims under every interleaving', () => {
  it('exactly one of any number of concurrent claimants wins, and all are told who', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 12 }), async (s, n) => {
        const m = modelCell(s, pheromone);
        const results = Promise.all(
          Array.from({ length: n }, (_, i) => casApply(m.cell, claimChange(`agent-${i}`, 1), 1)),
        );
        const out = await s.waitFor(results);
        const winners = out.filter((r, i) => r.pheromone.claimedBy === `agent-${i}`);
        expect(winners).toHaveLength(1);
        for (const r of out) expect(r.pheromone.claimedBy).toBe(m.current().claimedBy);
        // One write: the winning claim; every other claimant wrote nothing.
        expect(out.filter((r) => r.written !== null)).toHaveLength(1);
        expect(m.history.filter((p) => p.event === 'claimed')).toHaveLength(1);
      }),
      { numRuns: 300 },
    );
  });

  it('claims mixed with the holder releasing: never two holders, and a release by a non-holder is refused', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(
          fc.record({ op: fc.constantFrom('claim', 'release'), who: fc.integer({ min: 0, max: 4 }) }),
          {
            minLength: 2,
            maxLength: 16,
          },
        ),
        async (s, ops) => {
          const m = modelCell(s, pheromone);
          const settled = Promise.allSettled(
            ops.map(({ op, who }) =>
              casApply(
                m.cell,
                op === 'claim'
                  ? claimChange(`agent-${who}`, 1)
                  : releaseChange(`agent-${who}`, `agent-${who}`, 1),
                1,
              ),
            ),
          );
          const out = await s.waitFor(settled);
          // Each revision changes the holder only from nobody to someone or from someone to nobody.
          for (let i = 1; i < m.history.length; i++) {
            const before = m.history[i - 1]!.claimedBy;
            const after = m.history[i]!.claimedBy;
            expect(before === null || after === null).toBe(true);
            if (m.history[i]!.event === 'released') expect(m.history[i]!.eventBy).toBe(before);
          }
          for (const r of out)
            if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('forbidden');
        },
      ),
      { numRuns: 300 },
    );
  });
});
