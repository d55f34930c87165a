/**
 * @module machines/agent
 * The AgentFSM: one per agent on the hub, mirroring its work state (seed 002) with concurrency slots.
 * The top-level state is an aggregate of the per-task detail in `context.tasks`: idle (no tasks),
 * assigned (something awaits accept and nothing is being worked on), working (at least one task
 * accepted and not blocked), blocked (every held task is blocked); done and failed are transient and
 * fall through to whichever of those applies. The only side effect is an emitted `flagged` event
 * (the process logs it); the machine does no I/O and reads no clock.
 *
 * A mirror, not the state of record: the task queue is, and no timeout is decided here (the
 * scheduler's lifeline, actors/scheduler/lifeline.ts, is the one place that reclaims). The process
 * forwards a change here only after the task queue applied it, so a report about a task the FSM
 * does not hold is adopted, a stale generation is ignored, and `SYNC` replaces the held tasks with
 * what the records say (after a restore from an old snapshot, or any missed event).
 */
import { assign, enqueueActions, setup } from 'xstate';
import type { AgentId, Capability, QueueName, TaskId } from '../src/protocol/ids.js';

// --- Types ---

export type TaskPhase = 'assigned' | 'working' | 'blocked';

export interface TaskSlot {
  generation: number;
  phase: TaskPhase;
  assignedAt: number;
  acceptedAt: number | null;
  /** Last sign of life (assign, accept, progress, unblock). */
  lastProgressAt: number;
  blockedAt: number | null;
}

export interface FlagRecord {
  at: number;
  taskId: TaskId;
  reason: 'rejected' | 'accept_timeout' | 'stuck';
}

export interface AgentContext {
  agentId: AgentId;
  capabilities: Capability[];
  queues: QueueName[];
  slots: number;
  connectedAt: number | null;
  /** taskId -> detail; JSON-safe (a record, not a Map) so snapshots persist. */
  tasks: Record<string, TaskSlot>;
  /** Counters for this session (reset on CONNECT from offline). */
  completed: number;
  failed: number;
  rejected: number;
  tokensUsed: number;
  /** Total flags (rejections, accept timeouts, stuck) and the last few. */
  flags: number;
  recentFlags: FlagRecord[];
  lastOutcome: { taskId: TaskId; outcome: 'done' | 'failed'; at: number } | null;
}

export interface AgentInput {
  agentId: AgentId;
}

interface TaskEventBase {
  taskId: TaskId;
  generation: number;
  /** Hub time (epoch ms) the event was observed. */
  at: number;
}

export type AgentEvent =
  | { type: 'CONNECT'; capabilities: Capability[]; queues: QueueName[]; slots: number; at: number }
  | { type: 'DISCONNECT'; at: number; reason?: string }
  | ({ type: 'ASSIGN' } & TaskEventBase)
  | ({ type: 'ACCEPTED' } & TaskEventBase)
  | ({ type: 'REJECTED'; reason?: string } & TaskEventBase)
  | ({ type: 'PROGRESS'; tokensUsed?: number } & TaskEventBase)
  | ({ type: 'BLOCKED' } & TaskEventBase)
  | ({ type: 'UNBLOCKED' } & TaskEventBase)
  | ({ type: 'COMPLETED'; tokensUsed?: number } & TaskEventBase)
  | ({ type: 'FAILED'; tokensUsed?: number } & TaskEventBase)
  /** The task queue took the task away (reclaim, cancel, overdue); `reason` is the reclaim's. */
  | ({ type: 'RECLAIMED'; reason?: string } & TaskEventBase)
  /** What the records say the agent holds now: replaces the held tasks. */
  | { type: 'SYNC'; tasks: Record<string, TaskSlot>; at: number };

export type AgentEmitted = {
  type: 'flagged';
  agentId: AgentId;
  taskId: TaskId;
  reason: FlagRecord['reason'];
};

const RECENT_FLAGS_MAX = 10;

// --- Pure helpers (exported for the process layer and tests) ---

export function aggregate(ctx: Pick<AgentContext, 'tasks'>): 'idle' | 'assigned' | 'working' | 'blocked' {
  const phases = Object.values(ctx.tasks).map((t) => t.phase);
  if (phases.length === 0) return 'idle';
  if (phases.includes('working')) return 'working';
  if (phases.includes('assigned')) return 'assigned';
  return 'blocked';
}

export function busy(ctx: Pick<AgentContext, 'tasks'>): number {
  return Object.keys(ctx.tasks).length;
}

