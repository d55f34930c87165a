/**
 * @module agent/client
 * The TypeScript agent SDK: the reference implementation of docs/protocol.md and nothing more.
 * `AgentClient.connect` says hello (retrying until a hub answers), heartbeats, and pulls the
 * agent's own durable inbox. For each assignment it starts the handler with an AbortSignal (aborted
 * when the hub cancels or reclaims) and publishes `accepted`; it acks the inbox message once
 * `accepted` is stored, and reports the outcome after that. A handler that settles within
 * `acceptDelayMs` (default: the turn of the event loop it started in) reports its outcome alone,
 * which implies `accepted` (docs/protocol.md §10), and the inbox message is acked once that outcome
 * is stored. Every report is a JetStream publish with a deterministic message id
 * (`<task>:<generation>:<type>`), retried with the same id, so a report is stored once however
 * often it is sent. Delivery is at-least-once: after a crash between `accepted` and the ack, the
 * assignment is delivered again and the handler runs again (the sidecar's local queue narrows this).
 *
 * Sessions (docs/protocol.md §10): each client is one session (a new id per process start, kept
 * across reconnects), named in its hello, heartbeats, reports and goodbye, so the hub can tell a
 * restarted agent from a reconnected one. Heartbeats list what it holds and what it finished lately.
 * A refused report comes back as a `notice`; one that says `stop` aborts the handler's signal. An
 * assignment this client already finished (same task and generation, redelivered after a lost ack)
 * is acked and not run again.
 */
import { type Logger, pino } from 'pino';
import { type Bus, type BusConnectOptions, connectBus } from '../bus/connection.js';
import { type ConsumerRunner, type Outcome, outcome, runConsumer } from '../bus/consumer.js';
import { agentInboxConsumerSpec } from '../bus/provision.js';
import { publish, waitForBacklog } from '../bus/publish.js';
import { publishCore, requestTyped } from '../bus/subscribe.js';
import {
  type AgentHelloInput,
  AgentHelloSchema,
  type AssignedTask,
  FINISHED_MAX,
  GoodbyeSchema,
  HeartbeatSchema,
  type InboxMessage,
  InboxMessageSchema,
  type InboxNotice,
  type Report,
  ReportSchema,
} from '../protocol/agent.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { randomHex } from '../protocol/headers.js';
import { type AgentId, AgentIdSchema, newSessionId, type TaskId } from '../protocol/ids.js';
import { agentInboxPrefix } from '../protocol/permissions.js';
import { type HelloReply, HelloReplySchema } from '../protocol/registration.js';
import type { TaskSubmitInput } from '../protocol/task.js';
import { exponentialDelay } from '../runtime/backoff.js';
import { FieldClient } from './field.js';
import { Messages } from './messages.js';
import { submitTask } from './submit.js';

export interface AgentClientOptions {
  /** Connection (servers, prefix, credentials, TLS). */
  connection: BusConnectOptions;
  agentId: string;
  hello?: Omit<AgentHelloInput, 'v'>;
  logger?: Logger;
  /** Give up saying hello after this long (default: keep trying). */
  helloTimeoutMs?: number;
  /**
   * The tasks the agent holds, for heartbeats. Default: the tasks `start()`'s handler is running;
   * code using `receive()` (the sidecar) supplies its own.
   */
  runningTasks?: () => readonly string[];
  /**
   * How long `accepted` waits for the handler's outcome, ms (default 0: until the event-loop turn
   * in which the handler started has ended). An outcome ready by then is reported alone (it implies
   * `accepted`): one report instead of two. A progress, block or unblock sends `accepted` at once.
   */
  acceptDelayMs?: number;
  /**
   * This session's id (default: a new random one). One per process start: a sidecar that
   * reconnects keeps it, a restarted process gets a new one.
   */
  session?: string;
  /** Called for every notice (a refused report) the hub sends, after the client acted on it. */
  onNotice?: (notice: InboxNotice) => void;
}

/** How long a finished task stays in the heartbeat's `finished` list (its report may still be on its way). */
const FINISHED_LIST_MS = 60_000;
/** How many finished assignments the client remembers, so a redelivered one is not run again. */
const FINISHED_REMEMBER = 1024;

