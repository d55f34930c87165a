/**
 * @module field/observers
 * Who observes the field: the observations `field.observe` made are consumers on the field
 * bucket's stream (`KV_<p>_field`), named by who asked (`fobs-<agent>-<slot>` for an agent,
 * `fobs-t-<hash of the deliver subject>` for a trusted client) and filtered by the pattern's key
 * filter (`$KV.<p>_field.*.<pattern>`). Listing them is listing those consumers: nothing else is
 * kept, so the list is what the server holds, including an observation nobody listens to any more
 * for the 30 s before the server removes it (`active: false`).
 *
 * The scan is bounded ({@link OBSERVERS_SCAN_MAX} consumers) and shared: callers within
 * {@link OBSERVERS_CACHE_MS} of a scan get its result, so many dashboards asking cost one listing.
 */

import { type FieldObserver, OBSERVE_SLOTS, typeMatches } from '../../src/protocol/field.js';
import { kvStream, kvSubject } from '../../src/protocol/subjects.js';
import { fnv1a64 } from '../../src/protocol/task-id.js';
import type { FieldStore } from './store.js';

/** At most this many consumers are read per scan (16 observations each for 1,000 agents and more). */
export const OBSERVERS_SCAN_MAX = 20_000;
/** A scan is reused for this long. */
export const OBSERVERS_CACHE_MS = 5_000;

const PREFIX = 'fobs-';
const TRUSTED = `${PREFIX}t-`;

/** The consumer of an agent's observation in `slot` (a new one in the slot replaces it). */
export const agentObserverName = (agentId: string, slot: number): string => `${PREFIX}${agentId}-${slot}`;
/** The consumer of a trusted client's observation (one per deliver subject). */
export const trustedObserverName = (deliverSubject: string): string => `${TRUSTED}${fnv1a64(deliverSubject)}`;

/**
 * Who a consumer's name says observes: an agent and slot, a trusted client (agentId and slot null),
 * or undefined when it is not an observation's consumer. An agent called `t` in slot 3 is
 * `fobs-t-3`; a trusted client's hash is 16 hex digits, never a slot number.
 */
export function parseObserverName(name: string): { agentId: string | null; slot: number | null } | undefined {
  if (!name.startsWith(PREFIX)) return undefined;
  const agent = /^fobs-([A-Za-z0-9_-]{1,64})-(\d{1,2})$/.exec(name);
  if (agent && Number(agent[2]) < OBSERVE_SLOTS) return { agentId: agent[1]!, slot: Number(agent[2]) };
  if (/^fobs-t-[0-9a-f]{16}$/.test(name)) return { agentId: null, slot: null };
  return undefined;
}

/** The pattern a consumer's filter subject stands for (`*` for every type), or undefined. */
export function patternOfFilter(bucket: string, filter: string | undefined): string | undefined {
  const head = kvSubject(bucket, '*.');
  if (!filter?.startsWith(head)) return undefined;
  const f = filter.slice(head.length);
  if (!f) return undefined;
  return f === '>' ? '*' : f;
}

/** The consumer's fields an observer is read from (a ConsumerInfo's). */
export interface ObserverConsumer {
  name: string;
  config: { filter_subject?: string | undefined };
  push_bound?: boolean | undefined;
  num_pending: number;
}

/** The observer a consumer is, or undefined when it is not an observation's. */
export function observerOf(bucket: string, ci: ObserverConsumer): FieldObserver | undefined {
  const who = parseObserverName(ci.name);
  const pattern = patternOfFilter(bucket, ci.config.filter_subject);
  if (!who || pattern === undefined) return undefined;
  return { consumer: ci.name, ...who, pattern, active: ci.push_bound === true, pending: ci.num_pending };
}

/** Observers that fit the request, agents first (by id, then slot), trusted clients last. */
export function selectObservers(
  all: readonly FieldObserver[],
  req: { agent?: string | undefined; type?: string | undefined; limit: number },
): { observers: FieldObserver[]; total: number } {
  const matching = all
    .filter((o) => req.agent === undefined || o.agentId === req.agent)
    .filter((o) => req.type === undefined || typeMatches(req.type, o.pattern))
    .sort(
      (a, b) =>
        Number(a.agentId === null) - Number(b.agentId === null) ||
        (a.agentId ?? '').localeCompare(b.agentId ?? '') ||
        (a.slot ?? 0) - (b.slot ?? 0) ||
        a.consumer.localeCompare(b.consumer),
    );
  return { observers: matching.slice(0, req.limit), total: matching.length };
}

/** Lists the observation consumers (at most `max` consumers read). */
export async function scanObservers(
  store: FieldStore,
  max = OBSERVERS_SCAN_MAX,
): Promise<{ observers: FieldObserver[]; truncated: boolean }> {
  const bucket = store.bus.names.buckets.field;
  const observers: FieldObserver[] = [];
  let read = 0;
  for await (const ci of store.bus.jsm.consumers.list(kvStream(bucket))) {
    if (read++ >= max) return { observers, truncated: true };
    const o = observerOf(bucket, ci);
    if (o) observers.push(o);
  }
  return { observers, truncated: false };
}

/** {@link scanObservers} shared: one scan at a time, its result reused for `cacheMs`. */
export function sharedObserverScan(
  store: FieldStore,
  cacheMs = OBSERVERS_CACHE_MS,
  now: () => number = Date.now,
): () => Promise<{ observers: FieldObserver[]; truncated: boolean }> {
  let last: { at: number; scan: Promise<{ observers: FieldObserver[]; truncated: boolean }> } | undefined;
  return () => {
    if (last && now() - last.at < cacheMs) return last.scan;
    const scan = scanObservers(store);
    const mine = { at: now(), scan };
    last = mine;
    // A failed scan is not reused.
    scan.catch(() => {
      if (last === mine) last = undefined;
    });
    return scan;
  };
}
