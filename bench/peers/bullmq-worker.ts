/**
 * Child process: one BullMQ Worker (mirror of peer-bench/worker.mjs). The processor only records its
 * start time and returns `{ ok: 1 }`. Talks to the parent over IPC (see common.ts).
 *   argv: redisPort queueName concurrency
 */
import { type Job, Worker } from 'bullmq';
import { exitWithParent, nowMs, postToParent, serveParent, type TaskPayload } from './common.js';

exitWithParent();
const [portArg, queueName, concArg] = process.argv.slice(2);
if (!portArg || !queueName || !concArg)
  throw new Error('usage: bullmq-worker <redisPort> <queue> <concurrency>');
const connection = { host: '127.0.0.1', port: Number(portArg), maxRetriesPerRequest: null };

let expect = Number.POSITIVE_INFINITY;
let completed = 0;
let doneSent = false;
const starts: number[] = []; // [tAdd, tStart, …] for latency runs

const worker = new Worker<TaskPayload>(
  queueName,
  async (job: Job<TaskPayload>) => {
    const t = nowMs();
    if (job.data.tAdd) starts.push(job.data.tAdd, t);
    return { ok: 1 };
  },
  {
    connection,
    concurrency: Number(concArg),
    autorun: false,
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: 1000 },
  },
);

function maybeDone(): void {
  if (!doneSent && completed >= expect) {
    doneSent = true;
    postToParent({ type: 'done', t: nowMs() });
  }
}

worker.on('completed', () => {
  completed++;
  maybeDone();
});
worker.on('failed', (_job, err) => console.error('bullmq-worker: job failed:', err.message));
worker.on('error', (err) => console.error('bullmq-worker: error:', err.message));

await worker.waitUntilReady();
serveParent({
  label: 'bullmq-worker',
  expect(n) {
    expect = n;
    maybeDone();
  },
  run: () => worker.run(),
  samples: () => starts,
  close: () => worker.close(),
});