/** What to do with an inbox message after `receive()`'s callback: remove it, or redeliver later. */
export type InboxDisposition = { type: 'ack' } | { type: 'redeliver'; delayMs: number };

export interface TaskContext {
  readonly taskId: TaskId;
  readonly generation: number;
  readonly task: AssignedTask;
  /** Aborted when the hub cancels or reclaims this assignment, or the client stops. */
  readonly signal: AbortSignal;
  progress(p?: { pct?: number; message?: string; tokensUsed?: number }): Promise<void>;
  block(reason: string): Promise<void>;
  unblock(): Promise<void>;
}

export type TaskOutcome =
  | { type: 'completed'; result: unknown; tokensUsed?: number }
  | { type: 'failed'; error: { code?: string; message: string }; retryable?: boolean; tokensUsed?: number }
  | { type: 'rejected'; reason: string };

export type TaskHandler = (ctx: TaskContext) => Promise<TaskOutcome>;

interface Running {
  generation: number;
  abort: AbortController;
  /** The outcome is being reported: the slot is free for the next assignment, which the hub may
   * send as soon as it has applied the outcome, before our PubAck arrives. */
  reporting?: boolean;
}

export class AgentClient {
  readonly agentId: AgentId;
  readonly session: string;
  private readonly running = new Map<TaskId, Running>();
  /** Assignments this session finished (outcome stored), oldest first: task -> generation and time. */
  private readonly finished = new Map<TaskId, { generation: number; at: number }>();
  private runner: ConsumerRunner | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private progressSeq = 0;
  private stopped = false;
  private readonly tasks = new Set<Promise<void>>();

  private constructor(
    readonly bus: Bus,
    agentId: AgentId,
    private readonly hello: AgentHelloInput,
    readonly helloReply: Extract<HelloReply, { ok: true }>,
    private readonly log: Logger,
    private readonly runningProvider: (() => readonly string[]) | undefined,
    private readonly acceptDelayMs: number,
    private readonly onNoticeHook: ((n: InboxNotice) => void) | undefined,
  ) {
    this.agentId = agentId;
    this.session = hello.session!;
  }

  /** Connect and say hello. @throws AgentComError when the hub refuses the hello. */
  static async connect(opts: AgentClientOptions): Promise<AgentClient> {
    const agentId = AgentIdSchema.parse(opts.agentId);
    const log = (opts.logger ?? pino({ level: 'info' })).child({ agent_id: agentId });
    // The agent's own reply-inbox prefix: with per-agent credentials it is the only subject space
    // it may subscribe to (docs/security.md).
    const bus = await connectBus({
      name: `agentcom-agent-${agentId}`,
      inboxPrefix: agentInboxPrefix(agentId),
      ...opts.connection,
      logger: log,
    });
    const session = opts.session ?? newSessionId();
    const hello: AgentHelloInput = { v: 1, ...opts.hello, session };
    try {
      const held = opts.runningTasks?.() ?? [];
      const reply = await sayHello(
        bus,
        agentId,
        { ...hello, holding: [...held] as TaskId[] },
        opts.helloTimeoutMs,
      );
      const client = new AgentClient(
        bus,
        agentId,
        hello,
        reply,
        log,
        opts.runningTasks,
        Math.max(0, opts.acceptDelayMs ?? 0),
        opts.onNotice,
      );
      client.startHeartbeat();
      // After an outage, say hello again: the hub may have restarted or expired us meanwhile.
      bus.onStatus((e) => {
        if (e.type === 'reconnect' && !client.stopped) {
          void sayHello(bus, agentId, client.helloNow(), 30_000).catch((err) =>
            log.warn({ err }, 'hello after reconnect failed'),
          );
        }
      });
      return client;
    } catch (err) {
      await bus.drain();
      throw err;
    }
  }

  /** Start taking assignments: each runs `handler`, and its outcome is reported. */
  async start(handler: TaskHandler): Promise<void> {
    await this.consumeInbox((msg) => this.onInbox(msg, handler));
  }

