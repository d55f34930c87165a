/**
 * Many simulated agents over one NATS connection (bench/dashboard.ts, bench/scale.ts): each agent
 * its own id, session, hello and heartbeats at the interval the hub asks for (one timer per
 * connection beats for all of them). With `work`, an agent also pulls its own durable inbox (a raw
 * JetStream pull, one outstanding per agent, replies on one wildcard subscription per connection)
 * and completes each assignment at once: a `completed` report (which implies `accepted`,
 * docs/protocol.md §10), then the inbox ack. A pull with no answer well past its expiry (the
 * request or its answer lost: both are core messages, which NATS may drop) is sent again and
 * counted (`pullsLost`); without that, an agent whose pull was lost would never ask for work again.
 */
import type { Msg, Subscription } from '@nats-io/nats-core';
import type { Bus } from '../src/bus/connection.js';
import { publish } from '../src/bus/publish.js';
import { publishCore, requestTyped } from '../src/bus/subscribe.js';
import {
  AgentHelloSchema,
  GoodbyeSchema,
  HeartbeatSchema,
  InboxMessageSchema,
  type Report,
  ReportSchema,
} from '../src/protocol/agent.js';
import { newSessionId } from '../src/protocol/ids.js';
import { HelloReplySchema } from '../src/protocol/registration.js';

export interface MuxHello {
  /** Slots each agent offers (default 2). */
  slots?: number;
  /** Queues each agent serves (default `['default']`). */
  queues?: string[];
}

/** An assignment an agent of `work` mode received and completed. */
export interface MuxAssign {
  agent: string;
  taskId: string;
  generation: number;
  /** When it arrived (performance.timeOrigin + performance.now(), ms). */
  at: number;
  /** When the hub's publish was stored in the inbox stream (epoch ms, from the ack subject; NaN if unknown). */
  storedAt: number;
}

/**
 * The stream timestamp of a pulled message, from its ack subject: `$JS.ACK.<stream>.<consumer>.
 * <delivered>.<sseq>.<cseq>.<ns>.<pending>` (or with domain and account hash first, 12 tokens).
 */
function storedAtMs(reply: string | undefined): number {
  const t = reply?.split('.') ?? [];
  return Number(t.length === 9 ? t[7] : t.length >= 11 ? t[9] : Number.NaN) / 1e6;
}

/** How long one pull waits for a message before the server ends it (408) and the agent pulls again. */
const PULL_EXPIRES_MS = 30_000;
/** A pull unanswered this long after its expiry is taken as lost. */
const PULL_LOST_AFTER_MS = PULL_EXPIRES_MS + 5_000;
const decoder = new TextDecoder();

