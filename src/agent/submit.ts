/**
 * @module agent/submit
 * Submitting tasks without a round trip to the hub: a JetStream publish to the submit stream, so
 * the task id is known before the hub has seen the task. An agent submits on its own subject
 * (`submitter`), which scopes its idempotency keys (protocol/task-id.ts); trusted clients use the
 * shared one.
 *
 * The `Nats-Msg-Id` makes a retried publish stored once, but the stream dedupes message ids across
 * every submitter, so a `duplicate` PubAck does not prove that this client's task exists: another
 * client may have used the id first. A duplicate is therefore published once more under a fresh id;
 * the hub dedupes on the task id, so a genuine retry still makes one task.
 */
import type { Bus } from '../bus/connection.js';
import { publishRaw, waitForBacklog } from '../bus/publish.js';
import { encodeTrusted } from '../protocol/envelope.js';
import { randomHex } from '../protocol/headers.js';
import { newTaskId, type TaskId } from '../protocol/ids.js';
import { type TaskSubmitInput, TaskSubmitSchema } from '../protocol/task.js';
import { taskIdForSubmit } from '../protocol/task-id.js';

export interface SubmitOptions {
  correlationId?: string;
  traceparent?: string;
  /**
   * The submitting agent's id when the connection is an agent's (its credentials allow only its own
   * submit subject); absent for trusted clients.
   */
  submitter?: string;
}

/**
 * Publish a task; resolves with its id once the server has stored it. `duplicate` is the server's
 * view: its dedupe window held the message id (usually an earlier submit with the same key; the
 * hub keeps the first task). The task exists either way.
 * While the submitter's backlog of unprocessed submissions is full (the hub is behind, or down),
 * it waits as the server says, up to a minute.
 * @throws AgentComError `rate_limited` (with `retryAfterMs`) when the backlog stays full longer.
 */
export async function submitTask(
  bus: Bus,
  submit: Omit<TaskSubmitInput, 'v'>,
  opts: SubmitOptions = {},
): Promise<{ taskId: TaskId; duplicate: boolean }> {
  const payload = TaskSubmitSchema.parse({ v: 1, ...submit });
  const key = payload.idempotencyKey;
  const submitter = opts.submitter ?? null;
  // With a key, the task id (which the key names) is the message id; without one the message id
  // is new and unguessable, and names the task (for an agent, hashed with its id: task-id.ts).
  const msgId = key === undefined ? newTaskId() : undefined;
  const taskId = taskIdForSubmit({ idempotencyKey: key, submitter, msgId, now: Date.now() });
  // An agent names the queue in the subject: its permissions may allow only some queues.
  const subject = submitter
    ? bus.names.subjects.taskSubmitAs(submitter, payload.queue)
    : bus.names.subjects.taskSubmit;
  // Validated just above (parse also applies the defaults): encoded without a second pass.
  const data = encodeTrusted(payload);
  const send = (id: string) =>
    waitForBacklog(() =>
      publishRaw(bus, subject, data, {
        msgId: id,
        retries: 10,
        ...(opts.correlationId ? { correlationId: opts.correlationId } : {}),
        ...(opts.traceparent ? { traceparent: opts.traceparent } : {}),
      }),
    );
  const r = await send(msgId ?? taskId);
  // With a key, the hub computes the same task id from the payload and the subject whatever the
  // message id, so the fresh one still dedupes there.
  if (r.duplicate && key !== undefined) await send(`${taskId}:${randomHex(8)}`);
  return { taskId, duplicate: r.duplicate };
}
