/**
 * @module task-queue/messages
 * What other actors may send the TaskQueue (by its registered name), and the notifications it sends.
 * `call` messages carry `reply` (added by the runtime's `call`); casts do not.
 */

import type { QueueStats, TaskListReply, TaskListRequest } from '../../src/protocol/api.js';
import type { WireError } from '../../src/protocol/errors.js';
import type { AgentId, TaskId } from '../../src/protocol/ids.js';
import type { TaskRecord, TaskSubmitInput } from '../../src/protocol/task.js';
import type { ReclaimReason } from './state.js';

export type AssignReply = { ok: true; task: TaskRecord } | { ok: false; error: WireError };

export type TaskQueueMessage =
  /**
   * call: assign queued tasks to agents (each raises the task's generation and delivers it to the
   * agent's inbox); replies once every assignment is durable, with one result per pick, in order.
   */
  | { type: 'assign'; picks: { taskId: TaskId; agentId: AgentId }[]; reply?: (r: AssignReply[]) => void }
  /** cast: take an open assignment back (only if `generation` is still current). */
  | { type: 'reclaim'; taskId: TaskId; reason: ReclaimReason; generation: number }
  /** call: every task record known (the scheduler rebuilds its index from it). */
  | { type: 'snapshot'; reply?: (tasks: TaskRecord[]) => void }
  /** call: submit from inside the hub (the API and the bus intake use the same path). */
  | {
      type: 'submit';
      submit: TaskSubmitInput;
      /** The submitting agent (its API subject); absent for trusted clients. */
      submitter?: string;
      /** The queue its API subject names, which the task's must be (absent: any). */
      queue?: string;
      reply?: (r: AssignReply) => void;
    }
  /** call: cancel or manually retry a task (`by` is recorded in its history). */
  | { type: 'cancel'; taskId: TaskId; reason?: string; by?: string; reply?: (r: AssignReply) => void }
  | { type: 'retry'; taskId: TaskId; by?: string; reply?: (r: AssignReply) => void }
  /** call: one task record (null when unknown). */
  | { type: 'get'; taskId: TaskId; reply?: (t: TaskRecord | null) => void }
  /** call: a filtered page of tasks, newest first. */
  | { type: 'list'; request: TaskListRequest; reply?: (r: TaskListReply) => void }
  /** call: counts across all tasks. */
  | { type: 'stats'; reply?: (r: TaskQueueStats) => void }
  /**
   * call: replies once this TaskQueue follows the control value of revision `revision` or later
   * (intake stopped or started accordingly; true), or false when it has not within `timeoutMs`.
   */
  | { type: 'sync_control'; revision: number; timeoutMs: number; reply?: (applied: boolean) => void };

export type TaskQueueStats = {
  total: number;
  byStatus: Record<string, number>;
  byQueue: Record<string, number>;
  byPriority: Record<string, number>;
  tokensUsed: number;
  /** Queued tasks per named queue (query.ts `queueStats`, computed when asked). */
  queues?: Record<string, QueueStats>;
};

/** Sent (cast) to every subscriber after each durable change of a task record. */
export type TaskChanged = {
  type: 'tasks_changed';
  /** In the order they were written; one message per event-loop turn, not one per change. */
  tasks: TaskRecord[];
};
