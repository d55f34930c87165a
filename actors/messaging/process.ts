/**
 * @module messaging/process
 * The Messaging actor (run by the hub holding the lease, like the API that calls it): the single
 * writer of the messages stream and of the messaging bucket (channels, memberships, cursors).
 * - Requests arrive by `call` from the API's `msg.*` and `channel.*` endpoints, with the caller the
 *   endpoint read from the subject (or the trusted client's `as`). Each is answered with a value or
 *   a structured error; none can crash the actor.
 * - A stored message is pushed at once, as a core publish, to each recipient's connection
 *   (`_INBOX.<agent>.msg`), and wakes the mailbox reads waiting for it (long polls). The push is a
 *   convenience: the mailbox is the record, read from the agent's acknowledged cursor.
 * - Presence: an agent coming online or going offline (Presence's `agent_up`/`agent_down`) is a
 *   presence message; so is a status an agent sets.
 * - Retention: the stream keeps each subject's newest messages up to the longest kind's limits; a
 *   sweep trims the kinds kept for less (by age, and by count per target).
 *
 * Not guaranteed: presence messages are at least once (a new leader may announce a join again),
 * and a push is lost if the agent's connection is down then (its mailbox read finds the message).
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import { firstSeqAtOrAfter } from '../../src/bus/direct-get.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { utf8 } from '../../src/protocol/envelope.js';
import { AgentComError, ERROR_CODES, type WireError } from '../../src/protocol/errors.js';
import {
  CHANNEL_INVITES_MAX,
  CHANNELS_CREATED_MAX,
  CHANNELS_JOINED_MAX,
  type Channel,
  type ChannelInfo,
  DEFAULT_MESSAGE_RETENTION,
  MESSAGE_MAX_JSON,
  type Message,
  type MessageKind,
  type MessageRetention,
  type MessagingOp,
  type MsgHistoryRequest,
  type MsgInboxRequest,
  type MsgSendRequest,
  ROOM_CHANNEL,
  type StoredMessage,
} from '../../src/protocol/message.js';
import { messagePushSubject } from '../../src/protocol/permissions.js';
import { type AgentRegistration, AgentRegistrationSchema } from '../../src/protocol/registration.js';
import { call, type Registry } from '../../src/runtime/index.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import type { AgentDown, AgentUp } from '../scheduler/index.js';
import {
  advanceCursor,
  ChannelIndex,
  channelVisible,
  createdByAgent,
  describeTarget,
  historySubject,
  inMailbox,
  kindsToTrim,
  mailboxSources,
  matchesHistory,
  mayJoin,
  mergeBySeq,
  recipientsOf,
  resolveTarget,
  type Target,
  targetSubject,
  threadOf,
  type Viewer,
  visibleTo,
} from './state.js';
import {
  appendMessage,
  createChannel,
  deleteChannel,
  deleteMember,
  getMessage,
  lastSeq,
  loadIndexRecords,
  type MessageStore,
  moveCursor,
  openMessageStore,
  purgeBelow,
  purgeKeep,
  putChannel,
  putMember,
  readCursor,
  scanSubject,
  subjectCounts,
} from './store.js';

export interface MessagingInput {
  bus: Bus;
  log: Logger;
  /** What each kind keeps (default DEFAULT_MESSAGE_RETENTION); the stream is provisioned to match. */
  retention?: MessageRetention;
  /** How often the retention sweep runs (default 1 min). */
  retentionSweepMs?: number;
  /** Where Presence is registered: the agents known at start (broadcasts are pushed to them). */
  registry?: Registry;
  presence?: string;
}

/** Who makes a request: an agent (its own subject, or a trusted client acting as it), or a trusted client. */
export type Caller = { agent: string } | { trusted: true; sender?: string | undefined };

export type MessagingReply = { ok: true; value: unknown } | { ok: false; error: WireError };

export type MessagingMessage =
  | { type: 'request'; op: MessagingOp; req: unknown; caller: Caller; reply?: (r: MessagingReply) => void }
  | { type: 'sweep' }
  /** An operator removed the agent: messages to it are refused from now on. */
  | { type: 'agent_removed'; agentId: string }
  | AgentUp
  | AgentDown;

