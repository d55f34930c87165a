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

export interface KvRevision {
  key: string;
  /** Stream sequence (the KV revision). */
  seq: number;
  operation: 'put' | 'delete' | 'purge';
  data: Uint8Array;
  /** Server time of the write, epoch ms. */
  at: number;
}

export interface KvTail {
  stop(): void;
}

/** The stream's last sequence now (0 when empty): a tail from `last + 1` sees only new writes. */
export async function kvLastSeq(bus: Bus, bucket: string): Promise<number> {
  return (await bus.jsm.streams.info(kvStream(bucket))).state.last_seq;
}

/** Calls `onRevision` for each revision from `fromSeq` on (>= 1), in order, until stopped. */
export async function tailKv(
  bus: Bus,
  bucket: string,
  fromSeq: number,
  onRevision: (r: KvRevision) => void,
): Promise<KvTail> {
  const head = kvSubject(bucket, '');
  const consumer = await bus.js.consumers.get(kvStream(bucket), {
    filter_subjects: kvSubject(bucket, '>'),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, fromSeq),
  });
  const messages = await consumer.consume({
    callback: (m) => {
      const op = m.headers?.get('KV-Operation');
      onRevision({
        key: m.subject.slice(head.length),
        seq: m.seq,
        operation: op === 'DEL' ? 'delete' : op === 'PURGE' ? 'purge' : 'put',
        data: m.data,
        at: Math.floor(m.info.timestampNanos / 1e6),
      });
    },
  });
  return { stop: () => void messages.stop() };
}
