/**
 * @module kv
 * Typed KV access: values are JSON validated by a zod schema on write and on read. Expected
 * outcomes are values, not exceptions: `create` is an atomic claim (`{ ok: false, reason: 'exists' }`
 * when the key holds a value), `update` is compare-and-set on the revision (`reason: 'conflict'`
 * when another writer got there first). `get` returns null for missing, deleted and purged keys.
 * A stored value that fails the schema throws {@link AgentComError} `invalid_payload` from `get`
 * (it is a bug, not an expected outcome); watchers report it as an entry with `error`.
 * The bucket must exist (see provision.ts); 2.9 gives watchers no event when a key's TTL expires.
 */
import { JetStreamApiError, jetstream } from '@nats-io/jetstream';
import { type KV, type KvEntry, Kvm } from '@nats-io/kv';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { z } from 'zod';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  decodePayload,
  encodePayload,
  encodeTrusted,
} from '../protocol/envelope.js';
import { AgentComError, type WireError } from '../protocol/errors.js';
import { kvStream, kvSubject } from '../protocol/subjects.js';
import { abandonAfterMs, withDeadline } from '../runtime/deadline.js';
import type { Bus } from './connection.js';
import { dropWrite, noteWrite } from './kv-echo.js';

export interface KvValue<T> {
  value: T;
  revision: number;
}
export type KvCreateResult = { ok: true; revision: number } | { ok: false; reason: 'exists' };
export type KvUpdateResult = { ok: true; revision: number } | { ok: false; reason: 'conflict' };
export type KvDeleteResult = { ok: true } | { ok: false; reason: 'conflict' };

export interface KvChange<T> {
  key: string;
  revision: number;
  operation: 'put' | 'delete' | 'purge';
  /** null for deletes, purges and invalid values. */
  value: T | null;
  /** Set when a put's value fails the schema. */
  error?: WireError;
}

export interface KvWatch<T> extends AsyncIterable<KvChange<T>> {
  stop(): void;
}

export interface TypedKv<T> {
  readonly bucket: string;
  get(key: string): Promise<KvValue<T> | null>;
  create(key: string, value: T): Promise<KvCreateResult>;
  update(key: string, value: T, expectedRevision: number): Promise<KvUpdateResult>;
  /** Unconditional write (last writer wins); prefer update() for shared records. */
  put(key: string, value: T): Promise<number>;
  /** Soft delete; with `expectedRevision` it is compare-and-set. */
  delete(key: string, opts?: { expectedRevision?: number }): Promise<KvDeleteResult>;
  /**
   * Removes the key and all its revisions, leaving nothing in the stream (no delete marker), if
   * its current revision is `expectedRevision` (compare-and-set). For records that are done with
   * (retention); watchers see a purge.
   */
  remove(key: string, expectedRevision: number): Promise<KvDeleteResult>;
  keys(filter?: string): Promise<string[]>;
  /**
   * Every key's current value, read in one pass over the bucket (an ordered consumer delivering
   * the last message per key), not one request per key: for loading a whole bucket at start.
   * A bucket whose stream has lost messages (a damaged store file) can announce more keys than it
   * delivers: after ENTRIES_IDLE_MS without a message the read is started again from the first
   * key, and after ENTRIES_ATTEMPTS such reads it ends with what the last one got (logged), instead
   * of waiting forever. A read that stalls because the connection dropped and came back (the
   * ordered consumer behind it resumes only once it misses heartbeats) is read whole the next
   * time. Only waiting counts towards that limit: time this process's event loop was held (a
   * loaded hub's long task) does not, so a stall of its own never cuts a read short.
   * `filter` (`*`/`>` wildcards) reads only the keys it matches: for a bucket holding values of
   * several shapes.
   */
  entries(filter?: string): Promise<Map<string, KvValue<T>>>;
  /**
   * Current values (unless `updatesOnly`) then live changes of keys matching `key` (`>` by default;
   * `*`/`>` wildcards allowed). `skip(key, revision)` returning true drops an entry before it is
   * decoded (e.g. a writer's own writes coming back, which it already holds).
   */
  watch(opts?: {
    key?: string;
    updatesOnly?: boolean;
    skip?: (key: string, revision: number) => boolean;
  }): Promise<KvWatch<T>>;
}

/** 10071 "wrong last sequence": the CAS lost. */
function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === 10071;
}

function opOf(e: KvEntry): KvChange<unknown>['operation'] {
  return e.operation === 'DEL' ? 'delete' : e.operation === 'PURGE' ? 'purge' : 'put';
}

/** `entries()` stops waiting after this long without a message (see there). */
const ENTRIES_IDLE_MS = 5_000;
/** Reads of the whole bucket by entries() before it settles for a short one. */
const ENTRIES_ATTEMPTS = 3;

