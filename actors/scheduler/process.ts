/**
 * @module scheduler/process
 * The Scheduler actor. Its state is a projection: the open task records (from the TaskQueue's
 * `tasks_changed` casts, seeded by a `snapshot` call at start; its name is registered before
 * that, so what is cast meanwhile is held and applied after: src/runtime/server.ts) and the live
 * agents (from Presence),
 * fed into the pure matching index (state.ts). It is event driven — every change schedules one
 * "pump" for when the current callback is done, which hands out as many assignments as the index
 * allows — with a timer for the earliest delayed task. It carries out the lifeline's decisions
 * (lifeline.ts, the one place that decides reclaims): at once for an agent gone offline or a live
 * session that does not hold what it was given, and in a periodic sweep for the timeouts (stuck,
 * overdue, unaccepted, long-blocked); with a bus the timeouts a report ends count to the time
 * through which the hub has read its agents' reports (a stream info and a consumer info of
 * hub-reports per sweep, src/bus/consumer-progress.ts), so a hub behind on its reports does not reclaim what its agents
 * accepted in time. It runs only on the hub that
 * holds the deployment's lease (actors/leader), so only one scheduler assigns at a time.
 * Agent load (`busy`) is derived from the task records, never counted by hand, so it is right
 * after any restart.
 * With a bus it follows the config bucket live: while the control value says assignment is paused
 * it hands out nothing (the sweep and the reclaims go on; what is assigned stays assigned), and the
 * change back to running is one more event that pumps at once; the sweep uses the timeouts in
 * force at each tick, the runtime overrides over `timeouts` (protocol/runtime-config.ts). An
 * assignment already being written when the pause arrives still lands.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import { type ConsumerProgress, consumerProgress } from '../../src/bus/consumer-progress.js';
import {
  type LiveControl,
  type LiveTimeouts,
  openLiveControl,
  openLiveTimeouts,
} from '../../src/bus/live-config.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import type { AgentId, TaskId } from '../../src/protocol/ids.js';
import { effectiveTimeouts } from '../../src/protocol/runtime-config.js';
import { isActive, isTerminal, type TaskRecord } from '../../src/protocol/task.js';
import { call, cast, forEachYielding, type Registry, yieldToLoop } from '../../src/runtime/index.js';
import { IndexedHeap } from '../../src/runtime/indexed-heap.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import type { AssignReply, ReclaimReason, TaskQueueMessage } from '../task-queue/index.js';
import { heardAt, notHeld, type SessionView, type SweepTimeouts, sweepReason } from './lifeline.js';
import type { AgentBeat, AgentUp, SchedulerMessage, SchedulerStatsReply } from './messages.js';
import { inPickOrder, Scheduler, type TaskKey, type TaskSummary, taskKey, taskKeyLess } from './state.js';

const RECLAIM_RETRY_MS = 10_000;

/** A task whose assignment was not applied waits this long before it is picked again. */
const ASSIGN_RETRY_MS = 100;

/** The start's read of the backlog, while it runs (SchedulerProcess.readBacklog). */
interface BacklogRead {
  /** Tasks a change has touched since the snapshot: the read skips them. */
  touched: Set<TaskId>;
  /** The key of the last task read (undefined before the first). */
  readTo: TaskKey | undefined;
  /** Queued tasks from changes that rank after `readTo`, in pick order, and their records. */
  waiting: IndexedHeap<TaskId, TaskKey>;
  records: Map<TaskId, TaskRecord>;
}

/** What the index knows of a queued task. */
function summaryOf(task: TaskRecord): TaskSummary {
  return {
    id: task.id,
    priority: task.priority,
    queue: task.queue,
    capabilities: task.capabilities,
    enqueuedAt: task.createdAt,
    ...(task.notBefore !== undefined ? { notBefore: task.notBefore } : {}),
    ...(task.flaggedAgents.length > 0 ? { avoid: task.flaggedAgents } : {}),
  };
}

