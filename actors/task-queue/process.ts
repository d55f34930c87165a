/**
 * @module task-queue/process
 * The TaskQueue actor: the only writer of task records. It consumes task submissions (SUBMIT,
 * shared durable `hub-intake`) and agent reports (REPORTS, `hub-reports`), applies them through the
 * store (pure transition + compare-and-set), and only then carries out the effects: assignment and
 * cancel messages to agent inboxes, and a `tasks_changed` cast to its subscribers (scheduler, agents).
 * A message is acked only after the write that contains it, so a crash at any point redelivers it
 * (and what a killed hub had pulled is handled when the next one starts, not after ack_wait);
 * redelivered submits and reports are recognised (deterministic ids, generation fencing) and change
 * nothing. Refused reports (stale generation, not the assignee, a finished task) are logged and
 * acked, never applied; the sender gets a `notice` in its inbox saying why, and whether to stop.
 * It follows the control value (protocol/control.ts): while intake is paused the intake durable is
 * not pulled at all (submissions wait in SUBMIT, their delivery count untouched), and resuming
 * starts pulling at once. Reports are applied either way.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import {
  type ConsumerRunner,
  type ConsumerRunnerOptions,
  type MessageContext,
  type Outcome,
  outcome,
  runConsumer,
} from '../../src/bus/consumer.js';
import { type ConsumerStallWatch, watchConsumerStall } from '../../src/bus/consumer-stall.js';
import { type KvValue, openKv } from '../../src/bus/kv.js';
import { type LiveControl, openLiveControl } from '../../src/bus/live-config.js';
import { type LiveLimits, openLiveLimits } from '../../src/bus/live-limits.js';
import { DEFAULT_DUPLICATE_WINDOW_MS } from '../../src/bus/provision.js';
import { publishRaw } from '../../src/bus/publish.js';
import { withdrawMessage } from '../../src/bus/withdraw.js';
import { type InboxMessage, type Report, ReportSchema } from '../../src/protocol/agent.js';
import { encodeTrusted, validatePayload } from '../../src/protocol/envelope.js';
import { AgentComError, ERROR_CODES, type ErrorCode, type WireError } from '../../src/protocol/errors.js';
import type { AgentId, TaskId } from '../../src/protocol/ids.js';
import {
  DEFAULT_MAX_SUBMIT_DEFER_MS,
  type RateKind,
  type RateLimit,
  rateFor,
} from '../../src/protocol/limits.js';
import { parseAgentSubject, parseSubmitSubject } from '../../src/protocol/subjects.js';
import {
  type TaskRecord,
  TaskRecordSchema,
  type TaskSubmit,
  TaskSubmitSchema,
} from '../../src/protocol/task.js';
import { taskIdForSubmit } from '../../src/protocol/task-id.js';
import { call, cast, exponentialDelay, type Registry } from '../../src/runtime/index.js';
import { KeyedRateLimiter } from '../../src/runtime/rate-limit.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import { TAKE_WAIT_MS, type TaskMirrorMessage } from '../task-mirror/index.js';
import type { AssignReply, TaskChanged, TaskQueueMessage } from './messages.js';
import { listTasks, queueStats } from './query.js';
import { DEFAULT_RETENTION, expiredTasks, type RetentionPolicy } from './retention.js';
import {
  assignMessage,
  commandFromReport,
  refusalNotice,
  resolveDelay,
  type TaskCommand,
  type TaskCommandResult,
  type TaskEffect,
} from './state.js';
import { type StoredTask, TaskStore } from './store.js';

export interface TaskQueueInput {
  bus: Bus;
  registry: Registry;
  log: Logger;
  /** Registered names that receive `tasks_changed` casts. */
  subscribers: string[];
  /** Handlers running at once per consumer (default 256). */
  concurrency?: number;
  /**
   * How long a new task's first write waits for the scheduler's assignment to join it (default
   * 2 ms): with an agent free, created + assigned is one write instead of two.
   */
  submitLingerMs?: number;
  /** How long an `accepted` waits for the same agent's `completed` to join its write (default 5 ms). */
  acceptLingerMs?: number;
  /** Registered name of the scheduler, told of a task before its first write (so it can join it). */
  scheduler?: string;
  /** Registered name of presence, told of every invalid message of an agent (it suspends). */
  presence?: string;
  /** How long and how many finished tasks are kept (default DEFAULT_RETENTION: 7 days, 50,000). */
  retention?: RetentionPolicy;
  /** Period of the retention sweep, ms (default 1000). */
  retentionSweepMs?: number;
  /**
   * Whether this hub may write now: it holds a lease that has not run out by its own clock. A hub
   * that was stalled past its lease (another may lead now) must not act on what it decided before
   * or during the stall; commands are refused as `unavailable` until the leader has checked the
   * lease again. Default: always.
   */
  writable?: () => boolean;
  /**
   * Registered name of this hub's task mirror (actors/task-mirror): at start the records are
   * taken from it when it has them all, instead of read from the bucket.
   */
  mirror?: string;
}

