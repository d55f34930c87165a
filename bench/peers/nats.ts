/**
 * A private, throw-away JetStream `nats-server` for the JetStream baselines: random free loopback
 * port (never 4222), temp store dir, stopped with SIGTERM (SIGKILL if needed) and the store removed.
 * Uses the project's own launcher helpers. A process-exit hook kills it if the caller never stops it.
 * Also what both JetStream peers share: the streams and durables of a run (`openPeerJetStream`),
 * and the measured part of an e2e run with CPU and traffic per task (`measureE2e`).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
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
import { findNatsServer, freePort, natsServerArgs, waitForNats } from '../../src/bus/nats-server.js';
import { superviseServer } from './child-server.js';
import {
  cpuMsPerTask,
  cpuSnapshot,
  type Deadline,
  type E2eResult,
  type LatencyResult,
  nowMs,
  type PeerResult,
  type PeerRunOptions,
  type ResolvedE2e,
  type ResolvedLatency,
  resolveE2e,
  resolveLatency,
  shapesToRun,
  withTimeout,
} from './common.js';

const execFileP = promisify(execFile);

export interface NatsServer {
  port: number;
  url: string;
  pid: number;
  storeDir: string;
  /** Its HTTP monitoring port (`/varz`, `/connz`). */
  monitorPort: number;
  /** Messages and bytes the server has received and sent so far (its `/varz` counters). */
  traffic(): Promise<NatsTraffic>;
  /** Idempotent; never rejects. */
  stop(): Promise<void>;
}

/**
 * The server's own message and byte counters. Per task, they are the same on any machine (unlike
 * CPU time or tasks/s), so they compare designs across runs: every publish, PubAck, delivery, ack
 * and pull request is one message.
 */
export interface NatsTraffic {
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
}

/** `nats-server --version` → e.g. `v2.9.10`. */
export async function natsServerVersion(): Promise<string> {
  const { stdout } = await execFileP(findNatsServer(), ['--version'], { timeout: 5000 });
  return /v\d+\S*/.exec(stdout)?.[0] ?? stdout.trim();
}

export async function startNatsServer(opts: { timeoutMs?: number } = {}): Promise<NatsServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts.timeoutMs ?? 10_000);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function startOnce(timeoutMs: number): Promise<NatsServer> {
  const bin = findNatsServer();
  const port = await freePort();
  const monitorPort = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'agentcom-peer-nats-'));
  const args = [
    ...natsServerArgs({ port, storeDir, serverName: `peer-bench-${port}` }),
    '-m',
    String(monitorPort),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = superviseServer('nats-server', child, storeDir);
  const stop = server.stop;

  try {
    const up = await Promise.race([
      waitForNats(port, timeoutMs).then(() => true),
      server.exitedP.then(() => false),
    ]);
    if (!up) throw new Error(`nats-server exited during start-up on port ${port}:\n${server.log()}`);
  } catch (err) {
    await stop();
    throw err;
  }
  const traffic = () => natsTraffic(monitorPort);
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    storeDir,
    monitorPort,
    traffic,
    stop,
  };
}

/**
 * The counters of the nats-server whose HTTP monitoring port is `monitorPort` (its `/varz`). On a
 * cluster node they include what the routes carry (replication, forwarded messages).
 */