export interface SchedulerInput {
  registry: Registry;
  log: Logger;
  /** Registered name of the TaskQueue. */
  taskQueue: string;
  /** Registered name of Presence, asked at start for the agents online now. */
  presence?: string;
  /** The hub's configured timeouts; runtime overrides (config bucket, key `timeouts`) win over them. */
  timeouts: SweepTimeouts;
  /**
   * Followed for the control value (assignment paused or running) and the timeout overrides of the
   * config bucket. Without it assignment always runs and `timeouts` always apply.
   */
  bus?: Bus;
  /**
   * How old an accepted assignment's last sign of life must be before a live session of the same
   * process that does not list it loses it (lifeline.ts `not_held`; default 10 s).
   */
  notHeldGraceMs?: number;
  sweepIntervalMs: number;
  /** Assignments handed out per pump before yielding the event loop (default 512). */
  batch?: number;
  /**
   * Assignments in flight at most (default 2 batches). A burst (10,000 idle agents at a resume)
   * is written a window at a time, so the lease renewal, reports and API requests that share the
   * hub's connection wait behind at most this many writes instead of the whole burst.
   */
  maxInFlight?: number;
  agingMs?: number;
  /** How long the start's passes over the open tasks hold the event loop at a time (ms, default 100). */
  startSliceMs?: number;
}

export class SchedulerProcess implements Server<SchedulerMessage> {
  private readonly index: Scheduler;
  private readonly open = new Map<TaskId, TaskRecord>();
  /** Open assignments per agent, from the records. */
  private readonly holding = new Map<AgentId, Set<TaskId>>();
  /** Assign calls in flight per agent. */
  private readonly pending = new Map<AgentId, number>();
  /** Assignments asked of the TaskQueue and not yet answered (all agents). */
  private inFlight = 0;
  /** `${taskId}:${generation}:${reason}` -> when the reclaim was requested (no repeats per sweep). */
  private readonly reclaiming = new Map<string, number>();
  private readonly log: Logger;
  private pumpScheduled = false;
  /** No picks before this (epoch ms): the TaskQueue answered that this hub may not write. */
  private unwritableUntil = 0;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt: number | null = null;
  private sweepTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retryLater = new Set<TaskId>();
  private assigned = 0;
  private refused = 0;
  private sweeps = 0;
  private stopped = false;
  private control: LiveControl | undefined;
  private overrides: LiveTimeouts | undefined;
  /** The assignment state and timeouts last logged (config_changed logs what changed). */
  private paused = false;
  private inForce: SweepTimeouts;
  /** hub-reports' progress (with a bus), sampled at each sweep; see lifeline.ts `heardAt`. */
  private reports: ConsumerProgress | undefined;
  private reportsThrough = Number.NEGATIVE_INFINITY;
  private readonly startedAt = Date.now();
  private send: (msg: SchedulerMessage) => void = () => undefined;
  /** While the start reads the backlog (readBacklog). */
  private backlog: BacklogRead | undefined;
  /** Whether the process still runs (a kill runs no terminate: src/runtime/server.ts). */
  private alive: () => boolean = () => true;

  private constructor(private readonly input: SchedulerInput) {
    this.inForce = input.timeouts;
    this.index = new Scheduler({ agingMs: input.agingMs ?? 0 });
    this.log = input.log.child({ actor: 'scheduler' });
  }