/** How long the start waits for the mirror's answer (it waits TAKE_WAIT_MS at most itself). */
const MIRROR_CALL_MS = TAKE_WAIT_MS + 3_000;

/**
 * Pull requests expire this fast: the server goes on filling the waiting pulls of a leader that is
 * stalled rather than dead (they outlive the stall), and what lands there waits for ack_wait.
 */
const HUB_PULL_EXPIRES_MS = 2_000;
/** What a hub that does not hold a live lease answers, instead of writing. */
const NOT_WRITABLE_REPLY = {
  ok: false,
  error: { code: ERROR_CODES.UNAVAILABLE, message: 'this hub does not hold a live lease; not writing' },
} as const satisfies AssignReply;
/**
 * Put back with the consumer's own backoff (1 s, 2 s ... 60 s): every delivery counts toward the
 * durable's max_deliver (20), so a short fixed delay would dead-letter a submission after a stall
 * of a few seconds (the chaos suite's stalled hub did exactly that).
 */
const NOT_WRITABLE_RETRY = outcome.retry(undefined, NOT_WRITABLE_REPLY.error.message);
/** Records removed per retention sweep at most (a backlog is worked off over the next sweeps). */
const RETENTION_BATCH = 1_000;
/** Removals in flight at once during a sweep. */
const RETENTION_CONCURRENCY = 32;
/** A steady state above the retention count removes every second: one log line a minute is enough. */
const RETENTION_LOG_EVERY_MS = 60_000;

/**
 * The task records, from the standby's mirror when it has them all, else read from the bucket.
 * Records written here come from the pure, property-tested state.ts: not re-validated on the
 * hot path (every read still is).
 */
async function loadRecords(
  input: TaskQueueInput,
): Promise<{ store: TaskStore; loadMs: number; fromMirror: boolean }> {
  const { bus } = input;
  const kv = await openKv(bus, bus.names.buckets.tasks, TaskRecordSchema, { validateWrites: false });
  const store = new TaskStore(kv);
  const loadStart = performance.now();
  const warm = input.mirror ? await takeFromMirror(input.mirror, input.registry) : null;
  await store.load(warm ?? undefined);
  return { store, loadMs: Math.round(performance.now() - loadStart), fromMirror: warm !== null };
}

/** Stops the live values that did open (a start that failed). */
function stopOpened(opened: PromiseSettledResult<{ stop(): void }>[]): void {
  for (const r of opened) if (r.status === 'fulfilled') r.value.stop();
}

export class TaskQueue implements Server<TaskQueueMessage> {
  private intake: ConsumerRunner | undefined;
  private changed: TaskRecord[] = [];
  /** The inbox sequence of each open assignment this process delivered (to withdraw it). */
  private readonly inboxSeqs = new Map<TaskId, { generation: number; seq: number }>();
  private reports: ConsumerRunner | undefined;
  private stallWatches: ConsumerStallWatch[] = [];
  private retentionTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  /** Removals since the last retention log line (logged at most once a minute). */
  private removedSinceLog = 0;
  private lastRetentionLog = 0;
  private readonly log: Logger;
  /** Per-agent token buckets (protocol/limits.ts); rates are read from the live limits each time. */
  private readonly rates: Record<'reports' | 'flood' | 'refusals' | 'submits', KeyedRateLimiter>;
  /** Inbox publishes waiting to be tried again (sendInboxLater). */
  private readonly redeliveries = new Set<NodeJS.Timeout>();
  /** Refused reports not answered (over the refusals budget) since the last one that was. */
  private readonly dropped = new Map<AgentId, number>();
  /** The last start or stop of the intake runner (one at a time, in the order the control changed). */
  private intakeChange: Promise<void> = Promise.resolve();
  private intakePaused = false;
  private terminating = false;
  /** The consumers' start (startConsumers), run after this actor's own start: settles when it does, never rejects. */
  private consuming: Promise<void> = Promise.resolve();

  private constructor(
    private readonly input: TaskQueueInput,
    private readonly store: TaskStore,
    private readonly limits: LiveLimits,
    private readonly control: LiveControl,
    private readonly ctx: ServerContext,
  ) {
    this.log = input.log.child({ actor: 'task-queue' });
    const limiter = (kind: RateKind) => new KeyedRateLimiter((id) => this.rateOf(id, kind));
    this.rates = {
      reports: limiter('reports'),
      flood: new KeyedRateLimiter((id) => {
        const r = this.rateOf(id, 'reports');
        return r && { perSecond: r.perSecond * FLOOD_FACTOR, burst: r.burst * FLOOD_FACTOR };
      }),
      refusals: limiter('refusals'),
      // One bucket for the bus and the API: the bus spends ahead (reserve), the API only takes.
      submits: limiter('submits'),
    };
  }

