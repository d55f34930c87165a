/**
 * @module alerts/state
 * The life of one alert rule: (state, condition, settings, now) -> (state, events). Pure.
 *
 * - A rule fires when its condition has held for `forMs` (ok -> firing: a new episode, `firing`
 *   count + 1) and sends a `firing` event.
 * - While the condition keeps holding it sends another at most once per `cooldownMs`, counted from
 *   the last `firing` event of the rule, whatever the episode: a rule that resolves and fires again
 *   within the cooldown is firing at once but sends its event when the cooldown ends (if it still
 *   holds). So no two `firing` events of one rule are ever closer than `cooldownMs`.
 * - Acknowledged (firing -> acknowledged) it sends nothing until it resolves.
 * - When the condition stops holding (or the rule is disabled) it resolves (-> ok) and sends one
 *   `resolved` event, only if the episode sent a `firing` one.
 * - An unknown condition (null: not measurable now) changes nothing.
 *
 * Each event is also appended to the state's outbox; the process removes it once every webhook has
 * had it ({@link delivered}), and a hub that takes over delivers what is left.
 */
import {
  type AlertEvent,
  type AlertRuleConfig,
  type AlertState,
  OUTBOX_MAX,
} from '../../src/protocol/alert.js';
import type { Condition } from './conditions.js';

export type AlertSettings = Pick<AlertRuleConfig, 'enabled' | 'forMs' | 'cooldownMs' | 'severity'>;

export interface StepResult {
  state: AlertState;
  /** Events to send, in order (also in `state.outbox`). */
  events: AlertEvent[];
  /** Whether the state differs from the one given in a way worth writing down. */
  changed: boolean;
}

/** The fields whose change is written to the bucket (a measured value only while not ok). */
function significant(s: AlertState): string {
  return JSON.stringify([
    s.status,
    s.pendingSince,
    s.since,
    s.lastNotifiedAt,
    s.notifications,
    s.ackedBy,
    s.ackedAt,
    s.firing,
    s.resolvedAt,
    s.threshold,
    s.outbox.map((e) => e.id),
    s.status === 'ok' ? null : [s.value, s.message],
  ]);
}

function event(
  s: AlertState,
  status: AlertEvent['status'],
  settings: AlertSettings,
  now: number,
  id: string,
): AlertEvent {
  return {
    v: 1,
    id,
    rule: s.rule,
    status,
    severity: settings.severity,
    message: s.message,
    value: s.value ?? 0,
    threshold: s.threshold ?? 0,
    firing: Math.max(1, s.firing),
    at: now,
  };
}

const withEvent = (s: AlertState, e: AlertEvent): AlertState => ({
  ...s,
  outbox: [...s.outbox, e].slice(-OUTBOX_MAX),
});

/** A firing episode notifies when the rule's cooldown since its last `firing` event is over. */
function maybeNotify(s: AlertState, settings: AlertSettings, now: number): StepResult {
  if (s.status !== 'firing') return { state: s, events: [], changed: false };
  if (s.lastNotifiedAt !== null && now - s.lastNotifiedAt < settings.cooldownMs)
    return { state: s, events: [], changed: false };
  const notified = { ...s, lastNotifiedAt: now, notifications: s.notifications + 1 };
  const e = event(notified, 'firing', settings, now, `${s.rule}.${s.firing}.${notified.notifications}`);
  return { state: withEvent(notified, e), events: [e], changed: true };
}

function resolve(
  s: AlertState,
  settings: AlertSettings,
  now: number,
): { state: AlertState; events: AlertEvent[] } {
  const resolved: AlertState = {
    ...s,
    status: 'ok',
    pendingSince: null,
    since: null,
    notifications: 0,
    ackedBy: null,
    ackedAt: null,
    resolvedAt: now,
  };
  if (s.notifications === 0) return { state: resolved, events: [] };
  const e = event(s, 'resolved', settings, now, `${s.rule}.${s.firing}.resolved`);
  return { state: withEvent(resolved, e), events: [e] };
}

/** One evaluation of a rule. */
export function step(
  prev: AlertState,
  condition: Condition | null,
  settings: AlertSettings,
  now: number,
): StepResult {
  const done = (state: AlertState, events: AlertEvent[] = []): StepResult => ({
    state,
    events,
    changed: events.length > 0 || significant(state) !== significant(prev),
  });
  if (!settings.enabled) {
    if (prev.status === 'ok') return done({ ...prev, pendingSince: null });
    const r = resolve({ ...prev, message: `${prev.message} (rule disabled)` }, settings, now);
    return done(r.state, r.events);
  }
  if (condition === null) return { state: prev, events: [], changed: false };
  const measured: AlertState = {
    ...prev,
    value: condition.value,
    threshold: condition.threshold,
    message: condition.message,
    checkedAt: now,
  };
  if (!condition.holds) {
    if (prev.status === 'ok') return done({ ...measured, pendingSince: null });
    const r = resolve(measured, settings, now);
    return done(r.state, r.events);
  }
  if (prev.status === 'acknowledged') return done(measured);
  if (prev.status === 'firing') {
    const n = maybeNotify(measured, settings, now);
    return done(n.state, n.events);
  }
  const pendingSince = prev.pendingSince ?? now;
  if (now - pendingSince < settings.forMs) return done({ ...measured, pendingSince });
  const firing: AlertState = {
    ...measured,
    status: 'firing',
    pendingSince: null,
    since: now,
    notifications: 0,
    ackedBy: null,
    ackedAt: null,
    firing: prev.firing + 1,
  };
  const n = maybeNotify(firing, settings, now);
  return done(n.state, n.events);
}

export type AckResult =
  | { ok: true; state: AlertState; changed: boolean }
  | { ok: false; reason: 'not_firing' };

/** Acknowledge a firing rule (idempotent once acknowledged); a rule that is ok cannot be. */
export function acknowledge(prev: AlertState, by: string, now: number): AckResult {
  if (prev.status === 'ok') return { ok: false, reason: 'not_firing' };
  if (prev.status === 'acknowledged') return { ok: true, state: prev, changed: false };
  return { ok: true, state: { ...prev, status: 'acknowledged', ackedBy: by, ackedAt: now }, changed: true };
}

/** The state once event `id` has been delivered (or given up on) everywhere. */
export function delivered(prev: AlertState, id: string): StepResult {
  const outbox = prev.outbox.filter((e) => e.id !== id);
  return outbox.length === prev.outbox.length
    ? { state: prev, events: [], changed: false }
    : { state: { ...prev, outbox }, events: [], changed: true };
}
