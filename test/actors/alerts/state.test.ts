/**
 * One alert rule's lifecycle (actors/alerts/state.ts), step by step: fire, cooldown, ack, resolve.
 */
import { describe, expect, it } from 'vitest';
import type { Condition } from '../../../actors/alerts/conditions.js';
import { type AlertSettings, acknowledge, delivered, step } from '../../../actors/alerts/state.js';
import { type AlertState, initialAlertState } from '../../../src/protocol/alert.js';

const settings: AlertSettings = { enabled: true, forMs: 0, cooldownMs: 1_000, severity: 'critical' };
const holds: Condition = { holds: true, value: 3, threshold: 1, message: 'no agent online; 3 tasks queued' };
const clear: Condition = { holds: false, value: 0, threshold: 1, message: '1 agent online' };

/** Steps through `[at, condition]` pairs; the events' statuses and ids, and the last state. */
function steps(
  list: [number, Condition | null][],
  s0 = initialAlertState('no_agents_online'),
  cfg = settings,
) {
  let s = s0;
  const events: string[] = [];
  for (const [at, c] of list) {
    const r = step(s, c, cfg, at);
    s = r.state;
    events.push(...r.events.map((e) => `${e.status}@${at}:${e.id}`));
  }
  return { s, events };
}

describe('step', () => {
  it('fires at once, repeats once per cooldown while it holds, and resolves once', () => {
    const { s, events } = steps([
      [0, holds],
      [500, holds],
      [999, holds],
      [1_000, holds],
      [1_500, holds],
      [2_100, clear],
      [2_200, clear],
    ]);
    expect(events).toEqual([
      'firing@0:no_agents_online.1.1',
      'firing@1000:no_agents_online.1.2',
      'resolved@2100:no_agents_online.1.resolved',
    ]);
    expect(s).toMatchObject({ status: 'ok', firing: 1, notifications: 0, resolvedAt: 2_100, value: 0 });
    expect(s.outbox.map((e) => e.id)).toEqual([
      'no_agents_online.1.1',
      'no_agents_online.1.2',
      'no_agents_online.1.resolved',
    ]);
  });

  it('waits forMs of holding before firing; a break starts the wait again', () => {
    const cfg = { ...settings, forMs: 1_000 };
    const { events } = steps(
      [
        [0, holds],
        [900, holds],
        [950, clear],
        [1_000, holds],
        [1_999, holds],
        [2_000, holds],
      ],
      undefined,
      cfg,
    );
    expect(events).toEqual(['firing@2000:no_agents_online.1.1']);
  });

  it('an unknown condition changes nothing', () => {
    const fired = step(initialAlertState('stuck_tasks'), holds, settings, 0).state;
    const r = step(fired, null, settings, 5_000);
    expect(r).toEqual({ state: fired, events: [], changed: false });
  });

  it('a rule that resolves and fires again inside the cooldown notifies when the cooldown ends', () => {
    const { events, s } = steps([
      [0, holds],
      [100, clear],
      [200, holds],
      [900, holds],
      [1_000, holds],
    ]);
    expect(events).toEqual([
      'firing@0:no_agents_online.1.1',
      'resolved@100:no_agents_online.1.resolved',
      'firing@1000:no_agents_online.2.1',
    ]);
    expect(s).toMatchObject({ status: 'firing', firing: 2, since: 200 });
  });

  it('an episode that never notified resolves silently', () => {
    const { events } = steps([
      [0, holds],
      [100, clear],
      [200, holds],
      [300, clear],
    ]);
    expect(events).toEqual(['firing@0:no_agents_online.1.1', 'resolved@100:no_agents_online.1.resolved']);
  });

  it('disabling a firing rule resolves it; a disabled rule never fires', () => {
    const fired = step(initialAlertState('queue_growing'), holds, settings, 0).state;
    const off = step(fired, holds, { ...settings, enabled: false }, 10);
    expect(off.events.map((e) => e.status)).toEqual(['resolved']);
    expect(off.state.status).toBe('ok');
    const still = step(off.state, holds, { ...settings, enabled: false }, 5_000);
    expect(still.events).toEqual([]);
  });

  it('writes only what matters: an ok rule whose value moves is not rewritten', () => {
    const a = step(initialAlertState('queue_growing'), clear, settings, 0);
    expect(a.changed).toBe(true); // the threshold is recorded once
    const b = step(a.state, { ...clear, value: 7 }, settings, 100);
    expect(b.changed).toBe(false);
  });
});

describe('acknowledge', () => {
  it('silences a firing rule until it resolves; refused when ok; idempotent', () => {
    const fired = step(initialAlertState('no_agents_online'), holds, settings, 0).state;
    expect(acknowledge(initialAlertState('no_agents_online'), 'op', 0)).toEqual({
      ok: false,
      reason: 'not_firing',
    });
    const acked = acknowledge(fired, 'op', 10);
    if (!acked.ok) throw new Error('refused');
    expect(acked.state).toMatchObject({ status: 'acknowledged', ackedBy: 'op', ackedAt: 10 });
    const again = acknowledge(acked.state, 'other', 20);
    expect(again).toMatchObject({ ok: true, changed: false, state: { ackedBy: 'op' } });
    const { events, s } = steps(
      [
        [5_000, holds],
        [10_000, holds],
        [11_000, clear],
        [11_500, holds],
      ],
      acked.state,
    );
    expect(events).toEqual([
      'resolved@11000:no_agents_online.1.resolved',
      'firing@11500:no_agents_online.2.1',
    ]);
    expect(s.ackedBy).toBeNull();
  });
});

describe('delivered', () => {
  it('takes an event out of the outbox once', () => {
    const fired: AlertState = step(initialAlertState('stuck_tasks'), holds, settings, 0).state;
    const r = delivered(fired, 'stuck_tasks.1.1');
    expect(r.changed).toBe(true);
    expect(r.state.outbox).toEqual([]);
    expect(delivered(r.state, 'stuck_tasks.1.1').changed).toBe(false);
  });
});
