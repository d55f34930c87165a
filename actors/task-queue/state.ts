/**
 * @module task-queue/state
 * The task lifecycle as one pure function: `applyTaskCommand(task, command, now, config)` returns the
 * next `TaskRecord` plus effects (data for the process layer to carry out), or a refusal as a value.
 * Guarantees: generation fencing (older reports refused, never applied), assignee checks, redelivered
 * reports are harmless ok no-ops flagged `duplicate`, terminal tasks change only through `retry`,
 * `retryCount <= maxRetries`. It does no I/O and reads no clock; compare-and-set on the stored record,
 * idempotency-key lookup and timers belong to the caller.
 *
 * Lifecycle (by: who may cause it):
 *   submit            (none) -> queued            (delayed while now < notBefore)
 *   assign            queued -> assigned          hub; generation + 1
 *   accept            assigned -> working         assignee
 *   progress          assigned|working|blocked    assignee; no status change except implicit accept
 *   block / unblock   working <-> blocked         assignee
 *   complete          assigned|working|blocked -> done
 *   fail              -> queued (backoff, retryCount + 1) | dead (retries exhausted) | failed (retryable=false)
 *   reject            assigned -> queued (backoff, retryCount + 1, agent flagged) | dead
 *   reclaim           assigned|working|blocked -> queued (no backoff, retryCount + 1, generation + 1) | dead;
 *                     'overdue' (completeBy passed): queued|assigned|working|blocked -> failed (code timeout)
 *                     (which reclaim applies when is decided in one place: actors/scheduler/lifeline.ts)
 *   cancel            any non-terminal -> cancelled (assignee told to stop)
 *   retry             done-less terminal (failed|dead|cancelled) -> queued, retryCount reset to 0
 *
 * Design decisions (the brief left these open):
 * - Every assignment that ends without a result consumes one retry (failure, rejection, any reclaim):
 *   the total number of automatic attempts is bounded by maxRetries + 1, so a task nobody can finish
 *   always ends dead instead of looping. Seed 002 counts an agent disconnect the same way.
 * - Failures and rejections requeue with exponential backoff; reclaims requeue at once (the agent, not
 *   the task, was at fault, and another agent should pick it up quickly).
 * - 'overdue' fails the task for good (status failed, error code `timeout`): `completeBy` is absolute,
 *   so a requeued task could never meet it. Seed 002's "back to queue" is served by the per-assignment
 *   timeouts (accept_timeout, stuck, blocked_timeout), which do requeue.
 * - Generation rises on assignment and on reclaim, so after a reclaim every report from the old
 *   assignee is `stale_generation`, even before the task is reassigned.
 * - Duplicates: a report equal to the one that closed the assignment (`lastReport`: completed, failed,
 *   rejected with the same agent and generation), `accepted` while already working/blocked, `blocked`
 *   while blocked, `unblocked` while working, `cancel` of a cancelled task, `submit` of an existing id
 *   and an `assign` whose expected generation is already in place -> `{ ok: true, duplicate: true }`
 *   with the task unchanged and no effects.
 * - Reports about an assignment still `assigned` (progress, blocked, completed, failed) imply accept.
 * - A report that carries the agent's `session` records it on the task (`session`): the lifeline can
 *   then tell an assignment held by a process that is gone from one held by the live process.
 * - `flaggedAgents` lists the agents that did not finish the task (rejected it, failed it, let it time
 *   out or get stuck), so the scheduler prefers another agent for the next attempt.
 * - Token counts in reports are cumulative per assignment; the record adds only the increase, so a
 *   redelivered report never double counts.
 * - Refusal order: not_found, duplicate, stale_generation (older), invalid_state (newer than current),
 *   forbidden (not the assignee), invalid_state (status does not allow it).
 */
import type { InboxAssign, InboxNotice, Report } from '../../src/protocol/agent.js';
import { ERROR_CODES, type WireError } from '../../src/protocol/errors.js';
import type { AgentId, TaskId } from '../../src/protocol/ids.js';
import {
  delayMs,
  HISTORY_MAX,
  type HistoryEntry,
  isActive,
  isTerminal,
  type TaskError,
  type TaskRecord,
  type TaskStatus,
  type TaskSubmit,
} from '../../src/protocol/task.js';
import { exponentialDelay } from '../../src/runtime/backoff.js';

