/**
 * @module pushed-watch
 * A watch on a KV bucket whose consumer someone else creates: the creator (a hub, with full
 * access) makes an ephemeral push consumer delivering to the watcher's own inbox
 * ({@link createPushedWatch}); the watcher only subscribes ({@link followPushedWatch}). So the
 * watcher needs no JetStream API permission, which matters because a consumer's deliver subject
 * is in the request body, out of reach of subject permissions (protocol/permissions.ts).
 *
 * Delivery is `ack_policy: none` with an idle heartbeat: the watcher checks the consumer sequence
 * of every message and resumes (a new consumer from the next stream sequence, under a new deliver
 * subject) after a gap or a silence longer than three heartbeats, so it misses no record and sees
 * none twice. The consumer is removed by the server INACTIVE_MS after nobody listens.
 */
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { createInbox, type Msg, nanos } from '@nats-io/transport-node';
import { kvSubject } from '../protocol/subjects.js';
import type { Bus } from './connection.js';

export const PUSHED_WATCH_HEARTBEAT_MS = 5_000;
const INACTIVE_MS = 30_000;

export interface PushedWatchSpec {
  /** The bucket's stream (`KV_<bucket>`). */
  stream: string;
  /** Consumer name (replaces a consumer of that name). */
  name: string;
  deliverSubject: string;
  /** Subject filter over the bucket's `$KV.<bucket>.<key>` subjects. */
  filterSubject: string;
  /** Everything from this stream sequence; absent: the last message of each key, then changes. */
  startSeq?: number;
}

/** Creates the consumer; returns the stream's last sequence read just before (the catch-up line). */
export async function createPushedWatch(bus: Bus, spec: PushedWatchSpec): Promise<{ startedAt: number }> {
  await bus.jsm.consumers.delete(spec.stream, spec.name).catch(() => {});
  const startedAt = (await bus.jsm.streams.info(spec.stream)).state.last_seq;
  await bus.jsm.consumers.add(spec.stream, {
    name: spec.name,
    deliver_subject: spec.deliverSubject,
    filter_subject: spec.filterSubject,
    ...(spec.startSeq !== undefined
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: spec.startSeq }
      : { deliver_policy: DeliverPolicy.LastPerSubject }),
    ack_policy: AckPolicy.None,
    idle_heartbeat: nanos(PUSHED_WATCH_HEARTBEAT_MS),
    inactive_threshold: nanos(INACTIVE_MS),
    num_replicas: 1,
    mem_storage: true,
  });
  return { startedAt };
}

export interface PushedEntry {
  /** The key (the subject after `$KV.<bucket>.`). */
  key: string;
  /** The stream sequence: the KV revision. */
  revision: number;
  operation: 'put' | 'delete' | 'purge';
  data: Uint8Array;
  /** At or below the stream's last sequence when the first consumer was created. */
  initial: boolean;
}

export interface PushedWatch {
  stop(): void;
}

/**
 * Subscribes under the connection's inbox prefix and asks `open` (which calls the creator) for a
 * consumer delivering there; again, from the next sequence, after a gap or a silence. Entries are
 * passed to `onEntry` in stream order. `open` failing is retried with backoff until `stop()`.
 */
export function followPushedWatch(
  bus: Bus,
  bucket: string,
  open: (
    deliverSubject: string,
    startSeq: number | undefined,
  ) => Promise<{ startedAt: number; heartbeatMs: number }>,
  onEntry: (e: PushedEntry) => void,
  onError: (err: unknown) => void = () => {},
): PushedWatch {
  const prefix = kvSubject(bucket, '');
  let stopped = false;
  let lastSeq = 0;
  let startedAt: number | undefined;
  const early: PushedEntry[] = [];
  let generation = 0;
  let sub: ReturnType<Bus['nc']['subscribe']> | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let attempt = 0;

  const start = async (): Promise<void> => {
    const mine = ++generation;
    sub?.unsubscribe();
    clearTimeout(watchdog);
    if (stopped) return;
    const deliver = createInbox(bus.inboxPrefix);
    let lastDseq = 0;
    let heartbeatMs = PUSHED_WATCH_HEARTBEAT_MS;
    const resume = () => {
      if (mine === generation && !stopped) void start();
    };
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(resume, 3 * heartbeatMs);
      watchdog.unref();
    };
    sub = bus.nc.subscribe(deliver, {
      callback: (_err, m: Msg) => {
        if (mine !== generation) return;
        arm();
        // An idle heartbeat (status 100) names the last consumer sequence sent: one this watcher
        // never got (lost in a reconnect) means resume, even when nothing else arrives.
        if (!m.reply) {
          const sent = Number(m.headers?.get('Nats-Last-Consumer') ?? Number.NaN);
          if (sent > lastDseq) resume();
          return;
        }
        const meta = m.reply.split('.');
        // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending> (the 2.9 form).
        const sseq = Number(meta[meta.length - 4]);
        const dseq = Number(meta[meta.length - 3]);
        if (dseq !== lastDseq + 1) return resume();
        lastDseq = dseq;
        if (sseq <= lastSeq) return;
        lastSeq = sseq;
        const op = m.headers?.get('KV-Operation');
        const e: PushedEntry = {
          key: m.subject.startsWith(prefix) ? m.subject.slice(prefix.length) : m.subject,
          revision: sseq,
          operation: op === 'DEL' ? 'delete' : op === 'PURGE' ? 'purge' : 'put',
          data: m.data,
          initial: startedAt !== undefined && sseq <= startedAt,
        };
        // The first consumer starts delivering before its creator's reply says where the
        // catch-up ends: hold its entries until then.
        if (startedAt === undefined) early.push(e);
        else onEntry(e);
      },
    });
    try {
      const r = await open(deliver, lastSeq > 0 ? lastSeq + 1 : undefined);
      if (mine !== generation) return;
      if (startedAt === undefined) {
        startedAt = r.startedAt;
        for (const e of early.splice(0)) onEntry({ ...e, initial: e.revision <= r.startedAt });
      }
      heartbeatMs = r.heartbeatMs;
      attempt = 0;
      arm();
    } catch (err) {
      onError(err);
      if (mine !== generation || stopped) return;
      const wait = Math.min(30_000, 250 * 2 ** attempt++);
      clearTimeout(watchdog);
      watchdog = setTimeout(resume, wait);
      watchdog.unref();
    }
  };
  void start();
  return {
    stop() {
      stopped = true;
      generation++;
      clearTimeout(watchdog);
      sub?.unsubscribe();
    },
  };
}
