/**
 * @module agents/process
 * The Agents actor: one AgentFSM (machines/agent.ts) per known agent, each its own supervised
 * XState actor under the `agent-fsms` dynamic supervisor. It turns what the other actors report
 * (task record changes, agents up and down) into FSM events and logs what they emit (flags). The
 * FSMs decide nothing: reclaims are the scheduler's lifeline's. Snapshots are written to KV
 * (`<agentId>.fsm` in the agents bucket) at most once per flush period per agent, so a restarted hub
 * restores every agent; the FSM is a view, not the state of record, so the restore runs after the
 * actor's start (what it is sent meanwhile, state requests aside, is held, then handled in order).
 * Every tick, each FSM whose held tasks differ from what the records say is sent a `SYNC` with the
 * records' view, so after any fault (a restore from an old snapshot, a missed event, a write that
 * failed) the view converges within a tick of the records being readable.
 *
 * Inspection (docs/protocol.md §11e): while a listen on `<p>.inspecting` names `agent.<id>` or
 * `agent.*`, that agent's FSM has XState inspection attached (its `@xstate.actor` with the current
 * snapshot first), published on `<p>.inspect.agent.<id>`; it is detached when the listen expires,
 * and re-attached to a restarted FSM. With no listen nothing is attached.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { type AgentEmitted, type AgentEvent, agentMachine, type TaskSlot } from '../../machines/agent.js';
import type { Bus } from '../../src/bus/connection.js';
import { type Following, InspectRelay, inspectActor } from '../../src/bus/inspect-relay.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import type { AgentId, TaskId } from '../../src/protocol/ids.js';
import { isActive, type TaskRecord } from '../../src/protocol/task.js';
import {
  type ActorPid,
  actorChild,
  call,
  type DynamicSupervisor,
  forEachYielding,
  type Registry,
  type YieldingOptions,
} from '../../src/runtime/index.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import type { AgentBeat, AgentDown, AgentUp } from '../scheduler/index.js';
import type { TaskChanged } from '../task-queue/index.js';

/** Snapshot writes in flight at most during a flush. */
const FLUSH_CONCURRENCY = 128;

/**
 * How long the last flush, at shutdown, may write: the FSMs are a view the next leader reconciles
 * with the records, and 10,000 snapshots to a loaded server outlasted the actor's shutdown timeout
 * (it was killed, and the leader stopping the work tree with it).
 */
const FINAL_FLUSH_MS = 2_000;

/** The restore runs beside the scheduler's start, which matters more: short slices of the loop. */
const RESTORE_SLICE_MS = 10;

/** Agents synced in one tick that are logged one by one; beyond it (a restored hub), one line. */
const SYNC_LOGGED_PER_TICK = 20;

export const FsmSnapshotSchema = z.object({ v: z.literal(1), snapshot: z.unknown() });
type FsmSnapshot = z.infer<typeof FsmSnapshotSchema>;

export interface AgentsInput {
  bus: Bus;
  registry: Registry;
  log: Logger;
  /** Registered name of the dynamic supervisor holding the FSMs. */
  fsmSupervisor: string;
  taskQueue: string;
  /** Registered name of Presence, asked at start for the agents online now. */
  presence?: string;
  /** Period of the check that the FSMs mirror the records (ms). */
  tickMs: number;
  /** Snapshot write period per agent (default 1000 ms). */
  flushMs?: number;
}

export type AgentsMessage =
  | TaskChanged
  | AgentUp
  | AgentDown
  | { type: 'tick' }
  | { type: 'state'; agentId: AgentId; reply?: (s: unknown) => void };

type Seen = Pick<
  TaskRecord,
  | 'status'
  | 'generation'
  | 'assignee'
  | 'assignedAt'
  | 'acceptedAt'
  | 'lastProgressAt'
  | 'blockedAt'
  | 'lastReport'
>;

export class AgentsProcess implements Server<AgentsMessage> {
  /** The tasks agents hold (assigned, working, blocked) as last seen. */
  private readonly seen = new Map<TaskId, Seen>();
  private readonly hooked = new WeakSet<object>();
  private readonly dirty = new Set<AgentId>();
  private readonly starting = new Map<AgentId, Promise<void>>();
  private readonly backlog = new Map<AgentId, AgentEvent[]>();
  private readonly log: Logger;
  /** Follows `<p>.inspecting`; one following per agent seen, attached only while listened to. */
  private readonly relay: InspectRelay;
  private readonly inspected = new Map<AgentId, { following: Following; actor?: object }>();
  private tickTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** What arrives while the FSMs are restored, handled in order after; undefined once restored. */
  private held: AgentsMessage[] | undefined = [];
  private stopped = false;
  /** The final flush ran out of time: nothing more is written. */
  private abandoned = false;
  /** Snapshots the flush under way has not written yet. */
  private unwritten = 0;

