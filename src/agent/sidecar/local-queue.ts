/**
 * @module agent/sidecar/local-queue
 * The sidecar's local queue as a pure value: the assignments it holds, each with the generation it
 * was given and how far it got. The sidecar writes it to `queue.json` (atomically) before acking an
 * assignment, so after any crash it knows what it was holding and can say so (`recovering`).
 *
 * Rules: an assignment is kept once per task, at its highest generation (a redelivered or older one
 * is a duplicate; a newer one supersedes the old); a cancel removes the entry only for a generation
 * at least as new as the entry's (an old cancel never removes a newer assignment); an entry leaves
 * the queue once its outcome report is stored, and is remembered in `finished` (the last
 * FINISHED_KEPT), so an assignment redelivered after it was done (its inbox ack lost) is not run again.
 */
import { z } from 'zod';
import {
  AssignedTaskSchema,
  type InboxAssign,
  type InboxCancel,
  type InboxNotice,
} from '../../protocol/agent.js';
import { AgentIdSchema, type TaskId, TaskIdSchema } from '../../protocol/ids.js';

export const LocalTaskSchema = z.object({
  taskId: TaskIdSchema,
  generation: z.int().nonnegative(),
  task: AssignedTaskSchema,
  receivedAt: z.int().nonnegative(),
  /** `received`: persisted, acceptance not yet stored; `accepted`: the hub knows we hold it. */
  state: z.enum(['received', 'accepted']),
  /** Highest progress seq relayed. */
  progressSeq: z.int().nonnegative().default(0),
});
export type LocalTask = z.infer<typeof LocalTaskSchema>;

/** Finished assignments remembered in queue.json. */
export const FINISHED_KEPT = 256;

export const LocalQueueSchema = z
  .object({
    v: z.literal(1),
    agentId: AgentIdSchema,
    tasks: z.array(LocalTaskSchema),
    finished: z
      .array(z.object({ taskId: TaskIdSchema, generation: z.int().nonnegative() }))
      .max(FINISHED_KEPT)
      .default([])
      .describe('Assignments whose outcome was relayed, oldest first.'),
  })
  .describe('The sidecar’s queue.json.');
export type LocalQueue = z.infer<typeof LocalQueueSchema>;

export function emptyQueue(agentId: string): LocalQueue {
  return { v: 1, agentId: AgentIdSchema.parse(agentId), tasks: [], finished: [] };
}

export function find(q: LocalQueue, taskId: string): LocalTask | undefined {
  return q.tasks.find((t) => t.taskId === taskId);
}

export type ReceiveResult =
  | { kind: 'new'; queue: LocalQueue; superseded?: LocalTask }
  | { kind: 'duplicate'; entry: LocalTask }
  /** This assignment's outcome was already relayed. */
  | { kind: 'finished' };

/** An assignment arrived. */
export function receive(q: LocalQueue, msg: InboxAssign, now: number): ReceiveResult {
  if (q.finished.some((f) => f.taskId === msg.taskId && f.generation === msg.generation))
    return { kind: 'finished' };
  const existing = find(q, msg.taskId);
  if (existing && existing.generation >= msg.generation) return { kind: 'duplicate', entry: existing };
  const entry: LocalTask = {
    taskId: msg.taskId,
    generation: msg.generation,
    task: msg.task,
    receivedAt: now,
    state: 'received',
    progressSeq: 0,
  };
  const tasks = q.tasks.filter((t) => t.taskId !== msg.taskId);
  return {
    kind: 'new',
    queue: { ...q, tasks: [...tasks, entry] },
    ...(existing ? { superseded: existing } : {}),
  };
}

/** Returns the queue with `f` applied to the entry at exactly this generation (unchanged if none). */
function update(
  q: LocalQueue,
  taskId: string,
  generation: number,
  f: (t: LocalTask) => LocalTask,
): LocalQueue {
  let changed = false;
  const tasks = q.tasks.map((t) => {
    if (t.taskId !== taskId || t.generation !== generation) return t;
    changed = true;
    return f(t);
  });
  return changed ? { ...q, tasks } : q;
}

export function markAccepted(q: LocalQueue, taskId: string, generation: number): LocalQueue {
  return update(q, taskId, generation, (t) => (t.state === 'accepted' ? t : { ...t, state: 'accepted' }));
}

export function markProgress(q: LocalQueue, taskId: string, generation: number, seq: number): LocalQueue {
  return update(q, taskId, generation, (t) => (seq > t.progressSeq ? { ...t, progressSeq: seq } : t));
}

/** The hub cancelled (or reclaimed) an assignment: the removed entry, if the cancel applies. */
export function cancel(q: LocalQueue, msg: InboxCancel): { queue: LocalQueue; removed?: LocalTask } {
  const existing = find(q, msg.taskId);
  if (!existing || existing.generation > msg.generation) return { queue: q };
  return { queue: { ...q, tasks: q.tasks.filter((t) => t !== existing) }, removed: existing };
}

/**
 * A notice about a refused report: when it says `stop` for the generation held, the entry is
 * removed (like a cancel) and returned.
 */
export function stopNotice(q: LocalQueue, n: InboxNotice): { queue: LocalQueue; removed?: LocalTask } {
  const existing = find(q, n.taskId);
  if (!n.stop || !existing || existing.generation !== n.generation) return { queue: q };
  return { queue: { ...q, tasks: q.tasks.filter((t) => t !== existing) }, removed: existing };
}

/** The outcome report of this assignment is stored: forget it, and remember that it is done. */
export function finish(q: LocalQueue, taskId: string, generation: number): LocalQueue {
  const tasks = q.tasks.filter((t) => !(t.taskId === taskId && t.generation === generation));
  if (tasks.length === q.tasks.length) return q;
  const finished = [...q.finished, { taskId: taskId as TaskId, generation }].slice(-FINISHED_KEPT);
  return { ...q, tasks, finished };
}

export function taskIds(q: LocalQueue): TaskId[] {
  return q.tasks.map((t) => t.taskId);
}
