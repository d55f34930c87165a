/**
 * @module kv-tail
 * Every revision of a KV bucket from a stream sequence on, in order, through an ordered consumer
 * (nats.js recreates it after a gap or a reconnect, from the next sequence, so nothing is skipped
 * or repeated). For readers that keep their own position, such as the gateway's event stream,
 * which names each event by the sequence it came from. Revisions the bucket's history limit has
 * already removed are not delivered: a tail from an old sequence sees each key's later revisions.
 */
import { DeliverPolicy } from '@nats-io/jetstream';
import { kvStream, kvSubject } from '../protocol/subjects.js';
import type { Bus } from './connection.js';
import { listenForEchoes, takeEcho } from './kv-echo.js';

export interface KvRevision {
  key: string;
  /** Stream sequence (the KV revision). */
  seq: number;
  operation: 'put' | 'delete' | 'purge';
  data: Uint8Array;
  /** Server time of the write, epoch ms. */
  at: number;
  /**
   * With `echoes`: the value this process wrote as exactly these bytes (kv-echo.ts), so the reader
   * can skip decoding them; undefined when another process wrote them, or the write was not kept.
   */
  local?: unknown;
}

export interface KvTail {
  stop(): void;
}

/** The stream's last sequence now (0 when empty): a tail from `last + 1` sees only new writes. */
export async function kvLastSeq(bus: Bus, bucket: string): Promise<number> {
  return (await bus.jsm.streams.info(kvStream(bucket))).state.last_seq;
}

/**
 * Calls `onRevision` for each revision from `fromSeq` on (>= 1), in order, until stopped. With
 * `echoes`, puts this process wrote come with the value it wrote (`local`).
 */
export async function tailKv(
  bus: Bus,
  bucket: string,
  fromSeq: number,
  onRevision: (r: KvRevision) => void,
  opts: { echoes?: boolean } = {},
): Promise<KvTail> {
  const head = kvSubject(bucket, '');
  const consumer = await bus.js.consumers.get(kvStream(bucket), {
    filter_subjects: kvSubject(bucket, '>'),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, fromSeq),
  });
  let unlisten: (() => void) | undefined;
  const messages = await consumer.consume({
    callback: (m) => {
      const op = m.headers?.get('KV-Operation');
      const key = m.subject.slice(head.length);
      const operation = op === 'DEL' ? 'delete' : op === 'PURGE' ? 'purge' : 'put';
      onRevision({
        key,
        seq: m.seq,
        operation,
        data: m.data,
        at: Math.floor(m.info.timestampNanos / 1e6),
        local: unlisten && operation === 'put' ? takeEcho(bucket, key, m.data) : undefined,
      });
    },
  });
  // Listened from here on (a revision before it is decoded as usual).
  if (opts.echoes) unlisten = listenForEchoes(bucket);
  return {
    stop: () => {
      unlisten?.();
      void messages.stop();
    },
  };
}