// --- Commands, effects, results ---

export type ReclaimReason =
  | 'agent_offline'
  | 'not_held'
  | 'accept_timeout'
  | 'stuck'
  | 'overdue'
  | 'blocked_timeout';
export const RECLAIM_REASONS: readonly ReclaimReason[] = [
  'agent_offline',
  'not_held',
  'accept_timeout',
  'stuck',
  'overdue',
  'blocked_timeout',
];

/** Fields every agent report carries. */
interface ReportBase {
  agentId: AgentId;
  generation: number;
  /** The reporting agent's session, when it says. */
  session?: string;
}

export type TaskCommand =
  | { type: 'submit'; id: TaskId; submit: TaskSubmit }
  /** `generation`, when given, is the generation this assignment will have (current + 1): it makes a
   *  repeated assign (e.g. a compare-and-set retry) a recognisable duplicate. */
  | { type: 'assign'; agentId: AgentId; generation?: number }
  | ({ type: 'accept' } & ReportBase)
  | ({ type: 'progress'; pct?: number; message?: string; tokensUsed?: number } & ReportBase)
  | ({ type: 'block'; reason: string } & ReportBase)
  | ({ type: 'unblock' } & ReportBase)
  | ({ type: 'complete'; result: unknown; tokensUsed?: number } & ReportBase)
  | ({
      type: 'fail';
      error: { code?: string; message: string };
      retryable: boolean;
      tokensUsed?: number;
    } & ReportBase)
  | ({ type: 'reject'; reason: string } & ReportBase)
  | ({ type: 'recovering' } & ReportBase)
  | { type: 'cancel'; reason?: string; by?: string }
  | { type: 'retry'; by?: string }
  /** `generation`, when given, must equal the current one: the sweep reclaims the assignment it saw. */
  | { type: 'reclaim'; reason: ReclaimReason; generation?: number };

export type TaskCommandType = TaskCommand['type'];

export type TaskEffect =
  /** Put the task in the scheduler's index; it becomes eligible at `at` (now, or a delay/backoff). */
  | { type: 'enqueue'; taskId: TaskId; at: number }
  /** Remove a queued task from the scheduler's index (cancelled or failed while waiting). */
  | { type: 'unschedule'; taskId: TaskId }
  /** Deliver the assignment to the agent's inbox (see `assignMessage`). */
  | { type: 'deliver_assign'; agentId: AgentId; taskId: TaskId; generation: number }
  /** Tell the agent to stop working on this assignment. */
  | { type: 'notify_cancel'; agentId: AgentId; taskId: TaskId; generation: number; reason: string }
  /** The assignment is closed: the agent's slot is free again. */
  | { type: 'release'; agentId: AgentId; taskId: TaskId; generation: number }
  /** The agent misbehaved with this task (rejected it, or let the accept timeout pass). */
  | { type: 'flag_agent'; agentId: AgentId; taskId: TaskId; reason: string }
  /** Retries exhausted; the task is in `dead` (the dead-letter state). */
  | { type: 'dead_lettered'; taskId: TaskId; reason: string }
  /** The task reached a terminal status. */
  | { type: 'finished'; taskId: TaskId; status: TaskStatus };

export type TaskCommandResult =
  | { ok: true; task: TaskRecord; effects: TaskEffect[]; duplicate: boolean }
  | { ok: false; error: WireError };

export interface TaskQueueConfig {
  /** History entries kept per task (default 50, the schema's maximum). */
  historyLimit: number;
  /** Fraction of a backoff delay that jitter may remove, 0..1 (default 0.2). */
  jitterRatio: number;
  /** Source of jitter in [0, 1). Default: a hash of (task id, retry number): deterministic yet spread. */
  random?: () => number;
}

export const DEFAULT_TASK_QUEUE_CONFIG: TaskQueueConfig = { historyLimit: HISTORY_MAX, jitterRatio: 0.2 };

const FLAGGED_MAX = 16;
const REASON_MAX = 500;

// --- Entry point ---