export function freeSlots(ctx: Pick<AgentContext, 'tasks' | 'slots'>): number {
  return Math.max(0, ctx.slots - busy(ctx));
}

type TaskEvent = Extract<AgentEvent, { taskId: TaskId }>;

function isTaskEvent(e: AgentEvent): e is TaskEvent {
  return 'taskId' in e;
}

/** The event concerns a task the agent holds, at its generation or newer. */
function holds(ctx: AgentContext, e: AgentEvent): boolean {
  if (!isTaskEvent(e)) return false;
  const slot = ctx.tasks[e.taskId];
  return slot !== undefined && e.generation >= slot.generation;
}

function canAssign(ctx: AgentContext, e: AgentEvent): boolean {
  if (e.type !== 'ASSIGN') return false;
  const slot = ctx.tasks[e.taskId];
  if (slot) return e.generation > slot.generation; // a reassignment to us; same generation = redelivery
  return freeSlots(ctx) > 0;
}

/** A report the FSM can apply: about a held task, or adoptable into a free slot. */
function applies(ctx: AgentContext, e: AgentEvent): boolean {
  if (!isTaskEvent(e)) return false;
  return ctx.tasks[e.taskId] ? holds(ctx, e) : freeSlots(ctx) > 0;
}

function withoutTask(tasks: Record<string, TaskSlot>, taskId: string): Record<string, TaskSlot> {
  const { [taskId]: _gone, ...rest } = tasks;
  return rest;
}

function addFlag(ctx: AgentContext, f: FlagRecord): Pick<AgentContext, 'flags' | 'recentFlags'> {
  return { flags: ctx.flags + 1, recentFlags: [...ctx.recentFlags, f].slice(-RECENT_FLAGS_MAX) };
}

/** Context after a task event (guards have already checked it applies). */
function applyTaskEvent(ctx: AgentContext, e: TaskEvent): Partial<AgentContext> {
  const prev = ctx.tasks[e.taskId];
  const slot: TaskSlot = prev ?? {
    generation: e.generation,
    phase: 'working',
    assignedAt: e.at,
    acceptedAt: e.at,
    lastProgressAt: e.at,
    blockedAt: null,
  };
  const put = (s: TaskSlot) => ({ tasks: { ...ctx.tasks, [e.taskId]: { ...s, generation: e.generation } } });
  switch (e.type) {
    case 'ASSIGN':
      return put({
        generation: e.generation,
        phase: 'assigned',
        assignedAt: e.at,
        acceptedAt: null,
        lastProgressAt: e.at,
        blockedAt: null,
      });
    case 'ACCEPTED':
      return put({
        ...slot,
        phase: slot.phase === 'assigned' ? 'working' : slot.phase,
        acceptedAt: slot.acceptedAt ?? e.at,
        lastProgressAt: e.at,
      });
    case 'PROGRESS':
      return {
        ...put({
          ...slot,
          phase: slot.phase === 'assigned' ? 'working' : slot.phase,
          acceptedAt: slot.acceptedAt ?? e.at,
          lastProgressAt: e.at,
        }),
      };
    case 'BLOCKED':
      return put({
        ...slot,
        phase: 'blocked',
        acceptedAt: slot.acceptedAt ?? e.at,
        blockedAt: slot.blockedAt ?? e.at,
      });
    case 'UNBLOCKED':
      return put({ ...slot, phase: 'working', blockedAt: null, lastProgressAt: e.at });
    case 'COMPLETED':
      return {
        tasks: withoutTask(ctx.tasks, e.taskId),
        completed: ctx.completed + 1,
        tokensUsed: ctx.tokensUsed + (e.tokensUsed ?? 0),
        lastOutcome: { taskId: e.taskId, outcome: 'done', at: e.at },
      };
    case 'FAILED':
      return {
        tasks: withoutTask(ctx.tasks, e.taskId),
        failed: ctx.failed + 1,
        tokensUsed: ctx.tokensUsed + (e.tokensUsed ?? 0),
        lastOutcome: { taskId: e.taskId, outcome: 'failed', at: e.at },
      };
    case 'REJECTED':
      return {
        tasks: withoutTask(ctx.tasks, e.taskId),
        rejected: ctx.rejected + 1,
        ...addFlag(ctx, { at: e.at, taskId: e.taskId, reason: 'rejected' }),
      };
    case 'RECLAIMED': {
      const flagged = e.reason === 'accept_timeout' || e.reason === 'stuck' ? e.reason : null;
      return {
        tasks: withoutTask(ctx.tasks, e.taskId),
        ...(flagged ? addFlag(ctx, { at: e.at, taskId: e.taskId, reason: flagged }) : {}),
      };
    }
  }
}