  static async start(input: TaskQueueInput, ctx: ServerContext): Promise<TaskQueue> {
    const { bus } = input;
    // The live values open while the records load: each is a few JetStream requests, which took
    // most of a second at a failover beside 10,000 agents, when the load from the mirror took half.
    const live = Promise.allSettled([openLiveLimits(bus), openLiveControl(bus)]);
    const { store, loadMs, fromMirror } = await loadRecords(input).catch((err) => {
      // A failed start leaves nothing following the bucket.
      void live.then(stopOpened);
      throw err;
    });
    const [openedLimits, openedControl] = await live;
    if (openedLimits.status === 'rejected' || openedControl.status === 'rejected') {
      stopOpened([openedLimits, openedControl]);
      throw openedLimits.status === 'rejected'
        ? openedLimits.reason
        : (openedControl as PromiseRejectedResult).reason;
    }
    const [limits, control] = [openedLimits.value, openedControl.value];
    const tq = new TaskQueue(input, store, limits, control, ctx);
    store.onChange((t) => tq.publishChange(t));
    // What its predecessor recorded as assigned goes out again first: those agents wait for it, and
    // it needs neither consumer.
    tq.resendRecentAssignments();
    control.onChange(() => void tq.followIntake().catch((err) => tq.stopAndCrash(err)));
    tq.retentionTimer = setInterval(() => tq.sweepRetention(), input.retentionSweepMs ?? 1000);
    tq.retentionTimer.unref();
    tq.sweepRetention();
    // The consumers start after this start returns: each is several JetStream requests (the
    // durable's info, the redelivery of what a dead leader held, a pull), 1.6-2 s in a row at a
    // failover beside 10,000 agents (docs/scaling.md), and what the scheduler's start needs of this
    // actor (its snapshot, the assignments it writes) needs neither. Submissions and reports wait
    // in their streams meanwhile. A consumer that cannot start crashes the actor, after
    // whichever did start has stopped (stopAndCrash).
    const starting = tq.startConsumers();
    tq.consuming = starting.then(
      () => undefined,
      () => undefined,
    );
    starting.catch((err) => tq.stopAndCrash(err));
    tq.log.info(
      {
        phase: 'start',
        tasks: store.size,
        load_ms: loadMs,
        loaded_from: fromMirror ? 'mirror' : 'bucket',
        intake: control.current.intake,
      },
      'task queue started',
    );
    return tq;
  }

  /**
   * Both consumers at once (the intake unless the control value says it is paused: followIntake).
   * @throws what starting either consumer threw (the one that did start is left to terminate).
   */
  /**
   * Background work that failed: what runs is stopped first, then the actor crashes (a crash does
   * not run terminate: src/runtime/server.ts). A consumer left running would go on applying
   * messages for a TaskQueue that has exited.
   */
  private async stopAndCrash(err: unknown): Promise<void> {
    if (this.terminating) return; // its terminate stops them
    await this.terminate().catch(() => undefined);
    this.ctx.crash(err);
  }

  private async startConsumers(): Promise<void> {
    const from = performance.now();
    const n = this.input.bus.names;
    const [intake, reports] = await Promise.allSettled([
      this.followIntake(),
      this.runHubConsumer(n.streams.reports, n.consumers.hubReports, ReportSchema, (report, ctx) =>
        this.onReport(report, ctx),
      ),
    ]);
    if (reports.status === 'fulfilled') this.reports = reports.value;
    const failed = [intake, reports].find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (this.terminating) return;
    // Killed meanwhile (no terminate runs then): nothing may go on consuming for it.
    if (!this.ctx.alive) {
      await Promise.all([this.intake?.stop(), this.reports?.stop()]);
      return;
    }
    // Both streams are work queues with this one consumer each (src/bus/consumer-stall.ts).
    this.stallWatches = [
      watchConsumerStall(this.input.bus, n.streams.submit, n.consumers.hubIntake),
      watchConsumerStall(this.input.bus, n.streams.reports, n.consumers.hubReports),
    ];
    this.log.info({ phase: 'start', ms: Math.round(performance.now() - from) }, 'task queue consuming');
  }

  handle(msg: TaskQueueMessage): void {
    switch (msg.type) {
      case 'assign':
        // A hub that may not write refuses the whole batch at once: an error built (with its
        // stack) per pick, a window of picks every ASSIGN_RETRY_MS, was a tenth of the CPU of a
        // hub whose lease had lapsed with 10,000 agents waiting.
        if (!this.mayWrite()) {
          msg.reply?.(msg.picks.map(() => NOT_WRITABLE_REPLY));
          return;
        }
        void Promise.all(
          msg.picks.map((p) =>
            this.assign(p.taskId, p.agentId).catch(
              (err): AssignReply => ({ ok: false, error: ioError(err) }),
            ),
          ),
        ).then((results) => msg.reply?.(results));
        return;
      case 'reclaim':
        void this.apply(msg.taskId, {
          type: 'reclaim',
          reason: msg.reason,
          generation: msg.generation,
        }).catch((err) =>
          this.log.warn({ task_id: msg.taskId, err }, 'reclaim failed; the sweep will retry'),
        );
        return;
      case 'snapshot':
        msg.reply?.([...this.store.all()].map((s) => s.record));
        return;
      case 'submit':
        this.reply(this.submit(msg.submit, undefined, msg.submitter ?? null, msg.queue), msg.reply);
        return;
      case 'cancel':
        this.reply(this.command(msg.taskId, { type: 'cancel', reason: msg.reason, by: msg.by }), msg.reply);
        return;
      case 'retry':
        this.reply(this.command(msg.taskId, { type: 'retry', by: msg.by }), msg.reply);
        return;
      case 'get':
        msg.reply?.(this.store.get(msg.taskId)?.record ?? null);
        return;
      case 'list':
        msg.reply?.(listTasks(() => this.store.all(), msg.request));
        return;
      case 'stats':
        msg.reply?.({ ...this.store.stats(), queues: queueStats(this.store.all(), Date.now()) });
        return;
      case 'sync_control':
        // The change that brought the revision has already queued its intake change (listeners
        // run before waiters): wait for that too.
        void this.control.waitFor(msg.revision, msg.timeoutMs).then(async (seen) => {
          if (seen) await this.intakeChange.catch(() => undefined);
          msg.reply?.(seen);
        });
        return;
    }
  }

