/**
 * @module alerts/conditions
 * What each alert rule measures, and whether its condition holds, from one observation of the hub
 * (every task record, every registered agent, the DLQ's total) and a short history of earlier
 * observations. Pure: no clock, no I/O; the process gathers the observation.
 *
 * The history lives in the memory of the hub holding the lease: after a failover the rules that
 * compare with the past (queue_growing, high_error_rate) say nothing (`null`, the alert keeps its
 * state) until the new leader has watched for a whole window. A rule whose inputs are missing is
 * `null` too, never "ok".
 */
import type { AlertRule, AlertRuleConfigs } from '../../src/protocol/alert.js';
import type { TaskRecord } from '../../src/protocol/task.js';

/** The parts of a task record the rules read. */
export type TaskFacts = Pick<
  TaskRecord,
  | 'id'
  | 'status'
  | 'queue'
  | 'capabilities'
  | 'notBefore'
  | 'assignedAt'
  | 'acceptedAt'
  | 'lastProgressAt'
  | 'completedAt'
>;

export interface AgentFacts {
  id: string;
  online: boolean;
  queues: readonly string[];
  capabilities: readonly string[];
}

export interface Observation {
  at: number;
  /** Every task record (null: the TaskQueue did not answer). */
  tasks: readonly TaskFacts[] | null;
  /** Every registered agent (null: Presence did not answer). */
  agents: readonly AgentFacts[] | null;
  /** Messages ever added to the DLQ (its stream's last sequence); null when unknown. */
  deadLetters: number | null;
}

/** One earlier observation, reduced to what the windowed rules compare with. */
export interface Point {
  at: number;
  /** Due queued tasks; null when unknown. */
  queued: number | null;
  deadLetters: number | null;
}

export interface Condition {
  holds: boolean;
  /** What was measured, in the threshold's unit. */
  value: number;
  threshold: number;
  message: string;
}

export type Conditions = Record<AlertRule, Condition | null>;

/** The most points kept, whatever the windows (a 100 ms sample over an hour would be 36,000). */
export const HISTORY_MAX = 5_000;

/** A queued task that may be assigned now (a delayed one is not a backlog yet). */
const isDue = (t: TaskFacts, now: number) => t.status === 'queued' && (t.notBefore ?? 0) <= now;

/** The point an observation adds to the history. */
export function pointOf(o: Observation): Point {
  return {
    at: o.at,
    queued: o.tasks ? o.tasks.reduce((n, t) => (isDue(t, o.at) ? n + 1 : n), 0) : null,
    deadLetters: o.deadLetters,
  };
}

/** How far back the rules look: the longest window, plus a little. */
export function historyKeepMs(rules: AlertRuleConfigs): number {
  return Math.max(rules.queue_growing.windowMs, rules.high_error_rate.windowMs) * 1.1 + 1_000;
}

/** The history with `point` added and what is older than `keepMs` (but the newest such) dropped. */
export function remember(history: readonly Point[], point: Point, keepMs: number): Point[] {
  const out = [...history, point];
  const horizon = point.at - keepMs;
  // Keep one point at or before the horizon: it is the baseline of a window that long.
  let first = 0;
  while (first + 1 < out.length && out[first + 1]!.at <= horizon) first++;
  return out.slice(Math.max(first, out.length - HISTORY_MAX));
}

