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
  type E2eResult,
  type LatencyResult,
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
  /** Idempotent; never rejects. */
  stop(): Promise<void>;
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
  const storeDir = mkdtempSync(join(tmpdir(), 'agentcom-peer-nats-'));
  const child = spawn(bin, natsServerArgs({ port, storeDir, serverName: `peer-bench-${port}` }), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  return { port, url: `nats://127.0.0.1:${port}`, pid: child.pid ?? -1, storeDir, stop };
}

/**
 * Runs a JetStream peer's requested shapes (both with defaults when neither is given) against a
 * private nats-server that is started here and always stopped before returning or throwing.
 */
export async function runOnPrivateNatsServer(
  system: PeerResult['system'],
  opts: PeerRunOptions,
  runs: {
    e2e(port: number, natsPid: number, o: ResolvedE2e): Promise<E2eResult>;
    latency(port: number, o: ResolvedLatency): Promise<LatencyResult>;
  },
): Promise<PeerResult> {
  const shapes = shapesToRun(opts);
  const e2e = shapes.e2e ? resolveE2e(shapes.e2e) : undefined;
  const latency = shapes.latency ? resolveLatency(shapes.latency) : undefined;
  const server = await startNatsServer();
  try {
    const result: PeerResult = { system };
    if (e2e) result.e2e = await runs.e2e(server.port, server.pid, e2e);
    if (latency) result.latency = await runs.latency(server.port, latency);
    return result;
  } finally {
    await server.stop();
  }
}