export class MuxAgents {
  private readonly sessions = new Map<string, string>();
  private readonly beating = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly inboxes = new Map<string, { stream: string; consumer: string }>();
  private pulls: Subscription | undefined;
  /** When each agent's outstanding pull was sent. */
  private readonly pulledAt = new Map<string, number>();
  private lostPulls: NodeJS.Timeout | undefined;
  /** Pulls sent again because no answer came. */
  pullsLost = 0;
  /** Assignments being completed (report published, inbox ack not yet sent). */
  completing = 0;
  private readonly replyBase = `_INBOX.mux${Math.random().toString(36).slice(2, 10)}`;
  /** Beats sent so far (one per agent per interval). */
  beats = 0;
  /** The heartbeat interval the hub asked for (known after the first hello). */
  heartbeatIntervalMs: number | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly opts: MuxHello & {
      /** Pull the inbox and complete every assignment; called once each is acked. */
      work?: (a: MuxAssign) => void;
    } = {},
  ) {}

  async hello(id: string): Promise<void> {
    const session = newSessionId();
    const hello = AgentHelloSchema.parse({
      v: 1,
      slots: this.opts.slots ?? 2,
      queues: this.opts.queues ?? ['default'],
      session,
      name: id,
    });
    const reply = await requestTyped(
      this.bus,
      this.bus.names.subjects.agentHello(id),
      AgentHelloSchema,
      hello,
      HelloReplySchema,
      30_000,
    );
    if (!reply.ok) throw new Error(`hello ${id}: ${reply.error.code} ${reply.error.message}`);
    this.sessions.set(id, session);
    this.beating.add(id);
    this.heartbeatIntervalMs = reply.heartbeatIntervalMs;
    this.timer ??= setInterval(() => this.beat(), reply.heartbeatIntervalMs);
    if (this.opts.work && !this.inboxes.has(id)) {
      this.inboxes.set(id, reply.inbox);
      this.pulls ??= this.bus.nc.subscribe(`${this.replyBase}.*`, { callback: (_e, m) => this.onPulled(m) });
      this.lostPulls ??= setInterval(() => this.pullAgainLost(), 5_000);
      this.pull(id);
    }
  }

  /** Stops beating for `id` too (a beat would bring it back). */
  goodbye(id: string): void {
    this.beating.delete(id);
    publishCore(this.bus, this.bus.names.subjects.agentGoodbye(id), GoodbyeSchema, {
      v: 1,
      session: this.sessions.get(id),
    });
  }

  private beat(): void {
    const at = Date.now();
    try {
      for (const id of this.beating) {
        publishCore(this.bus, this.bus.names.subjects.agentHeartbeat(id), HeartbeatSchema, {
          v: 1,
          at,
          session: this.sessions.get(id),
        });
        this.beats++;
      }
    } catch {
      // Closing.
    }
  }

  /** One pull request for one message of `id`'s durable, answered on `<replyBase>.<id>`. */
  private pull(id: string): void {
    const inbox = this.inboxes.get(id);
    if (!inbox || this.bus.nc.isClosed() || !this.beating.has(id)) return;
    this.pulledAt.set(id, Date.now());
    try {
      this.bus.nc.publish(
        `$JS.API.CONSUMER.MSG.NEXT.${inbox.stream}.${inbox.consumer}`,
        JSON.stringify({ batch: 1, expires: PULL_EXPIRES_MS * 1e6 }),
        { reply: `${this.replyBase}.${id}` },
      );
    } catch {
      // Closing.
    }
  }

  private onPulled(m: Msg): void {
    // A status (408, 409) comes on the pull's reply subject; a message keeps its own subject,
    // `<p>.agent.<id>.inbox`.
    const id = m.subject.startsWith(`${this.replyBase}.`)
      ? m.subject.slice(this.replyBase.length + 1)
      : (m.subject.split('.').at(-2) ?? '');
    this.pulledAt.delete(id);
    const code = m.headers?.code ?? 0;
    if (code === 408 || code === 404) {
      this.pull(id);
      return;
    }
    if (code >= 400) {
      // 409 (e.g. the durable is being replaced) and the like: pull again a little later.
      setTimeout(() => this.pull(id), 500).unref();
      return;
    }
    this.completing++;
    void this.complete(id, m)
      .catch(() => {}) // redelivered after its ack wait; the hub fences by generation
      .finally(() => {
        this.completing--;
        this.pull(id);
      });
  }

  private async complete(id: string, m: Msg): Promise<void> {
    const at = performance.timeOrigin + performance.now();
    const msg = InboxMessageSchema.parse(JSON.parse(decoder.decode(m.data)));
    if (msg.type === 'assign') {
      const r: Report = {
        v: 1,
        type: 'completed',
        taskId: msg.taskId,
        generation: msg.generation,
        at: Date.now(),
        session: this.sessions.get(id),
        result: { ok: 1 },
      };
      await publish(this.bus, this.bus.names.subjects.agentReport(id), ReportSchema, r, {
        msgId: `${msg.taskId}:${msg.generation}:completed`,
        retries: 10,
      });
    }
    m.respond('+ACK');
    if (msg.type === 'assign')
      this.opts.work?.({
        agent: id,
        taskId: msg.taskId,
        generation: msg.generation,
        at,
        storedAt: storedAtMs(m.reply),
      });
  }

  private pullAgainLost(): void {
    const now = Date.now();
    for (const [id, at] of this.pulledAt)
      if (now - at > PULL_LOST_AFTER_MS) {
        this.pullsLost++;
        this.pull(id);
      }
  }

  /** Agents with a pull outstanding, and with none (neither pulling nor completing: stuck). */
  pulling(): { outstanding: number; agents: number } {
    return { outstanding: this.pulledAt.size, agents: this.inboxes.size };
  }

  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.lostPulls);
    this.beating.clear();
    this.pulls?.unsubscribe();
  }
}