  /**
   * The raw inbox, for relays that keep their own state (the sidecar): `onMessage` decides when a
   * message is acked (e.g. after persisting it). Invalid messages never reach it: they go to the DLQ.
   */
  async receive(onMessage: (msg: InboxMessage) => Promise<InboxDisposition>): Promise<void> {
    await this.consumeInbox(async (msg) => {
      const d = await onMessage(msg);
      return d.type === 'ack' ? outcome.ack() : outcome.retry(d.delayMs);
    });
  }

  private async consumeInbox(handler: (msg: InboxMessage) => Promise<Outcome>): Promise<void> {
    if (this.runner) throw new Error('the inbox is already being consumed');
    const spec = agentInboxConsumerSpec(this.bus.names, this.agentId);
    this.runner = await runConsumer(this.bus, {
      spec: {
        stream: this.helloReply.inbox.stream,
        durable: this.helloReply.inbox.consumer,
        ...pickFilter(spec),
      },
      schema: InboxMessageSchema,
      provision: false,
      concurrency: Math.max(1, this.slots()),
      handler,
    });
  }

  /** Task ids currently being worked on. */
  runningTasks(): TaskId[] {
    return [...this.running.keys()];
  }

  /** Task ids this session finished lately, newest last (the heartbeat's `finished`). */
  recentlyFinished(now = Date.now()): TaskId[] {
    const out: TaskId[] = [];
    for (const [id, f] of this.finished) if (now - f.at < FINISHED_LIST_MS) out.push(id);
    return out.slice(-FINISHED_MAX);
  }

  /** Whether this session already finished this assignment (same task and generation). */
  hasFinished(taskId: string, generation: number): boolean {
    return this.finished.get(taskId as TaskId)?.generation === generation;
  }

  /**
   * Publish a report (sidecars relay reports this way), in this session's name. Once an outcome
   * (completed, failed, rejected) is stored, the assignment counts as finished.
   * While this agent's backlog of unprocessed reports is full (the hub is behind, or down; docs/
   * security.md, "Rate limits"), a report waits for room for as long as the connection is open:
   * none is given up, except a `progress`, which is dropped (the next one carries the news).
   */
  async report(report: Report, seq?: number): Promise<void> {
    const suffix = seq === undefined ? '' : `:${seq}`;
    const r: Report = report.session === undefined ? { ...report, session: this.session } : report;
    const subject = this.bus.names.subjects.agentReport(this.agentId);
    const msgId = `${report.taskId}:${report.generation}:${report.type}${suffix}`;
    const progress = r.type === 'progress';
    const withinBacklog = <T>(send: () => Promise<T>) =>
      waitForBacklog(send, {
        maxWaitMs: progress ? 0 : Number.POSITIVE_INFINITY,
        stop: () => this.bus.nc.isClosed(),
      });
    let ack: Awaited<ReturnType<typeof publish>>;
    try {
      ack = await withinBacklog(() => publish(this.bus, subject, ReportSchema, r, { msgId, retries: 10 }));
    } catch (err) {
      if (!(progress && err instanceof AgentComError && err.code === ERROR_CODES.RATE_LIMITED)) throw err;
      this.log.debug({ task_id: r.taskId, phase: 'progress' }, 'progress dropped: report backlog full');
      return;
    }
    if (ack.duplicate)
      // The stream already held this id: an earlier copy of this report (a retry whose PubAck was
      // lost, a relay after a restart), or another agent's message that took the id first to
      // silence this one (ids are predictable, and the stream deduplicates across all agents). A
      // copy under an id nobody can guess is stored either way; the hub applies a report once, so
      // a second copy of one it has applied is a no-op (docs/protocol.md §10).
      await withinBacklog(() =>
        publish(this.bus, subject, ReportSchema, r, { msgId: `${msgId}:${randomHex(16)}`, retries: 10 }),
      );
    if (r.type === 'completed' || r.type === 'failed' || r.type === 'rejected') {
      this.finished.delete(r.taskId);
      this.finished.set(r.taskId, { generation: r.generation, at: Date.now() });
      if (this.finished.size > FINISHED_REMEMBER) this.finished.delete(this.finished.keys().next().value!);
    }
  }