/** The newest point at least `windowMs` old with `field` known, or null when the history is shorter. */
function baseline(
  history: readonly Point[],
  now: number,
  windowMs: number,
  field: 'queued' | 'deadLetters',
): (Point & Record<typeof field, number>) | null {
  for (let i = history.length - 1; i >= 0; i--) {
    const p = history[i]!;
    if (p.at <= now - windowMs && p[field] !== null) return p as Point & Record<typeof field, number>;
  }
  return null;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const round = (x: number) => Math.round(x * 100) / 100;
const duration = (ms: number) =>
  ms % 60_000 === 0 ? `${ms / 60_000} min` : ms % 1_000 === 0 ? `${ms / 1_000} s` : `${ms} ms`;

// --- The rules ---

function queueGrowing(now: number, history: readonly Point[], c: AlertRuleConfigs['queue_growing']) {
  const current = history[history.length - 1];
  const base = baseline(history, now, c.windowMs, 'queued');
  if (!current || current.queued === null || !base) return null;
  const growth = current.queued - base.queued;
  return {
    holds: growth >= c.growthTasks,
    value: growth,
    threshold: c.growthTasks,
    message: `queued tasks grew by ${growth} in ${duration(now - base.at)} (${base.queued} -> ${current.queued})`,
  };
}

function highFailureRate(o: Observation, c: AlertRuleConfigs['high_failure_rate']): Condition | null {
  if (!o.tasks) return null;
  let finished = 0;
  let failed = 0;
  for (const t of o.tasks) {
    if (t.completedAt === null || t.completedAt < o.at - c.windowMs) continue;
    if (t.status === 'done') finished++;
    else if (t.status === 'failed' || t.status === 'dead') {
      finished++;
      failed++;
    }
  }
  const ratio = finished ? round(failed / finished) : 0;
  return {
    holds: finished >= c.minFinished && ratio >= c.failureRatio,
    value: ratio,
    threshold: c.failureRatio,
    message: `${failed} of ${plural(finished, 'task')} finished in the last ${duration(c.windowMs)} failed (${Math.round(ratio * 100)}%)`,
  };
}

/** A working task silent for noProgressMs, or an assigned one not accepted for assignedMs. */
export function isStuck(t: TaskFacts, now: number, c: AlertRuleConfigs['stuck_tasks']): boolean {
  if (t.status === 'assigned') return t.assignedAt !== null && now - t.assignedAt >= c.assignedMs;
  if (t.status !== 'working') return false;
  const lastSign = t.lastProgressAt ?? t.acceptedAt ?? t.assignedAt;
  return lastSign !== null && now - lastSign >= c.noProgressMs;
}

function stuckTasks(o: Observation, c: AlertRuleConfigs['stuck_tasks']): Condition | null {
  if (!o.tasks) return null;
  const stuck = o.tasks.filter((t) => isStuck(t, o.at, c));
  return {
    holds: stuck.length >= c.minTasks,
    value: stuck.length,
    threshold: c.minTasks,
    message: stuck.length
      ? `${plural(stuck.length, 'task')} stuck (working without progress for ${duration(c.noProgressMs)}, or assigned and not accepted for ${duration(c.assignedMs)}): ${examples(stuck.map((t) => t.id))}`
      : 'no task stuck',
  };
}

function noAgentsOnline(o: Observation, c: AlertRuleConfigs['no_agents_online']): Condition | null {
  if (!o.tasks || !o.agents) return null;
  const online = o.agents.filter((a) => a.online).length;
  const queued = o.tasks.reduce((n, t) => (isDue(t, o.at) ? n + 1 : n), 0);
  return {
    holds: online === 0 && queued >= c.minQueued,
    value: queued,
    threshold: c.minQueued,
    message: online
      ? `${plural(online, 'agent')} online`
      : `no agent online (${plural(o.agents.length, 'agent')} registered); ${plural(queued, 'task')} queued`,
  };
}

function highErrorRate(
  o: Observation,
  history: readonly Point[],
  c: AlertRuleConfigs['high_error_rate'],
): Condition | null {
  const base = baseline(history, o.at, c.windowMs, 'deadLetters');
  if (o.deadLetters === null || !base) return null;
  // A DLQ stream made again (restore, re-provision) counts from zero: what it holds is what was added.
  const added = o.deadLetters >= base.deadLetters ? o.deadLetters - base.deadLetters : o.deadLetters;
  const perMinute = round(added / ((o.at - base.at) / 60_000));
  return {
    holds: perMinute >= c.deadLettersPerMinute,
    value: perMinute,
    threshold: c.deadLettersPerMinute,
    message: `${plural(added, 'message')} dead-lettered in ${duration(o.at - base.at)} (${perMinute}/min)`,
  };
}

/** Whether an agent may ever take the task: the scheduler's match (queue served, capabilities a subset). */
const canServe = (a: AgentFacts, queue: string, caps: readonly string[]) =>
  a.queues.includes(queue) && caps.every((c) => a.capabilities.includes(c));

function unservableTasks(o: Observation, c: AlertRuleConfigs['unservable_tasks']): Condition | null {
  if (!o.tasks || !o.agents) return null;
  const online = o.agents.filter((a) => a.online);
  if (!online.length)
    return {
      holds: false,
      value: 0,
      threshold: c.minTasks,
      message: 'no agent online (see no_agents_online)',
    };
  // One check per distinct (queue, capabilities) among the due tasks, not one per task.
  const bySignature = new Map<string, { queue: string; caps: readonly string[]; ids: string[] }>();
  for (const t of o.tasks) {
    if (!isDue(t, o.at)) continue;
    const caps = [...t.capabilities].sort();
    const sig = `${t.queue}\n${caps.join('\n')}`;
    const g = bySignature.get(sig) ?? { queue: t.queue, caps, ids: [] };
    g.ids.push(t.id);
    bySignature.set(sig, g);
  }
  const unservable = [...bySignature.values()].filter(
    (g) => !online.some((a) => canServe(a, g.queue, g.caps)),
  );
  const count = unservable.reduce((n, g) => n + g.ids.length, 0);
  const what = unservable
    .slice(0, 3)
    .map((g) => `queue ${g.queue}${g.caps.length ? ` needing [${g.caps.join(', ')}]` : ''} (${g.ids.length})`)
    .join('; ');
  return {
    holds: count >= c.minTasks,
    value: count,
    threshold: c.minTasks,
    message: count
      ? `${plural(count, 'queued task')} no online agent can take: ${what}${unservable.length > 3 ? '; ...' : ''}`
      : 'every queued task has an online agent that can take it',
  };
}

function examples(ids: readonly string[]): string {
  return ids.length > 3 ? `${ids.slice(0, 3).join(', ')}, ...` : ids.join(', ');
}

/**
 * Every rule's condition now. `history` must end with this observation's point (see {@link remember}).
 * A rule that cannot be measured (inputs missing, history shorter than its window) is null.
 */
export function measure(o: Observation, history: readonly Point[], rules: AlertRuleConfigs): Conditions {
  return {
    queue_growing: queueGrowing(o.at, history, rules.queue_growing),
    high_failure_rate: highFailureRate(o, rules.high_failure_rate),
    stuck_tasks: stuckTasks(o, rules.stuck_tasks),
    no_agents_online: noAgentsOnline(o, rules.no_agents_online),
    high_error_rate: highErrorRate(o, history, rules.high_error_rate),
    unservable_tasks: unservableTasks(o, rules.unservable_tasks),
  };
}
