/**
 * @module consumer-stall
 * A watch for a nats-server 2.9 fault seen on a 3-node cluster (R3): the leader of a work-queue
 * stream's only consumer stops seeing the stream's newest messages. They sit in the stream, the
 * consumer reports nothing pending and delivers nothing, and so it stays until the consumer's
 * leader changes. Seen in `bench/hub.ts --cluster`: the last 24 of 20,000 submissions stuck for
 * 13 minutes; asked to step down, the new leader delivered them within 3 s.
 *
 * On a work-queue stream with a single consumer every stored message is either pending or
 * ack-pending (nak'd ones included). The watch samples the stream and the consumer every
 * `periodMs`; when messages are missing from both twice in a row, with nothing delivered in
 * between, it logs the samples and asks the server to move the consumer's leader. On a single
 * server (no replicas) it only logs. It guarantees recovery from this one fault, not diagnosis
 * of others.
 */
import type { Bus } from './connection.js';

export interface ConsumerSample {
  /** Messages stored in the stream. */
  messages: number;
  /** The stream's last sequence. */
  lastSeq: number;
  /** The consumer's num_pending and num_ack_pending. */
  pending: number;
  ackPending: number;
  /** The stream sequence the consumer delivered last. */
  delivered: number;
}

/** Stored messages the consumer accounts for neither as pending nor as ack-pending. */
export const unaccounted = (s: ConsumerSample): number => s.messages - s.pending - s.ackPending;

/**
 * Stalled: messages unaccounted for in two samples in a row (so not one sample's race between
 * its two reads), newer than anything delivered, and nothing delivered between the samples.
 */
export function isStalled(prev: ConsumerSample | undefined, cur: ConsumerSample): boolean {
  return (
    prev !== undefined &&
    unaccounted(prev) > 0 &&
    unaccounted(cur) > 0 &&
    cur.delivered === prev.delivered &&
    cur.lastSeq > cur.delivered
  );
}

export interface ConsumerStallWatch {
  stop(): void;
}

/** Watches `durable`, the only consumer of the work-queue stream `stream`. */
export function watchConsumerStall(
  bus: Bus,
  stream: string,
  durable: string,
  opts: { periodMs?: number; onSample?: (s: ConsumerSample, stalled: boolean) => void } = {},
): ConsumerStallWatch {
  let prev: ConsumerSample | undefined;
  let busy = false;
  const log = bus.log.child({ stream, consumer: durable });
  const check = async () => {
    // The stream first: a message stored between the two reads is then counted by the consumer
    // only, never the other way round.
    const si = await bus.jsm.streams.info(stream);
    const ci = await bus.jsm.consumers.info(stream, durable);
    const cur: ConsumerSample = {
      messages: si.state.messages,
      lastSeq: si.state.last_seq,
      pending: ci.num_pending,
      ackPending: ci.num_ack_pending,
      delivered: ci.delivered.stream_seq,
    };
    const stalled = isStalled(prev, cur);
    opts.onSample?.(cur, stalled);
    if (!stalled) {
      prev = cur;
      return;
    }
    prev = undefined; // two fresh samples before acting again
    const replicated = (ci.cluster?.replicas?.length ?? 0) > 0;
    log.warn(
      { phase: 'stall', sample: cur, unaccounted: unaccounted(cur), stepdown: replicated },
      'consumer delivers nothing while its stream holds messages it does not count',
    );
    if (replicated)
      await bus.nc.request(`$JS.API.CONSUMER.LEADER.STEPDOWN.${stream}.${durable}`, '', { timeout: 5_000 });
  };
  const timer = setInterval(() => {
    if (busy || bus.isClosed()) return;
    busy = true;
    check()
      .catch((err) => log.debug({ err }, 'consumer stall check failed'))
      .finally(() => {
        busy = false;
      });
  }, opts.periodMs ?? 5_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