export async function natsTraffic(monitorPort: number): Promise<NatsTraffic> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/varz`);
  const v = (await res.json()) as { in_msgs: number; out_msgs: number; in_bytes: number; out_bytes: number };
  return { inMsgs: v.in_msgs, outMsgs: v.out_msgs, inBytes: v.in_bytes, outBytes: v.out_bytes };
}

/** The sum of several servers' counters (a cluster's nodes). */
export function sumTraffic(ts: readonly NatsTraffic[]): NatsTraffic {
  const sum = (k: keyof NatsTraffic) => ts.reduce((acc, t) => acc + t[k], 0);
  return {
    inMsgs: sum('inMsgs'),
    outMsgs: sum('outMsgs'),
    inBytes: sum('inBytes'),
    outBytes: sum('outBytes'),
  };
}

/**
 * The measured part of a JetStream peer's e2e run: `publishAll` timed, then the wait for `done`
 * (its `t` is the finish time), with each process's CPU and the server's traffic per task over it.
 */
export async function measureE2e(
  server: NatsServer,
  o: ResolvedE2e,
  pids: Record<string, number | 'self' | undefined>,
  publishAll: () => Promise<unknown>,
  done: Promise<{ t: number }>,
): Promise<E2eResult> {
  const cpu0 = cpuSnapshot(pids);
  const traffic0 = await server.traffic();
  const t0 = nowMs();
  await publishAll();
  const addSeconds = (nowMs() - t0) / 1000;
  const seconds = ((await done).t - t0) / 1000;
  const cpuPerTask = cpuMsPerTask(cpu0, cpuSnapshot(pids), o.n);
  const natsPerTask = trafficPerTask(traffic0, await server.traffic(), o.n);
  return {
    n: o.n,
    c: o.c,
    seconds,
    addSeconds,
    tasksPerSec: o.n / seconds,
    cpuMsPerTask: cpuPerTask,
    natsPerTask,
  };
}

/** Traffic per task between two readings, rounded to one decimal. */
export function trafficPerTask(a: NatsTraffic, b: NatsTraffic, n: number): NatsTraffic {
  const per = (k: keyof NatsTraffic) => Math.round(((b[k] - a[k]) / n) * 10) / 10;
  return {
    inMsgs: per('inMsgs'),
    outMsgs: per('outMsgs'),
    inBytes: per('inBytes'),
    outBytes: per('outBytes'),
  };
}

/**
 * Runs a JetStream peer's requested shapes (both with defaults when neither is given) against a
 * private nats-server that is started here and always stopped before returning or throwing.
 */
export async function runOnPrivateNatsServer(
  system: PeerResult['system'],
  opts: PeerRunOptions,
  runs: {
    e2e(server: NatsServer, o: ResolvedE2e): Promise<E2eResult>;
    latency(port: number, o: ResolvedLatency): Promise<LatencyResult>;
  },
): Promise<PeerResult> {
  const shapes = shapesToRun(opts);
  const e2e = shapes.e2e ? resolveE2e(shapes.e2e) : undefined;
  const latency = shapes.latency ? resolveLatency(shapes.latency) : undefined;
  const server = await startNatsServer();
  try {
    const result: PeerResult = { system };
    if (e2e) result.e2e = await runs.e2e(server, e2e);
    if (latency) result.latency = await runs.latency(server.port, latency);
    return result;
  } finally {
    await server.stop();
  }
}

/** The streams and durables of one JetStream peer run (see `openPeerJetStream`). */
export interface PeerTopology {
  /**
   * File-storage streams, work-queue retention as the hub provisions its own unless `limits` (a log
   * that keeps what it is sent).
   */
  streams: {
    name: string;
    subject: string;
    duplicateWindowMs?: number;
    retention?: 'workqueue' | 'limits';
  }[];
  /** Durable pull consumers: explicit ack, max_ack_pending 1000, ack_wait 30 s (the hub's defaults). */
  consumers: { stream: string; durable: string; filterSubject?: string }[];
}

/** A peer run's connection to the private server, and the streams to delete after the run. */
export interface PeerJetStream {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  streams: string[];
}

/** Connects to the private server on `port` and creates `topology` (closing again on failure). */
export async function openPeerJetStream(
  port: number,
  dl: Deadline,
  topology: PeerTopology,
): Promise<PeerJetStream> {
  const nc = await dl.race(connect({ servers: `127.0.0.1:${port}`, timeout: 5000 }), 'connect');
  try {
    const jsm = await dl.race(jetstreamManager(nc), 'jetstream manager');
    for (const st of topology.streams) {
      await dl.race(
        jsm.streams.add({
          name: st.name,
          subjects: [st.subject],
          retention: st.retention === 'limits' ? RetentionPolicy.Limits : RetentionPolicy.Workqueue,
          storage: StorageType.File,
          ...(st.duplicateWindowMs ? { duplicate_window: st.duplicateWindowMs * 1_000_000 } : {}),
        }),
        `add stream ${st.name}`,
      );
    }
    for (const c of topology.consumers) {
      await dl.race(
        jsm.consumers.add(c.stream, {
          durable_name: c.durable,
          ack_policy: AckPolicy.Explicit,
          max_ack_pending: 1000,
          ack_wait: 30_000_000_000, // ns
          ...(c.filterSubject ? { filter_subject: c.filterSubject } : {}),
        }),
        `add consumer ${c.durable}`,
      );
    }
    return { nc, js: jetstream(nc), jsm, streams: topology.streams.map((st) => st.name) };
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }
}

/** Deletes the run's streams (and `extra` ones) and drains the connection; best effort, bounded. */
export async function closePeerJetStream(j: PeerJetStream, extra: string[] = []): Promise<void> {
  for (const stream of [...j.streams, ...extra]) {
    await withTimeout(j.jsm.streams.delete(stream), 5000, 'delete stream').catch(() => {});
  }
  await withTimeout(j.nc.drain(), 5000, 'drain').catch(() => j.nc.close());
}

/** A name fragment unique to one run of one shape. */
export function runId(shape: string): string {
  return `${shape}${Date.now()}${Math.random().toString(36).slice(2, 8)}`;
}