  static async start(input: SchedulerInput, ctx: ServerContext): Promise<SchedulerProcess> {
    const s = new SchedulerProcess(input);
    s.send = (msg) => ctx.send(msg);
    s.alive = () => ctx.alive;
    // Asked for while the live config opens (JetStream requests, slow on a loaded heir).
    const snapshot = call<TaskRecord[]>(input.taskQueue, { type: 'snapshot' }, { registry: input.registry });
    if (input.bus) {
      const n = input.bus.names;
      s.reports = consumerProgress(input.bus, n.streams.reports, n.consumers.hubReports);
      [s.control, s.overrides] = await Promise.all([openLiveControl(input.bus), openLiveTimeouts(input.bus)]);
      const changed = () => ctx.send({ type: 'config_changed' });
      s.control.onChange(changed);
      s.overrides.onChange(changed);
      s.paused = s.assignmentPaused();
      s.inForce = s.timeouts();
    }
    const snap = await snapshot;
    if (!snap.ok) throw new Error(`scheduler: task queue snapshot failed: ${snap.error.kind}`);
    // In slices: 100,000 open tasks would hold the event loop (and the lease renewal) for seconds.
    // Beside the report backlog a new leader applies meanwhile, slices of 5,000 tasks took
    // 2.7-8.4 s for 80,000-98,000 open tasks, 100 ms slices 1.7-2.0 s. 200 ms ones took 1.2-3.3 s,
    // but two heirs in three then failed a lease renewal (1 s requests) during the pass
    // (docs/scaling.md).
    const sliceMs = input.startSliceMs ?? 100;
    // First the tasks that hold a slot, then the agents online: an agent's load is whole before
    // anything is picked for it.
    const queued: TaskRecord[] = [];
    await forEachYielding(
      snap.value,
      (t) => {
        if (t.status === 'queued') queued.push(t);
        else s.onTask(t);
      },
      { sliceMs },
    );
    if (input.presence) {
      // The agents online now, and what their live sessions hold (presence runs on every hub).
      const online = await call<(AgentUp | AgentBeat)[]>(
        input.presence,
        { type: 'online' },
        { registry: input.registry },
      );
      if (online.ok) for (const m of online.value) s.handle(m);
    }
    s.log.info(
      {
        phase: 'start',
        open: s.open.size + queued.length,
        queued: queued.length,
        assignment: s.paused ? 'paused' : 'running',
        timeouts: s.inForce,
      },
      'scheduler started',
    );
    // Then the backlog, after this start returns (readBacklog), so that the task changes and
    // agents sent meanwhile are handled as they come: at a failover under load the agents are
    // busy, and each is freed only by its report, which the TaskQueue applies meanwhile.
    s.backlog = {
      touched: new Set(),
      readTo: undefined,
      waiting: new IndexedHeap(taskKeyLess),
      records: new Map(),
    };
    void s.readBacklog(queued).catch((err) => ctx.crash(err));
    s.sweepTimer = setInterval(() => ctx.send({ type: 'tick' }), input.sweepIntervalMs);
    s.sweepTimer.unref();
    s.sampleReports();
    return s;
  }

  /**
   * The start's read of the backlog, in the order it is handed out (state.ts inPickOrder),
   * assigning from its first slice on (about 10 µs a task: seconds for 100,000 beside the rest of
   * a heir's start). What a task change says wins over the snapshot: a task a change touched is
   * skipped by the read, and a queued task a change brings that ranks after the point the read has
   * reached waits until the read passes it (onChanged). So what is indexed is always a head of the
   * pick order, and every pick made meanwhile is one the whole index would make.
   */
  private async readBacklog(queued: TaskRecord[]): Promise<void> {
    const from = performance.now();
    const b = this.backlog!;
    const agingMs = this.input.agingMs ?? 0;
    const gone = () => this.stopped || !this.alive();
    // The start has returned: the sort (100,000 tasks) and the first slice get a turn each.
    await yieldToLoop();
    const ordered = inPickOrder(queued, summaryOf, agingMs);
    await yieldToLoop();
    await forEachYielding(
      ordered,
      ({ item: t, key }) => {
        if (gone()) return;
        b.readTo = key;
        this.admitWaiting(b);
        if (!b.touched.has(t.id)) this.onTask(t);
      },
      { sliceMs: this.input.startSliceMs ?? 100, afterSlice: () => this.schedulePump() },
    );
    this.backlog = undefined;
    if (gone()) return;
    b.readTo = undefined; // all of it
    this.admitWaiting(b);
    this.schedulePump();
    this.log.info(
      {
        phase: 'start',
        queued: queued.length,
        ms: Math.round(performance.now() - from),
        assigned: this.assigned,
      },
      'scheduler read the backlog',
    );
  }

  /** Indexes the waiting tasks the read has passed (all of them once `readTo` is undefined). */
  private admitWaiting(b: BacklogRead): void {
    for (let top = b.waiting.peek(); top; top = b.waiting.peek()) {
      if (b.readTo !== undefined && taskKeyLess(b.readTo, top.value)) return;
      b.waiting.pop();
      const task = b.records.get(top.key);
      b.records.delete(top.key);
      if (task) this.onTask(task);
    }
  }

  /** A task change; while the start reads the backlog, see readBacklog. */
  private onChanged(task: TaskRecord): void {
    const b = this.backlog;
    if (b) {
      b.touched.add(task.id);
      b.waiting.delete(task.id);
      b.records.delete(task.id);
      if (task.status === 'queued') {
        const key = taskKey(summaryOf(task), this.input.agingMs ?? 0);
        if (b.readTo === undefined || taskKeyLess(b.readTo, key)) {
          // Not yet reached: it waits, and whatever it held is let go now (a reclaimed task
          // frees its agent's slot at once).
          this.forget(task.id);
          b.waiting.set(task.id, key);
          b.records.set(task.id, task);
          return;
        }
      }
    }
    this.onTask(task);
  }

