/**
 * @module task-queue/query
 * Read-side queries over the cached task records: filtered, paged listing (newest first, by
 * creation time then id, with an opaque cursor that stays valid while tasks are added).
 * Pure; a full pass over the records per call, which is fine for the API's rate and is
 * documented as the thing to index if lists ever dominate.
 */
import type { TaskListReply, TaskListRequest } from '../../src/protocol/api.js';
import type { TaskRecord } from '../../src/protocol/task.js';

type Key = { createdAt: number; id: string };

function newer(a: Key, b: Key): boolean {
  return a.createdAt !== b.createdAt ? a.createdAt > b.createdAt : a.id > b.id;
}

function encodeCursor(k: Key): string {
  return Buffer.from(`${k.createdAt}:${k.id}`).toString('base64url');
}

function decodeCursor(c: string): Key | null {
  const raw = Buffer.from(c, 'base64url').toString();
  const i = raw.indexOf(':');
  const createdAt = Number(raw.slice(0, i));
  return i > 0 && Number.isFinite(createdAt) ? { createdAt, id: raw.slice(i + 1) } : null;
}

export function listTasks(all: Iterable<{ record: TaskRecord }>, req: TaskListRequest): TaskListReply {
  const after = req.cursor ? decodeCursor(req.cursor) : null;
  const matching: TaskRecord[] = [];
  for (const { record: t } of all) {
    if (req.status && !req.status.includes(t.status)) continue;
    if (req.assignee && t.assignee !== req.assignee) continue;
    if (req.priority && t.priority !== req.priority) continue;
    if (req.queue && t.queue !== req.queue) continue;
    matching.push(t);
  }
  matching.sort((a, b) => (newer(a, b) ? -1 : newer(b, a) ? 1 : 0));
  const start = after ? matching.findIndex((t) => newer(after, t)) : 0;
  const from = start < 0 ? matching.length : start;
  const page = matching.slice(from, from + req.limit);
  const last = page[page.length - 1];
  const more = from + page.length < matching.length;
  return { v: 1, tasks: page, total: matching.length, nextCursor: more && last ? encodeCursor(last) : null };
}
