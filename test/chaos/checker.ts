/**
 * The chaos suite's checker: a pure function from a recorded history and the final task records to
 * a verdict. Violations (any one fails the run):
 *   lost          a submission acknowledged to the producer whose task is missing or not done;
 *   doubled       a task that entered `done` more than once (two completions applied);
 *   stale_applied an agent's transition applied for a generation that was not the agent's current
 *                 assignment (an assignment to another agent, or one already reclaimed);
 *   not_terminal  a task that is not finished at the end.
 * And figures, which say how well the system recovered: re-executions split by cause, how long
 * dead or stalled agents' slots held work before the hub took it back, task latency, recovery
 * after each hub and NATS fault, time from the last fault to the last completion, and how many
 * assignments waited for a timeout reclaim.
 */
import type { HistoryEntry, TaskRecord } from '../../src/protocol/task.js';
import type { HistoryEvent } from './history.js';

export interface Violation {
  kind: 'lost' | 'doubled' | 'stale_applied' | 'not_terminal';
  taskId: string;
  detail: string;
}

export interface Distribution {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export interface ChaosReport {
  ok: boolean;
  violations: Violation[];
  tasks: { submitted: number; records: number; byStatus: Record<string, number> };
  /** Handler starts beyond the first per task, by cause. */
  reexecutions: { total: number; byCause: Record<string, number> };
  /** Per assignment held by an agent when it was killed or stalled: ms until the hub took it back or it finished. */
  blockedSlotMs: Distribution & { total: number };
  /** Submit (record created) -> done. */
  latencyMs: Distribution;
  /** Per fault: ms from its start to the first assignment written after it. */
  recoveryMs: { hubKill: number[]; hubStall: number[]; natsKill: number[] };
  /** The last completion, ms after the last fault ended. */
  drainAfterLastFaultMs: number;
  /** Reclaims that had to wait for a timeout. */
  timeoutReclaims: Record<string, number>;
  refusedReports: number;
  notices: number;
}

const TERMINAL = new Set(['done', 'failed', 'dead', 'cancelled']);
const TIMEOUT_REASONS = ['accept_timeout', 'stuck', 'blocked_timeout'];

export function checkHistory(events: readonly HistoryEvent[], records: readonly TaskRecord[]): ChaosReport {
  const violations: Violation[] = [];
  const byId = new Map<string, TaskRecord>(records.map((r) => [r.id, r]));
  const byStatus: Record<string, number> = {};
  for (const r of records) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;

  // Lost / not terminal / doubled / stale applied.
  const submitted = new Map<string, string>();
  for (const e of events) if (e.kind === 'submit') submitted.set(e.key, e.taskId);
  for (const [key, taskId] of submitted) {
    const r = byId.get(taskId);
    if (!r) violations.push({ kind: 'lost', taskId, detail: `submission ${key} has no task record` });
    else if (r.status !== 'done' && TERMINAL.has(r.status))
      violations.push({
        kind: 'lost',
        taskId,
        detail: `submission ${key} ended ${r.status}: ${r.error?.message ?? ''}`,
      });
  }
  for (const r of records) {
    if (!TERMINAL.has(r.status))
      violations.push({ kind: 'not_terminal', taskId: r.id, detail: `still ${r.status}` });
    const dones = r.history.filter((h) => h.to === 'done').length;
    if (dones > 1) violations.push({ kind: 'doubled', taskId: r.id, detail: `entered done ${dones} times` });
    for (const v of staleEntries(r.history))
      violations.push({ kind: 'stale_applied', taskId: r.id, detail: v });
  }

  // Re-executions, by cause.
  const starts = groupBy(
    events.filter((e): e is Extract<HistoryEvent, { kind: 'start' }> => e.kind === 'start'),
    (e) => e.taskId,
  );
  const exits = events.filter((e): e is Extract<HistoryEvent, { kind: 'exit' }> => e.kind === 'exit');
  const finishes = events.filter((e): e is Extract<HistoryEvent, { kind: 'finish' }> => e.kind === 'finish');
  const byCause: Record<string, number> = {};
  let reexecutions = 0;
  for (const [taskId, list] of starts) {
    list.sort((a, b) => a.t - b.t);
    for (let i = 1; i < list.length; i++) {
      const s = list[i]!;
      const earlier = list.slice(0, i);
      const same = earlier.filter((p) => p.generation === s.generation);
      let cause: string;
      if (earlier.some((p) => p.generation > s.generation)) {
        // An assignment already superseded, delivered from the inbox of a restarted agent before
        // the cancel behind it: started, then stopped by that cancel.
        cause = 'stale_assignment_delivered_late';
      } else if (same.length > 0) {
        const prev = same[same.length - 1]!;
        const died = exits.some(
          (x) => x.proc === prev.proc && x.t >= prev.t && x.t <= s.t && x.signal !== null,
        );
        cause = died ? 'same_assignment_after_agent_killed' : 'same_assignment_redelivered';
      } else {
        cause = `reassigned_after_${requeueReason(byId.get(taskId), s.generation)}`;
      }
      byCause[cause] = (byCause[cause] ?? 0) + 1;
      reexecutions++;
    }
  }

  // Slots of killed or stalled agents.
  const blocked: number[] = [];
  for (const f of events) {
    if (f.kind !== 'fault' || f.phase !== 'start' || f.skipped) continue;
    if (f.fault.kind !== 'kill_agent' && f.fault.kind !== 'stall_agent') continue;
    const tk = f.t;
    for (const [taskId, list] of starts) {
      for (const s of list) {
        if (s.proc !== f.target || s.t > tk) continue;
        const finished = finishes.some(
          (x) => x.proc === s.proc && x.taskId === taskId && x.generation === s.generation && x.t <= tk,
        );
        if (finished) continue;
        const r = byId.get(taskId);
        const left = r?.history.find(
          (h) => h.at >= tk && h.generation >= s.generation && (h.to === 'queued' || TERMINAL.has(h.to)),
        );
        if (left) blocked.push(left.at - tk);
      }
    }
  }

  // Recovery after hub and NATS faults: the first assignment written after the fault started.
  const assignTimes = records
    .flatMap((r) => r.history.filter((h) => h.to === 'assigned').map((h) => h.at))
    .sort((a, b) => a - b);
  const firstAssignAfter = (t: number) => assignTimes.find((x) => x > t);
  const recoveryMs = { hubKill: [] as number[], hubStall: [] as number[], natsKill: [] as number[] };
  let lastFaultEnd = 0;
  for (const f of events) {
    if (f.kind !== 'fault' || f.skipped) continue;
    if (f.phase === 'end') lastFaultEnd = Math.max(lastFaultEnd, f.t);
    if (f.phase !== 'start') continue;
    if (f.fault.kind === 'report_burst') lastFaultEnd = Math.max(lastFaultEnd, f.t);
    const key =
      f.fault.kind === 'kill_hub' && f.fault.role === 'leader'
        ? 'hubKill'
        : f.fault.kind === 'stall_hub'
          ? 'hubStall'
          : f.fault.kind === 'kill_nats'
            ? 'natsKill'
            : null;
    if (!key) continue;
    const next = firstAssignAfter(f.t);
    if (next !== undefined) recoveryMs[key].push(next - f.t);
  }

  const latencies = records
    .filter((r) => r.status === 'done' && r.completedAt !== null)
    .map((r) => r.completedAt! - r.createdAt);
  const lastDone = Math.max(0, ...records.map((r) => r.completedAt ?? 0));
  const timeoutReclaims: Record<string, number> = {};
  for (const reason of TIMEOUT_REASONS) timeoutReclaims[reason] = 0;
  for (const r of records)
    for (const h of r.history)
      if (h.reason && TIMEOUT_REASONS.includes(h.reason)) timeoutReclaims[h.reason]!++;

  return {
    ok: violations.length === 0,
    violations,
    tasks: { submitted: submitted.size, records: records.length, byStatus },
    reexecutions: { total: reexecutions, byCause },
    blockedSlotMs: { ...distribution(blocked), total: blocked.reduce((a, b) => a + b, 0) },
    latencyMs: distribution(latencies),
    recoveryMs,
    drainAfterLastFaultMs: lastFaultEnd ? Math.max(0, lastDone - lastFaultEnd) : 0,
    timeoutReclaims,
    refusedReports: events.filter((e) => e.kind === 'refused').length,
    notices: events.filter((e) => e.kind === 'notice').length,
  };
}

/**
 * Transitions an agent made that were not its to make: in history order, the current assignment is
 * set by each `assigned` entry (generation, agent) and ended by any hub entry that raises the
 * generation or leaves the assignment (requeue, cancel, overdue); an agent's entry must match it.
 * A history cut at its 50-entry limit is checked from its first `assigned` entry on.
 */
export function staleEntries(history: readonly HistoryEntry[]): string[] {
  const out: string[] = [];
  let current: { generation: number; agent: string | undefined } | null = null;
  let known = false;
  for (const h of history) {
    if (h.to === 'assigned' && h.by === 'hub') {
      current = { generation: h.generation, agent: h.agent };
      known = true;
      continue;
    }
    if (h.by === 'hub') {
      if (h.to === 'queued' || TERMINAL.has(h.to)) current = null;
      continue;
    }
    if (h.from === null) continue; // the submission
    if (!known) continue;
    if (
      !current ||
      h.generation !== current.generation ||
      (current.agent !== undefined && h.by !== current.agent)
    )
      out.push(
        `${h.by} moved it ${h.from}->${h.to} at generation ${h.generation} while the assignment was ${current ? `${current.agent}@${current.generation}` : 'none'}`,
      );
    if (h.to === 'queued' || TERMINAL.has(h.to)) current = null;
  }
  return out;
}

/** Why the task was requeued before the assignment of `generation` (the reason of the last requeue before it). */
function requeueReason(r: TaskRecord | undefined, generation: number): string {
  if (!r) return 'unknown';
  const assignedAt = r.history.findIndex((h) => h.to === 'assigned' && h.generation === generation);
  const before = assignedAt >= 0 ? r.history.slice(0, assignedAt) : r.history;
  const requeue = [...before].reverse().find((h) => h.to === 'queued' && h.from !== null);
  if (!requeue) return 'unknown';
  if (requeue.by !== 'hub') return 'agent_failed';
  return (requeue.reason ?? 'unknown').split(':')[0]!.replace(/\s.*/, '');
}

function groupBy<T>(xs: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k) ?? [];
    list.push(x);
    m.set(k, list);
  }
  return m;
}

function distribution(xs: number[]): Distribution {
  const s = [...xs].sort((a, b) => a - b);
  const pick = (p: number) =>
    s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : 0;
  return { n: s.length, p50: pick(50), p99: pick(99), max: s.length ? s[s.length - 1]! : 0 };
}
