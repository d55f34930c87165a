/**
 * @module scheduler/lifeline
 * The one place that decides when an open assignment is taken back from its agent (Oban's Lifeline
 * is the model). Pure: task records and what presence heard from the agent go in, reclaims come
 * out; the scheduler process asks the TaskQueue to apply them (`reclaim`, fenced by generation, so
 * a reclaim decided on a record that has moved on changes nothing). The AgentFSM only mirrors the
 * outcome. What it rescues, and when:
 *
 *   agent_offline    every open assignment (assigned, working, blocked) of an agent that went
 *                    offline: `missedBeats` heartbeat intervals of silence, a goodbye, or removal.
 *                    At once, when presence reports the agent down (the scheduler process).
 *   not_held         an accepted assignment (working, blocked) that the agent's live session says it
 *                    does not hold (hello `holding`, heartbeat `running`) and has not just finished
 *                    (heartbeat `finished`). At once when the task was last reported by another
 *                    session of the agent: the process that held it is gone. Otherwise once the
 *                    task's last sign of life is `graceMs` old, the time an outcome report may
 *                    still be on its way (agents that send no session or no `finished` list).
 *   accept_timeout   `assigned` for `acceptTimeoutMs` without an accept (the sweep, every
 *                    `sweepIntervalMs`); the agent is flagged.
 *   stuck            `working` with no sign of life (accept, progress, unblock) for
 *                    `progressTimeoutMs` (the sweep); the agent is flagged.
 *   blocked_timeout  `blocked` for `blockedTimeoutMs` (the sweep).
 *   overdue          past `completeBy`, queued or open: fails the task with code `timeout` (the sweep).
 *
 * Not rescued here: an assignment still `assigned` that a live session does not hold. Its inbox
 * message is still on the agent's durable: a new session gets it redelivered at once (presence asks
 * the server when the session says hello), and `accept_timeout` is the net behind that.
 * The timeouts are the safety net; the first two rows are the recovery path after faults the hub
 * can see. The ones a report ends (accept_timeout, stuck, blocked_timeout) count to `heard`, the
 * time through which the hub has applied every report its agents sent, not to now: a hub behind on
 * its own reports (they wait unread in the stream while it is overloaded) would otherwise reclaim
 * tasks whose accept it has not read yet, refuse that accept when it comes, and assign again,
 * which loads it more; a bench:scale run dead-lettered 8,022 tasks out of retries that way.
 */
import { isActive, type TaskRecord } from '../../src/protocol/task.js';
import type { ReclaimReason } from '../task-queue/index.js';

export interface SweepTimeouts {
  /** An `assigned` task not accepted within this many ms is reclaimed (accept_timeout). */
  acceptTimeoutMs: number;
  /** A `working` task with no sign of life within this many ms is reclaimed (stuck). */
  progressTimeoutMs: number;
  /** A `blocked` task still blocked after this many ms may be reassigned (blocked_timeout). */
  blockedTimeoutMs: number;
}

/**
 * How far behind now `heard` may hold the report-driven timeouts. The reports consumer's progress
 * stands still while one report waits for a later retry (src/bus/consumer-progress.ts), and the
 * safety net must still close in the end.
 */
export const MAX_UNREAD_WAIT_MS = 5 * 60_000;

/**
 * The time the report-driven timeouts count to: `readThrough` (every report sent before it is
 * applied), but never later than now nor more than MAX_UNREAD_WAIT_MS before it.
 */
export function heardAt(now: number, readThrough: number): number {
  return Math.min(now, Math.max(readThrough, now - MAX_UNREAD_WAIT_MS));
}

/**
 * Which timeout reclaim, if any, the sweep applies to this task now. Overdue wins. `heard`
 * (heardAt; now when the hub does not follow its reports) is what the report-driven ones count to.
 */
export function sweepReason(
  task: TaskRecord,
  now: number,
  t: SweepTimeouts,
  heard: number = now,
): ReclaimReason | null {
  if (
    task.completeBy !== undefined &&
    now >= task.completeBy &&
    (task.status === 'queued' || isActive(task.status))
  )
    return 'overdue';
  if (task.status === 'assigned' && task.assignedAt !== null && heard - task.assignedAt >= t.acceptTimeoutMs)
    return 'accept_timeout';
  if (task.status === 'working') {
    if (heard - lastSignOfLife(task) >= t.progressTimeoutMs) return 'stuck';
  }
  if (task.status === 'blocked' && task.blockedAt !== null && heard - task.blockedAt >= t.blockedTimeoutMs)
    return 'blocked_timeout';
  return null;
}

/** What an agent's live session said it holds, as presence heard it. */
export interface SessionView {
  /** The session (undefined for agents that do not send one). */
  session?: string | undefined;
  /** Tasks it holds (hello `holding` or heartbeat `running`). */
  holding: ReadonlySet<string>;
  /** Tasks it finished lately (heartbeat `finished`); their outcome may still be on its way. */
  finished: ReadonlySet<string>;
  /** Hub time at which presence heard it. */
  at: number;
}

/**
 * The accepted assignments among `tasks` (the open tasks assigned to one agent) that the agent's
 * live session does not hold: reclaim each with reason `not_held`.
 */
export function notHeld(tasks: Iterable<TaskRecord>, view: SessionView, graceMs: number): TaskRecord[] {
  const out: TaskRecord[] = [];
  for (const t of tasks) {
    if (t.status !== 'working' && t.status !== 'blocked') continue;
    if (view.holding.has(t.id) || view.finished.has(t.id)) continue;
    const otherSession = view.session !== undefined && t.session !== undefined && t.session !== view.session;
    if (otherSession || view.at - lastSignOfLife(t) >= graceMs) out.push(t);
  }
  return out;
}

function lastSignOfLife(t: TaskRecord): number {
  return t.lastProgressAt ?? t.acceptedAt ?? t.assignedAt ?? t.createdAt;
}
