/**
 * What the leading hub pays for the task records it keeps: the time its TaskStore takes to load
 * `n` finished records at start (one pass over the bucket), and the heap each loaded record holds.
 * Records have the hub benchmark's payload (a 440-character metadata pad) and went through submit,
 * assign and complete. Prints JSON. Against a private nats-server (never 4222).
 *   npm run bench:store -- [--n 20000] [--reps 2]   (node --expose-gc --import tsx bench/task-store.ts)
 * Without --expose-gc the heap figure is null (garbage would be counted).
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { TaskStore } from '../actors/task-queue/store.js';
import { connectBus } from '../src/bus/connection.js';
import { openKv, type TypedKv } from '../src/bus/kv.js';
import { ensureBucket } from '../src/bus/provision.js';
import type { AgentId, TaskId } from '../src/protocol/ids.js';
import { type TaskRecord, TaskRecordSchema, TaskSubmitSchema } from '../src/protocol/task.js';
import { addConcurrently, payload } from './peers/common.js';
import { startNatsServer } from './peers/nats.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '20000' }, reps: { type: 'string', default: '2' } },
});
const N = Number(values.n);
const REPS = Number(values.reps);
const gc = (globalThis as { gc?: () => void }).gc;

const nats = await startNatsServer();
const bus = await connectBus({ servers: nats.url, logger: pino({ level: 'silent' }) });
try {
  await ensureBucket(bus, { bucket: 'tasks', history: 5 });
  const kv = await openKv(bus, 'tasks', TaskRecordSchema);
  const writer = new TaskStore(kv);
  await writer.load();
  const agent = 'bench-0' as AgentId;
  await addConcurrently(N, async (i) => {
    const id = `t${i}`;
    const submit = TaskSubmitSchema.parse({ v: 1, title: id, metadata: { p: payload(i).pad } });
    await writer.apply(id, { type: 'submit', id: id as TaskId, submit });
    await writer.apply(id, { type: 'assign', agentId: agent });
    await writer.apply(id, { type: 'complete', agentId: agent, generation: 1, result: { ok: 1 } });
  });
  await writer.stop();
  const recordBytes = JSON.stringify((await kv.get('t0'))?.value).length;
  const runs = [];
  for (let r = 0; r < REPS; r++) runs.push(await loadOnce(kv));
  process.stdout.write(`${JSON.stringify({ n: N, recordJsonBytes: recordBytes, runs }, null, 2)}\n`);
} finally {
  await bus.drain();
  await nats.stop();
}

/** One load into a fresh store; in its own frame, so the previous store is garbage by the next. */
async function loadOnce(kv: TypedKv<TaskRecord>) {
  gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const store = new TaskStore(kv);
  await store.load();
  const loadMs = Math.round(performance.now() - t0);
  gc?.();
  const heapBytesPerRecord = gc ? Math.round((process.memoryUsage().heapUsed - heap0) / store.size) : null;
  return { records: store.size, loadMs, heapBytesPerRecord };
}
