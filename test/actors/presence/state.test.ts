import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Presence } from '../../../actors/presence/state.js';
import type { AgentId } from '../../../src/protocol/ids.js';

const a = 'a' as AgentId;
const b = 'b' as AgentId;

describe('Presence', () => {
  it('an agent missing 3 beats of 5 s goes offline, not before', () => {
    const p = new Presence();
    expect(p.beat(a, 0)).toEqual({ joined: true, expiresAt: 15_001 });
    expect(p.expired(15_000)).toEqual([]);
    expect(p.isOnline(a)).toBe(true);
    expect(p.expired(15_001)).toEqual([a]);
    expect(p.isOnline(a)).toBe(false);
    expect(p.nextDeadline()).toBeNull();
  });

  it('each beat pushes the deadline; a returning agent joins again', () => {
    const p = new Presence({ intervalMs: 1000, missedBeats: 2 });
    p.beat(a, 0);
    expect(p.beat(a, 1500)).toEqual({ joined: false, expiresAt: 3501 });
    expect(p.expired(3000)).toEqual([]);
    expect(p.expired(3501)).toEqual([a]);
    expect(p.beat(a, 4000).joined).toBe(true);
  });

  it('a beat with an earlier clock counts at the latest time seen (deadlines never move back)', () => {
    const p = new Presence();
    p.beat(a, 10_000);
    p.beat(b, 2_000);
    p.beat(a, 3_000);
    expect(p.lastBeat(a)).toBe(10_000);
    expect(p.lastBeat(b)).toBe(10_000);
    expect(p.expired(25_001)).toEqual([b, a]);
  });

  it('goodbye removes at once; nextDeadline tracks the earliest', () => {
    const p = new Presence();
    p.beat(a, 0);
    p.beat(b, 100);
    expect(p.nextDeadline()).toBe(15_001);
    expect(p.goodbye(a)).toBe(true);
    expect(p.goodbye(a)).toBe(false);
    expect(p.nextDeadline()).toBe(15_101);
    expect(p.online()).toEqual([b]);
    expect(p.expired(1e9)).toEqual([b]);
  });

  it('rejects a nonsensical configuration', () => {
    expect(() => new Presence({ intervalMs: 0 })).toThrow(RangeError);
  });

  it('expired(now) equals a full scan of last beats (property)', () => {
    const ids = ['a', 'b', 'c', 'd', 'e'] as AgentId[];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom('beat', 'beat', 'goodbye', 'tick'),
            id: fc.constantFrom(...ids),
            dt: fc.nat(4000),
          }),
          { minLength: 1, maxLength: 100 },
        ),
        (ops) => {
          const p = new Presence({ intervalMs: 1000, missedBeats: 3 });
          const model = new Map<AgentId, number>();
          let now = 0;
          for (const o of ops) {
            now += o.dt;
            if (o.op === 'beat') {
              p.beat(o.id, now);
              model.set(o.id, now);
            } else if (o.op === 'goodbye') {
              expect(p.goodbye(o.id)).toBe(model.delete(o.id));
            } else {
              const want = [...model].filter(([, t]) => now - t > 3000).map(([id]) => id);
              expect(p.expired(now).sort()).toEqual(want.sort());
              for (const id of want) model.delete(id);
              const min = Math.min(...[...model.values()].map((t) => t + 3001));
              expect(p.nextDeadline()).toBe(model.size ? min : null);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