/** Most stored messages one history page looks at (a page may come back short, with a `next`). */
const HISTORY_SCAN_MAX = 10_000;
/** Mailbox reads of one agent that may wait (long polls) at once. */
const POLLS_PER_AGENT = 4;
/** Most replies one thread read returns. */
const THREAD_MAX = 1_000;
const SWEEP_MS = 60_000;

/** Its JSON length; a value nested deeper than the stack is refused, not a crash of the request. */
function jsonLength(v: unknown): number {
  try {
    return JSON.stringify(v).length;
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, 'data is nested too deeply', { path: ['data'] });
  }
}

/**
 * How many of `messages` (at least one, when there are any) fit in `budget` bytes of JSON. A reply
 * is one NATS message, which the server refuses above its max_payload (1 MiB by default), while a
 * page of `limit` messages of up to 32 KiB each can be far more: such a page is cut short (its
 * `more` or `next` says so) rather than failing every time it is asked for.
 */
export function fittingCount(messages: readonly Message[], budget: number): number {
  let bytes = 0;
  for (let i = 0; i < messages.length; i++) {
    bytes += Buffer.byteLength(JSON.stringify(messages[i]));
    if (bytes > budget && i > 0) return i;
  }
  return messages.length;
}

export class MessagingProcess implements Server<MessagingMessage> {
  private readonly index = new ChannelIndex();
  /** Agents known to be registered (and not removed): broadcast pushes go to them. */
  private readonly known = new Set<string>();
  /** Mailbox reads waiting for a message, by agent. */
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly log: Logger;
  private readonly retention: MessageRetention;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping = false;
  private stopped = false;
  /** The last change asked for of each channel (changes of one channel run in turn). */
  private readonly channelChanges = new Map<string, Promise<unknown>>();

  private constructor(
    private readonly store: MessageStore,
    private readonly agents: TypedKv<AgentRegistration>,
    private readonly input: MessagingInput,
  ) {
    this.log = input.log.child({ actor: 'messaging' });
    this.retention = input.retention ?? DEFAULT_MESSAGE_RETENTION;
  }

  static async start(input: MessagingInput, ctx: ServerContext): Promise<MessagingProcess> {
    const store = await openMessageStore(input.bus);
    const agents = await openKv(input.bus, input.bus.names.buckets.agents, AgentRegistrationSchema);
    const p = new MessagingProcess(store, agents, input);
    const { channels, members } = await loadIndexRecords(store);
    for (const c of channels) p.index.putChannel(c);
    for (const m of members) if (p.index.channel(m.channel)) p.index.putMember(m);
    // Presence (on this hub too) holds every registration: one call, not a read per agent. Without
    // it (unit tests) agents become known as they come online or are written to.
    if (input.registry && input.presence) {
      const r = await call<{ registration: AgentRegistration }[]>(
        input.presence,
        { type: 'agents' },
        { registry: input.registry, timeout: 10_000 },
      );
      if (r.ok) for (const a of r.value) if (!a.registration.removed) p.known.add(a.registration.id);
    }
    if (!p.index.channel(ROOM_CHANNEL)) {
      const room: Channel = {
        v: 1,
        name: ROOM_CHANNEL,
        visibility: 'public',
        description: 'Where humans and agents talk',
        createdBy: 'hub',
        createdByKind: 'hub',
        createdAt: Date.now(),
        createdSeq: 0,
        invited: [],
      };
      // Another leader a moment ago may have made it: then its record is the one.
      if (!(await createChannel(store, room))) {
        const e = await store.kv.get(`channel.${ROOM_CHANNEL}`);
        if (e) p.index.putChannel(e.value as Channel);
      } else p.index.putChannel(room);
    }
    const every = input.retentionSweepMs ?? SWEEP_MS;
    p.sweeper = setInterval(() => ctx.send({ type: 'sweep' }), every);
    p.sweeper.unref?.();
    p.log.info(
      { phase: 'start', channels: channels.length, members: members.length, agents: p.known.size },
      'messaging started',
    );
    return p;
  }

