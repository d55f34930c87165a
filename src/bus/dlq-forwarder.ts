/**
 * @module dlq-forwarder
 * Moves messages that reached max deliveries WITHOUT being settled by a runner (the handler process
 * was dead and ack_wait expired on the last delivery) into the DLQ. nats-server publishes a
 * max-deliveries advisory (no payload); the `<P>_ADVISORIES` stream captures it so none is lost
 * while no forwarder runs; this durable reads it, fetches the original by stream sequence, writes
 * the dead letter (same dedupe id as the runner's), then deletes the original, which a work-queue
 * stream would otherwise keep forever. Run one or many (they share the durable).
 */
import { MaxDeliveriesAdvisorySchema } from '../protocol/bus-messages.js';
import { ERROR_CODES } from '../protocol/errors.js';
import type { Bus } from './connection.js';
import { type ConsumerRunner, outcome, runConsumer } from './consumer.js';
import { deadLetter } from './dlq.js';
import { type ConsumerSpec, dlqForwarderSpec } from './provision.js';

export interface DlqForwarderOptions {
  /** Default: the `dlq-forwarder` durable on `<P>_ADVISORIES`. */
  spec?: ConsumerSpec;
  concurrency?: number;
}

export function startDlqForwarder(bus: Bus, opts: DlqForwarderOptions = {}): Promise<ConsumerRunner> {
  return runConsumer(bus, {
    spec: opts.spec ?? dlqForwarderSpec(bus.names),
    schema: MaxDeliveriesAdvisorySchema,
    concurrency: opts.concurrency ?? 4,
    retry: { baseMs: 500, maxMs: 10_000 },
    async handler(a) {
      const sm = await bus.jsm.streams.getMessage(a.stream, { seq: a.stream_seq });
      // Gone already: acked late, dead-lettered by the runner (copy + term), or aged out.
      if (!sm) return outcome.ack();
      await deadLetter(bus, {
        subject: sm.subject,
        headers: sm.header,
        data: sm.data,
        stream: a.stream,
        consumer: a.consumer,
        streamSeq: a.stream_seq,
        deliveries: a.deliveries,
        reason: {
          code: ERROR_CODES.MAX_DELIVERIES,
          message: `not acknowledged after ${a.deliveries} deliveries (ack_wait expired)`,
        },
      });
      await bus.jsm.streams.deleteMessage(a.stream, a.stream_seq, false).catch(() => false);
      return outcome.ack();
    },
  });
}
