/**
 * @module agent/messages
 * Messaging from an agent's side (docs/protocol.md §11d): send, broadcast, post, reply, channels,
 * history, threads, status, the mailbox and its cursor, and a stream of incoming messages. Every
 * call goes to the agent's own `<op>.<agent id>` endpoint (bus/messaging-client.ts), so the hub
 * takes the sender from the subject.
 *
 * Sends: each send carries a `clientId` (generated unless given) and is retried with that same id
 * after `timeout`, `unavailable` or `rate_limited` for up to `retryForMs` (default 30 s, at most
 * 90 s: inside the hub's 2-minute dedupe window), so a retry never stores a second copy; the
 * reply's `duplicate` is true when an earlier attempt had landed. Reads, acks, joins, leaves and
 * invitations (idempotent) are retried the same way; `channels.create`, `channels.remove` and
 * `status` are not (a repeat is not the same as the first). Other errors are thrown as the hub's
 * AgentComError (`not_found`, `forbidden`, `payload_too_large`, `invalid_payload` with its path...).
 *
 * Incoming messages (`incoming()`, `onMessage()`) guarantee:
 * - At least once across restarts until acknowledged: a stream starts at the agent's acknowledged
 *   cursor (or at `after`), so whatever was not acked is read again by the next process.
 * - Within one stream, each message of the mailbox exactly once and in `seq` order, with no gap:
 *   messages are yielded only from mailbox reads (`msg.inbox` after the last `seq` read), never
 *   straight from a live push. A push (on `_INBOX.<id>.msg`, subscribed before the first read,
 *   validated, invalid ones dropped) only says a read is due. So a push that is lost (the agent was
 *   disconnected, the hub failed over) or that arrives out of order cannot cause a gap or a
 *   reordering: the next read finds the message in its place. Reads happen on a push for a `seq`
 *   not yet yielded, after every reconnect, and every `pollMs` (default 15 s) while idle, which
 *   bounds how late a message whose push was lost can be.
 * - Hence `ack(seq)` of the last message handled is always safe: every message before it in the
 *   mailbox was yielded before it.
 * Not guaranteed: exactly once across restarts (what was handled but not acked comes again); a
 * message removed by retention before it was read is gone; a channel's posts only from when the
 * agent joined. The live cost is one mailbox read per burst of pushes (at most one read in flight,
 * spaced at least `readIntervalMs`, default 20 ms, apart), which keeps a busy reader inside its
 * messaging rate (protocol/limits.ts `messages`); a `rate_limited` read waits and tries again.
 */
import type { Logger } from 'pino';
import type { Bus } from '../bus/connection.js';
import { type HistoryQuery as BusHistoryQuery, MessagingClient } from '../bus/messaging-client.js';
import { decodePayload } from '../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { randomHex } from '../protocol/headers.js';
import {
  type ChannelInfo,
  type Membership,
  type Message,
  MessagePushSchema,
  type MsgHistoryReply,
  type MsgInboxReply,
  type MsgSendReply,
  type MsgThreadReply,
  PAGE_MAX,
} from '../protocol/message.js';
import { messagePushSubject } from '../protocol/permissions.js';
import { exponentialDelay } from '../runtime/backoff.js';

/** What a send may carry beside its text. */
export interface SendOptions {
  /** At most 200 characters. */
  title?: string;
  /** Structured content (a JSON object) beside the text; title, body and data take at most 32 KiB. */
  data?: Record<string, unknown>;
  /** Idempotency key (1-64 of `A-Z a-z 0-9 _ -`); default: a new random one per call. */
  clientId?: string;
}

/** A send as the request has it (docs/protocol.md §11d, msg.send), without `v`, `as` and `sender`. */
export interface SendRequest extends SendOptions {
  to?: string;
  channel?: string;
  broadcast?: true;
  replyTo?: number;
  body: string;
}

