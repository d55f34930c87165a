/**
 * A private, throw-away JetStream `nats-server` for the raw-JetStream baseline: random free loopback
 * port (never 4222), temp store dir, stopped with SIGTERM (SIGKILL if needed) and the store removed.
 * Uses the project's own launcher helpers. A process-exit hook kills it if the caller never stops it.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findNatsServer, freePort, natsServerArgs, waitForNats } from '../../src/bus/nats-server.js';
import { superviseServer } from './child-server.js';
import {
  cpuMsPerTask,
  cpuSnapshot,
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
} from './common.js';

const execFileP = promisify(execFile);

export interface NatsServer {
  port: number;
  url: string;
  pid: number;
  storeDir: string;
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
  const traffic = async (): Promise<NatsTraffic> => {
    const res = await fetch(`http://127.0.0.1:${monitorPort}/varz`);
    const v = (await res.json()) as {
      in_msgs: number;
      out_msgs: number;
      in_bytes: number;
      out_bytes: number;
    };
    return { inMsgs: v.in_msgs, outMsgs: v.out_msgs, inBytes: v.in_bytes, outBytes: v.out_bytes };
  };
  return { port, url: `nats://127.0.0.1:${port}`, pid: child.pid ?? -1, storeDir, traffic, stop };
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