  private reply(p: Promise<AssignReply>, reply: ((r: AssignReply) => void) | undefined): void {
    p.then(
      (r) => reply?.(r),
      (err) => reply?.({ ok: false, error: ioError(err) }),
    );
  }

  private async command(taskId: TaskId, command: TaskCommand): Promise<AssignReply> {
    const r = await this.apply(taskId, command);
    return r.ok ? { ok: true, task: r.task } : r;
  }

  async terminate(): Promise<void> {
    this.terminating = true;
    this.control.stop();
    clearInterval(this.retentionTimer);
    this.retentionTimer = undefined;
    for (const t of this.redeliveries) clearTimeout(t);
    this.redeliveries.clear();
    // A start of the consumers under way ends first: what it started is stopped below.
    await this.consuming;
    for (const w of this.stallWatches) w.stop();
    await this.intakeChange.catch(() => undefined);
    // Stop pulling and let in-flight handlers finish, so every handled message is acked.
    await Promise.all([this.intake?.stop(), this.reports?.stop(), this.sweeping]);
    // Then what lingers (an API submit waiting for its assignment) is written, and waited for.
    await this.store.stop();
    this.limits.stop();
  }

  // --- Intake pause ---

  /**
   * Brings the intake runner in line with the control value: started while intake runs, stopped
   * while it is paused. Changes run one at a time; each reads the value in force when it runs, so
   * a burst of changes ends in the last one. Stopping waits for the submissions in hand to be
   * written and acked, and hands back (nak) those pulled but not started: they count one delivery
   * more, nothing else. Starting adopts what a stop left unacked (a pull in flight when it closed),
   * so resuming takes everything in at once rather than after ack_wait.
   * @throws what starting the runner throws (the bus is down): the actor crashes and restarts.
   */
  private followIntake(): Promise<void> {
    const next = this.intakeChange.then(async () => {
      if (this.terminating) return;
      const paused = this.control.current.intake === 'paused';
      if (paused && (this.intake || !this.intakePaused)) {
        const runner = this.intake;
        this.intake = undefined;
        this.intakePaused = true;
        await runner?.stop();
        this.log.info({ phase: 'intake_paused' }, 'intake paused: submissions wait in the stream');
      } else if (!paused && !this.intake) {
        this.intake = await this.startIntake();
        if (this.intakePaused) this.log.info({ phase: 'intake_resumed' }, 'intake resumed');
        this.intakePaused = false;
      }
    });
    this.intakeChange = next.catch(() => undefined);
    return next;
  }

  private startIntake(): Promise<ConsumerRunner> {
    const n = this.input.bus.names;
    return this.runHubConsumer(n.streams.submit, n.consumers.hubIntake, TaskSubmitSchema, (submit, ctx) =>
      this.onSubmit(submit, ctx),
    );
  }

  /**
   * One of the hub's two durables, as this actor runs both. The hub provisions them with the
   * deployment's topology (src/hub/main.ts) before this actor starts: provisioning them again here
   * from a bare spec would reset their settings to defaults. `adoptUnacked`: only the lease holder
   * runs a TaskQueue, so whatever these durables delivered and never saw acked at its start was
   * held by a hub that died; the server redelivers it now instead of after ack_wait (a `completed`
   * report would otherwise sit until the stuck timeout).
   */
  private runHubConsumer<T>(
    stream: string,
    durable: string,
    schema: ConsumerRunnerOptions<T>['schema'],
    handler: ConsumerRunnerOptions<T>['handler'],
  ): Promise<ConsumerRunner> {
    return runConsumer(this.input.bus, {
      spec: { stream, durable },
      provision: false,
      adoptUnacked: true,
      expiresMs: HUB_PULL_EXPIRES_MS,
      schema,
      concurrency: this.input.concurrency ?? 256,
      handler,
      onInvalid: (error, subject) => this.onInvalid(error, subject),
    });
  }

  // --- Commands ---