  private constructor(
    private readonly input: AgentsInput,
    private readonly kv: TypedKv<FsmSnapshot>,
  ) {
    this.log = input.log.child({ actor: 'agents' });
    this.relay = InspectRelay.start(input.bus, { log: this.log });
  }

  static async start(input: AgentsInput, ctx: ServerContext): Promise<AgentsProcess> {
    const kv = await openKv(input.bus, input.bus.names.buckets.agents, FsmSnapshotSchema);
    const a = new AgentsProcess(input, kv);
    // The FSMs are a view nobody waits on, so their restore runs after the start: done inside it,
    // it held the scheduler (the next child) for 2.5-8.1 s at 10,000 agents (docs/scaling.md).
    a.restore(ctx).then(
      // Killed meanwhile, `terminate` did not run: what the restore opened is closed here.
      () => {
        if (!ctx.alive) a.relay.close();
      },
      (err) => {
        a.relay.close(); // a failed restore leaves no subscription behind
        // Stopped meanwhile (its FSM supervisor with it), the failure is the stop's, not a crash.
        if (!a.stopped && ctx.alive) ctx.crash(err);
      },
    );
    return a;
  }

  /**
   * Starts every FSM from its snapshot, then reconciles them with the task records and the agents
   * online, then hands over what arrived meanwhile, in order, and starts the timers.
   */
  private async restore(ctx: ServerContext): Promise<void> {
    const { input } = this;
    const startedAt = Date.now();
    // Stopped (terminate ran) or killed: the restore goes no further.
    const gone = () => this.stopped || !ctx.alive;
    // One pass over the snapshots, not one request per agent in turn (with 10,000 agents that
    // held a new leader's start for seconds).
    const snapshots = await this.kv.entries('*.fsm');
    const readMs = Date.now() - startedAt;
    await forEachYielding(
      snapshots,
      ([key, got]) =>
        gone() ? undefined : this.ensure(key.slice(0, -'.fsm'.length) as AgentId, got.value.snapshot),
      { sliceMs: RESTORE_SLICE_MS },
    );
    const fsmsMs = Date.now() - startedAt - readMs;
    if (gone()) return;
    // Reconcile restored FSMs with the records: anything they hold that is no longer theirs goes.
    const snap = await call<TaskRecord[]>(
      input.taskQueue,
      { type: 'snapshot' },
      { registry: input.registry },
    );
    if (snap.ok)
      await forEachYielding(snap.value, (t) => (gone() ? undefined : this.onTask(t)), {
        sliceMs: RESTORE_SLICE_MS,
      });
    else
      this.log.warn(
        { phase: 'restore', error: snap.error.kind },
        'task records not read: agent views converge only as the tasks change',
      );
    if (input.presence && !gone()) {
      const online = await call<(AgentUp | AgentBeat)[]>(
        input.presence,
        { type: 'online' },
        { registry: input.registry },
      );
      if (online.ok) for (const m of online.value) if (m.type === 'agent_up') this.apply(m);
    }
    if (gone()) return;
    // What arrived meanwhile, then the sync, in slices too: at a failover these are thousands of
    // task changes (the scheduler assigns from its start on) and thousands of agents to sync, and
    // in one go they hold the loop as long as they take (in one run at 10,000 agents the heir's
    // requests timed out in a burst right after: docs/scaling.md). What arrives meanwhile is still
    // held, and handled after, in order.
    const slices = { sliceMs: RESTORE_SLICE_MS };
    const handOver = async () => {
      for (let m = this.held?.splice(0) ?? []; m.length > 0 && !gone(); m = this.held?.splice(0) ?? [])
        await forEachYielding(m, (msg) => (gone() ? undefined : this.apply(msg)), slices);
    };
    await handOver();
    if (gone()) return;
    await this.syncInSlices(slices);
    await handOver();
    if (gone()) return;
    // The last ones, taken with nothing in between that could add to them: from here on, what
    // arrives is handled as it comes.
    const rest = this.held ?? [];
    this.held = undefined;
    for (const m of rest) this.apply(m);
    this.log.info(
      {
        phase: 'restore',
        restored: snapshots.size,
        agents: this.knownAgents().length,
        read_ms: readMs,
        fsms_ms: fsmsMs,
        ms: Date.now() - startedAt,
      },
      'agent FSMs restored',
    );
    this.tickTimer = setInterval(() => ctx.send({ type: 'tick' }), input.tickMs);
    this.tickTimer.unref();
    this.flushTimer = setInterval(() => void this.flush(), input.flushMs ?? 1000);
    this.flushTimer.unref();
  }