  /** Drops a task from the open set, the index and its agent's holding. */
  private forget(taskId: TaskId): void {
    const prev = this.open.get(taskId);
    if (!prev) return;
    this.open.delete(taskId);
    if (this.index.hasTask(taskId)) this.index.removeTask(taskId);
    if (isActive(prev.status) && prev.assignee) this.hold(prev.assignee, taskId, false);
  }

  handle(msg: SchedulerMessage): void {
    switch (msg.type) {
      case 'tasks_changed':
        for (const t of msg.tasks) this.onChanged(t);
        break;
      case 'agent_up':
        this.index.upsertAgent({
          id: msg.agentId,
          capabilities: msg.capabilities,
          queues: msg.queues,
          slots: msg.slots,
          busy: this.busy(msg.agentId),
        });
        if (msg.holding)
          this.reconcile(msg.agentId, {
            session: msg.session,
            holding: new Set(msg.holding),
            finished: new Set(),
            at: msg.at,
          });
        break;
      case 'agent_beat':
        this.reconcile(msg.agentId, {
          session: msg.session,
          holding: new Set(msg.running),
          finished: new Set(msg.finished),
          at: msg.at,
        });
        return;
      case 'agent_down':
        this.index.removeAgent(msg.agentId);
        this.reclaimAll(msg.agentId, msg.reason);
        break;
      case 'tick':
        this.sweep();
        this.sampleReports();
        return;
      case 'reports_read':
        this.reportsThrough = msg.through;
        return;
      case 'stats':
        msg.reply?.(this.stats());
        return;
      case 'config_changed':
        this.onConfigChanged();
        break;
      case 'sync_config': {
        const live = msg.key === 'control' ? this.control : this.overrides;
        if (!live) msg.reply?.(false);
        else void live.waitFor(msg.revision, msg.timeoutMs).then((ok) => msg.reply?.(ok));
        return;
      }
    }
    this.schedulePump();
  }

  terminate(): void {
    this.stopped = true;
    this.control?.stop();
    this.overrides?.stop();
    clearInterval(this.sweepTimer);
    clearTimeout(this.wakeTimer);
    clearTimeout(this.retryTimer);
  }

  stats(): SchedulerStatsReply {
    const s = this.index.stats();
    return {
      leader: true,
      ready: s.ready,
      delayed: s.delayed,
      agents: s.agents,
      open: this.open.size,
      assigned: this.assigned,
      refused: this.refused,
      sweeps: this.sweeps,
      // Until a sample passes, at least since this scheduler started.
      reportsLagMs: this.reports
        ? Math.max(0, Date.now() - Math.max(this.reportsThrough, this.startedAt))
        : null,
    };
  }

  // --- Runtime config ---

  private assignmentPaused(): boolean {
    return this.control?.current.assignment === 'paused';
  }

  /** The timeouts in force now: the runtime overrides over the hub's configured ones. */
  private timeouts(): SweepTimeouts {
    return effectiveTimeouts(this.input.timeouts, this.overrides?.current ?? null);
  }

  /** Logs what changed; the pump that follows every message hands out work again after a resume. */
  private onConfigChanged(): void {
    const paused = this.assignmentPaused();
    if (paused !== this.paused) {
      this.paused = paused;
      const c = this.control?.current;
      this.log.info(
        { phase: paused ? 'assignment_paused' : 'assignment_resumed', by: c?.by, reason: c?.reason },
        paused ? 'assignment paused: queued tasks wait' : 'assignment resumed',
      );
    }
    const t = this.timeouts();
    if (
      t.acceptTimeoutMs !== this.inForce.acceptTimeoutMs ||
      t.progressTimeoutMs !== this.inForce.progressTimeoutMs ||
      t.blockedTimeoutMs !== this.inForce.blockedTimeoutMs
    ) {
      this.inForce = t;
      this.log.info({ phase: 'timeouts_changed', timeouts: t }, 'timeouts changed');
    }
  }

  // --- Projection ---