/**
 * Resolves `idle` once `ms` have been spent waiting since the last `heard()`. It counts in ticks
 * of a tenth of `ms` (at most 100 ms), each adding one tick however late it fires: the time the
 * event loop was held by other work is not waiting, and after a stall of the process the timer
 * phase, which runs before the sockets are read, would otherwise find the limit passed with the
 * messages still unread. @internal Exported for its test.
 */
export function quietFor(ms: number): { idle(): Promise<'idle'>; heard(): void; stop(): void } {
  const tickMs = Math.max(1, Math.min(100, Math.floor(ms / 10)));
  let ticks = 0;
  // A promise per wait, not one raced again for every message (its reactions would pile up).
  let wake: ((v: 'idle') => void) | undefined;
  const timer = setInterval(() => {
    if (++ticks * tickMs >= ms) wake?.('idle');
  }, tickMs);
  return {
    idle: () =>
      ticks * tickMs >= ms
        ? Promise.resolve('idle')
        : new Promise<'idle'>((r) => {
            wake = r;
          }),
    heard: () => {
      ticks = 0;
    },
    stop: () => clearInterval(timer),
  };
}

/** Opens an existing bucket with a value schema. */
export async function openKv<T>(
  bus: Bus,
  bucket: string,
  schema: z.ZodType<T>,
  opts: {
    maxBytes?: number;
    /**
     * Validate values on write (default true). A writer whose values are produced by its own typed,
     * tested code may turn this off on a hot path: reads are always validated, so nothing malformed
     * is ever accepted from the bucket, and sizes are still checked.
     */
    validateWrites?: boolean;
    /**
     * Timeout of each request to the bucket, ms (default: the connection's JetStream API timeout).
     * Shorter for a caller that would rather ask again soon than wait (the lease, while a cluster
     * elects a new leader for the bucket's stream). It is a deadline that does not count this
     * process's own stalls (runtime/deadline.ts): an answer that arrived while the event loop was
     * held is read before the deadline is called, for `get`, `create`, `update`, `put` and `delete`.
     */
    apiTimeoutMs?: number;
    /** How long `entries()` waits for a message before it reads again or ends (default 5 s; for tests). */
    entriesIdleMs?: number;
  } = {},
): Promise<TypedKv<T>> {
  // The client's own timeout is a timer that a stall makes fire before the socket is read, so it
  // only bounds a request given up on; the deadline the caller asked for is `bounded`'s.
  const deadlineMs = opts.apiTimeoutMs;
  const kvm = deadlineMs
    ? new Kvm(jetstream(bus.nc, { timeout: abandonAfterMs(deadlineMs) }))
    : new Kvm(bus.nc);
  const bounded = <R>(work: Promise<R>, what: string): Promise<R> => {
    if (!deadlineMs) return work;
    return withDeadline(work, deadlineMs, `kv ${bucket} ${what}`);
  };
  const kv: KV = await kvm.open(bucket);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const encode =
    opts.validateWrites === false
      ? (v: T) => encodeTrusted(v, maxBytes)
      : (v: T) => encodePayload(schema, v, maxBytes);
  // For this process's readers of the bucket's tail (kv-echo.ts). Only a trusted write's bytes
  // are the value as given: a validated one stores what its schema made of the value.
  // A write that fails is dropped from them (if it landed after all, its revision is decoded).
  const echo = opts.validateWrites === false ? noteWrite : () => {};
  const unecho = opts.validateWrites === false ? dropWrite : () => {};
  const decode = (key: string, e: KvEntry): T => {
    const r = decodePayload(schema, e.value, Number.MAX_SAFE_INTEGER);
    if (!r.ok) {
      throw new AgentComError(r.error.code, `kv ${bucket}/${key}@${e.revision}: ${r.error.message}`, {
        path: r.error.path ?? [],
      });
    }
    return r.value;
  };
  /** One pass over the bucket: whole unless it went quiet for the idle limit before its last entry. */
  const readAll = async (filter?: string): Promise<{ out: Map<string, KvValue<T>>; whole: boolean }> => {
    const out = new Map<string, KvValue<T>>();
    const it = await kv.watch({ key: filter ?? '>' });
    const entries = it[Symbol.asyncIterator]();
    const quiet = quietFor(opts.entriesIdleMs ?? ENTRIES_IDLE_MS);
    try {
      for (;;) {
        const next = await Promise.race([entries.next(), quiet.idle()]);
        if (next === 'idle') return { out, whole: false };
        quiet.heard();
        // A watch never ends by itself: it was stopped or its connection closed before the last entry.
        if (next.done) return { out, whole: false };
        const e = next.value;
        // Later writes may follow the initial values: the newest revision of a key wins.
        if (e.operation === 'PUT') out.set(e.key, { value: decode(e.key, e), revision: e.revision });
        else out.delete(e.key);
        if (e.delta === 0) return { out, whole: true }; // nothing pending after this one
      }
    } finally {
      quiet.stop();
      it.stop();
    }
  };
  return {
    bucket,
    async get(key) {
      const e = await bounded(kv.get(key), 'get');
      if (e?.operation !== 'PUT') return null;
      return { value: decode(key, e), revision: e.revision };
    },
    async create(key, value) {
      const data = encode(value);
      echo(bucket, key, data, value);
      try {
        return { ok: true, revision: await bounded(kv.create(key, data), 'create') };
      } catch (err) {
        unecho(bucket, key, data);
        if (isWrongLastSequence(err)) return { ok: false, reason: 'exists' };
        throw err;
      }
    },
    async update(key, value, expectedRevision) {
      const data = encode(value);
      echo(bucket, key, data, value);
      try {
        return { ok: true, revision: await bounded(kv.update(key, data, expectedRevision), 'update') };
      } catch (err) {
        unecho(bucket, key, data);
        if (isWrongLastSequence(err)) return { ok: false, reason: 'conflict' };
        throw err;
      }
    },
    async put(key, value) {
      const data = encode(value);
      echo(bucket, key, data, value);
      try {
        return await bounded(kv.put(key, data), 'put');
      } catch (err) {
        unecho(bucket, key, data);
        throw err;
      }
    },
    async delete(key, o = {}) {
      try {
        await bounded(
          kv.delete(key, o.expectedRevision === undefined ? undefined : { previousSeq: o.expectedRevision }),
          'delete',
        );
        return { ok: true };
      } catch (err) {
        if (isWrongLastSequence(err)) return { ok: false, reason: 'conflict' };
        throw err;
      }
    },
    async remove(key, expectedRevision) {
      // A purge marker, written only if the key is still at `expectedRevision`, rolls up (deletes)
      // every earlier revision; the marker is then purged too, up to its own sequence only, so a
      // write made to the key in between survives. Standard KV layout (ADR-8): stream KV_<bucket>,
      // subject $KV.<bucket>.<key>. A crash between the two steps leaves just the marker (a
      // deleted key, as `delete` would).
      const subject = kvSubject(bucket, key);
      const h = natsHeaders();
      h.set('KV-Operation', 'PURGE');
      h.set('Nats-Rollup', 'sub');
      h.set('Nats-Expected-Last-Subject-Sequence', String(expectedRevision));
      let markerSeq: number;
      try {
        markerSeq = (await bus.js.publish(subject, undefined, { headers: h })).seq;
      } catch (err) {
        if (isWrongLastSequence(err)) return { ok: false, reason: 'conflict' };
        throw err;
      }
      await bus.jsm.streams.purge(kvStream(bucket), { filter: subject, seq: markerSeq + 1 });
      return { ok: true };
    },
    async entries(filter) {
      // A watch over no values would wait out ENTRIES_IDLE_MS: count first (a filtered read lists
      // its keys, one pass too).
      let any = !filter && (await kv.status()).values > 0;
      if (filter) for await (const _ of await kv.keys(filter)) any = true;
      if (!any) return new Map();
      for (let attempt = 1; ; attempt++) {
        const { out, whole } = await readAll(filter);
        if (whole) return out;
        if (attempt >= ENTRIES_ATTEMPTS) {
          bus.log.warn(
            { bucket, read: out.size, attempts: attempt },
            'bucket announced more entries than it delivered; reading on with what arrived',
          );
          return out;
        }
        bus.log.warn(
          { bucket, read: out.size, attempt },
          'bucket read stalled before its last entry; reading it again',
        );
      }
    },
    async keys(filter) {
      const out: string[] = [];
      for await (const k of await kv.keys(filter)) out.push(k);
      return out;
    },
    async watch(o = {}) {
      const it = await kv.watch({
        key: o.key ?? '>',
        ...(o.updatesOnly ? { include: 'updates' as const } : {}),
      });
      return {
        stop: () => it.stop(),
        async *[Symbol.asyncIterator]() {
          for await (const e of it) {
            if (o.skip?.(e.key, e.revision)) continue;
            const operation = opOf(e);
            const change: KvChange<T> = {
              key: e.key,
              revision: e.revision,
              operation,
              value: null,
            };
            if (operation === 'put') {
              const r = decodePayload(schema, e.value, Number.MAX_SAFE_INTEGER);
              if (r.ok) change.value = r.value;
              else change.error = r.error;
            }
            yield change;
          }
        },
      };
    },
  };
}
