/**
 * The life of an alert rule (actors/alerts/state.ts) under random sequences of samples (the
 * condition holding, not holding or unknown, at random intervals), acknowledgements and the rule
 * being turned off and on: the promises docs/operations.md makes about notifications.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Condition } from '../../../actors/alerts/conditions.js';
import { type AlertSettings, acknowledge, delivered, step } from '../../../actors/alerts/state.js';
import { type AlertEvent, type AlertState, initialAlertState } from '../../../src/protocol/alert.js';

type Op =
  | { type: 'sample'; dt: number; holds: boolean | null; enabled: boolean }
  | { type: 'ack'; dt: number }
  | { type: 'deliver' };

const opArb = (maxDt: number): fc.Arbitrary<Op> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        type: fc.constant('sample' as const),
        dt: fc.integer({ min: 0, max: maxDt }),
        holds: fc.oneof(fc.boolean(), fc.constant(null)),
        enabled: fc.integer({ min: 0, max: 9 }).map((n) => n > 0),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ type: fc.constant('ack' as const), dt: fc.integer({ min: 0, max: maxDt }) }),
    },
    { weight: 1, arbitrary: fc.constant({ type: 'deliver' as const }) },
  );

const cond = (holds: boolean): Condition => ({ holds, value: holds ? 5 : 0, threshold: 1, message: 'm' });

interface Run {
  events: (AlertEvent & { statusBefore: AlertState['status'] })[];
  states: AlertState[];
  /** For each firing event: since when the condition had held without a break. */
  heldSince: Map<string, number>;
}

function run(ops: Op[], settings: Omit<AlertSettings, 'enabled'>): Run {
  let s = initialAlertState('no_agents_online');
  let now = 1_000_000;
  let holdingSince: number | null = null;
  const out: Run = { events: [], states: [s], heldSince: new Map() };
  for (const op of ops) {
    if (op.type === 'deliver') {
      const first = s.outbox[0];
      if (first) s = delivered(s, first.id).state;
      continue;
    }
    now += op.dt;
    if (op.type === 'ack') {
      const a = acknowledge(s, 'op', now);
      if (a.ok) s = a.state;
      else expect(s.status).toBe('ok');
      out.states.push(s);
      continue;
    }
    if (op.holds === true && op.enabled) holdingSince ??= now;
    else if (op.holds === false || !op.enabled) holdingSince = null;
    const before = s.status;
    // What a hub taking over reads back from the bucket: the state survives JSON.
    const r = step(
      JSON.parse(JSON.stringify(s)),
      op.holds === null ? null : cond(op.holds),
      { ...settings, enabled: op.enabled },
      now,
    );
    for (const e of r.events) {
      out.events.push({ ...e, statusBefore: before });
      if (e.status === 'firing') out.heldSince.set(e.id, holdingSince ?? Number.NaN);
      expect(r.state.outbox.map((x) => x.id)).toContain(e.id);
    }
    if (!r.changed) expect(r.state.status).toBe(s.status);
    s = r.state;
    out.states.push(s);
  }
  return out;
}

const settingsArb = fc.record({
  forMs: fc.integer({ min: 0, max: 5_000 }),
  cooldownMs: fc.integer({ min: 100, max: 10_000 }),
  severity: fc.constant('critical' as const),
});

describe('alert lifecycle properties', () => {
  it('never sends two firing events of a rule within its cooldown, across episodes', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(opArb(3_000), { minLength: 20, maxLength: 150 }), (settings, ops) => {
        const firing = run(ops, settings).events.filter((e) => e.status === 'firing');
        for (let i = 1; i < firing.length; i++)
          expect(firing[i]!.at - firing[i - 1]!.at).toBeGreaterThanOrEqual(settings.cooldownMs);
      }),
      { numRuns: 500 },
    );
  });

  it('an acknowledged rule sends nothing until it resolves, then one resolved event', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(opArb(3_000), { minLength: 20, maxLength: 150 }), (settings, ops) => {
        const { events } = run(ops, settings);
        for (const e of events) if (e.status === 'firing') expect(e.statusBefore).not.toBe('acknowledged');
      }),
      { numRuns: 500 },
    );
  });

  it('events alternate per episode: resolved only after a firing one of the same episode, ids unique', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(opArb(3_000), { minLength: 20, maxLength: 150 }), (settings, ops) => {
        const { events, states } = run(ops, settings);
        expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
        let open: number | null = null;
        for (const e of events) {
          if (e.status === 'firing') {
            if (open !== null) expect(e.firing).toBe(open);
            open = e.firing;
          } else {
            expect(open).toBe(e.firing);
            open = null;
          }
        }
        for (let i = 1; i < states.length; i++)
          expect(states[i]!.firing).toBeGreaterThanOrEqual(states[i - 1]!.firing);
      }),
      { numRuns: 500 },
    );
  });

  it('fires only once the condition has held for forMs without a break', () => {
    fc.assert(
      fc.property(settingsArb, fc.array(opArb(3_000), { minLength: 20, maxLength: 150 }), (settings, ops) => {
        const r = run(ops, settings);
        for (const e of r.events.filter((x) => x.status === 'firing' && x.id.endsWith('.1')))
          expect(e.at - r.heldSince.get(e.id)!).toBeGreaterThanOrEqual(settings.forMs);
      }),
      { numRuns: 500 },
    );
  });
});