  private onTask(task: TaskRecord): void {
    const prev = this.open.get(task.id);
    if (prev && prev.generation === task.generation && prev === task) return;
    const prevHolder = prev && isActive(prev.status) ? prev.assignee : null;
    const holder = isActive(task.status) ? task.assignee : null;
    if (isTerminal(task.status)) this.open.delete(task.id);
    else this.open.set(task.id, task);

    if (task.status === 'queued') {
      this.index.addTask(summaryOf(task));
    } else if (this.index.hasTask(task.id)) {
      this.index.removeTask(task.id);
    }
    if (prevHolder !== holder) {
      if (prevHolder) this.hold(prevHolder, task.id, false);
      if (holder) this.hold(holder, task.id, true);
    }
  }

  private hold(agentId: AgentId, taskId: TaskId, on: boolean): void {
    let set = this.holding.get(agentId);
    if (!set) {
      if (!on) return;
      set = new Set();
      this.holding.set(agentId, set);
    }
    if (on) set.add(taskId);
    else set.delete(taskId);
    if (set.size === 0) this.holding.delete(agentId);
    if (this.index.agent(agentId)) this.index.setBusy(agentId, this.busy(agentId));
  }

  private busy(agentId: AgentId): number {
    return (this.holding.get(agentId)?.size ?? 0) + (this.pending.get(agentId) ?? 0);
  }

  // --- Assignment ---

  /**
   * One pump for everything that happened in this run of the event loop: it runs once the current
   * callback's synchronous work and microtasks are done (a full batch yields the loop first), so
   * a change reaches the decision without waiting for the loop's next turn.
   */
  private schedulePump(yieldFirst = false): void {
    if (this.pumpScheduled || this.stopped) return;
    this.pumpScheduled = true;
    const run = () => {
      this.pumpScheduled = false;
      this.pump();
    };
    if (yieldFirst) setImmediate(run);
    else queueMicrotask(run);
  }

  private pump(): void {
    // Paused, nothing is picked: the index keeps every task, and the resume pumps again.
    if (this.stopped || !this.alive() || this.assignmentPaused()) return;
    // The TaskQueue cannot write now: the retry timer pumps again (armRetry).
    if (Date.now() < this.unwritableUntil) {
      this.armRetry();
      return;
    }
    const batch = this.input.batch ?? 512;
    // A full window waits for answers: each one pumps again (assignDone).
    const room = (this.input.maxInFlight ?? 2 * batch) - this.inFlight;
    if (room <= 0) return;
    const now = Date.now();
    const picks = this.index.nextAssignments(now, Math.min(batch, room));
    if (picks.length > 0) {
      this.inFlight += picks.length;
      for (const { agentId } of picks) this.pending.set(agentId, (this.pending.get(agentId) ?? 0) + 1);
      // One call per pump: the TaskQueue writes the assignments concurrently and answers them all.
      const msg: TaskQueueMessage = { type: 'assign', picks };
      call<AssignReply[]>(this.input.taskQueue, msg, { registry: this.input.registry, timeout: 30_000 }).then(
        (r) => this.batchDone(picks, r.ok ? r.value : []),
        () => this.batchDone(picks, []),
      );
    }
    if (picks.length === batch) this.schedulePump(true);
    this.armWake();
  }

  /**
   * The answers to one batch of picks (a missing one: not applied). A refusal that needed no I/O
   * frees its agent at once, so pumping again within the same run of microtasks would pick the next
   * tasks for it, and the next, through the whole index (100,000 tasks: seconds with no timer
   * firing, the lease renewal included). After a refusal the next pump waits for the event loop;
   * after `unavailable` (this hub may not write) nothing is picked until the retry timer.
   */
  private batchDone(
    picks: readonly { taskId: TaskId; agentId: AgentId }[],
    replies: readonly AssignReply[],
  ): void {
    let refused = false;
    for (const [i, p] of picks.entries()) {
      const r = replies[i] ?? null;
      if (!r?.ok) refused = true;
      if (r && !r.ok && r.error.code === ERROR_CODES.UNAVAILABLE)
        this.unwritableUntil = Date.now() + ASSIGN_RETRY_MS;
      this.assignDone(p.taskId, p.agentId, r);
    }
    if (this.unwritableUntil > Date.now()) this.armRetry();
    else this.schedulePump(refused);
  }