export function applyTaskCommand(
  task: TaskRecord | undefined,
  command: TaskCommand,
  now: number,
  config: Partial<TaskQueueConfig> = {},
): TaskCommandResult {
  const cfg: TaskQueueConfig = { ...DEFAULT_TASK_QUEUE_CONFIG, ...config };
  if (command.type === 'submit') return submit(task, command, now, cfg);
  if (!task) return refuse(ERROR_CODES.NOT_FOUND, 'task not found');
  switch (command.type) {
    case 'assign':
      return assign(task, command, now, cfg);
    case 'cancel':
      return cancel(task, command, now, cfg);
    case 'retry':
      return retry(task, command, now, cfg);
    case 'reclaim':
      return reclaim(task, command, now, cfg);
    default:
      return report(task, command, now, cfg);
  }
}

/** Map a validated wire report (from agent `agentId`) to its command. */
export function commandFromReport(agentId: AgentId, r: Report): TaskCommand {
  const base =
    r.session === undefined
      ? { agentId, generation: r.generation }
      : { agentId, generation: r.generation, session: r.session };
  switch (r.type) {
    case 'accepted':
      return { type: 'accept', ...base };
    case 'rejected':
      return { type: 'reject', ...base, reason: r.reason };
    case 'progress':
      return { type: 'progress', ...base, pct: r.pct, message: r.message, tokensUsed: r.tokensUsed };
    case 'blocked':
      return { type: 'block', ...base, reason: r.reason };
    case 'unblocked':
      return { type: 'unblock', ...base };
    case 'completed':
      return { type: 'complete', ...base, result: r.result, tokensUsed: r.tokensUsed };
    case 'failed':
      return { type: 'fail', ...base, error: r.error, retryable: r.retryable, tokensUsed: r.tokensUsed };
    case 'recovering':
      return { type: 'recovering', ...base };
  }
}

/** The inbox message that delivers the task's current assignment. */
export function assignMessage(task: TaskRecord): InboxAssign {
  const t: InboxAssign['task'] = {
    title: task.title,
    description: task.description,
    priority: task.priority,
    queue: task.queue,
    capabilities: task.capabilities,
  };
  if (task.metadata !== undefined) t.metadata = task.metadata;
  if (task.completeBy !== undefined) t.completeBy = task.completeBy;
  return { v: 1, type: 'assign', taskId: task.id, generation: task.generation, task: t };
}

/**
 * What the agent is told when one of its reports is refused. `stop` is true when the assignment is
 * over for it (the task is unknown, finished, reclaimed, reassigned or held by another agent): its
 * work is moot, and nothing it reports about that generation will be applied.
 */
/**
 * The submission with its `delay` turned into `notBefore`, counted from `at`, when the hub took it
 * in (a stream message's stored time, so a redelivery gets the same answer); with `notBefore` too,
 * the later of the two.
 */
export function resolveDelay(s: TaskSubmit, at: number): TaskSubmit {
  if (s.delay === undefined) return s;
  const { delay, ...rest } = s;
  return { ...rest, notBefore: Math.max(rest.notBefore ?? 0, at + delayMs(delay)) };
}

export function refusalNotice(
  task: TaskRecord | undefined,
  agentId: AgentId,
  report: Pick<Report, 'type' | 'taskId' | 'generation'>,
  error: WireError,
): InboxNotice {
  const stop =
    !task || task.generation !== report.generation || task.assignee !== agentId || !isActive(task.status);
  return {
    v: 1,
    type: 'notice',
    taskId: report.taskId,
    generation: report.generation,
    report: report.type,
    code: error.code,
    message: clip(error.message),
    ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
    stop,
  };
}

/**
 * Retry delay for the `retry`-th retry (1-based): min(maxMs, baseMs * 2^(retry-1)), minus up to
 * `jitterRatio` of it (`u` in [0, 1)), through the shared {@link exponentialDelay}. Whole ms, never
 * below 1 ms.
 */
export function backoffDelay(
  backoff: { baseMs: number; maxMs: number },
  retry: number,
  u: number,
  jitterRatio = DEFAULT_TASK_QUEUE_CONFIG.jitterRatio,
): number {
  const d = exponentialDelay(
    retry - 1,
    { min: backoff.baseMs, max: backoff.maxMs },
    { jitter: jitterRatio, random: () => u },
  );
  return Math.max(1, Math.round(d));
}

