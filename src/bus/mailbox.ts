/**
 * @module mailbox
 * A durable pull consumer read by polling, for clients that cannot hold a NATS connection (the
 * HTTP gateway's agents, docs/gateway.md "HTTP agents"). `poll` waits up to `waitMs` for the first
 * message and returns at once with it and whatever else is already there; the messages are held
 * unacked, in stream order, until `ackUpTo(seq)` acks every held message up to that stream
 * sequence. Acking is idempotent (acking again, or below what was acked, does nothing).
 *
 * Not guaranteed: a message polled and never acked (the client died, or this process restarted
 * and forgot it) is delivered again after the consumer's ack wait, so a poll can return a message
 * twice; the receiver dedupes by what the message names (a task and its generation).
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { Bus } from './connection.js';

export interface PolledMessage {
  /** Stream sequence: the cursor `ackUpTo` takes. */
  seq: number;
  /** Times the server has delivered it (1 the first time). */
  deliveries: number;
  data: Uint8Array;
}

/** The server refuses pull expiries under a second (nats.js enforces it). */
const MIN_EXPIRES_MS = 1_000;

export class PulledMailbox {
  private readonly held = new Map<number, JsMsg>();

  private constructor(
    private readonly bus: Bus,
    private readonly stream: string,
    private readonly durable: string,
  ) {}

  /** @throws when the consumer does not exist (the agent never said hello). */
  static async open(bus: Bus, stream: string, durable: string): Promise<PulledMailbox> {
    await bus.jsm.consumers.info(stream, durable);
    return new PulledMailbox(bus, stream, durable);
  }

  /** Messages delivered and not acked yet. */
  get heldCount(): number {
    return this.held.size;
  }

  /**
   * Up to `max` messages: waits at most `waitMs` for the first (0: only what is there now), then
   * takes what else is pending without waiting. Ordered by stream sequence.
   */
  async poll(max: number, waitMs: number): Promise<PolledMessage[]> {
    const consumer = await this.bus.js.consumers.get(this.stream, this.durable);
    if (waitMs < MIN_EXPIRES_MS) {
      const info = await consumer.info(true);
      if (info.num_pending + info.num_ack_pending - this.held.size <= 0) return [];
    }
    const first = await consumer.next({ expires: Math.max(MIN_EXPIRES_MS, waitMs) });
    if (!first) return [];
    const got = [first];
    const more = Math.min(first.info.pending, max - 1);
    if (more > 0) {
      const rest = await consumer.fetch({ max_messages: more, expires: MIN_EXPIRES_MS });
      for await (const m of rest) got.push(m);
    }
    got.sort((a, b) => a.seq - b.seq);
    for (const m of got) this.held.set(m.seq, m);
    return got.map((m) => ({ seq: m.seq, deliveries: m.info.deliveryCount, data: m.data }));
  }

  /** Acks every held message with a stream sequence up to `seq`; returns how many. */
  async ackUpTo(seq: number): Promise<number> {
    const done: Promise<boolean>[] = [];
    for (const [s, m] of this.held) {
      if (s > seq) continue;
      done.push(m.ackAck().catch(() => false));
      this.held.delete(s);
    }
    return (await Promise.all(done)).filter(Boolean).length;
  }
}
