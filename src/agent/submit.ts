/**
 * @module agent/submit
 * Submitting tasks without a round trip to the hub: a JetStream publish to the submit stream whose
 * `Nats-Msg-Id` is the idempotency key (or a fresh task id), so a retried publish is stored once and
 * the task id is known before the hub has seen the task.
 */
import type { Bus } from '../bus/connection.js';
import { publishRaw } from '../bus/publish.js';
import { encodeTrusted } from '../protocol/envelope.js';
import { newTaskId, type TaskId } from '../protocol/ids.js';
import { type TaskSubmitInput, TaskSubmitSchema } from '../protocol/task.js';
import { taskIdForSubmit } from '../protocol/task-id.js';

export interface SubmitOptions {
  correlationId?: string;
  traceparent?: string;
}

/** Publish a task; resolves with its id once the server has stored it (or found it a duplicate). */
export async function submitTask(
  bus: Bus,
  submit: Omit<TaskSubmitInput, 'v'>,
  opts: SubmitOptions = {},
): Promise<{ taskId: TaskId; duplicate: boolean }> {
  const payload = TaskSubmitSchema.parse({ v: 1, ...submit });
  const msgId = payload.idempotencyKey ?? newTaskId();
  const taskId = taskIdForSubmit({ idempotencyKey: payload.idempotencyKey, msgId, now: Date.now() });
  // Validated just above (parse also applies the defaults): encoded without a second pass.
  const r = await publishRaw(bus, bus.names.subjects.taskSubmit, encodeTrusted(payload), {
    msgId,
    retries: 10,
    ...(opts.correlationId ? { correlationId: opts.correlationId } : {}),
    ...(opts.traceparent ? { traceparent: opts.traceparent } : {}),
  });
  return { taskId, duplicate: r.duplicate };
}