// --- Hub commands ---

function submit(
  existing: TaskRecord | undefined,
  c: Extract<TaskCommand, { type: 'submit' }>,
  now: number,
  cfg: TaskQueueConfig,
): TaskCommandResult {
  if (existing) return duplicate(existing);
  const s = c.submit;
  const task: TaskRecord = {
    v: 1,
    id: c.id,
    title: s.title,
    description: s.description,
    priority: s.priority,
    queue: s.queue,
    capabilities: [...s.capabilities],
    maxRetries: s.maxRetries,
    backoff: { ...s.backoff },
    status: 'queued',
    assignee: null,
    generation: 0,
    retryCount: 0,
    createdAt: now,
    assignedAt: null,
    acceptedAt: null,
    lastProgressAt: null,
    blockedAt: null,
    completedAt: null,
    result: null,
    error: null,
    tokensUsed: 0,
    assignmentTokens: 0,
    progress: null,
    lastReport: null,
    flaggedAgents: [],
    history: [],
  };
  if (s.completeBy !== undefined) task.completeBy = s.completeBy;
  if (s.notBefore !== undefined) task.notBefore = s.notBefore;
  if (s.idempotencyKey !== undefined) task.idempotencyKey = s.idempotencyKey;
  if (s.metadata !== undefined) task.metadata = s.metadata;
  if (s.submittedBy !== undefined) task.submittedBy = s.submittedBy;
  const at = Math.max(now, s.notBefore ?? now);
  const created = withHistory(task, cfg, {
    at: now,
    from: null,
    to: 'queued',
    generation: 0,
    by: s.submittedBy ?? 'hub',
    ...(at > now ? { reason: 'delayed' } : {}),
  });
  return ok(created, [{ type: 'enqueue', taskId: task.id, at }]);
}

function assign(
  task: TaskRecord,
  c: Extract<TaskCommand, { type: 'assign' }>,
  now: number,
  cfg: TaskQueueConfig,
): TaskCommandResult {
  if (c.generation !== undefined) {
    if (c.generation === task.generation && task.assignee === c.agentId && isActive(task.status))
      return duplicate(task);
    if (c.generation !== task.generation + 1)
      return refuse(
        ERROR_CODES.STALE_GENERATION,
        `assign expected generation ${c.generation}, task is at ${task.generation}`,
      );
  }
  if (task.status !== 'queued') return invalid(task, 'assign');
  if (task.notBefore !== undefined && task.notBefore > now)
    return refuse(ERROR_CODES.INVALID_STATE, `task ${task.id} is delayed until ${task.notBefore}`);
  const generation = task.generation + 1;
  const next = transition(
    withoutSession(task),
    cfg,
    now,
    'assigned',
    'hub',
    undefined,
    {
      assignee: c.agentId,
      generation,
      assignedAt: now,
      acceptedAt: null,
      lastProgressAt: null,
      blockedAt: null,
      assignmentTokens: 0,
      progress: null,
    },
    c.agentId,
  );
  return ok(next, [{ type: 'deliver_assign', agentId: c.agentId, taskId: task.id, generation }]);
}

function cancel(
  task: TaskRecord,
  c: Extract<TaskCommand, { type: 'cancel' }>,
  now: number,
  cfg: TaskQueueConfig,
): TaskCommandResult {
  if (task.status === 'cancelled') return duplicate(task);
  if (isTerminal(task.status)) return invalid(task, 'cancel');
  const reason = clip(c.reason ?? 'cancelled');
  const effects: TaskEffect[] = [];
  if (isActive(task.status) && task.assignee !== null) effects.push(...closeAssignment(task, reason));
  else effects.push({ type: 'unschedule', taskId: task.id });
  const next = transition(task, cfg, now, 'cancelled', c.by ?? 'hub', reason, {
    completedAt: now,
    blockedAt: null,
  });
  effects.push({ type: 'finished', taskId: task.id, status: 'cancelled' });
  return ok(next, effects);
}

