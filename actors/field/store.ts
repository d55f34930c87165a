/**
 * @module field/store
 * Every change to the stigmergy field, in one place: a compare-and-set write of the pheromone's key
 * (`<id>.<type>` in `<p>_field`), then its audit event on `<p>.field.audit.<event>.<id>.<type>`
 * (message id `<id>@<revision>`, so re-auditing a revision is deduplicated). Only the hub holding
 * the lease calls these (its API and its Field actor), so nothing else writes the bucket.
 *
 * Claims are atomic because the write is compare-and-set: among concurrent claimants of an
 * unclaimed pheromone exactly one update lands; the others re-read and find it claimed. An expiry
 * or removal writes the final revision (`expired`/`removed`) and audits it before deleting the key,
 * so a hub killed between the two leaves a record the next leader finishes (Field actor start).
 */
import { createHash } from 'node:crypto';
import type { Bus } from '../../src/bus/connection.js';
import { nextBySubject } from '../../src/bus/direct-get.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { publish } from '../../src/bus/publish.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import { type FieldEmitRequest, type Pheromone, PheromoneSchema, ttlMs } from '../../src/protocol/field.js';
import { newId } from '../../src/protocol/ids.js';
import { kvStream, kvSubject } from '../../src/protocol/subjects.js';
import {
  type CasCell,
  type Change,
  casApply,
  claimChange,
  isGone,
  isLive,
  promoteChange,
  releaseChange,
  withEvent,
} from './state.js';

export { isGone, isLive } from './state.js';

export interface FieldStore {
  readonly bus: Bus;
  readonly kv: TypedKv<Pheromone>;
}

export async function openFieldStore(bus: Bus): Promise<FieldStore> {
  return { bus, kv: await openKv(bus, bus.names.buckets.field, PheromoneSchema) };
}

export const pheromoneKey = (p: Pick<Pheromone, 'id' | 'type'>) => `${p.id}.${p.type}`;

async function audit(store: FieldStore, p: Pheromone, revision: number): Promise<void> {
  const n = store.bus.names;
  await publish(store.bus, n.subjects.fieldAudit(p.event, p.id, p.type), PheromoneSchema, p, {
    msgId: `${p.id}@${revision}`,
  });
}

/** The id of an emit: with an idempotency key a hash of source and key, else time-ordered random. */
export function pheromoneId(
  source: string,
  type: string,
  idempotencyKey: string | undefined,
  now: number,
): string {
  // SHA-256, not a fast hash: agents choose keys, and a key of theirs whose id another source's
  // key would have must be out of reach.
  if (idempotencyKey !== undefined)
    // The type too: one id is one key (`<id>.<type>`), whatever types a source reuses a key for.
    return `k${createHash('sha256').update(`${source}\u0000${type}\u0000${idempotencyKey}`).digest('hex').slice(0, 40)}`;
  return `p${now.toString(16).padStart(12, '0')}${newId().slice(0, 12)}`;
}

/** Deposit a pheromone; a repeated idempotency key returns the first (while it lives). */
export async function emit(
  store: FieldStore,
  req: FieldEmitRequest,
  source: string,
  now = Date.now(),
  id = pheromoneId(source, req.type, req.idempotencyKey, now),
): Promise<{ pheromone: Pheromone; duplicate: boolean }> {
  const ttl = req.ttl === undefined || req.ttl === null ? null : ttlMs(req.ttl);
  const p: Pheromone = {
    v: 1,
    id,
    type: req.type,
    selector: req.selector,
    payload: req.payload,
    timestamp: now,
    source,
    ttl: ttl === null ? null : ttl / 1000,
    expiresAt: ttl === null ? null : now + ttl,
    claimedBy: null,
    claimedAt: null,
    taskId: null,
    event: 'emitted',
    eventAt: now,
    eventBy: source,
  };
  const r = await store.kv.create(pheromoneKey(p), p);
  if (!r.ok) {
    const existing = await store.kv.get(pheromoneKey(p));
    if (existing && existing.value.source !== source)
      throw new AgentComError(ERROR_CODES.CONFLICT, `pheromone ${id} belongs to another source`);
    if (existing) return { pheromone: existing.value, duplicate: true };
    // Deleted between the two reads: the key is free again.
    return emit(store, req, source, now, id);
  }
  await audit(store, p, r.revision);
  return { pheromone: p, duplicate: false };
}

