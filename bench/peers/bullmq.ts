/**
 * BullMQ peer baseline (mirror of /work/shared/peer-bench/bench.mjs): private Redis without
 * persistence, worker in a forked process, ~510-byte JSON payload, `removeOnComplete: {count: 1000}`.
 *
 * - e2e: idle worker (concurrency c) waiting; clock starts; producer adds n jobs with `addBulk` in
 *   chunks of 1000, awaited sequentially; clock stops at the worker's n-th `completed` event.
 * - latency: idle worker; one `queue.add` every 1000/rate ms on an absolute schedule for durationS s;
 *   latency = processor start − timestamp taken just before `queue.add`.
 */
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import {
  addConcurrently,
  Deadline,
  type E2eResult,
  type LatencyResult,
  latencySummary,
  nowMs,
  offeredCount,
  offerLoad,
  type PeerResult,
  type PeerRunOptions,
  payload,
  type ResolvedE2e,
  type ResolvedLatency,
  resolveE2e,
  resolveLatency,
  shapesToRun,
  sleep,
  type TaskPayload,
  WorkerProcess,
  withTimeout,
} from './common.js';
import { type RedisPersistence, startRedisServer } from './redis.js';

const WORKER = fileURLToPath(new URL('./bullmq-worker.ts', import.meta.url));
const BULK_CHUNK = 1000;

export interface BullmqRunOptions extends PeerRunOptions {
  /** How the e2e producer enqueues: `addBulk` chunks of 1000 (default, as in peers.md B1) or single adds, 100 in flight. */
  e2eMode?: 'bulk' | 'single';
  /** The Redis's persistence (default none; the fair peer of a durable queue is `aof-everysec`). */
  persistence?: RedisPersistence;
}

/**
 * Runs the requested shapes (both with defaults when neither is given) against a private
 * redis-server that is started here and always stopped before returning or throwing.
 */
export async function runBullmq(opts: BullmqRunOptions = {}): Promise<PeerResult> {
  const shapes = shapesToRun(opts);
  const e2e = shapes.e2e ? resolveE2e(shapes.e2e) : undefined;
  const latency = shapes.latency ? resolveLatency(shapes.latency) : undefined;
  const persistence = opts.persistence ?? 'none';
  const server = await startRedisServer({ persistence });
  try {
    const result: PeerResult = { system: persistence === 'none' ? 'bullmq' : `bullmq-${persistence}` };
    if (e2e) result.e2e = await e2eRun(server.port, e2e, opts.e2eMode ?? 'bulk');
    if (latency) result.latency = await latencyRun(server.port, latency);
    return result;
  } finally {
    await server.stop();
  }
}

type Producer = { queue: Queue<TaskPayload>; redis: Redis; qname: string };

async function openProducer(port: number, shape: string, dl: Deadline): Promise<Producer> {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const qname = `peer-${shape}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const redis = new Redis(connection);
  const queue = new Queue<TaskPayload>(qname, { connection });
  try {
    await dl.race(redis.flushall(), 'flushall'); // private server: start each run empty
    await dl.race(queue.waitUntilReady(), 'queue ready');
  } catch (err) {
    await closeProducer({ queue, redis, qname });
    throw err;
  }
  return { queue, redis, qname };
}

async function closeProducer(p: Producer): Promise<void> {
  await withTimeout(p.queue.close(), 5000, 'queue close').catch(() => p.queue.disconnect());
  p.redis.disconnect();
}

async function addAll(queue: Queue<TaskPayload>, n: number, mode: 'bulk' | 'single'): Promise<void> {
  if (mode === 'single') {
    await addConcurrently(n, (i) => queue.add('task', payload(i)));
    return;
  }
  for (let i = 0; i < n; i += BULK_CHUNK) {
    const jobs: { name: string; data: TaskPayload }[] = [];
    for (let k = i; k < Math.min(n, i + BULK_CHUNK); k++) jobs.push({ name: 'task', data: payload(k) });
    await queue.addBulk(jobs);
  }
}

async function e2eRun(port: number, o: ResolvedE2e, mode: 'bulk' | 'single'): Promise<E2eResult> {
  const dl = new Deadline(o.timeoutMs, `bullmq e2e n=${o.n} c=${o.c}`);
  const p = await openProducer(port, 'e2e', dl);
  let w: WorkerProcess | undefined;
  try {
    w = new WorkerProcess(WORKER, [String(port), p.qname, String(o.c)], dl.label);
    await w.wait('ready', dl.remaining());
    w.send({ type: 'expect', n: o.n });
    w.send({ type: 'run' });
    await w.wait('running', dl.remaining());
    const done = w.wait('done', dl.remaining());
    done.catch(() => {}); // observed below; avoid an unhandled rejection if adding fails first
    const t0 = nowMs();
    await dl.race(addAll(p.queue, o.n, mode), 'adding jobs');
    const addSeconds = (nowMs() - t0) / 1000;
    const seconds = ((await done).t - t0) / 1000;
    await w.close();
    return { n: o.n, c: o.c, seconds, addSeconds, tasksPerSec: o.n / seconds };
  } finally {
    w?.kill();
    await closeProducer(p);
  }
}

async function latencyRun(port: number, o: ResolvedLatency): Promise<LatencyResult> {
  const dl = new Deadline(o.timeoutMs, `bullmq latency rate=${o.rate} c=${o.c}`);
  const { total } = offeredCount(o);
  const p = await openProducer(port, 'lat', dl);
  let w: WorkerProcess | undefined;
  try {
    w = new WorkerProcess(WORKER, [String(port), p.qname, String(o.c)], dl.label);
    await w.wait('ready', dl.remaining());
    w.send({ type: 'expect', n: total });
    w.send({ type: 'run' });
    await w.wait('running', dl.remaining());
    await sleep(500); // worker idle, blocked waiting for jobs
    const done = w.wait('done', dl.remaining());
    done.catch(() => {});
    const { addCalls, achievedRate } = await offerLoad(
      o,
      (i, tAdd) => p.queue.add('task', payload(i, tAdd)),
      dl,
    );
    await done;
    const samples = w.wait('samples', dl.remaining());
    w.send({ type: 'samples' });
    const { starts } = await samples;
    await w.close();
    return latencySummary(o, starts, addCalls, achievedRate);
  } finally {
    w?.kill();
    await closeProducer(p);
  }
}