// --- Machine ---

const onlineHandlers = {
  CONNECT: { target: 'route', actions: 'declare' },
  DISCONNECT: { target: 'offline', actions: 'dropAll' },
  SYNC: { target: 'route', actions: 'sync' },
  ASSIGN: { guard: 'canAssign', target: 'route', actions: 'applyTask' },
  ACCEPTED: { guard: 'applies', target: 'route', actions: 'applyTask' },
  PROGRESS: { guard: 'applies', target: 'route', actions: 'applyTask' },
  BLOCKED: { guard: 'applies', target: 'route', actions: 'applyTask' },
  UNBLOCKED: { guard: 'holds', target: 'route', actions: 'applyTask' },
  REJECTED: { guard: 'holds', target: 'route', actions: ['applyTask', 'emitRejectedFlag'] },
  RECLAIMED: { guard: 'holds', target: 'route', actions: ['applyTask', 'emitReclaimFlag'] },
  COMPLETED: { guard: 'holds', target: 'done', actions: 'applyTask' },
  FAILED: { guard: 'holds', target: 'failed', actions: 'applyTask' },
} as const;

export const agentMachine = setup({
  types: {
    context: {} as AgentContext,
    events: {} as AgentEvent,
    input: {} as AgentInput,
    emitted: {} as AgentEmitted,
  },
  guards: {
    canAssign: ({ context, event }) => canAssign(context, event),
    applies: ({ context, event }) => applies(context, event),
    holds: ({ context, event }) => holds(context, event),
    isWorking: ({ context }) => aggregate(context) === 'working',
    isAssigned: ({ context }) => aggregate(context) === 'assigned',
    isBlocked: ({ context }) => aggregate(context) === 'blocked',
  },
  actions: {
    declare: assign(({ context, event }) => {
      if (event.type !== 'CONNECT') return {};
      const fresh = context.connectedAt === null;
      return {
        capabilities: [...event.capabilities],
        queues: [...event.queues],
        slots: event.slots,
        connectedAt: fresh ? event.at : context.connectedAt,
        ...(fresh ? { completed: 0, failed: 0, rejected: 0, tokensUsed: 0 } : {}),
      };
    }),
    applyTask: assign(({ context, event }) => (isTaskEvent(event) ? applyTaskEvent(context, event) : {})),
    emitRejectedFlag: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'REJECTED') return;
      enqueue.emit({ type: 'flagged', agentId: context.agentId, taskId: event.taskId, reason: 'rejected' });
    }),
    emitReclaimFlag: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'RECLAIMED' || (event.reason !== 'accept_timeout' && event.reason !== 'stuck'))
        return;
      enqueue.emit({ type: 'flagged', agentId: context.agentId, taskId: event.taskId, reason: event.reason });
    }),
    sync: assign(({ event }) => (event.type === 'SYNC' ? { tasks: { ...event.tasks } } : {})),
    // The hub reclaims everything an offline agent held (lifeline.ts); the mirror lets go now.
    dropAll: assign({ tasks: {}, connectedAt: null }),
  },
}).createMachine({
  id: 'agent',
  initial: 'offline',
  context: ({ input }) => ({
    agentId: input.agentId,
    capabilities: [],
    queues: [],
    slots: 0,
    connectedAt: null,
    tasks: {},
    completed: 0,
    failed: 0,
    rejected: 0,
    tokensUsed: 0,
    flags: 0,
    recentFlags: [],
    lastOutcome: null,
  }),
  states: {
    offline: {
      on: { CONNECT: { target: 'route', actions: 'declare' } },
    },
    /** Transient: settle on the aggregate of the per-task phases. */
    route: {
      always: [
        { guard: 'isWorking', target: 'working' },
        { guard: 'isAssigned', target: 'assigned' },
        { guard: 'isBlocked', target: 'blocked' },
        { target: 'idle' },
      ],
    },
    idle: { on: onlineHandlers },
    assigned: { on: onlineHandlers },
    working: { on: onlineHandlers },
    blocked: { on: onlineHandlers },
    /** Transient: a task just completed. */
    done: { always: 'route' },
    /** Transient: a task just failed (the task queue decides retry or dead letter). */
    failed: { always: 'route' },
  },
});

export type AgentMachine = typeof agentMachine;
export type AgentStateValue = 'offline' | 'idle' | 'assigned' | 'working' | 'blocked';
