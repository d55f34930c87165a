/** Builders for task-queue state tests (helpers only, no tests here). */
import {
  applyTaskCommand,
  type TaskCommand,
  type TaskCommandResult,
} from '../../../actors/task-queue/state.js';
import type { AgentId, TaskId } from '../../../src/protocol/ids.js';
import { type TaskRecord, type TaskSubmitInput, TaskSubmitSchema } from '../../../src/protocol/task.js';

export const A = 'agent-a' as AgentId;
export const B = 'agent-b' as AgentId;
export const T = 't1' as TaskId;
export const T0 = 1_000_000;

export function submitted(over: Partial<TaskSubmitInput> = {}, now = T0): TaskRecord {
  const submit = TaskSubmitSchema.parse({ v: 1, title: 'job', ...over });
  return okTask(applyTaskCommand(undefined, { type: 'submit', id: T, submit }, now));
}

export function okTask(r: TaskCommandResult): TaskRecord {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.task;
}

/** Apply commands in order, each at now + i; throws on the first refusal. */
export function drive(task: TaskRecord, commands: TaskCommand[], now = T0 + 10): TaskRecord {
  let t = task;
  commands.forEach((c, i) => {
    t = okTask(applyTaskCommand(t, c, now + i));
  });
  return t;
}

/** A task assigned to `agent` (generation 1), optionally accepted. */
export function assignedTo(agent: AgentId, accept = false, over: Partial<TaskSubmitInput> = {}): TaskRecord {
  const t = drive(submitted(over), [{ type: 'assign', agentId: agent }]);
  return accept ? drive(t, [{ type: 'accept', agentId: agent, generation: t.generation }]) : t;
}