  async submit(
    raw: unknown,
    msgId?: string,
    submitter: string | null = null,
    queue?: string,
  ): Promise<AssignReply> {
    const parsed = validatePayload(TaskSubmitSchema, raw, 'task');
    if (!parsed.ok) return { ok: false, error: parsed.error };
    const wrongQueue = queueMismatch(queue, parsed.value);
    if (wrongQueue) return { ok: false, error: { code: ERROR_CODES.FORBIDDEN, message: wrongQueue } };
    const now = Date.now();
    if (submitter !== null) {
      // An API caller waits for the answer, so it is refused and told when to come back.
      const wait = this.rates.submits.take(submitter, now);
      if (wait > 0)
        return {
          ok: false,
          error: {
            code: ERROR_CODES.RATE_LIMITED,
            message: `${submitter} submits more than ${this.rateOf(submitter, 'submits')?.perSecond ?? 0} tasks a second`,
            retryAfterMs: wait,
          },
        };
    }
    const id = taskIdForSubmit({ idempotencyKey: parsed.value.idempotencyKey, msgId, now, submitter });
    const command = { type: 'submit' as const, id, submit: resolveDelay(parsed.value, now) };
    const r = await this.apply(id, command, this.announce(id, command));
    return r.ok ? { ok: true, task: r.task } : r;
  }

  /**
   * Tell the scheduler about a new task before its first write, and let that write linger briefly,
   * so that an assignment made meanwhile is written together with the creation. The scheduler acts
   * on the preview only by asking for an assignment, which is applied (and its effects run) only
   * after the write that creates the task.
   */
  private announce(id: string, command: Extract<TaskCommand, { type: 'submit' }>): { lingerMs?: number } {
    const scheduler = this.input.scheduler;
    if (!scheduler) return {};
    const preview = this.store.preview(id, command);
    if (!preview.ok || preview.duplicate) return {};
    cast(scheduler, { type: 'tasks_changed', tasks: [preview.task] }, this.input.registry);
    return { lingerMs: this.input.submitLingerMs ?? 2 };
  }

  async assign(taskId: TaskId, agentId: AgentId): Promise<AssignReply> {
    const r = await this.apply(taskId, { type: 'assign', agentId });
    return r.ok ? { ok: true, task: r.task } : r;
  }

  /** Apply a command and carry out its effects once it is durable. */
  async apply(
    id: string,
    command: TaskCommand,
    opts: { lingerMs?: number } = {},
  ): Promise<TaskCommandResult> {
    if (!this.mayWrite())
      throw new AgentComError(NOT_WRITABLE_REPLY.error.code, NOT_WRITABLE_REPLY.error.message);
    const r = await this.store.apply(id, command, opts);
    if (r.ok && !r.duplicate) await this.runEffects(r.task, r.effects);
    return r;
  }

  // --- Retention ---

  /** Removes the finished tasks that retention no longer keeps (one sweep at a time). */
  private sweepRetention(): void {
    if (this.sweeping || !this.mayWrite()) return;
    const policy = this.input.retention ?? DEFAULT_RETENTION;
    const due = expiredTasks(this.store.finished(), Date.now(), policy, RETENTION_BATCH);
    if (due.length === 0) return;
    this.sweeping = (async () => {
      let removed = 0;
      for (let i = 0; i < due.length; i += RETENTION_CONCURRENCY) {
        const batch = due.slice(i, i + RETENTION_CONCURRENCY);
        const done = await Promise.all(
          batch.map((id) =>
            this.store.remove(id).catch((err) => {
              this.log.warn({ task_id: id, err }, 'finished task not removed; the next sweep retries');
              return false;
            }),
          ),
        );
        removed += done.filter(Boolean).length;
      }
      this.removedSinceLog += removed;
      if (Date.now() - this.lastRetentionLog >= RETENTION_LOG_EVERY_MS) {
        this.log.info(
          { phase: 'retention', removed: this.removedSinceLog, finished: this.store.finished().size },
          'finished tasks removed',
        );
        this.removedSinceLog = 0;
        this.lastRetentionLog = Date.now();
      }
    })().finally(() => {
      this.sweeping = undefined;
      // A full batch means more are due (a backlog, e.g. after lowering the retention): go on
      // at once rather than a sweep period later.
      if (due.length === RETENTION_BATCH && this.retentionTimer) setImmediate(() => this.sweepRetention());
    });
  }

  // --- Consumers ---

  /** Whether this hub may write now (see `writable`). */
  private mayWrite(): boolean {
    return !this.input.writable || this.input.writable();
  }

