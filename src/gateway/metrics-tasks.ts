/**
 * @module gateway/metrics-tasks
 * Task transitions seen in the tasks bucket, as observations for the gateway's counters and latency
 * histograms. Pure: fed each revision of the gateway's task tail, it returns the status transitions that
 * revision adds to the ones already seen, so each transition counts once per gateway even when a
 * revision comes again (an older or equal revision adds nothing).
 *
 * What is new is read from the record's history: the entries after the last one seen for that task.
 * A task first seen mid-life (the gateway counts only writes stored after it started) contributes the
 * transitions of that one write: the trailing entries sharing its time, since the TaskQueue stamps
 * every command it writes together with one clock reading (actors/task-queue/store.ts). It does NOT
 * see transitions overwritten between two revisions it received (there are none: every write is a
 * revision), nor, for a first-seen task, an earlier write stamped within the same millisecond.
 * Memory: one small entry per unfinished task, plus the last `maxFinished` finished ones.
 */
import type { HistoryEntry, Priority, TaskStatus } from '../protocol/task.js';
import type { TaskView } from './task-view.js';

export type TaskObservation =
  | { kind: 'submitted'; queue: string; priority: Priority }
  /** An assignment; `waitSeconds` from becoming eligible (queued, delay or backoff over) to it. */
  | { kind: 'assigned'; queue: string; priority: Priority; waitSeconds: number | null }
  /** Completed; `runSeconds` from the assignment that completed it. */
  | { kind: 'done'; queue: string; priority: Priority; runSeconds: number | null }
  /** Back to the queue after an attempt (failure, rejection, reclaim): an automatic retry. */
  | { kind: 'retried'; queue: string; priority: Priority }
  | { kind: 'failed' | 'dead' | 'cancelled'; queue: string; priority: Priority };

interface Seen {
  revision: number;
  last: HistoryEntry | undefined;
}

const ACTIVE: readonly TaskStatus[] = ['assigned', 'working', 'blocked'];
const TERMINAL: readonly TaskStatus[] = ['done', 'failed', 'dead', 'cancelled'];

function same(a: HistoryEntry, b: HistoryEntry): boolean {
  return (
    a.at === b.at && a.to === b.to && a.from === b.from && a.generation === b.generation && a.by === b.by
  );
}

/** Index of the first history entry that `last` (the last entry seen) does not cover. */
function firstNew(history: readonly HistoryEntry[], last: HistoryEntry | undefined): number {
  const n = history.length;
  if (n === 0) return 0;
  if (last) {
    for (let i = n - 1; i >= 0; i--) if (same(history[i]!, last)) return i + 1;
    // Cut short past the entry seen (more than the history keeps since): the later ones.
    let i = n;
    while (i > 0 && history[i - 1]!.at > last.at) i--;
    return i;
  }
  const at = history[n - 1]!.at;
  let i = n - 1;
  while (i > 0 && history[i - 1]!.at === at) i--;
  return i;
}

export class TaskTransitions {
  private readonly open = new Map<string, Seen>();
  /** Finished tasks, oldest first (a manual retry may bring one back). */
  private readonly finished = new Map<string, Seen>();
  private readonly maxFinished: number;

  constructor(opts: { maxFinished?: number } = {}) {
    this.maxFinished = opts.maxFinished ?? 10_000;
  }

  /** The transitions revision `revision` of `task` adds (none when that revision was seen already). */
  observe(task: TaskView, revision: number): TaskObservation[] {
    const prev = this.open.get(task.id) ?? this.finished.get(task.id);
    if (prev && revision <= prev.revision) return [];
    const h = task.history;
    const out: TaskObservation[] = [];
    const base = { queue: task.queue, priority: task.priority };
    for (let i = firstNew(h, prev?.last); i < h.length; i++) {
      const e = h[i]!;
      if (e.to === 'queued') {
        if (e.from === null) out.push({ kind: 'submitted', ...base });
        else if (ACTIVE.includes(e.from)) out.push({ kind: 'retried', ...base });
      } else if (e.to === 'assigned') {
        out.push({ kind: 'assigned', ...base, waitSeconds: waitBefore(task, i) });
      } else if (e.to === 'done') {
        out.push({ kind: 'done', ...base, runSeconds: runBefore(task, i) });
      } else if (e.to === 'failed' || e.to === 'dead' || e.to === 'cancelled') {
        out.push({ kind: e.to, ...base });
      }
    }
    this.remember(task, { revision, last: h[h.length - 1] ?? prev?.last });
    return out;
  }

  /** The task's record is gone (deleted or purged by retention). */
  forget(id: string): void {
    this.open.delete(id);
    this.finished.delete(id);
  }

  /** Tasks remembered: unfinished, and finished (bounded). */
  get size(): { open: number; finished: number } {
    return { open: this.open.size, finished: this.finished.size };
  }

  private remember(task: TaskView, seen: Seen): void {
    if (!TERMINAL.includes(task.status)) {
      this.finished.delete(task.id);
      this.open.set(task.id, seen);
      return;
    }
    this.open.delete(task.id);
    this.finished.delete(task.id); // re-inserted last: the newest finished
    this.finished.set(task.id, seen);
    if (this.finished.size > this.maxFinished) {
      const oldest = this.finished.keys().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
  }
}

/**
 * Seconds from the task becoming eligible to the assignment at history index `i`: from the entry
 * into `queued` before it, or its `notBefore` (delay, backoff) when that came later. Null when the
 * history no longer holds that entry.
 */
function waitBefore(task: TaskView, i: number): number | null {
  const assigned = task.history[i]!;
  const queued = task.history[i - 1];
  if (queued?.to !== 'queued') return null;
  const notBefore = task.notBefore !== undefined && task.notBefore <= assigned.at ? task.notBefore : 0;
  return Math.max(0, assigned.at - Math.max(queued.at, notBefore)) / 1000;
}

/** Seconds from the last assignment before history index `i` to it (null when not in the history). */
function runBefore(task: TaskView, i: number): number | null {
  const done = task.history[i]!;
  for (let j = i - 1; j >= 0; j--) {
    const e = task.history[j]!;
    if (e.to === 'assigned') return Math.max(0, done.at - e.at) / 1000;
    if (e.to === 'queued') return null;
  }
  return task.assignedAt !== null && task.assignedAt <= done.at ? (done.at - task.assignedAt) / 1000 : null;
}