  handle(msg: AgentsMessage): void {
    // A state request is answered at once, restored or not: it only reads the FSM (the API's
    // agent list would otherwise wait out a restore of seconds and time out).
    if (this.held && msg.type !== 'state') this.held.push(msg);
    else this.apply(msg);
  }

  private apply(msg: AgentsMessage): void {
    const at = Date.now();
    switch (msg.type) {
      case 'tasks_changed':
        for (const t of msg.tasks) this.onTask(t);
        return;
      case 'agent_up':
        this.send(msg.agentId, {
          type: 'CONNECT',
          capabilities: [...msg.capabilities],
          queues: [...msg.queues],
          slots: msg.slots,
          at,
        });
        return;
      case 'agent_down':
        this.send(msg.agentId, { type: 'DISCONNECT', at, reason: msg.reason });
        return;
      case 'tick':
        this.sync();
        return;
      case 'state': {
        const pid = this.pid(msg.agentId);
        msg.reply?.(pid ? pid.actor.getSnapshot() : null);
        return;
      }
    }
  }

  async terminate(): Promise<void> {
    // A restore still running stops at its next step (it may be waiting on a call: not awaited).
    this.stopped = true;
    clearInterval(this.tickTimer);
    clearInterval(this.flushTimer);
    this.relay.close();
    let timer: NodeJS.Timeout | undefined;
    const written = await Promise.race([
      // The flush under way, then what changed while it ran.
      (async () => {
        await this.flushing;
        await this.flush();
        return true;
      })(),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), FINAL_FLUSH_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!written) {
      this.abandoned = true; // the flush stops at its next batch
      this.log.warn(
        { phase: 'stop', unwritten: this.unwritten + this.dirty.size, ms: FINAL_FLUSH_MS },
        'FSM snapshots not all written at shutdown; the next leader syncs them with the records',
      );
    }
  }

  // --- Task records -> FSM events ---

  private onTask(task: TaskRecord): void {
    const prev = this.seen.get(task.id);
    const at = Date.now();
    const base = { taskId: task.id, at };
    const wasHeld = prev && isActive(prev.status) && prev.assignee;
    const held = isActive(task.status) && task.assignee;
    if (wasHeld && prev!.generation !== task.generation) {
      // The old assignment ended (reclaimed, rejected, or superseded by a new generation).
      const rejected =
        task.lastReport?.type === 'rejected' && task.lastReport.generation === prev!.generation;
      if (rejected) this.send(prev!.assignee!, { type: 'REJECTED', ...base, generation: prev!.generation });
      else {
        // The reclaim's reason, when the write that ended the assignment is the last one in history.
        const last = task.history[task.history.length - 1];
        const reason = last && last.from === prev!.status ? last.reason : undefined;
        this.send(prev!.assignee!, {
          type: 'RECLAIMED',
          ...base,
          generation: prev!.generation,
          ...(reason ? { reason } : {}),
        });
      }
    }
    if (held) {
      const ev = { ...base, generation: task.generation };
      const fresh = !prev || prev.generation !== task.generation || !isActive(prev.status);
      if (fresh) this.send(task.assignee!, { type: 'ASSIGN', ...ev });
      if (task.status === 'working' && (fresh || prev!.status === 'assigned'))
        this.send(task.assignee!, { type: 'ACCEPTED', ...ev });
      else if (task.status === 'blocked' && prev?.status !== 'blocked')
        this.send(task.assignee!, { type: 'BLOCKED', ...ev });
      else if (task.status === 'working' && prev?.status === 'blocked')
        this.send(task.assignee!, { type: 'UNBLOCKED', ...ev });
      else if (task.status === 'working' && prev?.lastProgressAt !== task.lastProgressAt)
        this.send(task.assignee!, { type: 'PROGRESS', ...ev });
    } else if (wasHeld && prev!.generation === task.generation) {
      const ev = { ...base, generation: task.generation };
      if (task.status === 'done') this.send(prev!.assignee!, { type: 'COMPLETED', ...ev });
      else if (task.status === 'failed' || task.status === 'dead')
        this.send(prev!.assignee!, { type: 'FAILED', ...ev });
      else this.send(prev!.assignee!, { type: 'RECLAIMED', ...ev });
    }
    // Held tasks only: a queued one is handled above exactly as one never seen, and keeping the
    // queued ones (100,000 at scale) made every sync walk them.
    if (isActive(task.status)) {
      this.seen.set(task.id, {
        status: task.status,
        generation: task.generation,
        assignee: task.assignee,
        assignedAt: task.assignedAt,
        acceptedAt: task.acceptedAt,
        lastProgressAt: task.lastProgressAt,
        blockedAt: task.blockedAt,
        lastReport: task.lastReport,
      });
    } else {
      this.seen.delete(task.id);
    }
  }

