/**
 * @module gateway/task-view
 * What the gateway reads of a task record: the fields its event stream, metrics and series use,
 * validated, and nothing else (the body, metadata and result of a record are not parsed: a record
 * may be 320 KiB and is read on every revision). Each revision of the tasks bucket is decoded once
 * per gateway (events.ts decodes it and hands the view to every reader of its tail), and not at
 * all when the gateway's own process wrote it: that record comes as written (`viewOfRecord`).
 */
import type { z } from 'zod';
import type { KvRevision } from '../bus/kv-tail.js';
import { type TaskRecord, TaskRecordSchema } from '../protocol/task.js';

export const TaskViewSchema = TaskRecordSchema.pick({
  id: true,
  title: true,
  status: true,
  queue: true,
  priority: true,
  assignee: true,
  generation: true,
  retryCount: true,
  progress: true,
  error: true,
  notBefore: true,
  createdAt: true,
  assignedAt: true,
  completedAt: true,
  history: true,
});
export type TaskView = z.infer<typeof TaskViewSchema>;

/** The view of a stored record (its bytes or their text), or null when it is not JSON or not a record. */
export function decodeTaskView(data: Uint8Array | string): TaskView | null {
  let value: unknown;
  try {
    value = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
  } catch {
    return null;
  }
  const r = TaskViewSchema.safeParse(value);
  return r.success ? r.data : null;
}

/**
 * The view of a record this process wrote itself (a tail's `local`, kv-echo.ts): the record, read
 * through the view's fields, without parsing its bytes. Only the hub's TaskQueue writes the tasks
 * bucket, and only records. Readers of a view take the fields they use and keep nothing else
 * (eventOf sends a bounded selection), so the body the object also holds goes no further.
 */
export function viewOfRecord(record: TaskRecord): TaskView {
  return record;
}

/** A reader of the gateway's task tail: each revision, with its view (null: a removal, or not a record). */
export type TaskRevisionListener = (r: KvRevision, task: TaskView | null) => void;

/** Where task revisions come from: the gateway's task tail (events.ts). */
export interface TaskRevisionTap {
  /**
   * Calls `fn` with every task revision after `after` (the last one seen), until `stop`; those up
   * to `preloadEnd` were stored before the tail started.
   */
  tapTasks(fn: TaskRevisionListener): { after: number; preloadEnd: number; stop(): void };
}