function retry(
  task: TaskRecord,
  c: Extract<TaskCommand, { type: 'retry' }>,
  now: number,
  cfg: TaskQueueConfig,
): TaskCommandResult {
  if (task.status !== 'dead' && task.status !== 'failed' && task.status !== 'cancelled')
    return invalid(task, 'retry');
  const next = transition(task, cfg, now, 'queued', c.by ?? 'hub', 'manual retry', {
    assignee: null,
    retryCount: 0,
    completedAt: null,
    blockedAt: null,
    result: null,
    error: null,
    progress: null,
  });
  delete next.notBefore;
  return ok(next, [{ type: 'enqueue', taskId: task.id, at: now }]);
}

function reclaim(
  task: TaskRecord,
  c: Extract<TaskCommand, { type: 'reclaim' }>,
  now: number,
  cfg: TaskQueueConfig,
): TaskCommandResult {
  if (c.generation !== undefined && c.generation !== task.generation)
    return refuse(
      ERROR_CODES.STALE_GENERATION,
      `reclaim of generation ${c.generation}, task is at ${task.generation}`,
    );
  if (c.reason === 'overdue') {
    if (task.completeBy === undefined || now < task.completeBy)
      return refuse(ERROR_CODES.INVALID_STATE, `task ${task.id} is not past its deadline`);
    if (task.status !== 'queued' && !isActive(task.status)) return invalid(task, 'reclaim overdue');
    const effects: TaskEffect[] =
      isActive(task.status) && task.assignee !== null
        ? closeAssignment(task, 'deadline passed')
        : [{ type: 'unschedule', taskId: task.id }];
    const error: TaskError = { code: 'timeout', message: `deadline ${task.completeBy} passed` };
    const next = transition(task, cfg, now, 'failed', 'hub', 'overdue', {
      error,
      completedAt: now,
      blockedAt: null,
    });
    effects.push({ type: 'finished', taskId: task.id, status: 'failed' });
    return ok(next, effects);
  }
  const allowed: Record<Exclude<ReclaimReason, 'overdue'>, TaskStatus[]> = {
    agent_offline: ['assigned', 'working', 'blocked'],
    not_held: ['working', 'blocked'],
    accept_timeout: ['assigned'],
    stuck: ['working'],
    blocked_timeout: ['blocked'],
  };
  if (!allowed[c.reason].includes(task.status) || task.assignee === null)
    return invalid(task, `reclaim ${c.reason}`);
  const agentId = task.assignee;
  const effects = closeAssignment(task, c.reason);
  let fenced: TaskRecord = { ...task, generation: task.generation + 1 };
  if (c.reason === 'accept_timeout' || c.reason === 'stuck') {
    fenced = flag(fenced, agentId);
    effects.push({ type: 'flag_agent', agentId, taskId: task.id, reason: c.reason });
  }
  const error: TaskError = { code: c.reason, message: `reclaimed: ${c.reason}` };
  return requeueOrDead(fenced, cfg, now, 'hub', c.reason, error, now, effects);
}

// --- Agent reports ---

type ReportCommand = Exclude<TaskCommand, { type: 'submit' | 'assign' | 'cancel' | 'retry' | 'reclaim' }>;

const CLOSING_REPORT = { complete: 'completed', fail: 'failed', reject: 'rejected' } as const;

