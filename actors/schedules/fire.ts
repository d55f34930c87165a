/**
 * @module schedules/fire
 * Carrying out one slot's action: submit its task (through the TaskQueue) or emit its pheromone
 * (into the field). Shared by the SchedulesProcess (slots) and the `schedule.trigger` endpoint.
 * A refusal is thrown as AgentComError (`invalid_payload` when the task or pheromone itself is bad).
 */
import { AgentComError } from '../../src/protocol/errors.js';
import type { TaskId } from '../../src/protocol/ids.js';
import type { TaskSubmitInput } from '../../src/protocol/task.js';
import { emit, type FieldStore } from '../field/index.js';
import type { AssignReply } from '../task-queue/index.js';
import type { SlotAction } from './slots.js';

export interface FireDeps {
  submit: (submit: TaskSubmitInput) => Promise<AssignReply>;
  field: FieldStore;
}

export type Fired = { lastTaskId: TaskId } | { lastPheromoneId: string };

export async function carryOut(action: SlotAction, deps: FireDeps): Promise<Fired> {
  if (action.type === 'pheromone')
    return { lastPheromoneId: (await emit(deps.field, action.emit, action.source)).pheromone.id };
  const r = await deps.submit(action.submit);
  if (!r.ok) throw AgentComError.fromWire(r.error);
  return { lastTaskId: r.task.id };
}
