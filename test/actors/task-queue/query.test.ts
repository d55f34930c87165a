import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { listTasks } from '../../../actors/task-queue/query.js';
import { applyTaskCommand } from '../../../actors/task-queue/state.js';
import { TaskListRequestSchema } from '../../../src/protocol/api.js';
import type { AgentId, TaskId } from '../../../src/protocol/ids.js';
import { type TaskRecord, TaskStatusSchema, TaskSubmitSchema } from '../../../src/protocol/task.js';

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
/** Records as the hub's store gives them: a fresh one-shot iterator on each call. */
const rows = (ts: TaskRecord[]) => {
  const list = ts.map((record) => ({ record }));
  return Object.assign(() => list.values(), { list });
};

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
    expect(seen).toEqual(all.list.map((r) => r.record.id).reverse());
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

  it('pages exactly like a sort of every match, whatever order the records come in', () => {
    // The reference: sort all matches newest first (creation time, then id), cut the page after
    // the cursor's position. listTasks keeps only the page's candidates instead.
    const reference = (
      records: TaskRecord[],
      status: string[] | undefined,
      limit: number,
      after?: TaskRecord,
    ) => {
      const matching = records
        .filter((t) => !status || status.includes(t.status))
        .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
      const from = after
        ? matching.filter(
            (t) => t.createdAt > after.createdAt || (t.createdAt === after.createdAt && t.id >= after.id),
          ).length
        : 0;
      return { ids: matching.slice(from, from + limit).map((t) => t.id), total: matching.length };
    };
    const statuses = TaskStatusSchema.options;
    fc.assert(
      fc.property(
        // Few distinct creation times, so ties broken by id are common.
        fc.array(fc.record({ createdAt: fc.nat(20), status: fc.constantFrom(...statuses) }), {
          maxLength: 80,
        }),
        fc.option(fc.subarray([...statuses], { minLength: 1 }), { nil: undefined }),
        fc.integer({ min: 1, max: 12 }),
        // Oldest first (how the hub's cache holds them as a rule: the one-pass path), or any order.
        fc.boolean(),
        (specs, status, limit, oldestFirst) => {
          if (oldestFirst) specs.sort((a, b) => a.createdAt - b.createdAt); // stable: ids ascend on ties
          const records = specs.map((s, i) => ({ ...make(i), createdAt: s.createdAt, status: s.status }));
          const all = rows(records);
          const want = reference(records, status, Number.POSITIVE_INFINITY);
          const seen: string[] = [];
          let cursor: string | undefined;
          let after: TaskRecord | undefined;
          for (let page = 0; page <= records.length; page++) {
            const r = listTasks(
              all,
              req({ limit, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) }),
            );
            const expected = reference(records, status, limit, after);
            expect(r.tasks.map((t) => t.id)).toEqual(expected.ids);
            expect(r.total).toBe(want.total);
            seen.push(...r.tasks.map((t) => t.id));
            // A cursor exactly while matches remain: no empty last page, no early end.
            expect(r.nextCursor === null).toBe(seen.length === want.total);
            if (!r.nextCursor) break;
            cursor = r.nextCursor;
            after = r.tasks[r.tasks.length - 1];
          }
          // Every match exactly once, in order, and the last page says so.
          expect(seen).toEqual(want.ids);
        },
      ),
    );
  });
});