  /**
   * Submit a task as this agent (its credentials must allow it: `agent add --can-submit`), on its
   * own submit subject; idempotency keys are this agent's own (docs/protocol.md §7).
   * @throws AgentComError `rate_limited` (with `retryAfterMs`) when its backlog of unprocessed
   *   submissions is full.
   */
  submit(task: Omit<TaskSubmitInput, 'v'>): Promise<{ taskId: TaskId; duplicate: boolean }> {
    return submitTask(this.bus, task, { submitter: this.agentId });
  }

  /**
   * The stigmergy field as this agent: emit and claim the types its credentials allow
   * (`agent add --emit/--claim`), release its claims, observe any pattern (docs/protocol.md §11b).
   */
  get field(): FieldClient {
    // One per agent: its observations share the agent's 16 slots (a second client would reuse them).
    this.fieldClient ??= new FieldClient(this.bus, { agentId: this.agentId });
    return this.fieldClient;
  }
  private fieldClient: FieldClient | undefined;

  /**
   * Messaging as this agent (docs/protocol.md §11d, agent/messages.ts): send, broadcast, post,
   * reply, channels, history, threads, status, the mailbox and its cursor, incoming messages.
   */
  get messages(): Messages {
    this.messagesClient ??= new Messages(this.bus, { agentId: this.agentId, logger: this.log });
    return this.messagesClient;
  }
  private messagesClient: Messages | undefined;

  /**
   * Stop: no new assignments, abort running handlers (their outcomes are still reported if they
   * finish), say goodbye (so the hub reclaims at once instead of after missed heartbeats), drain.
   */
  async stop(opts: { goodbye?: boolean; reason?: string; abort?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.heartbeat);
    // Message streams stop first; `onMessage` subscriptions ack what they handled before the drain.
    await this.messagesClient?.close();
    await this.runner?.stop();
    if (opts.abort !== false)
      for (const r of this.running.values()) r.abort.abort(new Error('agent stopping'));
    await Promise.allSettled(this.tasks);
    if (opts.goodbye !== false) {
      publishCore(this.bus, this.bus.names.subjects.agentGoodbye(this.agentId), GoodbyeSchema, {
        v: 1,
        session: this.session,
        ...(opts.reason ? { reason: opts.reason } : {}),
      });
    }
    await this.bus.drain();
  }

  // --- Inbox ---

  private async onInbox(msg: InboxMessage, handler: TaskHandler): Promise<Outcome> {
    if (msg.type === 'notice') {
      this.onNotice(msg);
      return outcome.ack();
    }
    if (msg.type === 'cancel') {
      const r = this.running.get(msg.taskId);
      if (r && r.generation <= msg.generation) {
        this.log.info(
          { task_id: msg.taskId, phase: 'cancelled', reason: msg.reason },
          'assignment cancelled',
        );
        this.running.delete(msg.taskId);
        r.abort.abort(new Error(`cancelled: ${msg.reason}`));
      }
      return outcome.ack();
    }
    const current = this.running.get(msg.taskId);
    if (current && current.generation >= msg.generation) return outcome.ack(); // redelivered
    if (this.hasFinished(msg.taskId, msg.generation)) return outcome.ack(); // done already; its ack was lost
    if (this.stopped) return outcome.retry(0);
    if (!current && this.slotsInUse() >= this.slots()) {
      await this.report({
        v: 1,
        type: 'rejected',
        taskId: msg.taskId,
        generation: msg.generation,
        at: Date.now(),
        reason: 'no free slot',
      });
      return outcome.ack();
    }
    // The handler starts at once; `accepted` follows unless the outcome is ready first (see
    // `acceptDelayMs`). The inbox message is acked only once one of them is stored, so a crash
    // before that redelivers the assignment instead of losing it.
    const entry: Running = { generation: msg.generation, abort: new AbortController() };
    const accept = new DeferredAccept(() =>
      this.report({ v: 1, type: 'accepted', taskId: msg.taskId, generation: msg.generation, at: Date.now() }),
    );
    current?.abort.abort(new Error('superseded by a newer assignment'));
    this.running.set(msg.taskId, entry);
    const run = this.run(msg.taskId, entry, msg.task, handler, accept).finally(() => this.tasks.delete(run));
    this.tasks.add(run);
    accept.arm(this.acceptDelayMs);
    try {
      await accept.stored;
    } catch (err) {
      // Not stored: stop the work; the redelivered assignment starts it again.
      entry.abort.abort(new Error('accepted report not stored'));
      if (this.running.get(msg.taskId) === entry) this.running.delete(msg.taskId);
      this.log.warn({ task_id: msg.taskId, err }, 'accepted report not stored; will retry');
      return outcome.retry(1000);
    }
    return outcome.ack();
  }