/** The filters of a history read (docs/protocol.md §11d): all optional, combined with AND. */
export type HistoryQuery = Omit<BusHistoryQuery, 'as'>;

export interface MessagesOptions {
  /** The agent whose own connection `bus` is. */
  agentId: string;
  /** One request's timeout, ms (default 5000). */
  timeoutMs?: number;
  /** How long a call keeps retrying after `timeout`, `unavailable` or `rate_limited`, ms (default 30 s, at most 90 s). */
  retryForMs?: number;
  logger?: Logger;
}

export interface IncomingOptions {
  /** Start after this `seq` instead of the agent's acknowledged cursor. */
  after?: number;
  /** Messages per mailbox read, 1-1000 (default 100); also how many the stream buffers ahead. */
  batch?: number;
  /** Least time between two reads started by live pushes, ms (default 20). */
  readIntervalMs?: number;
  /** While no push comes, read anyway this often, ms (default 15000): finds messages whose push was lost. */
  pollMs?: number;
  /** Stops the stream when aborted. */
  signal?: AbortSignal;
}

/**
 * The messages of the agent's mailbox, in `seq` order, each once: those after the start point
 * first (the catch-up), then each as it arrives. Iterate it once; leaving the loop stops it.
 * It ends with an error for a failure that retrying cannot mend (`forbidden`: these credentials
 * may not read the mailbox; the connection closed for good).
 */
export interface MessageStream extends AsyncIterable<Message> {
  /** Stop reading; a pending `next()` returns done. */
  stop(): void;
  /** Resolves once the mailbox has been read to its end once (or the stream ended first). */
  readonly caughtUp: Promise<void>;
  /** The `seq` of the last message yielded (before any: the start point, once known). */
  readonly lastSeq: number;
  /** How many messages are read but not yet yielded. */
  readonly buffered: number;
}

export type MessageHandler = (message: Message) => Promise<void> | void;

/** A running `onMessage`: the handler is called for one message at a time. */
export interface MessageSubscription {
  readonly stream: MessageStream;
  /**
   * Settles when it ends: resolves after `stop()`, rejects with the handler's error (the message
   * it failed on is not acked, so the next stream from the cursor reads it again) or the stream's.
   */
  readonly done: Promise<void>;
  /** Stop after the message being handled; what was handled is acked first. */
  stop(): Promise<void>;
}

/** A channel's page of `channel.members`. */
export interface ChannelMembers {
  channel: ChannelInfo;
  members: Membership[];
}

/** Channel management as this agent. */
export interface MessageChannels {
  /** Create a channel and join it. @throws `conflict` when the name is taken. Not retried. */
  create(
    name: string,
    opts?: { visibility?: 'public' | 'invite'; description?: string },
  ): Promise<ChannelInfo>;
  /** The channels this agent may see, with member counts and `joined`. */
  list(): Promise<ChannelInfo[]>;
  /** Join (idempotent). @throws `forbidden` for an invite-only channel it is not invited to. */
  join(name: string): Promise<ChannelInfo>;
  /** Leave (idempotent): false when it was not a member. */
  leave(name: string): Promise<boolean>;
  /** Invite an agent (its creator and its members may). */
  invite(name: string, agent: string): Promise<ChannelInfo>;
  members(name: string): Promise<ChannelMembers>;
  /** Remove a channel this agent created. Not retried. */
  remove(name: string): Promise<ChannelInfo>;
}

const RETRY_BACKOFF = { min: 250, max: 5_000 };
const RETRY_FOR_MAX_MS = 90_000;
/** Handler mode acks at least every this many messages, even while more are buffered. */
const ACK_EVERY = 100;

const TRANSIENT: ReadonlySet<string> = new Set([
  ERROR_CODES.TIMEOUT,
  ERROR_CODES.UNAVAILABLE,
  ERROR_CODES.RATE_LIMITED,
]);

/** Whether retrying the same request later may succeed (nothing was applied). */
export function isTransientError(err: unknown): err is AgentComError {
  return err instanceof AgentComError && TRANSIENT.has(err.code);
}

