/**
 * @module task-id
 * Deterministic task ids for submissions, so a redelivered or re-sent submit maps to the same task:
 * with an idempotency key the id is a hash of the key (a second submit with that key is the same
 * task, however late); otherwise the id is the submit message's `Nats-Msg-Id` when that is already a
 * valid task id (the SDK sends `newTaskId()`), or a time-prefixed hash of it. Clients can therefore
 * compute the id of what they submitted without waiting for the hub.
 *
 * Keys and message ids are scoped by submitter: an agent's key, or without one its message id, is
 * hashed with its id (taken from its submit subject), so nothing one agent chooses can name another
 * submitter's task; trusted clients (the shared subject) share one namespace. Message ids are not scoped (the stream dedupes on them
 * across subjects), so a client must not take a `duplicate` PubAck as proof that its task exists
 * (agent/submit.ts re-sends under a fresh id; the hub's id check is what dedupes).
 */
import type { TaskId } from './ids.js';

const VALID = /^[A-Za-z0-9_-]{1,64}$/;

/** 64-bit FNV-1a of a string, as 16 hex chars (not cryptographic: ids, not secrets). */
export function fnv1a64(s: string): string {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i));
    h = (h * prime) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

export function taskIdForSubmit(opts: {
  idempotencyKey?: string;
  msgId?: string;
  now: number;
  /** The submitting agent; absent or null for trusted clients. */
  submitter?: string | null;
}): TaskId {
  if (opts.idempotencyKey !== undefined) {
    // Agent ids cannot contain NUL, so `<id>\0<key>` never equals another agent's or a trusted key.
    const key = opts.submitter ? `${opts.submitter}\u0000${opts.idempotencyKey}` : opts.idempotencyKey;
    // Two independent halves make accidental collisions between distinct keys negligible.
    return `k${fnv1a64(key)}${fnv1a64(`${key}\u0000salt`)}` as TaskId;
  }
  if (opts.submitter && opts.msgId !== undefined) {
    // An agent's message id is its own choice: hashed with its id (prefix `a`, never a trusted
    // client's id nor a keyed one), it can name no task but one of that agent's.
    const scoped = `${opts.submitter}\u0000${opts.msgId}`;
    return `a${fnv1a64(scoped)}${fnv1a64(`${scoped}\u0000salt`)}` as TaskId;
  }
  if (opts.msgId !== undefined && VALID.test(opts.msgId)) return opts.msgId as TaskId;
  const body = opts.msgId ?? `${opts.now}:${Math.random()}`;
  return `t${opts.now.toString(16).padStart(12, '0')}${fnv1a64(body)}` as TaskId;
}
