/**
 * @module stream-since
 * Reading a stream from a point in time, for readers that rebuild an aggregate from recent history
 * (the gateway's "last hour" series): the first sequence stored at or after a time, a bounded read
 * of a sequence range, and a follow from a sequence on, with the payloads or headers only.
 *
 * Everything goes through ordered consumers: ephemeral, no acks, nothing kept on the server once
 * the reader is gone; nats.js recreates one after a gap or a reconnect from the next sequence, so
 * nothing is skipped or repeated. Messages the stream's limits have already removed are not seen.
 */
import { DeliverPolicy } from '@nats-io/jetstream';
import type { Bus } from './connection.js';

export interface StreamEntry {
  subject: string;
  seq: number;
  /** Server time of the write, epoch ms. */
  at: number;
  /** The payload (empty when read headers only). */
  data: Uint8Array;
  /** `KV-Operation` of a KV bucket's stream, when set (DEL, PURGE). */
  kvOperation: string | undefined;
  /** Messages after this one the consumer had not delivered yet when it came (0: the end for now). */
  pending: number;
}

/**
 * Where `sinceMs` falls in the stream: the sequence of the first message (matching `filter`)
 * stored at or after it, or the stream's last sequence + 1 when there is none; and how many
 * matching messages there are from it on. The server answers it from a consumer created by start
 * time (deleted at once).
 */
export async function firstSeqSince(
  bus: Bus,
  stream: string,
  filter: string,
  sinceMs: number,
): Promise<{ seq: number; pending: number }> {
  const c = await bus.js.consumers.get(stream, {
    filter_subjects: filter,
    opt_start_time: new Date(Math.max(0, sinceMs)).toISOString(),
    headers_only: true,
  });
  try {
    const info = await c.info();
    return { seq: info.delivered.stream_seq + 1, pending: info.num_pending };
  } finally {
    await c.delete().catch(() => false);
  }
}

export interface StreamFollow {
  /** Ends the follow and deletes its consumer. */
  stop(): void;
  /** Settles when the follow ends: stopped (undefined) or failed (the error, e.g. the stream deleted). */
  readonly closed: Promise<undefined | Error>;
}

/** Calls `onEntry` for each message matching `filter` from `fromSeq` (>= 1) on, in order, until stopped. */
export async function followStream(
  bus: Bus,
  stream: string,
  opts: { filter: string; fromSeq: number; headersOnly?: boolean },
  onEntry: (e: StreamEntry) => void,
): Promise<StreamFollow> {
  const consumer = await bus.js.consumers.get(stream, {
    filter_subjects: opts.filter,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, opts.fromSeq),
    ...(opts.headersOnly ? { headers_only: true } : {}),
  });
  const messages = await consumer.consume({
    callback: (m) =>
      onEntry({
        subject: m.subject,
        seq: m.seq,
        at: Math.floor(m.info.timestampNanos / 1e6),
        data: m.data,
        kvOperation: m.headers?.get('KV-Operation') || undefined,
        pending: m.info.pending,
      }),
  });
  return {
    stop: () => {
      void messages.stop();
      // Gone on the server now rather than after its inactivity threshold (best effort).
      void consumer.delete().catch(() => false);
    },
    closed: messages.closed().then((e) => e ?? undefined),
  };
}

/**
 * Reads the messages matching `filter` from `fromSeq` up to `untilSeq` (both inclusive), with
 * their payloads, then stops. Bounded: at most `max` messages, `maxBytes` of payload (default: no
 * bound) and `timeoutMs`; `complete` is false
 * when a bound ended it first. It also ends, complete, when the stream has nothing more.
 */
export async function readStream(
  bus: Bus,
  stream: string,
  opts: {
    filter: string;
    fromSeq: number;
    untilSeq: number;
    max: number;
    maxBytes?: number;
    timeoutMs: number;
    /** Ends the read early (not complete). */
    signal?: AbortSignal;
  },
  onEntry: (e: StreamEntry) => void,
): Promise<{ read: number; complete: boolean }> {
  if (opts.fromSeq > opts.untilSeq || opts.max <= 0)
    return { read: 0, complete: opts.fromSeq > opts.untilSeq };
  let read = 0;
  let bytes = 0;
  let settle: (complete: boolean) => void = () => {};
  const ended = new Promise<boolean>((r) => {
    settle = r;
  });
  let done = false;
  const finish = (complete: boolean) => {
    if (done) return;
    done = true;
    settle(complete);
  };
  const follow = await followStream(bus, stream, { filter: opts.filter, fromSeq: opts.fromSeq }, (e) => {
    if (done) return;
    if (e.seq > opts.untilSeq) return finish(true);
    onEntry(e);
    read++;
    bytes += e.data.length;
    if (e.seq >= opts.untilSeq || e.pending === 0) finish(true);
    else if (read >= opts.max || bytes >= (opts.maxBytes ?? Number.POSITIVE_INFINITY)) finish(false);
  });
  const timer = setTimeout(() => finish(false), opts.timeoutMs);
  const abort = () => finish(false);
  opts.signal?.addEventListener('abort', abort);
  if (opts.signal?.aborted) abort();
  void follow.closed.then(() => finish(false));
  try {
    const complete = await ended;
    return { read, complete };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', abort);
    follow.stop();
  }
}