  // --- Convergence ---

  /** Sends `SYNC` to every running FSM whose held tasks (ids, generations) differ from the records. */
  private sync(): void {
    const s = this.syncer();
    for (const id of this.knownAgents()) s.one(id);
    s.end();
  }

  /** `sync` yielding the loop between slices (the caller holds what arrives meanwhile). */
  private async syncInSlices(slices: YieldingOptions): Promise<void> {
    const s = this.syncer();
    await forEachYielding(this.knownAgents(), s.one, slices);
    s.end();
  }

  /** One sync: the held tasks of each agent from the records, then `one` per agent, `end` once. */
  private syncer(): { one: (id: AgentId) => void; end: () => void } {
    const held = new Map<AgentId, Record<string, TaskSlot>>();
    const now = Date.now();
    for (const [taskId, t] of this.seen) {
      if (!isActive(t.status) || !t.assignee) continue;
      const tasks = held.get(t.assignee) ?? {};
      held.set(t.assignee, tasks);
      tasks[taskId] = {
        generation: t.generation,
        phase: t.status as TaskSlot['phase'],
        assignedAt: t.assignedAt ?? now,
        acceptedAt: t.acceptedAt,
        lastProgressAt: t.lastProgressAt ?? t.assignedAt ?? now,
        blockedAt: t.blockedAt,
      };
    }
    let synced = 0;
    const one = (id: AgentId) => {
      const pid = this.pid(id);
      if (!pid) return;
      // A restarted FSM nobody has sent to yet is hooked (and inspected) here.
      this.hook(id, pid);
      const snap = pid.actor.getSnapshot();
      if (snap.value === 'offline') return;
      const want = held.get(id) ?? {};
      if (sameHolding(snap.context.tasks, want)) return;
      if (++synced <= SYNC_LOGGED_PER_TICK)
        this.log.info(
          {
            agent_id: id,
            phase: 'sync',
            had: Object.keys(snap.context.tasks).length,
            holds: Object.keys(want).length,
          },
          'agent view differed from the records; synced',
        );
      this.send(id, { type: 'SYNC', tasks: want, at: now });
    };
    const end = () => {
      if (synced > SYNC_LOGGED_PER_TICK)
        this.log.info({ phase: 'sync', agents: synced }, 'agent views differed from the records; all synced');
    };
    return { one, end };
  }

  // --- FSM children ---

  private knownAgents(): AgentId[] {
    return this.input.registry
      .names()
      .filter((n) => n.startsWith('agent:'))
      .map((n) => n.slice('agent:'.length) as AgentId);
  }

  private pid(agentId: AgentId): ActorPid<typeof agentMachine> | undefined {
    const p = this.input.registry.whereis(`agent:${agentId}`);
    return p?.alive ? (p as ActorPid<typeof agentMachine>) : undefined;
  }

  private send(agentId: AgentId, event: AgentEvent): void {
    const pid = this.pid(agentId);
    if (!pid) {
      // Start the FSM, delivering what arrives meanwhile in order.
      const q = this.backlog.get(agentId) ?? [];
      q.push(event);
      this.backlog.set(agentId, q);
      void this.ensure(agentId);
      return;
    }
    this.hook(agentId, pid);
    pid.send(event);
    this.dirty.add(agentId);
  }

