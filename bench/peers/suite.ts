/**
 * Repeated peer runs with medians, plus the machine/version facts printed beside the figures.
 * Used by main.ts; importable by the hub benchmark.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBullmq } from './bullmq.js';
import type { E2eOptions, E2eResult, LatencyOptions, LatencyResult, PeerResult } from './common.js';
import { median } from './common.js';
import { runJetstream } from './jetstream.js';
import { runJetstreamLog, runJetstreamMinimal, runJetstreamPipeline } from './jetstream-pipeline.js';
import { natsServerVersion } from './nats.js';
import { redisServerVersion } from './redis.js';

/**
 * `bullmqAof` is BullMQ on a Redis with an append-only file fsynced every second, the durability
 * class of JetStream's file store: the fair peer of a durable queue, and the headline ratio.
 * `bullmq` is the same without persistence.
 */
export type PeerName =
  | 'bullmqAof'
  | 'bullmq'
  | 'jetstream'
  | 'jetstreamPipeline'
  | 'jetstreamMinimal'
  | 'jetstreamLog';

export const PEER_NAMES: readonly PeerName[] = [
  'bullmqAof',
  'bullmq',
  'jetstream',
  'jetstreamPipeline',
  'jetstreamMinimal',
  'jetstreamLog',
];

export interface Environment {
  nproc: number;
  cpuModel: string;
  node: string;
  redisServer: string;
  natsServer: string;
  packages: Record<string, string>;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function pkgVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function environment(): Promise<Environment> {
  const [redisServer, natsServer] = await Promise.all([
    redisServerVersion().catch((e: unknown) => `unavailable: ${String(e)}`),
    natsServerVersion().catch((e: unknown) => `unavailable: ${String(e)}`),
  ]);
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    redisServer,
    natsServer,
    packages: Object.fromEntries(
      ['bullmq', 'ioredis', '@nats-io/jetstream', '@nats-io/transport-node'].map((n) => [n, pkgVersion(n)]),
    ),
  };
}

/** 1/5/15-minute load averages, two decimals. */
export function loadAverage(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

export interface SuiteOptions {
  reps?: number;
  peers?: PeerName[];
  e2e?: E2eOptions | false;
  latency?: LatencyOptions | false;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface E2eSummary {
  tasksPerSec: number;
  seconds: number;
  /** Median per process over the runs that measured it (JetStream peers). */
  cpuMsPerTask?: Record<string, number>;
  runs: E2eResult[];
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  achievedRate: number;
  runs: LatencyResult[];
}

export interface PeerSummary {
  e2e?: E2eSummary;
  latency?: LatencySummary;
  failures: { rep: number; error: string }[];
}

export type SuiteResult = Partial<Record<PeerName, PeerSummary>>;

const RUNNERS: Record<PeerName, typeof runJetstream> = {
  bullmqAof: (o) => runBullmq({ ...o, persistence: 'aof-everysec' }),
  bullmq: runBullmq,
  jetstream: runJetstream,
  jetstreamPipeline: runJetstreamPipeline,
  jetstreamMinimal: runJetstreamMinimal,
  jetstreamLog: runJetstreamLog,
};

/**
 * Each rep runs every peer once (round-robin, both shapes per call); medians over the successful
 * reps. A failed (e.g. timed-out) run is recorded in `failures` and the suite continues.
 */
export async function runPeerSuite(opts: SuiteOptions = {}): Promise<SuiteResult> {
  const reps = opts.reps ?? 3;
  const peers = opts.peers ?? [...PEER_NAMES];
  const log = opts.log ?? ((line: string) => console.error(line));
  const e2eOpts = opts.e2e === false ? undefined : (opts.e2e ?? {});
  const latOpts = opts.latency === false ? undefined : (opts.latency ?? {});
  const raw = new Map<PeerName, PeerResult[]>(peers.map((p) => [p, []]));
  const failures = new Map<PeerName, { rep: number; error: string }[]>(peers.map((p) => [p, []]));
  for (let rep = 1; rep <= reps; rep++) {
    for (const peer of peers) {
      const t = Date.now();
      try {
        const r = await RUNNERS[peer]({ e2e: e2eOpts, latency: latOpts });
        raw.get(peer)?.push(r);
        log(`[peers] rep ${rep}/${reps} ${peer}: ${brief(r)} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        failures.get(peer)?.push({ rep, error });
        log(`[peers] rep ${rep}/${reps} ${peer}: FAILED: ${error}`);
      }
    }
  }
  const out: SuiteResult = {};
  for (const peer of peers) {
    const runs = raw.get(peer) ?? [];
    const e2eRuns = runs.flatMap((r) => (r.e2e ? [r.e2e] : []));
    const latRuns = runs.flatMap((r) => (r.latency ? [r.latency] : []));
    const s: PeerSummary = { failures: failures.get(peer) ?? [] };
    if (e2eRuns.length) {
      s.e2e = {
        tasksPerSec: median(e2eRuns.map((r) => r.tasksPerSec)),
        seconds: median(e2eRuns.map((r) => r.seconds)),
        runs: e2eRuns,
      };
      const cpuRuns = e2eRuns.flatMap((r) => (r.cpuMsPerTask ? [r.cpuMsPerTask] : []));
      if (cpuRuns.length) {
        const keys = Object.keys(cpuRuns[0]!);
        s.e2e.cpuMsPerTask = Object.fromEntries(keys.map((k) => [k, median(cpuRuns.map((c) => c[k]!))]));
      }
    }
    if (latRuns.length) {
      const m = (k: 'p50' | 'p90' | 'p99' | 'max' | 'achievedRate') => median(latRuns.map((r) => r[k]));
      s.latency = {
        p50: m('p50'),
        p90: m('p90'),
        p99: m('p99'),
        max: m('max'),
        achievedRate: m('achievedRate'),
        runs: latRuns,
      };
    }
    out[peer] = s;
  }
  return out;
}

function brief(r: PeerResult): string {
  const parts: string[] = [];
  if (r.e2e) {
    const cpu = r.e2e.cpuMsPerTask;
    const cpuText = cpu
      ? ` (CPU ms/task: ${Object.entries(cpu)
          .map(([k, v]) => `${k} ${v.toFixed(3)}`)
          .join(' ')})`
      : '';
    parts.push(`e2e ${Math.round(r.e2e.tasksPerSec)}/s${cpuText}`);
  }
  if (r.latency) {
    const l = r.latency;
    parts.push(
      `latency p50 ${l.p50.toFixed(2)} p99 ${l.p99.toFixed(2)} ms @ ${Math.round(l.achievedRate)}/s`,
    );
  }
  return parts.join(', ');
}

/** Rounds every non-integer number to `digits` decimals (for printing). */
export function rounded<T>(value: T, digits = 3): T {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) =>
      typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(digits)) : v,
    ),
  ) as T;
}