  private async run(
    taskId: TaskId,
    entry: Running,
    task: AssignedTask,
    handler: TaskHandler,
    accept: DeferredAccept,
  ): Promise<void> {
    const { generation } = entry;
    const base = { v: 1 as const, taskId, generation };
    // Reports made while the handler runs go after `accepted` (sent now if it was waiting).
    const afterAccept = async (r: Report) => {
      await accept.send();
      await this.report(r, ++this.progressSeq);
    };
    const ctx: TaskContext = {
      taskId,
      generation,
      task,
      signal: entry.abort.signal,
      progress: (p = {}) => afterAccept({ ...base, type: 'progress', at: Date.now(), ...p }),
      block: (reason) => afterAccept({ ...base, type: 'blocked', at: Date.now(), reason }),
      unblock: () => afterAccept({ ...base, type: 'unblocked', at: Date.now() }),
    };
    let result: TaskOutcome;
    try {
      result = await handler(ctx);
    } catch (err) {
      result = {
        type: 'failed',
        error: { code: 'agent_error', message: err instanceof Error ? err.message : String(err) },
      };
    }
    if (this.running.get(taskId) !== entry) {
      // Cancelled or superseded: the hub no longer wants it. An `accepted` still waiting is sent
      // anyway, so the inbox message is acked as before (the hub refuses it as stale).
      void accept.send().catch(() => undefined);
      return;
    }
    const at = Date.now();
    const outcomeReport: Report =
      result.type === 'completed'
        ? { ...base, at, ...result }
        : result.type === 'failed'
          ? { ...base, at, retryable: true, ...result }
          : { ...base, at, type: 'rejected', reason: result.reason };
    try {
      if (accept.claim()) {
        // `accepted` was never sent: the outcome alone implies it, and its storage is what
        // lets the inbox message be acked.
        entry.reporting = true;
        const reported = this.report(outcomeReport);
        accept.settleWith(reported);
        await reported;
      } else {
        await accept.stored; // the outcome is reported only after the acceptance is stored
        entry.reporting = true;
        await this.report(outcomeReport);
      }
    } catch (err) {
      this.log.error({ task_id: taskId, err }, 'could not report the outcome');
    } finally {
      if (this.running.get(taskId) === entry) this.running.delete(taskId);
    }
  }

  /**
   * A refused report. `stop`: the assignment is over for this agent (finished, reclaimed,
   * reassigned): the handler's signal is aborted and its outcome will not be reported.
   */
  onNotice(n: InboxNotice): void {
    const r = this.running.get(n.taskId);
    const stops = n.stop && r !== undefined && r.generation === n.generation;
    this.log.info(
      {
        task_id: n.taskId,
        generation: n.generation,
        phase: 'notice',
        report: n.report,
        code: n.code,
        stop: stops,
      },
      `report refused: ${n.message}`,
    );
    if (stops) {
      this.running.delete(n.taskId);
      r.abort.abort(new Error(`stopped by the hub: ${n.code}: ${n.message}`));
    }
    this.onNoticeHook?.(n);
  }

  /** The hello to send now: this session, holding what it holds now. */
  private helloNow(): AgentHelloInput {
    return { ...this.hello, holding: [...(this.runningProvider?.() ?? this.runningTasks())] as TaskId[] };
  }

  private slotsInUse(): number {
    let n = 0;
    for (const r of this.running.values()) if (!r.reporting) n++;
    return n;
  }