function report(task: TaskRecord, c: ReportCommand, now: number, cfg: TaskQueueConfig): TaskCommandResult {
  const closing = c.type in CLOSING_REPORT ? CLOSING_REPORT[c.type as keyof typeof CLOSING_REPORT] : null;
  const lr = task.lastReport;
  if (closing && lr && lr.type === closing && lr.agentId === c.agentId && lr.generation === c.generation)
    return duplicate(task);
  if (c.generation < task.generation)
    return refuse(
      ERROR_CODES.STALE_GENERATION,
      `report for generation ${c.generation} refused: task ${task.id} is at generation ${task.generation}`,
    );
  if (c.generation > task.generation)
    return refuse(
      ERROR_CODES.INVALID_STATE,
      `report for unknown generation ${c.generation} (task ${task.id} is at ${task.generation})`,
    );
  if (task.assignee !== c.agentId)
    return refuse(
      ERROR_CODES.FORBIDDEN,
      `agent ${c.agentId} does not hold task ${task.id} (assignee: ${task.assignee ?? 'none'})`,
    );
  if (!isActive(task.status)) return invalid(task, c.type);

  // The session that reports holds the assignment now (a restarted sidecar's `recovering`, say).
  const newSession = c.session !== undefined && c.session !== task.session && c.type !== 'reject';
  const held: TaskRecord = newSession ? { ...task, session: c.session } : task;
  // Implicit accept: a report about an assignment proves the agent has it.
  const accepted: TaskRecord =
    task.status === 'assigned' && c.type !== 'reject' && c.type !== 'accept' && c.type !== 'recovering'
      ? { ...held, acceptedAt: now, lastProgressAt: now }
      : held;

  switch (c.type) {
    case 'accept': {
      if (task.status !== 'assigned') return newSession ? ok(held, []) : duplicate(task);
      return ok(
        transition(held, cfg, now, 'working', c.agentId, undefined, { acceptedAt: now, lastProgressAt: now }),
        [],
      );
    }
    case 'recovering':
      return ok({ ...held, lastProgressAt: now }, []);
    case 'progress': {
      const progress: TaskRecord['progress'] = {};
      if (c.pct !== undefined) progress.pct = c.pct;
      if (c.message !== undefined) progress.message = c.message;
      const base = { ...withTokens(accepted, c.tokensUsed), lastProgressAt: now, progress };
      return ok(
        task.status === 'assigned' ? transition(base, cfg, now, 'working', c.agentId, 'progress') : base,
        [],
      );
    }
    case 'block': {
      if (task.status === 'blocked') return newSession ? ok(held, []) : duplicate(task);
      return ok(
        transition(accepted, cfg, now, 'blocked', c.agentId, clip(c.reason), {
          blockedAt: now,
          lastProgressAt: now,
        }),
        [],
      );
    }
    case 'unblock': {
      if (task.status !== 'blocked') {
        if (task.status === 'working') return newSession ? ok(held, []) : duplicate(task);
        return invalid(task, 'unblock');
      }
      return ok(
        transition(held, cfg, now, 'working', c.agentId, undefined, { blockedAt: null, lastProgressAt: now }),
        [],
      );
    }
    case 'complete': {
      const next = transition(withTokens(accepted, c.tokensUsed), cfg, now, 'done', c.agentId, undefined, {
        result: c.result ?? null,
        completedAt: now,
        blockedAt: null,
        error: null,
        lastReport: { type: 'completed', agentId: c.agentId, generation: c.generation },
      });
      return ok(next, [release(task), { type: 'finished', taskId: task.id, status: 'done' }]);
    }
    case 'fail': {
      const error: TaskError = { code: c.error.code ?? 'agent_error', message: c.error.message };
      const closed: TaskRecord = flag(
        {
          ...withTokens(accepted, c.tokensUsed),
          lastReport: { type: 'failed', agentId: c.agentId, generation: c.generation },
        },
        c.agentId,
      );
      if (!c.retryable) {
        const next = transition(closed, cfg, now, 'failed', c.agentId, clip(error.message), {
          error,
          completedAt: now,
          blockedAt: null,
        });
        return ok(next, [release(task), { type: 'finished', taskId: task.id, status: 'failed' }]);
      }
      return requeueOrDead(closed, cfg, now, c.agentId, clip(error.message), error, null, [release(task)]);
    }
    case 'reject': {
      if (task.status !== 'assigned') return invalid(task, 'reject');
      const closed = flag(
        { ...task, lastReport: { type: 'rejected', agentId: c.agentId, generation: c.generation } },
        c.agentId,
      );
      const error: TaskError = { code: 'rejected', message: c.reason };
      return requeueOrDead(closed, cfg, now, c.agentId, clip(`rejected: ${c.reason}`), error, null, [
        release(task),
        { type: 'flag_agent', agentId: c.agentId, taskId: task.id, reason: clip(`rejected: ${c.reason}`) },
      ]);
    }
  }
}

// --- Helpers ---

/**
 * Consume one retry: back to `queued` (eligible at `at`, or after backoff when `at` is null), or to
 * `dead` when none are left.
 */
