/**
 * What a `task.list` page costs the hub: `listTasks` over `n` kept records (retention's default
 * count is 50,000), in creation order (how the leading hub's cache usually holds them) and
 * shuffled (as after a load, or with clocks that disagree). The call runs on the hub's event loop,
 * so this is latency added to every actor for each page served. Beside it, the same page from a
 * sort of every match (how listTasks worked before), as the baseline. Prints JSON (ms per page).
 *   npx tsx bench/task-list.ts [--n 50000] [--reps 20]
 */
import { parseArgs } from 'node:util';
import { listTasks } from '../actors/task-queue/query.js';
import { applyTaskCommand } from '../actors/task-queue/state.js';
import type { TaskId } from '../src/protocol/ids.js';
import { type TaskRecord, TaskSubmitSchema } from '../src/protocol/task.js';
import { median } from './peers/common.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '50000' }, reps: { type: 'string', default: '20' } },
});
const N = Number(values.n);
const REPS = Number(values.reps);

const submit = TaskSubmitSchema.parse({ v: 1, title: 'bench' });
const t0 = Date.now();
const records: TaskRecord[] = [];
for (let i = 0; i < N; i++) {
  const r = applyTaskCommand(undefined, { type: 'submit', id: `t${i}` as TaskId, submit }, t0 + i);
  if (!r.ok) throw new Error('submit failed');
  records.push(r.task);
}

/** The page as a sort of every record gives it (no filters, first page). */
function sortAll(all: Iterable<{ record: TaskRecord }>, limit: number): TaskRecord[] {
  const matching = [...all].map((r) => r.record);
  matching.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return matching.slice(0, limit);
}

function time(f: () => unknown): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}

function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Creation order with neighbours swapped here and there (writes acknowledged out of order). */
function jittered<T>(xs: T[]): T[] {
  const out = [...xs];
  for (let i = 0; i + 1 < out.length; i++) {
    if (Math.random() < 0.1) [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
  }
  return out;
}

const result: Record<string, { listTasks: number; sortAll: number }> = {};
for (const [order, list] of [
  ['creationOrder', records],
  ['jittered', jittered(records)],
  ['shuffled', shuffled(records)],
] as const) {
  const rows = list.map((record) => ({ record }));
  const req = { v: 1 as const, limit: 50 };
  const ours: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < REPS; i++) {
    ours.push(time(() => listTasks(() => rows.values(), req)));
    baseline.push(time(() => sortAll(rows, req.limit)));
  }
  result[order] = {
    listTasks: Number(median(ours).toFixed(2)),
    sortAll: Number(median(baseline).toFixed(2)),
  };
}
console.log(JSON.stringify({ n: N, reps: REPS, pageSize: 50, msPerPage: result }, null, 2));