/** The key of pheromone `id` (its type is part of the key), or null. */
export async function findKey(store: FieldStore, id: string, type?: string): Promise<string | null> {
  if (type !== undefined) return `${id}.${type}`;
  // One direct get for the first message under `<id>.>` (its subject names the type), not a
  // key listing: that creates a consumer per call and costs the server more the larger the bucket.
  const bucket = store.bus.names.buckets.field;
  const prefix = kvSubject(bucket, '');
  const sm = await nextBySubject(store.bus, kvStream(bucket), 1, kvSubject(bucket, `${id}.>`));
  return sm ? sm.subject.slice(prefix.length) : null;
}

export async function getLive(store: FieldStore, key: string, now = Date.now()) {
  const got = await store.kv.get(key);
  if (!got || !isLive(got.value, now))
    throw new AgentComError(
      ERROR_CODES.NOT_FOUND,
      `pheromone ${key.split('.')[0]} is not in the field (expired or removed?)`,
    );
  return got;
}

/** Apply `change` to the live pheromone at `key` (state.ts), then audit what it wrote. */
async function modify(store: FieldStore, key: string, change: Change, now: number): Promise<Pheromone> {
  const cell: CasCell<Pheromone> = {
    get: () => store.kv.get(key),
    update: (value, revision) => store.kv.update(key, value, revision),
  };
  try {
    const r = await casApply(cell, change, now);
    if (r.written !== null) await audit(store, r.pheromone, r.written);
    return r.pheromone;
  } catch (err) {
    if (err instanceof AgentComError && err.code === ERROR_CODES.NOT_FOUND)
      throw new AgentComError(
        ERROR_CODES.NOT_FOUND,
        `pheromone ${key.split('.')[0]} is not in the field (expired or removed?)`,
      );
    throw err;
  }
}

/** First responder wins: `claimed` is true for the claimant that holds it after the call. */
export async function claim(store: FieldStore, key: string, claimant: string, now = Date.now()) {
  const pheromone = await modify(store, key, claimChange(claimant, now), now);
  return { claimed: pheromone.claimedBy === claimant, pheromone };
}

/**
 * Give a claim back (idempotent when nobody holds it). `holder`: only that claimant's claim is
 * released (an agent's own); absent, any claim (the hub, an operator). @throws forbidden otherwise.
 */
export function release(
  store: FieldStore,
  key: string,
  by: string,
  opts: { holder?: string; now?: number } = {},
): Promise<Pheromone> {
  const now = opts.now ?? Date.now();
  return modify(store, key, releaseChange(by, opts.holder, now), now);
}

/** Mark promoted to `taskId` (claimed by the hub); a pheromone promoted before keeps its task. */
export function markPromoted(store: FieldStore, key: string, taskId: string, by: string, now = Date.now()) {
  return modify(store, key, promoteChange(taskId, by, now), now);
}

/**
 * End a pheromone: write its last revision (`expired` or `removed`), audit it, delete the key.
 * Safe to repeat (a record already ended is only deleted). Returns the last revision, or null when
 * the key is gone.
 */
export async function end(
  store: FieldStore,
  key: string,
  how: 'expired' | 'removed',
  by: string,
  now = Date.now(),
  /** Expiry: end only a pheromone whose ttl has run out by then (a retry may find one that has not). */
  opts: { dueBy?: number } = {},
): Promise<Pheromone | null> {
  for (;;) {
    const got = await store.kv.get(key);
    if (!got) return null;
    let last = got.value;
    let revision = got.revision;
    if (opts.dueBy !== undefined && !isGone(last) && (last.expiresAt === null || last.expiresAt > opts.dueBy))
      return null;
    if (!isGone(last)) {
      last = withEvent(last, how, by, now);
      const r = await store.kv.update(key, last, revision);
      if (!r.ok) continue;
      revision = r.revision;
    }
    await audit(store, last, revision);
    const d = await store.kv.delete(key, { expectedRevision: revision });
    if (!d.ok) continue;
    return last;
  }
}

/** Re-audit a revision whose audit may be missing (deduplicated within the stream's window). */
export function reaudit(store: FieldStore, p: Pheromone, revision: number): Promise<void> {
  return audit(store, p, revision);
}