  private slots(): number {
    return AgentHelloSchema.parse(this.hello).slots;
  }

  private startHeartbeat(): void {
    const beat = () => {
      try {
        const now = Date.now();
        publishCore(this.bus, this.bus.names.subjects.agentHeartbeat(this.agentId), HeartbeatSchema, {
          v: 1,
          at: now,
          session: this.session,
          running: (this.runningProvider?.() ?? this.runningTasks()) as TaskId[],
          finished: this.recentlyFinished(now),
        });
      } catch (err) {
        this.log.debug({ err }, 'heartbeat not sent');
      }
    };
    beat();
    this.heartbeat = setInterval(beat, this.helloReply.heartbeatIntervalMs);
  }
}

/**
 * The `accepted` report of one assignment, sent at most once: when its timer fires, when the task
 * reports progress, or never, if the outcome claims it first (the outcome then implies it).
 * `stored` settles when whichever report stands for the acceptance is stored.
 */
class DeferredAccept {
  readonly stored: Promise<void>;
  private resolve!: () => void;
  private reject!: (err: unknown) => void;
  private state: 'waiting' | 'sent' | 'claimed' = 'waiting';
  private sending: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;

  constructor(private readonly publish: () => Promise<void>) {
    this.stored = new Promise<void>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    // Rejections are handled by whoever awaits `stored`; never an unhandled rejection here.
    this.stored.catch(() => undefined);
  }

  arm(delayMs: number): void {
    if (this.state !== 'waiting') return;
    const fire = () => void this.send().catch(() => undefined);
    if (delayMs > 0) this.timer = setTimeout(fire, delayMs);
    else this.immediate = setImmediate(fire);
  }

  /** Send `accepted` now unless it is already sent or claimed; resolves once it is stored. */
  send(): Promise<void> {
    if (this.state === 'claimed') return this.stored;
    if (!this.sending) {
      this.state = 'sent';
      this.clearTimer();
      this.sending = this.publish();
      this.settleWith(this.sending);
    }
    return this.sending;
  }

  /** Take the acceptance over for the outcome report: true when `accepted` was never sent. */
  claim(): boolean {
    if (this.state !== 'waiting') return false;
    this.state = 'claimed';
    this.clearTimer();
    return true;
  }

  settleWith(p: Promise<void>): void {
    p.then(this.resolve, this.reject);
  }

  private clearTimer(): void {
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
  }
}

function pickFilter(spec: { filterSubject?: string }): { filterSubject?: string } {
  return spec.filterSubject ? { filterSubject: spec.filterSubject } : {};
}

/**
 * Hello retry waits: 1 s, 2 s, 4 s ... 60 s, each minus up to 20% jitter, since every agent of a hub
 * that went away retries at the same moment.
 */
const HELLO_BACKOFF = { min: 1_000, max: 60_000 };
const HELLO_JITTER = { jitter: 0.2 };

/** Hello, retried with backoff ({@link HELLO_BACKOFF}) until a hub answers or the timeout passes. */
async function sayHello(
  bus: Bus,
  agentId: AgentId,
  hello: AgentHelloInput,
  timeoutMs = Number.POSITIVE_INFINITY,
): Promise<Extract<HelloReply, { ok: true }>> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const reply = await requestTyped(
        bus,
        bus.names.subjects.agentHello(agentId),
        AgentHelloSchema,
        AgentHelloSchema.parse(hello),
        HelloReplySchema,
        5_000,
      );
      if (!reply.ok) throw AgentComError.fromWire(reply.error);
      return reply;
    } catch (err) {
      // Too many hellos: the hub says when the next one is welcome. Suspended (and every other
      // refusal) is thrown: the error carries its `retryAfterMs`.
      const limited = err instanceof AgentComError && err.code === ERROR_CODES.RATE_LIMITED;
      if (err instanceof AgentComError && !limited && err.code !== 'timeout' && err.code !== 'unavailable')
        throw err;
      const wait = limited
        ? ((err as AgentComError).retryAfterMs ?? 1_000)
        : exponentialDelay(attempt, HELLO_BACKOFF, HELLO_JITTER);
      if (Date.now() + wait > deadline) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