/** How long to wait before the next attempt after a transient error. */
function retryWait(err: AgentComError, attempt: number): number {
  if (err.code === ERROR_CODES.RATE_LIMITED) return Math.max(1, err.retryAfterMs ?? 1_000);
  return exponentialDelay(attempt, RETRY_BACKOFF, { jitter: 0.2 });
}

export class Messages {
  /** The typed endpoint calls underneath (no retries), for what this class does not cover. */
  readonly client: MessagingClient;
  readonly agentId: string;
  readonly channels: MessageChannels;
  private readonly retryForMs: number;
  private readonly log: Logger;
  private readonly streams = new Set<MessageStreamImpl>();
  private readonly subscriptions = new Set<Promise<void>>();
  private closed = false;

  constructor(
    readonly bus: Bus,
    opts: MessagesOptions,
  ) {
    this.agentId = opts.agentId;
    this.client = new MessagingClient(bus, {
      agentId: opts.agentId,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
    this.retryForMs = Math.min(RETRY_FOR_MAX_MS, Math.max(0, opts.retryForMs ?? 30_000));
    this.log = (opts.logger ?? bus.log).child({ agent_id: opts.agentId, actor: 'messages' });
    const c = this.client;
    this.channels = {
      create: (name, o = {}) => c.channelCreate({ name, ...o }),
      list: () => this.retrying('channel.list', () => c.channelList()),
      join: (name) => this.retrying('channel.join', () => c.channelJoin(name)),
      leave: (name) => this.retrying('channel.leave', () => c.channelLeave(name)),
      invite: (name, agent) => this.retrying('channel.invite', () => c.channelInvite(name, agent)),
      members: (name) => this.retrying('channel.members', () => c.channelMembers(name)),
      remove: (name) => c.channelRemove(name),
    };
  }

  /** A direct message to agent `to`. @throws `not_found` for an agent the hub does not know. */
  send(to: string, body: string, opts: SendOptions = {}): Promise<MsgSendReply> {
    return this.sendRaw({ to }, body, opts);
  }

  /** A message to every agent. */
  broadcast(body: string, opts: SendOptions = {}): Promise<MsgSendReply> {
    return this.sendRaw({ broadcast: true }, body, opts);
  }

  /** A post to a channel this agent is a member of (else `forbidden`; an unknown one: `not_found`). */
  post(channel: string, body: string, opts: SendOptions = {}): Promise<MsgSendReply> {
    return this.sendRaw({ channel }, body, opts);
  }

  /** Answer message `seq`, in its conversation and thread. */
  reply(seq: number, body: string, opts: SendOptions = {}): Promise<MsgSendReply> {
    return this.sendRaw({ replyTo: seq }, body, opts);
  }

  /**
   * Any send in the request's own form (exactly one of `to`, `channel`, `broadcast`, or only
   * `replyTo`), with the same clientId and retries as the others.
   */
  sendRequest(req: SendRequest): Promise<MsgSendReply> {
    const withId = { ...req, clientId: req.clientId ?? randomHex(32) };
    return this.retrying('msg.send', () => this.client.send(withId));
  }

  private sendRaw(
    target: { to?: string; channel?: string; broadcast?: true; replyTo?: number },
    body: string,
    opts: SendOptions,
  ): Promise<MsgSendReply> {
    return this.sendRequest({
      ...target,
      body,
      ...(opts.clientId !== undefined ? { clientId: opts.clientId } : {}),
      ...(opts.title !== undefined ? { title: opts.title } : {}),
      ...(opts.data !== undefined ? { data: opts.data } : {}),
    });
  }

  /** Set this agent's status (a presence message everyone can read). Not retried. */
  status(status: string): Promise<Message> {
    return this.client.status(status);
  }

  /** One page of history (oldest first); pass `next` as `after` for the next page. */
  history(query: HistoryQuery = {}): Promise<MsgHistoryReply> {
    return this.retrying('msg.history', () => this.client.history(query));
  }

  /** Every message matching `query`, page after page, oldest first. */
  async *historyAll(query: HistoryQuery = {}): AsyncGenerator<Message> {
    let after = query.after;
    for (;;) {
      const page = await this.history({ ...query, ...(after !== undefined ? { after } : {}) });
      yield* page.messages;
      if (page.next === null) return;
      after = page.next;
    }
  }

  /** A whole thread from any of its messages: its root and its replies in order. */
  thread(id: number): Promise<MsgThreadReply> {
    return this.retrying('msg.thread', () => this.client.thread(id));
  }

  /** A page of the mailbox after `after` (default: the acknowledged cursor). */
  inbox(opts: { after?: number; limit?: number; waitMs?: number } = {}): Promise<MsgInboxReply> {
    return this.retrying('msg.inbox', () => this.client.inbox(opts));
  }

  /** Everything up to `upTo` is handled (idempotent, never backwards); returns the cursor now. */
  ack(upTo: number): Promise<number> {
    return this.retrying('msg.ack', () => this.client.ack(upTo));
  }

  /** The mailbox from the acknowledged cursor (or `after`), then live. Acks are the caller's. */
  incoming(opts: IncomingOptions = {}): MessageStream {
    if (this.closed) throw new AgentComError(ERROR_CODES.INVALID_STATE, 'messages are closed');
    const s = new MessageStreamImpl(this.bus, this.client, this.agentId, opts, this.log, () =>
      this.streams.delete(s),
    );
    this.streams.add(s);
    s.start();
    return s;
  }

  /**
   * Call `handler` for each incoming message, one at a time, and ack each once its handler has
   * resolved (acks are batched while more messages are buffered, at least every 100). A handler
   * that throws ends the subscription (`done` rejects) with that message unacked.
   */
  onMessage(handler: MessageHandler, opts: IncomingOptions = {}): MessageSubscription {
    const stream = this.incoming(opts);
    let handled = 0;
    let acked = 0;
    const flush = async () => {
      if (handled <= acked) return;
      const upTo = handled;
      try {
        await this.ack(upTo);
        acked = Math.max(acked, upTo);
      } catch (err) {
        // Not fatal: the cursor only moves forward, so the next ack covers this one.
        this.log.warn({ err, up_to: upTo }, 'ack failed; the next one covers it');
      }
    };
    const done = (async () => {
      let since = 0;
      try {
        for await (const m of stream) {
          await handler(m);
          handled = m.seq;
          if (stream.buffered === 0 || ++since >= ACK_EVERY) {
            since = 0;
            await flush();
          }
        }
      } finally {
        await flush();
      }
    })();
    const tracked = done.catch(() => {});
    this.subscriptions.add(tracked);
    void tracked.finally(() => this.subscriptions.delete(tracked));
    return {
      stream,
      done,
      stop: async () => {
        stream.stop();
        await tracked;
      },
    };
  }

  /** Stop every stream and subscription (their handled messages acked first). */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of [...this.streams]) s.stop();
    await Promise.all([...this.subscriptions]);
  }

