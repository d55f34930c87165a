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
  AckPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
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
  withTimeout,
} from './common.js';
import { measureE2e, type NatsServer, runOnPrivateNatsServer } from './nats.js';

const WORKER = fileURLToPath(new URL('./jetstream-worker.ts', import.meta.url));
const IN_FLIGHT = 100;
const enc = new TextEncoder();

/** Both shapes against a private nats-server (see `runOnPrivateNatsServer`). */
export function runJetstream(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return runOnPrivateNatsServer('jetstream', opts, { e2e: e2eRun, latency: latencyRun });
}

interface Producer {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  subject: string;
  durable: string;
}

async function openProducer(port: number, shape: string, dl: Deadline): Promise<Producer> {
  const nc = await dl.race(connect({ servers: `127.0.0.1:${port}`, timeout: 5000 }), 'connect');
  try {
    const jsm = await dl.race(jetstreamManager(nc), 'jetstream manager');
    const js = jetstream(nc);
    const id = `${shape}${Date.now()}${Math.random().toString(36).slice(2, 8)}`;
    const stream = `S${id}`;
    const subject = `t.${id}`;
    const durable = `W${id}`;
    await dl.race(
      jsm.streams.add({
        name: stream,
        subjects: [subject],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
      }),
      'add stream',
    );
    await dl.race(
      jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        max_ack_pending: 1000,
        ack_wait: 30_000_000_000, // ns
      }),
      'add consumer',
    );
    return { nc, js, jsm, stream, subject, durable };
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
}

async function closeProducer(p: Producer): Promise<void> {
  await withTimeout(p.jsm.streams.delete(p.stream), 5000, 'delete stream').catch(() => {});
  await withTimeout(p.nc.drain(), 5000, 'drain').catch(() => p.nc.close());
}

async function publishAll(p: Producer, n: number): Promise<void> {
  let i = 0;
  const lane = async () => {
    while (i < n) await p.js.publish(p.subject, enc.encode(JSON.stringify(payload(i++))));
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
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
    await closeProducer(p);
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
    await closeProducer(p);
  }
}
