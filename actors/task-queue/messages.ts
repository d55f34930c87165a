/**
 * @module task-queue/messages
 * What other actors may send the TaskQueue (by its registered name), and the notifications it sends.
 * `call` messages carry `reply` (added by the runtime's `call`); casts do not.
 */
import type { WireError } from '../../src/protocol/errors.js';
import type { AgentId, TaskId } from '../../src/protocol/ids.js';
import type { TaskRecord, TaskSubmitInput } from '../../src/protocol/task.js';
import type { ReclaimReason } from './state.js';

export type AssignReply = { ok: true; task: TaskRecord } | { ok: false; error: WireError };

export type TaskQueueMessage =
  /** call: assign a queued task to an agent (raises the generation, delivers to the agent's inbox). */
  | { type: 'assign'; taskId: TaskId; agentId: AgentId; reply?: (r: AssignReply) => void }
  /** cast: take an open assignment back (only if `generation` is still current). */
  | { type: 'reclaim'; taskId: TaskId; reason: ReclaimReason; generation: number }
  /** call: every task record known (the scheduler rebuilds its index from it). */
  | { type: 'snapshot'; reply?: (tasks: TaskRecord[]) => void }
  /** call: submit from inside the hub (the API and the bus intake use the same path). */
  | { type: 'submit'; submit: TaskSubmitInput; reply?: (r: AssignReply) => void };

/** Sent (cast) to every subscriber after each durable change of a task record. */
export type TaskChanged = {
  type: 'task_changed';
  task: TaskRecord;
};