  /** Runs `f`, again after transient errors, until it succeeds or `retryForMs` has passed. */
  private async retrying<T>(op: string, f: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.retryForMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await f();
      } catch (err) {
        if (!isTransientError(err) || this.bus.isClosed()) throw err;
        const wait = retryWait(err, attempt);
        if (Date.now() + wait > deadline) throw err;
        this.log.debug({ op, code: err.code, attempt, wait_ms: wait }, 'messaging call failed; retrying');
        await sleep(wait);
      }
    }
  }
}

/** Waits `ms`, or less when `signal.wake()` is called (a stream stopping). */
function sleep(ms: number, signal?: { stopped: boolean; wake?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.stopped) return resolve();
    const t = setTimeout(resolve, ms);
    if (signal)
      signal.wake = () => {
        clearTimeout(t);
        resolve();
      };
  });
}

/**
 * One reader of the mailbox. A single loop reads `msg.inbox` after the last `seq` it has (at most
 * one read in flight) whenever a read is due: at start, while the last read said `more`, when a
 * push names a `seq` beyond it, after a reconnect, and every `pollMs`. It stops reading while
 * `batch` messages wait to be yielded.
 */
class MessageStreamImpl implements MessageStream {
  private readonly queue: Message[] = [];
  /** The last `seq` read (and queued); undefined until the first read says where the cursor is. */
  private readEnd: number | undefined;
  private yielded: number | undefined;
  /** Where the stream started: `after`, or the cursor the first read reported. */
  private startSeq: number | undefined;
  /** The highest `seq` a valid push named since the last read started (0: none). */
  private pushedMax = 0;
  /** A read is due regardless of pushes (start, `more`, reconnect, poll, a failed read). */
  private forced = true;
  private stopped = false;
  private error: unknown;
  private iterating = false;
  private consumerWake: (() => void) | undefined;
  private readerWake: (() => void) | undefined;
  private readonly sleeper: { stopped: boolean; wake?: () => void } = { stopped: false };
  private unsubscribe: (() => void) | undefined;
  private offStatus: (() => void) | undefined;
  private poll: NodeJS.Timeout | undefined;
  private markCaughtUp!: () => void;
  readonly caughtUp: Promise<void>;
  private readonly batch: number;
  private readonly readIntervalMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly bus: Bus,
    private readonly client: MessagingClient,
    private readonly agentId: string,
    private readonly opts: IncomingOptions,
    private readonly log: Logger,
    private readonly onStop: () => void,
  ) {
    this.caughtUp = new Promise((resolve) => {
      this.markCaughtUp = resolve;
    });
    this.batch = Math.min(PAGE_MAX, Math.max(1, Math.floor(opts.batch ?? 100)));
    this.readIntervalMs = Math.max(0, opts.readIntervalMs ?? 20);
    this.pollMs = Math.max(100, opts.pollMs ?? 15_000);
    if (opts.after !== undefined) this.readEnd = this.startSeq = opts.after;
  }

  get lastSeq(): number {
    return this.yielded ?? this.startSeq ?? 0;
  }

  get buffered(): number {
    return this.queue.length;
  }

  start(): void {
    // Subscribed before the first read: a message stored after that read was pushed here.
    const sub = this.bus.nc.subscribe(messagePushSubject(this.agentId), {
      callback: (err, m) => {
        if (err || this.stopped) return;
        const push = decodePayload(MessagePushSchema, m.data);
        if (!push.ok) {
          this.log.debug({ error: push.error }, 'invalid message push dropped');
          return;
        }
        const seq = push.value.message.seq;
        if (this.readEnd !== undefined && seq <= this.readEnd) return; // read already
        if (seq > this.pushedMax) this.pushedMax = seq;
        this.wakeReader();
      },
    });
    this.unsubscribe = () => sub.unsubscribe();
    this.offStatus = this.bus.onStatus((e) => {
      // Pushes sent while the connection was down are lost: the mailbox has them.
      if (e.type === 'reconnect') this.due();
      else if (e.type === 'closed' && !this.stopped)
        this.fail(new AgentComError(ERROR_CODES.UNAVAILABLE, 'the connection closed'));
    });
    this.poll = setInterval(() => this.due(), this.pollMs);
    this.poll.unref();
    if (this.opts.signal) {
      if (this.opts.signal.aborted) this.stop();
      else this.opts.signal.addEventListener('abort', () => this.stop(), { once: true });
    }
    void this.readLoop();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.sleeper.stopped = true;
    this.sleeper.wake?.();
    this.unsubscribe?.();
    this.offStatus?.();
    clearInterval(this.poll);
    this.markCaughtUp();
    this.wakeReader();
    this.wakeConsumer();
    this.onStop();
  }

  private fail(err: unknown): void {
    if (this.stopped) return;
    this.error = err;
    this.stop();
  }

  private due(): void {
    this.forced = true;
    this.wakeReader();
  }

  private wakeReader(): void {
    const w = this.readerWake;
    this.readerWake = undefined;
    w?.();
  }

  private wakeConsumer(): void {
    const w = this.consumerWake;
    this.consumerWake = undefined;
    w?.();
  }

  private readDue(): boolean {
    if (this.queue.length >= this.batch) return false;
    // A push the last read already covered (it arrived while that read was on its way) is not a reason.
    return this.forced || this.readEnd === undefined || this.pushedMax > this.readEnd;
  }

  private async readLoop(): Promise<void> {
    let failures = 0;
    let stalls = 0;
    let lastReadAt = 0;
    let more = true;
    while (!this.stopped) {
      if (!this.readDue()) {
        await new Promise<void>((r) => {
          this.readerWake = r;
        });
        continue;
      }
      // Reads caused by pushes are spaced out; a catch-up (`more`) and retries are not.
      const gap = lastReadAt + this.readIntervalMs - Date.now();
      if (!more && failures === 0 && gap > 0) await sleep(gap, this.sleeper);
      if (this.stopped) return;
      // A push from here on may name a message this read does not see: it makes the next read due.
      // One that named nothing the read finds (a forged or stale push) is forgotten with it.
      this.forced = false;
      this.pushedMax = 0;
      lastReadAt = Date.now();
      let page: MsgInboxReply;
      try {
        const after = this.readEnd;
        page = await this.client.inbox(
          after === undefined ? { limit: this.batch } : { after, limit: this.batch },
        );
      } catch (err) {
        if (this.stopped) return;
        if (!isTransientError(err) || this.bus.isClosed()) {
          this.log.warn({ err }, 'mailbox read failed; the stream ends');
          this.fail(err);
          return;
        }
        const wait = retryWait(err, failures++);
        this.log.debug({ code: err.code, wait_ms: wait }, 'mailbox read failed; retrying');
        this.forced = true;
        await sleep(wait, this.sleeper);
        continue;
      }
      if (this.stopped) return;
      failures = 0;
      this.startSeq ??= page.cursor;
      let end = this.readEnd ?? page.cursor;
      for (const m of page.messages) {
        if (m.seq <= end) continue; // never the same message twice, never backwards
        this.queue.push(m);
        end = m.seq;
      }
      const progressed = end !== this.readEnd;
      this.readEnd = end;
      more = page.more;
      if (this.queue.length > 0) this.wakeConsumer();
      if (!more) {
        stalls = 0;
        this.markCaughtUp();
      } else if (progressed) {
        stalls = 0;
        this.forced = true;
      } else {
        // `more` with nothing new (the hub could not read past a message being trimmed): not a
        // tight loop, a backoff.
        this.forced = true;
        await sleep(exponentialDelay(stalls++, RETRY_BACKOFF), this.sleeper);
      }
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    if (this.iterating)
      throw new AgentComError(ERROR_CODES.INVALID_STATE, 'a message stream is iterated once');
    this.iterating = true;
    return this.iterate();
  }

  private async *iterate(): AsyncGenerator<Message> {
    try {
      for (;;) {
        // Stopped: what is buffered is not yielded (not acked either, so a later stream reads it).
        if (this.stopped) {
          if (this.error !== undefined) throw this.error;
          return;
        }
        const m = this.queue.shift();
        if (m) {
          this.yielded = m.seq;
          if (this.queue.length < this.batch && this.readDue()) this.wakeReader();
          yield m;
          continue;
        }
        // Room again: a read that was held back for a full buffer may go.
        this.wakeReader();
        await new Promise<void>((r) => {
          this.consumerWake = r;
        });
      }
    } finally {
      this.stop();
    }
  }
}
