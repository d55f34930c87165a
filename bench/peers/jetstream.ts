/**
 * Raw NATS JetStream peer baseline (mirror of /work/shared/peer-bench/js-bench.mjs on the v3
 * client): private nats-server, file-storage work-queue stream, durable pull consumer (explicit
 * ack, max_ack_pending 1000, ack_wait 30 s), worker in a forked process awaiting `ackAck()` per
 * message; "concurrency" = max handlers in flight. Publishes await their PubAck.
 *
 * - e2e: idle worker; clock starts; n publishes with 100 in flight; clock stops at the n-th ack.
 * - latency: idle worker; one publish every 1000/rate ms on an absolute schedule for durationS s;
 *   latency = handler start − timestamp taken just before `js.publish`.
 */
import { fileURLToPath } from 'node:url';
import {
  addConcurrently,
  Deadline,
  type E2eResult,
  type LatencyResult,
  latencySummary,
  offeredCount,
  offerLoad,
  type PeerResult,
  type PeerRunOptions,
  payload,
  type ResolvedE2e,
  type ResolvedLatency,
  sleep,
  WorkerProcess,
} from './common.js';
import {
  closePeerJetStream,
  measureE2e,
  type NatsServer,
  openPeerJetStream,
  type PeerJetStream,
  runId,
  runOnPrivateNatsServer,
} from './nats.js';

const WORKER = fileURLToPath(new URL('./jetstream-worker.ts', import.meta.url));
const enc = new TextEncoder();

/** Both shapes against a private nats-server (see `runOnPrivateNatsServer`). */
export function runJetstream(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return runOnPrivateNatsServer('jetstream', opts, { e2e: e2eRun, latency: latencyRun });
}

interface Producer extends PeerJetStream {
  subject: string;
  stream: string;
  durable: string;
}

async function openProducer(port: number, shape: string, dl: Deadline): Promise<Producer> {
  const id = runId(shape);
  const stream = `S${id}`;
  const subject = `t.${id}`;
  const durable = `W${id}`;
  const j = await openPeerJetStream(port, dl, {
    streams: [{ name: stream, subject }],
    consumers: [{ stream, durable }],
  });
  return { ...j, stream, subject, durable };
}

function publishAll(p: Producer, n: number): Promise<void> {
  return addConcurrently(n, (i) => p.js.publish(p.subject, enc.encode(JSON.stringify(payload(i)))));
}

function startWorker(port: number, p: Producer, c: number, label: string): WorkerProcess {
  return new WorkerProcess(WORKER, [String(port), p.stream, p.durable, String(c)], label);
}

async function e2eRun(server: NatsServer, o: ResolvedE2e): Promise<E2eResult> {
  const { port } = server;
  const dl = new Deadline(o.timeoutMs, `jetstream e2e n=${o.n} c=${o.c}`);
  const p = await openProducer(port, 'e2e', dl);
  let w: WorkerProcess | undefined;
  try {
    w = startWorker(port, p, o.c, dl.label);
    await w.wait('ready', dl.remaining());
    w.send({ type: 'expect', n: o.n });
    w.send({ type: 'run' });
    await w.wait('running', dl.remaining());
    const done = w.wait('done', dl.remaining());
    done.catch(() => {}); // observed below; avoid an unhandled rejection if publishing fails first
    const pids = { nats: server.pid, workers: w.pid, producer: 'self' as const };
    const result = await measureE2e(server, o, pids, () => dl.race(publishAll(p, o.n), 'publishing'), done);
    await w.close();
    return result;
  } finally {
    w?.kill();
    await closePeerJetStream(p);
  }
}

async function latencyRun(port: number, o: ResolvedLatency): Promise<LatencyResult> {
  const dl = new Deadline(o.timeoutMs, `jetstream latency rate=${o.rate} c=${o.c}`);
  const { total } = offeredCount(o);
  const p = await openProducer(port, 'lat', dl);
  let w: WorkerProcess | undefined;
  try {
    w = startWorker(port, p, o.c, dl.label);
    await w.wait('ready', dl.remaining());
    w.send({ type: 'expect', n: total });
    w.send({ type: 'run' });
    await w.wait('running', dl.remaining());
    await sleep(500); // worker idle, pull requests outstanding
    const done = w.wait('done', dl.remaining());
    done.catch(() => {});
    const { addCalls, achievedRate } = await offerLoad(
      o,
      (i, tAdd) => p.js.publish(p.subject, enc.encode(JSON.stringify(payload(i, tAdd)))),
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
    await closePeerJetStream(p);
  }
}