  private async onSubmit(submit: TaskSubmit, ctx: MessageContext): Promise<Outcome> {
    // Not now, and without building an error for it: the lease is renewed or another hub leads.
    if (!this.mayWrite()) return NOT_WRITABLE_RETRY;
    const from = parseSubmitSubject(this.input.bus.names, ctx.subject);
    if (from === undefined) return outcome.deadLetter(`not a submit subject: ${ctx.subject}`);
    const { submitter } = from;
    const wrongQueue = queueMismatch(from.queue, submit);
    if (wrongQueue) {
      // Permissions allowed the subject's queue only: a payload naming another is an attempt to
      // get round them.
      return this.refuseSubmission(submitter as AgentId, wrongQueue, ERROR_CODES.FORBIDDEN);
    }
    const id = taskIdForSubmit({
      idempotencyKey: submit.idempotencyKey,
      msgId: ctx.msgId ?? undefined,
      now: ctx.publishedAt.getTime(),
      submitter,
    });
    // Already stored by the server, a submission over its sender's rate is not refused but deferred:
    // it becomes eligible at the rate the sender may submit, so a flood cannot crowd other
    // submitters' tasks out of the queue. More than maxSubmitDeferMs ahead of its rate, the sender
    // is flooding: refused like a malformed message (docs/security.md, "Rate limits").
    const now = Date.now();
    const horizon = this.limits.current.maxSubmitDeferMs ?? DEFAULT_MAX_SUBMIT_DEFER_MS;
    const wait = submitter === null ? 0 : this.rates.submits.reserve(submitter, now, horizon);
    if (wait === null) {
      const reason = `${submitter} submits more than ${horizon} ms ahead of its rate`;
      return this.refuseSubmission(submitter as AgentId, reason, ERROR_CODES.RATE_LIMITED);
    }
    const delayed = resolveDelay(submit, ctx.publishedAt.getTime());
    const deferred =
      wait > 0 ? { ...delayed, notBefore: Math.max(delayed.notBefore ?? 0, now + wait) } : delayed;
    const command = { type: 'submit' as const, id, submit: deferred };
    const r = await this.apply(id, command, this.announce(id, command));
    if (!r.ok) return outcome.deadLetter(r.error.message, r.error.code);
    this.log.debug({ task_id: id, phase: 'submitted', duplicate: r.duplicate }, 'task submitted');
    return outcome.ack();
  }

  private async onReport(report: Report, ctx: MessageContext): Promise<Outcome> {
    if (!this.mayWrite()) return NOT_WRITABLE_RETRY;
    const from = parseAgentSubject(this.input.bus.names, ctx.subject);
    if (from?.kind !== 'report') return outcome.deadLetter(`not a report subject: ${ctx.subject}`);
    const agentId = from.agentId as AgentId;
    const command = commandFromReport(agentId, report);
    // An `accepted` lingers so that the `completed` of a fast agent shares its write.
    const linger = command.type === 'accept' ? { lingerMs: this.input.acceptLingerMs ?? 5 } : {};
    const fields = {
      task_id: report.taskId,
      agent_id: agentId,
      phase: report.type,
      generation: report.generation,
    };
    const now = Date.now();
    const cached = this.store.get(report.taskId)?.record;
    // Informational reports cost a write each and may come at any rate; the ones that start or
    // end an assignment apply at most once each, so they are never limited (docs/security.md, "Rate limits").
    if (RATE_LIMITED_REPORTS.has(report.type)) {
      const wait = this.rates.reports.take(agentId, now);
      if (wait > 0) {
        if (isForgedReport(agentId, report, cached))
          this.violation(agentId, `report about a task it does not hold: ${report.taskId}`);
        // Ten times over its rate (burst included) is no burst but a flood: it counts.
        if (this.rates.flood.take(agentId, now) > 0)
          this.violation(agentId, `${report.type} reports at more than ${FLOOD_FACTOR} times its rate`);
        if (!this.takeRefusal(agentId, now)) return outcome.ack();
        await this.refuse(agentId, report, {
          code: ERROR_CODES.RATE_LIMITED,
          message: `more than ${this.rateOf(agentId, 'reports')?.perSecond ?? 0} ${report.type} reports a second; this one was not applied`,
          retryAfterMs: wait,
        });
        return outcome.ack();
      }
    }
    // An agent with no refusals left is sending refused reports faster than it may be told: one
    // the cached record refuses is dropped here, before the store reads the bucket to confirm the
    // refusal (store.ts). Everyone else goes straight to the store.
    if (!this.rates.refusals.has(agentId, now) && !this.store.preview(report.taskId, command).ok) {
      if (isForgedReport(agentId, report, cached))
        this.violation(agentId, `report about an assignment it does not hold: ${report.taskId}`);
      this.takeRefusal(agentId, now);
      return outcome.ack();
    }
    const r = await this.apply(report.taskId, command, linger);
    if (r.ok) {
      this.log.debug({ ...fields, duplicate: r.duplicate }, 'report applied');
      return outcome.ack();
    }
    if (isForgedReport(agentId, report, this.store.get(report.taskId)?.record))
      this.violation(agentId, `report refused (${r.error.code}): ${r.error.message}`);
    if (!this.takeRefusal(agentId, Date.now())) return outcome.ack();
    await this.refuse(agentId, report, r.error);
    return outcome.ack();
  }

  /**
   * A stream submission an agent may not make: a violation, and a dead letter while its refusals
   * budget lasts (then dropped and counted), so a flood of them cannot fill the DLQ.
   */
  private refuseSubmission(submitter: AgentId, reason: string, code: ErrorCode): Outcome {
    this.violation(submitter, reason);
    return this.takeRefusal(submitter, Date.now()) ? outcome.deadLetter(reason, code) : outcome.ack();
  }