  handle(msg: MessagingMessage): void {
    switch (msg.type) {
      case 'request':
        // Through a promise, so that a refusal thrown before the first await is a reply too, never a
        // crash of the actor (a bad request must not restart what runs after it).
        void Promise.resolve()
          .then(() => this.serve(msg.op, msg.req, msg.caller))
          .then(
            (value) => msg.reply?.({ ok: true, value }),
            (err) => msg.reply?.({ ok: false, error: this.toWire(err, msg.op) }),
          );
        return;
      case 'agent_up':
        this.known.add(msg.agentId);
        this.announce(
          msg.agentId,
          { event: 'join' },
          `presence:join:${msg.agentId}:${msg.session ?? msg.at}`,
        );
        return;
      case 'agent_removed':
        this.known.delete(msg.agentId);
        return;
      case 'agent_down':
        this.announce(msg.agentId, { event: 'leave', reason: msg.reason.slice(0, 200) });
        return;
      case 'sweep':
        if (this.sweeping) return;
        this.sweeping = true;
        void this.sweep()
          .catch((err) => this.log.warn({ err, phase: 'retention' }, 'retention sweep failed'))
          .finally(() => {
            this.sweeping = false;
          });
        return;
    }
  }

  async terminate(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweeper);
    for (const ws of this.waiters.values()) for (const wake of ws) wake();
  }

  private toWire(err: unknown, op: string): WireError {
    if (err instanceof AgentComError) return err.toWire();
    this.log.error({ err, op }, 'messaging request failed');
    return { code: ERROR_CODES.INTERNAL, message: err instanceof Error ? err.message : String(err) };
  }

  // --- Requests ---

  private serve(op: MessagingOp, req: unknown, caller: Caller): Promise<unknown> {
    // The endpoint validated `req` against this op's schema.
    const r = req as never;
    switch (op) {
      case 'msg.send':
        return this.send(r, caller);
      case 'msg.inbox':
        return this.inbox(r, this.agentOf(caller, op));
      case 'msg.ack':
        return this.ack((req as { upTo: number }).upTo, this.agentOf(caller, op));
      case 'msg.history':
        return this.history(r, this.viewerOf(caller));
      case 'msg.thread':
        return this.thread((req as { id: number }).id, this.viewerOf(caller));
      case 'msg.status':
        return this.setStatus((req as { status: string }).status, this.agentOf(caller, op));
      case 'channel.list':
        return this.listChannels((req as { after?: string }).after, this.viewerOf(caller));
      case 'channel.members':
        return this.members((req as { name: string }).name, this.viewerOf(caller));
    }
    // Changes of one channel run one at a time: each reads the record the one before it wrote.
    const name = (req as { name: string }).name;
    switch (op) {
      case 'channel.create':
        return this.serially(name, () => this.createChannel(r, caller));
      case 'channel.join':
        return this.serially(name, () => this.join(name, this.agentOf(caller, op)));
      case 'channel.leave':
        return this.serially(name, () => this.leave(name, this.agentOf(caller, op)));
      case 'channel.invite':
        return this.serially(name, () => this.invite(req as { name: string; agent: string }, caller));
      case 'channel.remove':
        return this.serially(name, () => this.removeChannel(name, caller));
    }
  }

  /** Runs `fn` after every change of channel `name` asked for before it. */
  private serially<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const before = this.channelChanges.get(name) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.channelChanges.set(name, tail);
    void tail.then(() => {
      if (this.channelChanges.get(name) === tail) this.channelChanges.delete(name);
    });
    return run;
  }

  private viewerOf(caller: Caller): Viewer {
    return 'agent' in caller ? { agent: caller.agent } : 'trusted';
  }

  private agentOf(caller: Caller, op: string): string {
    if ('agent' in caller) return caller.agent;
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `${op} is an agent's: a trusted client names the agent with \`as\``,
      { path: ['as'] },
    );
  }

  private senderOf(caller: Caller): { id: string; kind: 'agent' | 'human' } {
    return 'agent' in caller
      ? { id: caller.agent, kind: 'agent' }
      : { id: caller.sender ?? 'operator', kind: 'human' };
  }

  private channelOr404(name: string, viewer: Viewer): Channel {
    const c = this.index.channel(name);
    // An invite-only channel the caller may not see is reported as missing, not as forbidden.
    if (!c || !channelVisible(c, viewer, this.index))
      throw new AgentComError(ERROR_CODES.NOT_FOUND, `channel #${name} does not exist`, {
        path: ['channel'],
      });
    return c;
  }

  private info(c: Channel, viewer: Viewer): ChannelInfo {
    return {
      ...c,
      members: this.index.memberCount(c.name),
      ...(viewer === 'trusted' ? {} : { joined: this.index.membership(c.name, viewer.agent) !== undefined }),
    };
  }

  /** Whether `id` is a registered agent that was not removed (cached once seen). */
  private async agentExists(id: string): Promise<boolean> {
    if (this.known.has(id)) return true;
    const e = await this.agents.get(id).catch(() => null);
    if (!e || e.value.removed) return false;
    this.known.add(id);
    return true;
  }

  private async send(req: MsgSendRequest, caller: Caller) {
    const sender = this.senderOf(caller);
    const viewer = this.viewerOf(caller);
    const size = jsonLength([req.title ?? '', req.body, req.data ?? null]);
    if (size > MESSAGE_MAX_JSON)
      throw new AgentComError(
        ERROR_CODES.PAYLOAD_TOO_LARGE,
        `title, body and data take ${size} JSON characters; at most ${MESSAGE_MAX_JSON}`,
      );
    if (req.body.length === 0 && req.data === undefined)
      throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, 'a message needs a body or data', {
        path: ['body'],
      });
    let parent: Message | undefined;
    if (req.replyTo !== undefined) {
      const p = await getMessage(this.store, req.replyTo);
      if (!p || !visibleTo(p, viewer, this.index))
        throw new AgentComError(ERROR_CODES.NOT_FOUND, `message ${req.replyTo} does not exist`, {
          path: ['replyTo'],
        });
      parent = p;
    }
    const target = resolveTarget(req, sender, parent);
    await this.mayPost(target, caller);
    const stored: StoredMessage = {
      v: 1,
      kind: target.kind,
      from: sender.id,
      fromKind: sender.kind,
      ...(target.kind === 'direct' ? { to: target.to as never } : {}),
      ...(target.kind === 'channel' ? { channel: target.channel } : {}),
      ...(req.title !== undefined ? { title: req.title } : {}),
      body: req.body,
      ...(req.data !== undefined ? { data: req.data } : {}),
      ...(parent ? { replyTo: parent.seq, threadId: threadOf(parent) } : {}),
      at: Date.now(),
    };
    const clientKey =
      req.clientId !== undefined ? `msg:${sender.kind}:${sender.id}:${req.clientId}` : undefined;
    const r = await appendMessage(this.store, targetSubject(this.input.bus.names, target), stored, clientKey);
    // Pushed even when it is a duplicate: the store may be this hub's own retry of a publish that had
    // landed (then it is new to everyone), and a push is only a signal to read, harmless twice.
    this.deliver(r.message);
    // Without a clientId the only repeat is the hub's own retry: the sender sent it once.
    return { v: 1 as const, message: r.message, duplicate: r.duplicate && req.clientId !== undefined };
  }

  private async mayPost(t: Target, caller: Caller): Promise<void> {
    if (t.kind === 'direct') {
      if (!(await this.agentExists(t.to)))
        throw new AgentComError(ERROR_CODES.NOT_FOUND, `agent ${t.to} is not known to the hub`, {
          path: ['to'],
        });
      return;
    }
    if (t.kind === 'channel') {
      const c = this.channelOr404(t.channel, this.viewerOf(caller));
      if ('agent' in caller && !this.index.membership(c.name, caller.agent))
        throw new AgentComError(
          ERROR_CODES.FORBIDDEN,
          `agent ${caller.agent} is not a member of #${c.name}: join it first`,
          { path: ['channel'] },
        );
    }
  }

  /** Pushes a stored message to its recipients' connections and wakes their waiting reads. */
  private deliver(m: Message): void {
    const recipients = recipientsOf(m, this.index, this.known);
    const data = utf8(JSON.stringify({ v: 1, message: m }));
    for (const id of recipients) this.input.bus.nc.publish(messagePushSubject(id), data);
    if (m.kind === 'broadcast') {
      for (const [id, ws] of this.waiters) if (inMailbox(m, id)) for (const wake of ws) wake();
    } else for (const id of recipients) for (const wake of this.waiters.get(id) ?? []) wake();
  }

  private async inbox(req: MsgInboxRequest, agent: string) {
    const deadline = Date.now() + req.waitMs;
    // Each waiting read is read again at every wake: a few per agent, like the gateway allows.
    if (req.waitMs > 0 && (this.waiters.get(agent)?.size ?? 0) >= POLLS_PER_AGENT)
      throw new AgentComError(
        ERROR_CODES.RATE_LIMITED,
        `agent ${agent} has ${POLLS_PER_AGENT} mailbox reads waiting already`,
        { retryAfterMs: 1_000 },
      );
    for (;;) {
      if (this.stopped) throw new AgentComError(ERROR_CODES.UNAVAILABLE, 'messaging is stopping; ask again');
      // Registered before the read, so a message stored during it still wakes this one.
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      const ws = this.waiters.get(agent) ?? new Set();
      this.waiters.set(agent, ws);
      ws.add(wake);
      try {
        const cursor = await readCursor(this.store, agent);
        const page = await this.readMailbox(agent, req.after ?? cursor, req.limit);
        const left = deadline - Date.now();
        if (page.messages.length > 0 || left <= 0) return { v: 1 as const, ...page, cursor };
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([woken, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
        clearTimeout(timer);
      } finally {
        ws.delete(wake);
        if (ws.size === 0 && this.waiters.get(agent) === ws) this.waiters.delete(agent);
      }
    }
  }

  /**
   * A page of `agent`'s mailbox after `after`. The sources (its direct messages, the broadcasts,
   * each of its channels) are read at different moments, so the page stops at the stream's last
   * sequence taken before any of them: everything up to it was stored before every read began,
   * and a message stored during the reads on a source read earlier cannot be missing below one
   * read later elsewhere. It also stops where a source was not read to its end, and at `limit`
   * and the reply's size; `more` says whether anything was left.
   */
  private async readMailbox(agent: string, after: number, limit: number) {
    const snapshot = await lastSeq(this.store);
    if (snapshot <= after) return { messages: [], more: false };
    const sources = mailboxSources(this.input.bus.names, agent, this.index).filter(
      (s) => snapshot > Math.max(after, s.after),
    );
    const budget = this.replyBudget();
    const reads = await Promise.all(
      sources.map((s) =>
        scanSubject(this.store, s.subject, Math.max(after, s.after), {
          limit,
          maxBytes: budget,
          accept: (m) => inMailbox(m, agent),
        }),
      ),
    );
    const cut = Math.min(snapshot, ...reads.filter((r) => !r.exhausted).map((r) => r.last));
    const all = mergeBySeq(reads.map((r) => r.messages));
    const merged = all.filter((m) => m.seq <= cut);
    const page = merged.slice(0, limit);
    const messages = page.slice(0, fittingCount(page, budget));
    return {
      messages,
      more: messages.length < merged.length || merged.length < all.length || reads.some((r) => !r.exhausted),
    };
  }

  /** Bytes of messages one reply may carry: half the server's max_payload (the rest: the envelope). */
  private replyBudget(): number {
    return Math.floor((this.input.bus.nc.info?.max_payload ?? 1024 * 1024) / 2);
  }

  private async ack(upTo: number, agent: string) {
    const last = await lastSeq(this.store);
    return {
      v: 1 as const,
      cursor: await moveCursor(this.store, agent, (c) => advanceCursor(c, upTo, last)),
    };
  }

  private async history(req: MsgHistoryRequest, viewer: Viewer) {
    if (req.channel !== undefined) {
      const c = this.channelOr404(req.channel, viewer);
      if (viewer !== 'trusted' && !this.index.membership(c.name, viewer.agent))
        throw new AgentComError(
          ERROR_CODES.FORBIDDEN,
          `agent ${viewer.agent} is not a member of #${c.name}`,
          {
            path: ['channel'],
          },
        );
    }
    const { bus } = this.input;
    let after = req.after ?? 0;
    if (req.thread !== undefined) after = Math.max(after, req.thread - 1);
    if (req.since !== undefined && req.after === undefined)
      after = Math.max(
        after,
        (await firstSeqAtOrAfter(bus, this.store.stream, req.since, bus.names.subjects.msgAll)) - 1,
      );
    let pastUntil = false;
    const r = await scanSubject(this.store, historySubject(bus.names, req), after, {
      limit: req.limit,
      maxScan: HISTORY_SCAN_MAX,
      maxBytes: this.replyBudget(),
      accept: (m) => matchesHistory(m, req) && visibleTo(m, viewer, this.index),
      // Times rise with sequences: past `until`, nothing later matches.
      stop: (m) => (pastUntil = req.until !== undefined && m.at > req.until),
    });
    const fit = fittingCount(r.messages, this.replyBudget());
    if (fit < r.messages.length)
      return { v: 1 as const, messages: r.messages.slice(0, fit), next: r.messages[fit - 1]!.seq };
    return { v: 1 as const, messages: r.messages, next: r.exhausted || pastUntil ? null : r.last };
  }

  private async thread(id: number, viewer: Viewer) {
    const m = await getMessage(this.store, id);
    if (!m || !visibleTo(m, viewer, this.index))
      throw new AgentComError(ERROR_CODES.NOT_FOUND, `message ${id} does not exist`, { path: ['id'] });
    const rootSeq = m.threadId ?? m.seq;
    const root = rootSeq === m.seq ? m : await getMessage(this.store, rootSeq);
    if (!root || !visibleTo(root, viewer, this.index))
      throw new AgentComError(ERROR_CODES.NOT_FOUND, `the first message of thread ${rootSeq} is gone`, {
        path: ['id'],
      });
    const reads = await Promise.all(
      this.conversationSubjects(root).map((s) =>
        scanSubject(this.store, s, rootSeq, {
          limit: THREAD_MAX,
          maxScan: HISTORY_SCAN_MAX * 10,
          maxBytes: this.replyBudget(),
          accept: (x) => x.threadId === rootSeq && visibleTo(x, viewer, this.index),
        }),
      ),
    );
    const replies = mergeBySeq(reads.map((r) => r.messages));
    const page = replies.slice(0, THREAD_MAX);
    const fit = fittingCount([root, ...page], this.replyBudget()) - 1;
    return {
      v: 1 as const,
      root,
      replies: page.slice(0, fit),
      more: fit < replies.length || reads.some((r) => !r.exhausted),
    };
  }

  /** Where the replies of a thread started by `root` are stored (resolveTarget's conversations). */
  private conversationSubjects(root: Message): string[] {
    const s = this.input.bus.names.subjects;
    switch (root.kind) {
      case 'channel':
        return root.channel ? [s.msgChannel(root.channel)] : [];
      case 'direct': {
        const out = root.to ? [s.msgDirect(root.to)] : [];
        if (root.fromKind === 'agent' && root.from !== root.to) out.push(s.msgDirect(root.from));
        return out;
      }
      case 'broadcast':
        return root.fromKind === 'agent' ? [s.msgDirect(root.from)] : [];
      case 'presence':
        return root.to ? [s.msgDirect(root.to)] : [];
    }
  }

  private async setStatus(status: string, agent: string) {
    const message = await this.announceNow(agent, { event: 'status', status }, undefined, 'agent');
    return { v: 1 as const, message, duplicate: false };
  }

  private announce(agent: string, presence: NonNullable<Message['presence']>, msgId?: string): void {
    this.announceNow(agent, presence, msgId, 'hub').catch((err) =>
      this.log.warn({ err, agent_id: agent, phase: 'presence' }, 'presence message not stored'),
    );
  }

  private async announceNow(
    agent: string,
    presence: NonNullable<Message['presence']>,
    msgId: string | undefined,
    by: 'agent' | 'hub',
  ): Promise<Message> {
    const body =
      presence.event === 'status'
        ? `${agent}: ${presence.status ?? ''}`
        : presence.event === 'join'
          ? `${agent} is online`
          : `${agent} went offline${presence.reason ? ` (${presence.reason})` : ''}`;
    const stored: StoredMessage = {
      v: 1,
      kind: 'presence',
      from: by === 'agent' ? agent : 'hub',
      fromKind: by,
      to: agent as never,
      body,
      presence,
      at: Date.now(),
    };
    return (await appendMessage(this.store, this.input.bus.names.subjects.msgPresence(agent), stored, msgId))
      .message;
  }

  // --- Channels ---

  private async createChannel(
    req: { name: string; visibility: 'public' | 'invite'; description: string },
    caller: Caller,
  ) {
    const sender = this.senderOf(caller);
    if ('agent' in caller) {
      const made = this.index.allChannels().filter((x) => createdByAgent(x, caller.agent)).length;
      if (made >= CHANNELS_CREATED_MAX)
        throw new AgentComError(
          ERROR_CODES.INVALID_STATE,
          `agent ${caller.agent} has created ${made} channels, the most one agent may have: remove one first`,
        );
      this.assertMayJoinMore(caller.agent);
    }
    if (this.index.channel(req.name))
      throw new AgentComError(ERROR_CODES.CONFLICT, `channel #${req.name} exists`, { path: ['name'] });
    const c: Channel = {
      v: 1,
      name: req.name,
      visibility: req.visibility,
      description: req.description,
      createdBy: sender.id,
      createdByKind: sender.kind,
      createdAt: Date.now(),
      // Posts up to here belong to a removed channel of this name, if there was one.
      createdSeq: await lastSeq(this.store),
      invited: [],
    };
    if (!(await createChannel(this.store, c)))
      throw new AgentComError(ERROR_CODES.CONFLICT, `channel #${c.name} exists`, { path: ['name'] });
    this.index.putChannel(c);
    // Its creator is its first member.
    if ('agent' in caller) await this.addMember(c.name, caller.agent);
    this.log.info(
      { phase: 'channel', channel: c.name, by: sender.id, visibility: c.visibility },
      'channel created',
    );
    return { v: 1 as const, channel: this.info(c, this.viewerOf(caller)) };
  }

  private async listChannels(after: string | undefined, viewer: Viewer) {
    const visible = this.index
      .allChannels()
      .filter((c) => (after === undefined || c.name > after) && channelVisible(c, viewer, this.index));
    // Without their invitations, and no more than one reply carries (then `more`: list on from the last).
    const budget = this.replyBudget();
    const channels: ChannelInfo[] = [];
    let bytes = 0;
    for (const c of visible) {
      const { invited: _, ...info } = this.info(c, viewer);
      bytes += JSON.stringify(info).length + 1;
      if (bytes > budget && channels.length > 0) return { v: 1 as const, channels, more: true };
      channels.push(info);
    }
    return { v: 1 as const, channels, more: false };
  }

  private assertMayJoinMore(agent: string): void {
    if (this.index.channelsOf(agent).length >= CHANNELS_JOINED_MAX)
      throw new AgentComError(
        ERROR_CODES.INVALID_STATE,
        `agent ${agent} is in ${CHANNELS_JOINED_MAX} channels, the most one agent may be in: leave one first`,
      );
  }

  private async addMember(channel: string, agent: string): Promise<void> {
    const m = {
      v: 1 as const,
      channel,
      agent: agent as never,
      joinedAt: Date.now(),
      joinedSeq: await lastSeq(this.store),
    };
    await putMember(this.store, m);
    this.index.putMember(m);
  }

  private async join(name: string, agent: string) {
    const viewer: Viewer = { agent };
    const c = this.channelOr404(name, viewer);
    if (!mayJoin(c, agent))
      throw new AgentComError(ERROR_CODES.FORBIDDEN, `#${name} is invite-only and ${agent} is not invited`, {
        path: ['name'],
      });
    if (!this.index.membership(name, agent)) {
      this.assertMayJoinMore(agent);
      await this.addMember(name, agent);
    }
    return { v: 1 as const, channel: this.info(c, viewer) };
  }

  private async leave(name: string, agent: string) {
    if (!this.index.membership(name, agent)) return { v: 1 as const, left: false };
    await deleteMember(this.store, name, agent);
    this.index.removeMember(name, agent);
    return { v: 1 as const, left: true };
  }

  /** Whether `caller` may manage `c` (invite to it, remove it): trusted clients and its creator. */
  private manages(c: Channel, caller: Caller): boolean {
    return !('agent' in caller) || createdByAgent(c, caller.agent);
  }

  private async invite(req: { name: string; agent: string }, caller: Caller) {
    const viewer = this.viewerOf(caller);
    const c = this.channelOr404(req.name, viewer);
    const member = 'agent' in caller && this.index.membership(c.name, caller.agent) !== undefined;
    if (!this.manages(c, caller) && !member)
      throw new AgentComError(ERROR_CODES.FORBIDDEN, `only members of #${c.name} may invite to it`, {
        path: ['name'],
      });
    if (c.visibility === 'public')
      throw new AgentComError(ERROR_CODES.INVALID_STATE, `#${c.name} is public: anyone may join it`, {
        path: ['name'],
      });
    if (!(c.invited as string[]).includes(req.agent)) {
      if (!(await this.agentExists(req.agent)))
        throw new AgentComError(ERROR_CODES.NOT_FOUND, `agent ${req.agent} is not known to the hub`, {
          path: ['agent'],
        });
      if (c.invited.length >= CHANNEL_INVITES_MAX)
        throw new AgentComError(
          ERROR_CODES.INVALID_STATE,
          `#${c.name} holds ${CHANNEL_INVITES_MAX} invitations, the most a channel may`,
        );
      const next: Channel = { ...c, invited: [...c.invited, req.agent as never] };
      await putChannel(this.store, next);
      this.index.putChannel(next);
      return { v: 1 as const, channel: this.info(next, viewer) };
    }
    return { v: 1 as const, channel: this.info(c, viewer) };
  }

  private async members(name: string, viewer: Viewer) {
    const c = this.channelOr404(name, viewer);
    return { v: 1 as const, channel: this.info(c, viewer), members: this.index.membersOf(name) };
  }

  private async removeChannel(name: string, caller: Caller) {
    const viewer = this.viewerOf(caller);
    const c = this.channelOr404(name, viewer);
    if (name === ROOM_CHANNEL)
      throw new AgentComError(ERROR_CODES.FORBIDDEN, `#${ROOM_CHANNEL} is built in and cannot be removed`);
    if (!this.manages(c, caller))
      throw new AgentComError(
        ERROR_CODES.FORBIDDEN,
        `only the creator of #${name} (${c.createdBy}) may remove it`,
      );
    const info = this.info(c, viewer);
    await deleteChannel(
      this.store,
      name,
      this.index.membersOf(name).map((m) => m.agent),
    );
    this.index.removeChannel(name);
    this.log.info(
      { phase: 'channel', channel: name },
      `channel removed (${describeTarget({ kind: 'channel', channel: name })})`,
    );
    return { v: 1 as const, channel: info };
  }

  // --- Retention ---

  private async sweep(): Promise<void> {
    const { bus } = this.input;
    const s = bus.names.subjects;
    const trim = kindsToTrim(this.retention);
    const now = Date.now();
    for (const kind of trim.byAge) {
      const from = await firstSeqAtOrAfter(
        bus,
        this.store.stream,
        now - this.retention[kind].maxAgeMs,
        s.msgAll,
      );
      // Nothing is older (an empty stream answers 0, and a purge up to 0 has no bound at all).
      if (from <= 1) continue;
      const purged = await purgeBelow(this.store, s.msgKind(kind), from);
      if (purged > 0) this.log.info({ phase: 'retention', kind, purged }, 'messages past their age removed');
    }
    for (const kind of trim.byCount) {
      const max = this.retention[kind].maxMessages;
      for (const [subject, count] of Object.entries(await subjectCounts(this.store, s.msgKind(kind))))
        if (count > max) await purgeKeep(this.store, subject, max);
    }
  }
}

export type { MessageKind };
