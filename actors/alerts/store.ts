/**
 * @module alerts/store
 * Where alerts live: each rule's state in the alerts bucket (`<p>_alerts`, key `rule.<name>`), the
 * configuration in the config bucket (key `alerts`). Every change of a state is compare-and-set on
 * its revision, retried when another writer (an acknowledgement through the API of another hub, a
 * second leader for a moment) got there first, so the sampler and `alert.ack` never lose each
 * other's writes. Operations the API offers are here, so the API and tests share them; each returns
 * its outcome or throws a structured AgentComError.
 */
import type { Bus } from '../../src/bus/connection.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import {
  ALERT_RULES,
  ALERTS_KEY,
  type AlertConfig,
  AlertConfigSchema,
  type AlertRule,
  type AlertState,
  AlertStateSchema,
  type AlertView,
  alertStateKey,
  DEFAULT_ALERT_CONFIG,
  initialAlertState,
  REDACTED_SECRET,
  ruleConfig,
} from '../../src/protocol/alert.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import { acknowledge } from './state.js';

export interface AlertStore {
  bus: Bus;
  states: TypedKv<AlertState>;
  config: TypedKv<AlertConfig>;
}

export async function openAlertStore(bus: Bus): Promise<AlertStore> {
  const [states, config] = await Promise.all([
    openKv(bus, bus.names.buckets.alerts, AlertStateSchema),
    openKv(bus, bus.names.buckets.config, AlertConfigSchema),
  ]);
  return { bus, states, config };
}

/** A rule's state and its revision (null: never written). */
export async function readAlert(
  store: AlertStore,
  rule: AlertRule,
): Promise<{ state: AlertState; revision: number | null }> {
  const got = await store.states.get(alertStateKey(rule));
  return got
    ? { state: got.value, revision: got.revision }
    : { state: initialAlertState(rule), revision: null };
}

/** Attempts before a compare-and-set that keeps losing is reported as a conflict. */
const CAS_ATTEMPTS = 10;

/**
 * Read, change, write if changed (compare-and-set), again from the read when another writer got
 * there first. `change` must be pure: it may run more than once. Returns its last result.
 * @throws AgentComError `conflict` when it lost CAS_ATTEMPTS times in a row.
 */
export async function modifyAlert<R extends { state: AlertState; changed: boolean }>(
  store: AlertStore,
  rule: AlertRule,
  change: (prev: AlertState) => R,
): Promise<R> {
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const { state, revision } = await readAlert(store, rule);
    const r = change(state);
    if (!r.changed) return r;
    const key = alertStateKey(rule);
    const w =
      revision === null
        ? await store.states.create(key, r.state)
        : await store.states.update(key, r.state, revision);
    if (w.ok) return r;
  }
  throw new AgentComError(ERROR_CODES.CONFLICT, `alert ${rule}: too many concurrent writers; try again`);
}

// --- Configuration ---

export async function readAlertConfig(store: AlertStore): Promise<{ config: AlertConfig; stored: boolean }> {
  const got = await store.config.get(ALERTS_KEY);
  return got ? { config: got.value, stored: true } : { config: DEFAULT_ALERT_CONFIG, stored: false };
}

/**
 * Replace the configuration. A webhook whose secret is {@link REDACTED_SECRET} (a document read back
 * from `alert.config.get`) keeps the secret stored for its url.
 * @throws AgentComError `invalid_payload` when a redacted secret has no stored one to stand for.
 */
export async function storeAlertConfig(store: AlertStore, config: AlertConfig): Promise<AlertConfig> {
  const { config: stored } = await readAlertConfig(store);
  const webhooks = config.webhooks.map((w, i) => {
    if (w.secret !== REDACTED_SECRET) return w;
    const secret = stored.webhooks.find((s) => s.url === w.url)?.secret;
    if (!secret)
      throw new AgentComError(
        ERROR_CODES.INVALID_PAYLOAD,
        `webhook ${w.url}: no stored secret to keep; give the secret itself`,
        { path: ['config', 'webhooks', i, 'secret'] },
      );
    return { ...w, secret };
  });
  const next = { ...config, webhooks };
  await store.config.put(ALERTS_KEY, next);
  return next;
}

// --- Views and operations ---

export function alertView(state: AlertState, config: AlertConfig): AlertView {
  const { outbox, ...rest } = state;
  const c = ruleConfig(config, state.rule);
  return {
    ...rest,
    enabled: c.enabled,
    severity: c.severity,
    cooldownMs: c.cooldownMs,
    undelivered: outbox.length,
  };
}

/** Every rule, in rule order. */
export async function listAlerts(store: AlertStore): Promise<AlertView[]> {
  const [{ config }, ...states] = await Promise.all([
    readAlertConfig(store),
    ...ALERT_RULES.map((r) => readAlert(store, r)),
  ]);
  return states.map((s) => alertView(s.state, config));
}

/**
 * Acknowledge a firing rule: no more notifications until it resolves (idempotent).
 * @throws AgentComError `invalid_state` when the rule is not firing.
 */
export async function acknowledgeAlert(
  store: AlertStore,
  rule: AlertRule,
  by: string,
  now = Date.now(),
): Promise<AlertView> {
  let refused = false;
  const r = await modifyAlert(store, rule, (prev) => {
    const a = acknowledge(prev, by, now);
    refused = !a.ok;
    return a.ok ? a : { state: prev, changed: false };
  });
  if (refused) throw new AgentComError(ERROR_CODES.INVALID_STATE, `alert ${rule} is not firing`);
  store.bus.log.info({ actor: 'alerts', phase: 'acknowledged', rule, by }, 'alert acknowledged');
  return alertView(r.state, (await readAlertConfig(store)).config);
}
