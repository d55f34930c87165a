import { describe, expect, it } from 'vitest';
import { listTasks } from '../../../actors/task-queue/query.js';
import { applyTaskCommand } from '../../../actors/task-queue/state.js';
import { TaskListRequestSchema } from '../../../src/protocol/api.js';
import type { AgentId, TaskId } from '../../../src/protocol/ids.js';
import { type TaskRecord, TaskSubmitSchema } from '../../../src/protocol/task.js';

const make = (i: number, over: Partial<{ priority: string; queue: string }> = {}): TaskRecord => {
  const r = applyTaskCommand(
    undefined,
    {
      type: 'submit',
      id: `t${String(i).padStart(3, '0')}` as TaskId,
      submit: TaskSubmitSchema.parse({ v: 1, title: `t${i}`, ...over }),
    },
    1_000 + i,
  );
  if (!r.ok) throw new Error('submit failed');
  return r.task;
};
const req = (o: Record<string, unknown> = {}) => TaskListRequestSchema.parse({ v: 1, ...o });
const rows = (ts: TaskRecord[]) => ts.map((record) => ({ record }));

describe('listTasks', () => {
  it('lists newest first and pages with a cursor that covers every task exactly once', () => {
    const all = rows(Array.from({ length: 23 }, (_, i) => make(i)));
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = listTasks(all, req({ limit: 5, ...(cursor ? { cursor } : {}) }));
      expect(r.total).toBe(23);
      seen.push(...r.tasks.map((t) => t.id));
      if (!r.nextCursor) break;
      cursor = r.nextCursor;
    }
    expect(seen).toEqual(all.map((r) => r.record.id).reverse());
  });

  it('filters by status, assignee, priority and queue together', () => {
    const a = make(1, { priority: 'high' });
    const assigned = applyTaskCommand(a, { type: 'assign', agentId: 'x' as AgentId }, 2_000);
    if (!assigned.ok) throw new Error('assign failed');
    const all = rows([assigned.task, make(2, { priority: 'high' }), make(3, { queue: 'social' })]);
    expect(listTasks(all, req({ status: ['assigned'] })).tasks.map((t) => t.id)).toEqual(['t001']);
    expect(listTasks(all, req({ assignee: 'x' })).total).toBe(1);
    expect(listTasks(all, req({ priority: 'high', status: ['queued'] })).tasks.map((t) => t.id)).toEqual([
      't002',
    ]);
    expect(listTasks(all, req({ queue: 'social' })).tasks.map((t) => t.id)).toEqual(['t003']);
    expect(listTasks(all, req({ queue: 'cognition' })).total).toBe(0);
  });

  it('treats a garbage cursor as the start rather than failing', () => {
    const all = rows([make(1), make(2)]);
    expect(listTasks(all, req({ cursor: '!!not-a-cursor' })).tasks).toHaveLength(2);
  });
});