  private assignDone(taskId: TaskId, agentId: AgentId, r: AssignReply | null): void {
    this.inFlight--;
    const n = (this.pending.get(agentId) ?? 1) - 1;
    if (n > 0) this.pending.set(agentId, n);
    else this.pending.delete(agentId);
    if (this.index.agent(agentId)) this.index.setBusy(agentId, this.busy(agentId));
    if (r?.ok) {
      this.assigned++;
      this.log.debug({ task_id: taskId, agent_id: agentId, phase: 'assigned' }, 'assigned');
    } else {
      this.refused++;
      this.log.debug({ task_id: taskId, agent_id: agentId, error: r?.error }, 'assignment not applied');
      const t = this.open.get(taskId);
      if (r?.error.code === 'not_found') {
        // A task announced before its first write, and that write failed: forget it; the
        // redelivered submission announces it again.
        this.open.delete(taskId);
        if (this.index.hasTask(taskId)) this.index.removeTask(taskId);
      } else if (t?.status === 'queued') {
        // Still queued (the write failed, or this hub may not write now): back in the index, but
        // not at once. A refusal that needed no I/O would otherwise be picked, refused and put
        // back again in an endless run of microtasks that starves the event loop, timers included.
        this.requeueLater(taskId);
      }
    }
  }

  /** Puts refused tasks back into the index after ASSIGN_RETRY_MS (one timer for all of them). */
  private requeueLater(taskId: TaskId): void {
    this.retryLater.add(taskId);
    this.armRetry();
  }

  /** The retry timer: puts the tasks set aside back and pumps again. */
  private armRetry(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const ids = [...this.retryLater];
      this.retryLater.clear();
      for (const id of ids) {
        const t = this.open.get(id);
        if (t?.status === 'queued' && !this.index.hasTask(id)) this.onTask({ ...t });
      }
      this.schedulePump();
    }, ASSIGN_RETRY_MS);
    this.retryTimer.unref();
  }

  /** One timer for the earliest delayed task. */
  private armWake(): void {
    const at = this.index.nextWakeAt();
    if (at === this.wakeAt) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    if (at === null) return;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeAt = null;
        this.schedulePump();
      },
      Math.max(0, at - Date.now()),
    );
    this.wakeTimer.unref();
  }

  // --- Safety net ---

  private sweep(): void {
    this.sweeps++;
    const now = Date.now();
    const timeouts = this.timeouts();
    const heard = this.reports ? heardAt(now, this.reportsThrough) : now;
    for (const task of this.open.values()) {
      const reason = sweepReason(task, now, timeouts, heard);
      if (reason) this.reclaim(task, reason);
    }
    this.schedulePump();
  }

  /**
   * The answer comes back as a message to this process, so it is applied after the changes the
   * TaskQueue cast before it acked those reports (the casts are already in this mailbox).
   */
  private sampleReports(): void {
    this.reports?.sample().then(
      (through) => this.send({ type: 'reports_read', through }),
      (err) => this.log.debug({ err, phase: 'sweep' }, 'hub-reports progress not sampled'),
    );
  }

  /** The lifeline's `not_held`: what the agent's live session does not hold goes back to the queue. */
  private reconcile(agentId: AgentId, view: SessionView): void {
    const held = this.holding.get(agentId);
    if (!held) return;
    const tasks: TaskRecord[] = [];
    for (const id of held) {
      const t = this.open.get(id);
      if (t) tasks.push(t);
    }
    const grace = this.input.notHeldGraceMs ?? 10_000;
    for (const t of notHeld(tasks, view, grace))
      this.reclaim(t, 'not_held', `session ${view.session ?? '(none)'} does not hold it`);
  }

  private reclaimAll(agentId: AgentId, why: string): void {
    for (const taskId of this.holding.get(agentId) ?? []) {
      const task = this.open.get(taskId);
      if (task) this.reclaim(task, 'agent_offline', why);
    }
  }

  private reclaim(task: TaskRecord, reason: ReclaimReason, why?: string): void {
    // A reclaim that changed nothing (the cast was lost, the TaskQueue was restarting) is asked for
    // again after a while; one that worked raises the generation and so never matches again.
    const key = `${task.id}:${task.generation}:${reason}`;
    const now = Date.now();
    const asked = this.reclaiming.get(key);
    if (asked !== undefined && now - asked < RECLAIM_RETRY_MS) return;
    this.reclaiming.set(key, now);
    if (this.reclaiming.size > 100_000) this.reclaiming.clear();
    this.log.info({ task_id: task.id, agent_id: task.assignee, phase: 'reclaim', reason, why }, 'reclaiming');
    cast(
      this.input.taskQueue,
      { type: 'reclaim', taskId: task.id, reason, generation: task.generation },
      this.input.registry,
    );
  }
}