  /** Spends one of the agent's refusals (false, counted as dropped, when none is left). */
  private takeRefusal(agentId: AgentId, now: number): boolean {
    if (this.rates.refusals.take(agentId, now) === 0) return true;
    this.dropped.set(agentId, (this.dropped.get(agentId) ?? 0) + 1);
    return false;
  }

  /**
   * Tells the sender of a refused report, so that it stops work that can no longer count
   * (docs/protocol.md §10). Callers spend a refusal first (takeRefusal): beyond the budget, a flood
   * of bad reports is dropped with a count, so it can fill neither the inbox stream nor the log.
   */
  private async refuse(agentId: AgentId, report: Report, error: WireError): Promise<void> {
    const dropped = this.dropped.get(agentId);
    this.dropped.delete(agentId);
    this.log.info(
      {
        task_id: report.taskId,
        agent_id: agentId,
        phase: report.type,
        generation: report.generation,
        code: error.code,
        ...(dropped ? { dropped_since: dropped } : {}),
      },
      `report refused: ${error.message}`,
    );
    await this.sendInbox(
      agentId,
      refusalNotice(this.store.get(report.taskId)?.record, agentId, report, error),
    );
  }

  /** Invalid traffic counts toward the agent's suspension (presence keeps the count). */
  private violation(agentId: AgentId, reason: string): void {
    if (this.input.presence)
      cast(this.input.presence, { type: 'violation', agentId, reason }, this.input.registry);
  }

  /** A malformed report or submission of an agent: dead-lettered within its refusals budget. */
  private onInvalid(error: WireError, subject: string): 'dead_letter' | 'drop' {
    const n = this.input.bus.names;
    const reporter = parseAgentSubject(n, subject);
    const agentId =
      reporter?.kind === 'report' ? reporter.agentId : parseSubmitSubject(n, subject)?.submitter;
    if (!agentId) return 'dead_letter';
    this.violation(agentId as AgentId, `malformed message on ${subject}: ${error.message}`);
    return this.takeRefusal(agentId as AgentId, Date.now()) ? 'dead_letter' : 'drop';
  }

  private rateOf(agentId: string, kind: RateKind): RateLimit | null {
    return rateFor(this.limits.current, agentId, kind);
  }

  // --- Effects ---

  /**
   * A hub that died between an assignment's write and its inbox publish left it `assigned` but
   * never delivered (the accept timeout would reclaim it). At start, assignments recent enough
   * for the inbox's dedupe window to drop a copy that did arrive are published again.
   */
  private resendRecentAssignments(): void {
    const now = Date.now();
    for (const { record: t } of this.store.all()) {
      if (t.status !== 'assigned' || t.assignee === null || t.assignedAt === null) continue;
      if (now - t.assignedAt < RESEND_ASSIGN_WITHIN_MS) void this.sendInbox(t.assignee, assignMessage(t));
    }
  }

  private async runEffects(task: TaskRecord, effects: TaskEffect[]): Promise<void> {
    for (const e of effects) {
      switch (e.type) {
        case 'deliver_assign':
          await this.sendInbox(e.agentId, assignMessage(task));
          break;
        case 'notify_cancel':
          // Still waiting in the inbox, the assignment is taken back: a restarted agent would
          // otherwise start it before it reads the cancel behind it.
          await this.withdrawAssignment(e.taskId, e.generation);
          await this.sendInbox(e.agentId, {
            v: 1,
            type: 'cancel',
            taskId: e.taskId,
            generation: e.generation,
            reason: e.reason,
          });
          break;
        case 'release':
          if (this.inboxSeqs.get(e.taskId)?.generation === e.generation) this.inboxSeqs.delete(e.taskId);
          break;
        case 'dead_lettered':
          this.log.warn(
            { task_id: e.taskId, phase: 'dead', reason: e.reason },
            'task dead: out of retries (agentcom dlq list shows it)',
          );
          break;
        case 'flag_agent':
          this.log.warn({ task_id: e.taskId, agent_id: e.agentId, phase: 'flagged' }, e.reason);
          break;
        default:
          // enqueue / unschedule / release / finished are visible in the record itself; subscribers
          // derive them from `tasks_changed`.
          break;
      }
    }
  }