  private ensure(agentId: AgentId, snapshot?: unknown): Promise<void> {
    const running = this.starting.get(agentId);
    if (running) return running;
    const p = (async () => {
      if (!this.pid(agentId)) {
        const sup = this.input.registry.whereis(this.input.fsmSupervisor) as DynamicSupervisor | undefined;
        if (!sup?.alive) throw new Error('agent FSM supervisor is not running');
        const spec = actorChild(`agent-${agentId}`, agentMachine, {
          input: { agentId },
          ...(snapshot ? { snapshot: snapshot as never } : {}),
          name: `agent:${agentId}`,
        });
        const r = await sup.startChild(spec);
        if (!r.ok && snapshot) {
          // A snapshot from an older machine version: start fresh; reports will repopulate it.
          this.log.warn({ agent_id: agentId, error: r.error }, 'FSM snapshot not restorable; starting fresh');
          const fresh = await sup.startChild(
            actorChild(`agent-${agentId}`, agentMachine, {
              input: { agentId },
              name: `agent:${agentId}`,
            }),
          );
          if (!fresh.ok) throw new Error(`cannot start FSM for ${agentId}: ${JSON.stringify(fresh.error)}`);
        } else if (!r.ok) {
          throw new Error(`cannot start FSM for ${agentId}: ${JSON.stringify(r.error)}`);
        }
      }
      const started = this.pid(agentId);
      if (started) this.hook(agentId, started);
      const pending = this.backlog.get(agentId) ?? [];
      this.backlog.delete(agentId);
      for (const e of pending) this.send(agentId, e);
    })().finally(() => this.starting.delete(agentId));
    this.starting.set(agentId, p);
    p.catch((err) => this.log.error({ agent_id: agentId, err }, 'agent FSM start failed'));
    return p;
  }

  /** Listen to what a (possibly restarted) FSM emits, and follow listens for its inspection. */
  private hook(agentId: AgentId, pid: ActorPid<typeof agentMachine>): void {
    if (this.hooked.has(pid.actor)) return;
    this.hooked.add(pid.actor);
    this.followInspection(agentId, pid);
    pid.actor.on('flagged', (e: Extract<AgentEmitted, { type: 'flagged' }>) => {
      this.log.warn(
        { agent_id: agentId, task_id: e.taskId, phase: 'flagged', reason: e.reason },
        'agent flagged',
      );
    });
  }

  /** Inspection of this agent's FSM while a listen names it; a new incarnation is re-attached. */
  private followInspection(agentId: AgentId, pid: ActorPid<typeof agentMachine>): void {
    const known = this.inspected.get(agentId);
    if (known) {
      if (known.following.attached && known.actor !== pid.actor) known.following.refresh();
      return;
    }
    const entry: { following?: Following; actor?: object } = {};
    entry.following = this.relay.follow('agent', agentId, (pub) => {
      const current = this.pid(agentId);
      if (!current) return () => {};
      entry.actor = current.actor;
      return inspectActor(current.actor, pub);
    });
    this.inspected.set(agentId, entry as { following: Following; actor?: object });
  }

  /**
   * Writes the snapshots of the FSMs changed since the last flush. One flush at a time, and at
   * most FLUSH_CONCURRENCY writes in flight: with 10,000 agents busy, every agent is dirty every
   * period, and 10,000 writes at once (again each period, piling up when one period's writes took
   * longer than the period) held up every other request of the hub, its lease renewal included.
   * What changes during a flush is written by the next one.
   */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    const run = async () => {
      const ids = [...this.dirty];
      this.dirty.clear();
      for (let i = 0; i < ids.length && !this.abandoned; i += FLUSH_CONCURRENCY) {
        this.unwritten = ids.length - i;
        await Promise.all(ids.slice(i, i + FLUSH_CONCURRENCY).map((id) => this.writeSnapshot(id)));
      }
      this.unwritten = 0;
    };
    this.flushing = run().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async writeSnapshot(id: AgentId): Promise<void> {
    const pid = this.pid(id);
    if (!pid) return;
    try {
      await this.kv.put(`${id}.fsm`, { v: 1, snapshot: pid.actor.getPersistedSnapshot() });
    } catch (err) {
      this.dirty.add(id);
      this.log.warn({ agent_id: id, err }, 'FSM snapshot write failed; will retry');
    }
  }
}

function sameHolding(a: Record<string, TaskSlot>, b: Record<string, TaskSlot>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => b[k]?.generation === a[k]!.generation && b[k]?.phase === a[k]!.phase);
}
