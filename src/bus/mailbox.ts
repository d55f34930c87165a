/**
 * @module mailbox
 * A durable pull consumer read by polling, for clients that cannot hold a NATS connection (the
 * HTTP gateway's agents, docs/gateway.md "HTTP agents"). Messages a poll returns are held, unacked,
 * until `ackUpTo(seq)` acks every held message up to that stream sequence (idempotent). While any
 * are held, a poll returns them again (in order) and pulls nothing new: the client's cursor stays
 * contiguous whatever it missed (a reply lost on the way, a poll it gave up on), and acking "up to"
 * acks only what it has been shown.
 *
 * Not guaranteed: held messages live in this process. After the consumer's ack wait the server
 * delivers an unacked message again (then it is held anew); after a restart of this process, or
 * through another one, an ack finds nothing held, and the message comes again after the ack wait.
 * The receiver dedupes by what the message names (a task and its generation).
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
  private readonly held = new Map<number, { msg: JsMsg; at: number }>();

  private constructor(
    private readonly bus: Bus,
    private readonly stream: string,
    private readonly durable: string,
    private readonly ackWaitMs: number,
  ) {}

  /** @throws when the consumer does not exist (the agent never said hello). */
  static async open(bus: Bus, stream: string, durable: string): Promise<PulledMailbox> {
    const info = await bus.jsm.consumers.info(stream, durable);
    return new PulledMailbox(bus, stream, durable, Math.floor((info.config.ack_wait ?? 30e9) / 1e6));
  }

  /** Messages delivered and not acked yet. */
  get heldCount(): number {
    return this.held.size;
  }

  /**
   * The held messages, if any; otherwise up to `max` new ones: waits at most `waitMs` for the
   * first (0: only what is there now), then takes what else is pending without waiting. Ordered
   * by stream sequence.
   */
  async poll(max: number, waitMs: number): Promise<PolledMessage[]> {
    const now = Date.now();
    // Past the ack wait the server delivers it again: that delivery is the one to hold.
    for (const [seq, h] of this.held) if (now - h.at >= this.ackWaitMs) this.held.delete(seq);
    if (this.held.size > 0) return this.view(max);
    const consumer = await this.bus.js.consumers.get(this.stream, this.durable);
    if (waitMs < MIN_EXPIRES_MS) {
      const info = await consumer.info(true);
      if (info.num_pending + info.num_ack_pending <= 0) return [];
    }
    const first = await consumer.next({ expires: Math.max(MIN_EXPIRES_MS, waitMs) });
    if (!first) return [];
    const got = [first];
    const more = Math.min(first.info.pending, max - 1);
    if (more > 0) {
      const rest = await consumer.fetch({ max_messages: more, expires: MIN_EXPIRES_MS });
      for await (const m of rest) got.push(m);
    }
    const at = Date.now();
    for (const m of got) this.held.set(m.seq, { msg: m, at });
    return this.view(max);
  }

  private view(max: number): PolledMessage[] {
    return [...this.held.entries()]
      .sort(([a], [b]) => a - b)
      .slice(0, max)
      .map(([seq, { msg }]) => ({ seq, deliveries: msg.info.deliveryCount, data: msg.data }));
  }

  /** Acks every held message with a stream sequence up to `seq`; returns how many. */
  async ackUpTo(seq: number): Promise<number> {
    const done: Promise<boolean>[] = [];
    for (const [s, h] of this.held) {
      if (s > seq) continue;
      done.push(h.msg.ackAck().catch(() => false));
      this.held.delete(s);
    }
    return (await Promise.all(done)).filter(Boolean).length;
  }
}