  /**
   * Inbox messages are JetStream publishes with a deterministic id, so a retried effect (after a
   * crash between the record write and the publish) is deduplicated by the server. They are built
   * here from validated records by typed code (state.ts `assignMessage`, the cancel below), so they
   * are not re-validated on this hot path (size is still checked); agents validate what they receive.
   */
  private async sendInbox(agentId: AgentId, msg: InboxMessage, attempt = 0): Promise<void> {
    const subject = this.input.bus.names.subjects.agentInbox(agentId);
    // One notice per agent, refused report type and generation within the dedupe window: a
    // redelivered or repeated refused report does not flood the agent's inbox.
    const kind = msg.type === 'notice' ? `notice:${msg.report}:${msg.code}:${agentId}` : msg.type;
    try {
      const ack = await publishRaw(this.input.bus, subject, encodeTrusted(msg), {
        msgId: `${msg.taskId}:${msg.generation}:${kind}`,
      });
      if (msg.type === 'assign') this.inboxSeqs.set(msg.taskId, { generation: msg.generation, seq: ack.seq });
    } catch (err) {
      // The record is already durable. A stream without a leader for longer than the publish's own
      // retries (a NATS node lost, a cluster electing) would otherwise leave the assignment to the
      // accept timeout: an assignment or cancel is published again, with the same id, a little
      // later, while it still stands; the accept-timeout sweep stays the net.
      const again = msg.type !== 'notice' && attempt < REDELIVER_ATTEMPTS && !this.terminating;
      this.log.error(
        { task_id: msg.taskId, agent_id: agentId, err, attempt: attempt + 1, again },
        'inbox publish failed',
      );
      if (again) this.sendInboxLater(agentId, msg, attempt + 1);
    }
  }

  private sendInboxLater(agentId: AgentId, msg: InboxMessage, attempt: number): void {
    const timer = setTimeout(
      () => {
        this.redeliveries.delete(timer);
        const t = this.store.get(msg.taskId)?.record;
        const stands =
          msg.type === 'assign'
            ? t?.status === 'assigned' && t.assignee === agentId && t.generation === msg.generation
            : true;
        if (stands) void this.sendInbox(agentId, msg, attempt);
      },
      exponentialDelay(attempt - 1, { min: 500, max: 5_000 }),
    );
    timer.unref();
    this.redeliveries.add(timer);
  }

  /** Deletes the inbox message of an assignment that ends before its agent acked it (withdraw.ts). */
  private async withdrawAssignment(taskId: TaskId, generation: number): Promise<void> {
    const sent = this.inboxSeqs.get(taskId);
    if (sent?.generation !== generation) return;
    this.inboxSeqs.delete(taskId);
    await withdrawMessage(this.input.bus, this.input.bus.names.streams.inbox, sent.seq);
  }

  /**
   * Changes are sent in batches: one message per subscriber for all the writes acknowledged by the
   * same socket read (their continuations run in one microtask drain), not one per change, and
   * without waiting for the event loop's next turn.
   */
  private publishChange(stored: StoredTask): void {
    this.changed.push(stored.record);
    if (this.changed.length > 1) return;
    queueMicrotask(() => {
      const msg: TaskChanged = { type: 'tasks_changed', tasks: this.changed };
      this.changed = [];
      for (const name of this.input.subscribers) cast(name, msg, this.input.registry);
    });
  }
}

/**
 * Half the INBOX stream's dedupe window (the topology sets it to DEFAULT_DUPLICATE_WINDOW_MS):
 * margin for clock skew between hubs.
 */
const RESEND_ASSIGN_WITHIN_MS = DEFAULT_DUPLICATE_WINDOW_MS / 2;

/** Why a submission whose subject names a queue may not go on: it names another (null: it may). */
function queueMismatch(subjectQueue: string | undefined, submit: TaskSubmit): string | null {
  if (subjectQueue === undefined || subjectQueue === submit.queue) return null;
  return `submitted on the subject of queue ${subjectQueue} for queue ${submit.queue}`;
}

/** Times a failed inbox publish is tried again (0.5, 1, 2, 4, 5, 5 ... s apart: about 40 s). */
const REDELIVER_ATTEMPTS = 10;

/** Informational reports at this many times an agent's rate count as violations (a flood). */
const FLOOD_FACTOR = 10;

/** The records the mirror holds, or null when it has not got them all (then the bucket is read). */
async function takeFromMirror(
  name: string,
  registry: Registry,
): Promise<ReadonlyMap<string, KvValue<TaskRecord>> | null> {
  const msg: TaskMirrorMessage = { type: 'take' };
  const r = await call<ReadonlyMap<string, KvValue<TaskRecord>> | null>(name, msg, {
    registry,
    timeout: MIRROR_CALL_MS,
  });
  return r.ok ? r.value : null;
}

/** The reports that may come at any rate (see onReport). */
const RATE_LIMITED_REPORTS: ReadonlySet<Report['type']> = new Set([
  'progress',
  'blocked',
  'unblocked',
  'recovering',
]);

/**
 * Whether a refused report is one no honest agent sends: about a generation the task never had,
 * or about an assignment of this generation held by another agent. A stale generation, a finished task or one an operator requeued (no assignee) is the
 * ordinary race of a reclaim, a cancel or a retry and is not.
 */
function isForgedReport(agentId: AgentId, report: Report, task: TaskRecord | undefined): boolean {
  // Unknown tasks do not count: a finished one is deleted after retention (seconds, at full
  // load), and a sidecar relaying after a restart may well report about it.
  if (!task) return false;
  if (report.generation > task.generation) return true;
  return report.generation === task.generation && task.assignee !== null && task.assignee !== agentId;
}

function ioError(err: unknown): WireError {
  return { code: ERROR_CODES.UNAVAILABLE, message: err instanceof Error ? err.message : String(err) };
}