function requeueOrDead(
  task: TaskRecord,
  cfg: TaskQueueConfig,
  now: number,
  by: string,
  reason: string,
  error: TaskError,
  at: number | null,
  effects: TaskEffect[],
): TaskCommandResult {
  if (task.retryCount >= task.maxRetries) {
    const next = transition(task, cfg, now, 'dead', by, reason, { error, completedAt: now, blockedAt: null });
    effects.push(
      { type: 'dead_lettered', taskId: task.id, reason },
      { type: 'finished', taskId: task.id, status: 'dead' },
    );
    return ok(next, effects);
  }
  const retryCount = task.retryCount + 1;
  const u = cfg.random ? cfg.random() : hashUnit(`${task.id}:${retryCount}`);
  const when = at ?? now + backoffDelay(task.backoff, retryCount, u, cfg.jitterRatio);
  const next = transition(withoutSession(task), cfg, now, 'queued', by, reason, {
    assignee: null,
    retryCount,
    error,
    blockedAt: null,
    progress: null,
    notBefore: when,
  });
  effects.push({ type: 'enqueue', taskId: task.id, at: when });
  return ok(next, effects);
}

/** Effects that end the open assignment from the hub's side: tell the agent, free its slot. */
function closeAssignment(task: TaskRecord, reason: string): TaskEffect[] {
  if (task.assignee === null) return [];
  return [
    { type: 'notify_cancel', agentId: task.assignee, taskId: task.id, generation: task.generation, reason },
    release(task),
  ];
}

function release(task: TaskRecord): TaskEffect {
  return { type: 'release', agentId: task.assignee!, taskId: task.id, generation: task.generation };
}

function transition(
  task: TaskRecord,
  cfg: TaskQueueConfig,
  now: number,
  to: TaskStatus,
  by: string,
  reason: string | undefined,
  patch: Partial<TaskRecord> = {},
  agent?: AgentId,
): TaskRecord {
  const next: TaskRecord = { ...task, ...patch, status: to };
  return withHistory(next, cfg, {
    at: now,
    from: task.status,
    to,
    generation: next.generation,
    by,
    ...(reason !== undefined ? { reason: clip(reason) } : {}),
    ...(agent !== undefined ? { agent } : {}),
  });
}

/** The task without the session of an assignment that has ended. */
function withoutSession(task: TaskRecord): TaskRecord {
  if (task.session === undefined) return task;
  const { session: _ended, ...rest } = task;
  return rest;
}

function withHistory(task: TaskRecord, cfg: TaskQueueConfig, entry: HistoryEntry): TaskRecord {
  const limit = Math.max(1, Math.min(cfg.historyLimit, HISTORY_MAX));
  const history = [...task.history, entry];
  return { ...task, history: history.length > limit ? history.slice(history.length - limit) : history };
}

/** Reports carry cumulative tokens for the assignment; add only the increase (idempotent on redelivery). */
function withTokens(task: TaskRecord, reported: number | undefined): TaskRecord {
  if (reported === undefined || reported <= task.assignmentTokens) return task;
  return {
    ...task,
    tokensUsed: task.tokensUsed + (reported - task.assignmentTokens),
    assignmentTokens: reported,
  };
}

function flag(task: TaskRecord, agentId: AgentId): TaskRecord {
  const list = [...task.flaggedAgents.filter((a) => a !== agentId), agentId];
  return { ...task, flaggedAgents: list.slice(-FLAGGED_MAX) };
}

function ok(task: TaskRecord, effects: TaskEffect[]): TaskCommandResult {
  return { ok: true, task, effects, duplicate: false };
}

function duplicate(task: TaskRecord): TaskCommandResult {
  return { ok: true, task, effects: [], duplicate: true };
}

function refuse(code: WireError['code'], message: string): TaskCommandResult {
  return { ok: false, error: { code, message } };
}

function invalid(task: TaskRecord, what: string): TaskCommandResult {
  return refuse(ERROR_CODES.INVALID_STATE, `cannot ${what} task ${task.id} in status ${task.status}`);
}

function clip(s: string): string {
  return s.length > REASON_MAX ? s.slice(0, REASON_MAX) : s;
}

/** FNV-1a of `s` mapped to [0, 1): deterministic jitter that still spreads retries of different tasks. */
function hashUnit(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 2 ** 32;
}
