/**
 * Flood benchmark (issue 13): does one agent flooding reports at full speed hurt the others, in a
 * protected deployment? One run, one hub, with per-agent credentials as `agentcom agent add` makes
 * them: an auth directory (ensureAuthDir + createAgentCredentials, as test/security/fixture.ts
 * does) for `honest-0`..`honest-<c-1>` and one `flooder-<mode>` per flood phase; nats-server runs its generated config (users,
 * permissions, pid_file, so the hub can reload it); the hub runs with `--auth-dir` and NATS_URL;
 * this producer connects with the admin seed, every agent with its own seed and inbox prefix.
 * Phases, in order, each `rate`/s of tasks for `duration` s (warm-up: `warmup` s, not measured),
 * with a wait for an idle hub (no open honest task, nothing pending on the hub's intake and report
 * consumers; at most `idle` s) before each:
 *   baseline  `c` honest agents (bench/flood-agents.ts, one process, slots 1 each, complete at once)
 *             work the tasks this producer submits;
 *   valid     the same, while a fresh flooder process (bench/flood-agent.ts) holds a task of its
 *             own (capability `flood-valid`, never completed during the flood) and publishes only
 *             well-formed `progress` reports about it as fast as it can, `window` in flight. The
 *             reports stream's per-agent backlog cap and the hub's per-agent report rate protect
 *             at first; at ten times its rate the flood counts as violations, so the hub suspends
 *             it and has the server drop it, as for `invalid`. Measured after a `ramp` of s (a
 *             fresh process runs its first second cold).
 *   invalid   the same, with another fresh flooder sending forged reports, non-JSON and wrong-schema
 *             payloads (and progress on its task): the hub suspends it within about a second and
 *             has the server drop its user; it keeps trying to connect again (refused, counted)
 *             until the phase ends. Measured from the moment it starts (`invalid-ramp`, default 0),
 *             so the suspension and the server's reload are inside the window. When the suspension
 *             happened is read from the config bucket (`suspended.flooder-<mode>`, watched here) and from
 *             the flooder (its connection closing).
 *   refused   (a diagnostic, only with `--floods`) the `valid` flood with every publish refused by
 *             the stream (see flood-agent.ts): what the flood costs nats-server alone.
 * `--floods valid,invalid` (the default) names the flood phases and their order.
 * Measured per phase: submit (just before publish) -> the hub's record of the task turning `done`
 * (seen by a watch on the tasks bucket in this process), p50/p99, and completed tasks/s (completed /
 * first submit -> last completion). A task not done within `drain` s of the last submit counts as
 * missing, with an infinite latency (a p99 of null means more than 1% missing). Ratios are flood
 * over baseline for p99 and baseline over flood for throughput; the goal is both within 1.5x, per
 * flood phase. `hubP50Ms`/`hubP99Ms` use the record's own `completedAt` (the hub's clock).
 * For the diagnosis, per phase: `stagesMs` splits each task's time from the record's timestamps and
 * the time the honest handler started (its result's `tStart`): intake (submit -> record created),
 * assign (created -> assigned), deliver (assigned -> handler start), report (handler start -> the
 * hub's record of `completed`), observe (that record -> this watch); finish is deliver + report.
 * `submitAckMs` is the producer's submit call (its PubAck); `agents.pubAckMs` the PubAck of every
 * report the honest agents published; `hubEventLoopMs` the hub's event-loop delay (a probe loaded
 * into the hub process with --import, 100 ms windows); `hubPingMs` the round trip of a service ping
 * the hub answers (every 200 ms); `reportsBacklog` the hub's report consumer (pending, unacked)
 * sampled every 500 ms; `natsMsgsPerSec` the server's message counters; `cpuCores` per process;
 * `host` the whole machine's CPU in use (`otherCores`: by processes not of this run, i.e. noise)
 * and how often a runnable task had to wait for one.
 * Processes: nats-server (private, never port 4222), the hub, the honest agents, one flooder per
 * flood phase, and this producer. Everything is stopped on exit (SIGTERM, then SIGKILL), on error
 * too, and the temporary directory (auth, store) removed.
 *   npx tsx bench/flood.ts [--rate 200] [--duration 10] [--warmup 3] [--drain 10] [--ramp 1]
 *     [--invalid-ramp 0] [--c 10] [--window 256] [--retry-ms 0] [--flooder-nice 0] [--idle 10]
 *     [--floods valid,invalid] [--timeout 150]
 * Each flag falls back to FLOOD_<NAME> in the environment (FLOOD_RATE=300, FLOOD_INVALID_RAMP=1).
 * HUB_LOG=<path> keeps the hub's log in <path> and its event-loop windows in <path>.eld.jsonl
 * (otherwise both are written to temp files and removed). FLOOD_DUMP=<path> writes each phase's
 * samples as [ms since the phase began, ms to done], in submit order, to <path>.<phase>.json.
 * FLOOD_HUB_PROF=<dir> runs the hub with --cpu-prof, its profile written to <dir> when it stops.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import {
  closeSync,
  createReadStream,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { submitTask } from '../src/agent/submit.js';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { openKv, type TypedKv } from '../src/bus/kv.js';
import { findNatsServer, freePort, natsServerArgs, waitForNats } from '../src/bus/nats-server.js';
import { readSeedFile } from '../src/bus/nkeys.js';
import { request } from '../src/bus/service.js';
import { createAgentCredentials } from '../src/hub/auth/agent-credentials.js';
import { ensureAuthDir } from '../src/hub/auth/auth-dir.js';
import { TaskStatsReplySchema } from '../src/protocol/api.js';
import type { AgentId, QueueName } from '../src/protocol/ids.js';
import { SUSPENSION_KEYS, type Suspension, SuspensionSchema } from '../src/protocol/limits.js';
import { type TaskRecord, TaskRecordSchema } from '../src/protocol/task.js';
import { superviseServer } from './peers/child-server.js';
import {
  cpuSeconds,
  nowMs,
  ownCpuSeconds,
  percentile,
  runBench,
  sleep,
  withTimeout,
} from './peers/common.js';
import { natsServerVersion } from './peers/nats.js';

const args = process.argv.slice(2);
const flag = (name: string, def: number): number => {
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return Number(args[i + 1]);
  const env = process.env[`FLOOD_${name.toUpperCase().replace(/-/g, '_')}`];
  return env !== undefined && env !== '' ? Number(env) : def;
};
const RATE = flag('rate', 200);
const DURATION = flag('duration', 10);
const WARMUP = flag('warmup', 3);
const DRAIN = flag('drain', 10);
const RAMP = flag('ramp', 1);
const INVALID_RAMP = flag('invalid-ramp', 0);
const C = flag('c', 10);
const WINDOW = flag('window', 256);
/** Between two connection attempts of the cut-off flooder, ms (0: the next at once). */
const RETRY_MS = flag('retry-ms', 0);
/** Scheduling priority (nice) of the flooder process: 0 as the others; 19 lets it run only on idle CPU. */
const FLOODER_NICE = flag('flooder-nice', 0);
/** Longest wait for an idle hub between phases, s. */
const IDLE_S = flag('idle', 10);
/** Whole-run bound: past it everything is stopped and the run fails. */
const TIMEOUT_S = flag('timeout', 150);
const GOAL = 1.5;
/** The flood phases, in order (`--floods valid,invalid`; `refused` is a diagnostic, see flood-agent.ts). */
const FLOODS = (() => {
  const i = args.indexOf('--floods');
  const v = i >= 0 ? args[i + 1] : process.env.FLOOD_FLOODS;
  const list = (v || 'valid,invalid').split(',').map((x) => x.trim());
  for (const m of list)
    if (m !== 'valid' && m !== 'invalid' && m !== 'refused')
      throw new Error(`--floods: unknown flood ${JSON.stringify(m)} (valid, invalid, refused)`);
  return list as FloodMode[];
})();
type FloodMode = 'valid' | 'invalid' | 'refused';
for (const [k, v] of Object.entries({ RATE, DURATION, C, WINDOW }))
  if (!(v > 0)) throw new Error(`--${k.toLowerCase()} must be > 0, got ${v}`);

const log = (line: string) => process.stderr.write(`[flood] ${line}\n`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const prefix = `flood${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
/** The flooder of each phase is its own agent (bench/flood-agent.ts): one may still be suspended in the next. */
const flooderId = (mode: string) => `flooder-${mode}`;
const HONEST = Array.from({ length: C }, (_, i) => `honest-${i}`);

/**
 * Loaded into the hub with --import: its event-loop delay, one line per 100 ms window
 * ([epoch ms, p99, max, mean], ms) appended to FLOOD_ELD_FILE. Measures; changes nothing.
 */
const HUB_PROBE = `import { monitorEventLoopDelay } from 'node:perf_hooks';
import { appendFileSync } from 'node:fs';
const file = process.env.FLOOD_ELD_FILE;
if (file) {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  setInterval(() => {
    appendFileSync(file, JSON.stringify([Date.now(), h.percentile(99) / 1e6, h.max / 1e6, h.mean / 1e6]) + '\\n');
    h.reset();
  }, 100).unref();
}`;

// ---------------------------------------------------------------------------------------------
// Processes, and stopping them whatever happens

const children: { name: string; child: ChildProcess }[] = [];
let nats: { url: string; pid: number; monitorPort: number; stop(): Promise<void> } | undefined;
let bus: Bus | undefined;
let hubLogPath: string | undefined;
let eldPath: string | undefined;
let rootDir: string | undefined;

const gone = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;
const exited = (c: ChildProcess) =>
  gone(c) ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()));

/** SIGTERM, then SIGKILL if still there after `graceMs`. */
async function terminate(c: ChildProcess, graceMs = 4000): Promise<void> {
  if (gone(c)) return;
  c.kill('SIGTERM');
  await withTimeout(exited(c), graceMs, 'SIGTERM').catch(() => {
    if (!gone(c)) c.kill('SIGKILL');
  });
  await withTimeout(exited(c), 2000, 'SIGKILL').catch(() => {});
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (bus) await withTimeout(bus.drain(), 3000, 'drain').catch(() => bus?.nc.close());
    // Flooders and agents first (they say goodbye to a hub that is still up), then the hub, then
    // the server (which removes the temporary directory: auth, store, data).
    for (const { child } of [...children].reverse()) await terminate(child);
    await nats?.stop();
    if (rootDir) rmSync(rootDir, { recursive: true, force: true });
    if (hubLogPath && !process.env.HUB_LOG) rmSync(hubLogPath, { force: true });
    if (eldPath && !process.env.HUB_LOG) rmSync(eldPath, { force: true });
  })();
  return cleaning;
}
process.once('exit', () => {
  for (const { child } of children) if (!gone(child)) child.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping everything`);
    void cleanup().finally(() => process.exit(130));
  });
}

function waitMsg<T>(c: ChildProcess, type: string, timeoutMs: number, what: string): Promise<T> {
  return withTimeout(
    new Promise<T>((resolve, reject) => {
      const on = (m: { type: string }) => {
        if (m.type === type) {
          c.off('message', on);
          c.off('exit', onExit);
          resolve(m as T);
        }
      };
      const onExit = (code: number | null, signal: string | null) =>
        reject(new Error(`${what}: process exited (code ${code}, signal ${signal})`));
      c.on('message', on);
      c.once('exit', onExit);
    }),
    timeoutMs,
    `${what}: waiting for '${type}'`,
  );
}

function forkTs(name: string, file: string, argv: string[]): ChildProcess {
  // The children's stdout goes to our stderr: stdout carries the JSON alone.
  const child = fork(here(file), argv, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 2, 2, 'ipc'] });
  children.push({ name, child });
  return child;
}

/** nats-server with the auth directory's config (users, permissions, store, pid_file). */
async function startNats(configFile: string, port: number, dir: string) {
  const monitorPort = await freePort();
  const child = spawn(
    findNatsServer(),
    [...natsServerArgs({ port, configFile }), '-m', String(monitorPort)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const server = superviseServer('nats-server', child, dir);
  const up = await Promise.race([
    waitForNats(port, 15_000).then(() => true),
    server.exitedP.then(() => false),
  ]).catch(() => false);
  if (!up) {
    await server.stop();
    throw new Error(`nats-server did not start on port ${port}:\n${server.log()}`);
  }
  return { url: `nats://127.0.0.1:${port}`, pid: child.pid ?? -1, monitorPort, stop: server.stop };
}

async function natsMsgs(): Promise<{ in: number; out: number }> {
  try {
    const res = await fetch(`http://127.0.0.1:${nats?.monitorPort}/varz`);
    const v = (await res.json()) as { in_msgs: number; out_msgs: number };
    return { in: v.in_msgs, out: v.out_msgs };
  } catch {
    return { in: Number.NaN, out: Number.NaN };
  }
}

async function startHub(url: string, authDir: string, dataDir: string): Promise<ChildProcess> {
  hubLogPath = process.env.HUB_LOG ?? join(tmpdir(), `agentcom-${prefix}-hub.log`);
  eldPath = process.env.HUB_LOG
    ? `${process.env.HUB_LOG}.eld.jsonl`
    : join(tmpdir(), `agentcom-${prefix}-hub-eld.jsonl`);
  writeFileSync(eldPath, '');
  const fd = openSync(hubLogPath, 'w');
  const hub = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      `data:text/javascript,${encodeURIComponent(HUB_PROBE)}`,
      ...(process.env.FLOOD_HUB_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FLOOD_HUB_PROF}`] : []),
      here('../src/cli/main.ts'),
      'hub',
      '--auth-dir',
      authDir,
      '--data-dir',
      dataDir,
      '--prefix',
      prefix,
      '--log-level',
      'info',
      '--log-format',
      'json',
    ],
    {
      // Logs go to a file, not a pipe to this process: under the flood the hub may log every
      // refused report, and reading that here would load the producer.
      stdio: ['ignore', fd, 'inherit'],
      env: {
        ...process.env,
        NATS_URL: url,
        FLOOD_ELD_FILE: eldPath,
        AGENTCOM_ACCEPT_TIMEOUT_MS: '60000',
        AGENTCOM_RETENTION_COUNT: '1000000',
      },
    },
  );
  closeSync(fd);
  children.push({ name: 'hub', child: hub });
  const t0 = Date.now();
  for (;;) {
    if (gone(hub)) throw new Error(`hub exited during start-up (code ${hub.exitCode})`);
    if (readFileSync(hubLogPath, 'utf8').includes('"hub started"')) return hub;
    if (Date.now() - t0 > 30_000) throw new Error('hub did not start within 30 s');
    await sleep(100);
  }
}

/** Time (epoch ms) of the first hub log line with message `msg` at or after `after`; null if none. */
function hubLogTime(msg: string, after: number): number | null {
  if (!hubLogPath) return null;
  for (const l of readFileSync(hubLogPath, 'utf8').split('\n')) {
    if (!l.includes(`"msg":"${msg}`)) continue;
    const t = Number(/"time":(\d+)/.exec(l)?.[1]);
    if (t >= after) return t;
  }
  return null;
}

/** Lines of the hub log by level (30 info, 40 warn, 50 error, 60 fatal) and the commonest messages. */
async function hubLogSummary(path: string) {
  const byLevel: Record<string, number> = {};
  const warnings = new Map<string, number>();
  const notable: string[] = [];
  let lines = 0;
  const rl = createInterface({ input: createReadStream(path) });
  for await (const l of rl) {
    lines++;
    const level = /"level":(\d+)/.exec(l)?.[1] ?? 'other';
    byLevel[level] = (byLevel[level] ?? 0) + 1;
    const msg = /"msg":"([^"]{0,100})/.exec(l)?.[1] ?? l.slice(0, 100);
    if (Number(level) >= 40) warnings.set(msg, (warnings.get(msg) ?? 0) + 1);
    if (/suspen/.test(msg) && notable.length < 10) notable.push(`${/"time":(\d+)/.exec(l)?.[1]} ${msg}`);
  }
  const topWarnings = Object.fromEntries([...warnings].sort((a, b) => b[1] - a[1]).slice(0, 8));
  return { lines, byLevel, topWarnings, suspensionLines: notable };
}

// ---------------------------------------------------------------------------------------------
// Phases

const STAGES = ['intake', 'assign', 'deliver', 'report', 'finish', 'observe'] as const;
interface PhaseState {
  name: string;
  seen: Set<string>;
  /** [submitted at, ms to done] of every completed task, for FLOOD_DUMP. */
  samples: [number, number][];
  /** Submit -> done seen by the watch, ms. */
  lat: number[];
  /** Submit -> the record's completedAt (hub clock), ms. */
  hubLat: number[];
  /** Where the time went (see the header). */
  stages: Record<(typeof STAGES)[number], number[]>;
  lastDone: number;
  /** Tasks of this phase that ended other than done, by status. */
  otherEnds: Record<string, number>;
}
const phases = new Map<string, PhaseState>();
const OPEN = new Set(['queued', 'assigned', 'working', 'blocked']);

function onRecord(key: string, r: TaskRecord): void {
  if (OPEN.has(r.status)) return;
  const m = (r.metadata ?? {}) as { phase?: string; tAdd?: number };
  const ph = m.phase === undefined ? undefined : phases.get(m.phase);
  if (!ph || typeof m.tAdd !== 'number' || ph.seen.has(key)) return;
  ph.seen.add(key);
  if (r.status !== 'done') {
    ph.otherEnds[r.status] = (ph.otherEnds[r.status] ?? 0) + 1;
    return;
  }
  const t = nowMs();
  ph.lat.push(t - m.tAdd);
  ph.samples.push([m.tAdd, t - m.tAdd]);
  ph.stages.intake.push(r.createdAt - m.tAdd);
  if (r.completedAt !== null) {
    ph.hubLat.push(r.completedAt - m.tAdd);
    ph.stages.observe.push(t - r.completedAt);
  }
  if (r.assignedAt !== null) {
    ph.stages.assign.push(r.assignedAt - r.createdAt);
    if (r.completedAt !== null) ph.stages.finish.push(r.completedAt - r.assignedAt);
    const tStart = (r.result as { tStart?: unknown } | null)?.tStart;
    if (typeof tStart === 'number') {
      ph.stages.deliver.push(tStart - r.assignedAt);
      if (r.completedAt !== null) ph.stages.report.push(r.completedAt - tStart);
    }
  }
  ph.lastDone = t;
}

const sortNum = (xs: readonly number[]) => [...xs].sort((a, x) => a - x);
const quant = (xs: readonly number[]) => {
  const s = sortNum(xs);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s.length ? s[s.length - 1]! : Number.NaN };
};

function bySecond(samples: [number, number][], t0: number, seconds: number): number[] {
  const buckets: number[][] = Array.from({ length: Math.ceil(seconds) }, () => []);
  for (const [t, ms] of samples) buckets[Math.min(buckets.length - 1, Math.floor((t - t0) / 1000))]?.push(ms);
  return buckets.map((b) => percentile(sortNum(b), 99));
}

type Pids = Record<string, number | undefined>;
function cpuNow(pids: Pids): Record<string, number> {
  const out: Record<string, number> = { producer: ownCpuSeconds() };
  for (const [k, pid] of Object.entries(pids)) out[k] = cpuSeconds(pid);
  return out;
}

/** The host's CPU: jiffies busy and in all (/proc/stat), and µs some task waited for a CPU (PSI). */
function hostCpu(): { busy: number; total: number; waitUs: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const idle = f[3]! + f[4]!;
    const total = f.reduce((a, x) => a + x, 0);
    const psi = /some .*total=(\d+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1];
    return { busy: total - idle, total, waitUs: psi === undefined ? Number.NaN : Number(psi) };
  } catch {
    return { busy: Number.NaN, total: Number.NaN, waitUs: Number.NaN };
  }
}

/** The hub's event-loop delay over [from, to) (epoch ms), from its probe's 100 ms windows. */
function hubEventLoop(from: number, to: number) {
  let rows: [number, number, number, number][] = [];
  try {
    rows = readFileSync(eldPath!, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as [number, number, number, number])
      .filter(([t]) => t >= from && t < to);
  } catch {
    return null;
  }
  if (rows.length === 0) return null;
  const p99s = sortNum(rows.map((r) => r[1]));
  return {
    windows: rows.length,
    meanMs: rows.reduce((a, r) => a + r[3], 0) / rows.length,
    p50OfWindowP99s: percentile(p99s, 50),
    p99OfWindowP99s: percentile(p99s, 99),
    maxMs: Math.max(...rows.map((r) => r[2])),
    /** Windows in which the loop was late by more than 20 ms at least once. */
    windowsOver20Ms: rows.filter((r) => r[2] > 20).length,
  };
}

/** Samples the hub's responsiveness and report backlog until `stop()`; their summary. */
function startSamplers(b: Bus) {
  const ping: number[] = [];
  let pingFailures = 0;
  const pending: number[] = [];
  const ackPending: number[] = [];
  const reportsInStream: number[] = [];
  let running = true;
  const pingLoop = (async () => {
    const subject = `$SRV.PING.${b.names.service.name}`;
    while (running) {
      const t = nowMs();
      try {
        await b.nc.request(subject, new Uint8Array(), { timeout: 2000 });
        ping.push(nowMs() - t);
      } catch {
        pingFailures++;
      }
      await sleep(200);
    }
  })();
  const backlogLoop = (async () => {
    while (running) {
      try {
        const ci = await b.jsm.consumers.info(b.names.streams.reports, b.names.consumers.hubReports);
        pending.push(ci.num_pending);
        ackPending.push(ci.num_ack_pending);
        const si = await b.jsm.streams.info(b.names.streams.reports);
        reportsInStream.push(si.state.messages);
      } catch {
        // a sample fewer
      }
      await sleep(500);
    }
  })();
  return async () => {
    running = false;
    await Promise.all([pingLoop, backlogLoop]);
    return {
      hubPingMs: { ...quant(ping), n: ping.length, failures: pingFailures },
      reportsBacklog: {
        samples: pending.length,
        maxPending: Math.max(0, ...pending),
        maxAckPending: Math.max(0, ...ackPending),
        meanAckPending: ackPending.length ? ackPending.reduce((a, x) => a + x, 0) / ackPending.length : 0,
        maxInStream: Math.max(0, ...reportsInStream),
      },
    };
  };
}

interface AgentsWindow {
  pubAckMs: { n: number; p50: number; p99: number; max: number; failuresSoFar: number };
  eventLoopMs: { p99OfWindowP99s: number; max: number };
}

/** Offers `rate`/s for `seconds` on an absolute schedule, then waits up to DRAIN s for them all. */
async function runPhase(b: Bus, name: string, seconds: number, pids: Pids, agents: ChildProcess) {
  const ph: PhaseState = {
    name,
    seen: new Set(),
    samples: [],
    lat: [],
    hubLat: [],
    stages: { intake: [], assign: [], deliver: [], report: [], finish: [], observe: [] },
    lastDone: 0,
    otherEnds: {},
  };
  phases.set(name, ph);
  const total = Math.round(RATE * seconds);
  const interval = 1000 / RATE;
  let submitErrors = 0;
  const submitAck: number[] = [];
  const pending: Promise<unknown>[] = [];
  const cpu0 = cpuNow(pids);
  const host0 = hostCpu();
  const msgs0 = await natsMsgs();
  const stopSamplers = startSamplers(b);
  const t0 = nowMs();
  for (let i = 0; i < total; i++) {
    const d = t0 + i * interval - nowMs();
    if (d > 0) await sleep(d);
    if (cleaning) throw new Error('stopping');
    const tAdd = nowMs();
    pending.push(
      submitTask(b, {
        title: `${name}-${i}`,
        capabilities: ['honest'],
        metadata: { phase: name, seq: i, tAdd },
      }).then(
        () => submitAck.push(nowMs() - tAdd),
        () => {
          submitErrors++;
        },
      ),
    );
  }
  const tLastSubmit = nowMs();
  await Promise.all(pending);
  const submitSeconds = (nowMs() - t0) / 1000;
  const drainEnd = tLastSubmit + DRAIN * 1000;
  while (ph.seen.size < total - submitErrors && nowMs() < drainEnd && !cleaning) await sleep(20);
  const tEnd = nowMs();
  const wall = (tEnd - t0) / 1000;
  const cpu1 = cpuNow(pids);
  const host1 = hostCpu();
  const msgs1 = await natsMsgs();
  const samplers = await stopSamplers();
  agents.send({ type: 'window', from: t0, to: tEnd });
  const agentsWindow = await waitMsg<AgentsWindow>(agents, 'window', 5000, 'honest agents').catch(
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  if (process.env.FLOOD_DUMP) {
    const rel = ph.samples
      .map(([ts, ms]) => [Math.round(ts - t0), Number(ms.toFixed(2))])
      .sort((a, x) => a[0]! - x[0]!);
    writeFileSync(`${process.env.FLOOD_DUMP}.${name}.json`, JSON.stringify(rel));
  }
  const completed = ph.lat.length;
  const missing = total - completed;
  // Missing tasks count as infinitely slow: a percentile they reach is null in the JSON.
  const inf = Array<number>(Math.max(0, missing)).fill(Number.POSITIVE_INFINITY);
  const padded = [...sortNum(ph.lat), ...inf];
  const hubPadded = [...sortNum(ph.hubLat), ...inf];
  const spanS = completed ? (ph.lastDone - t0) / 1000 : Number.NaN;
  const cpuCores: Record<string, number> = {};
  for (const k of Object.keys(cpu0)) cpuCores[k] = (cpu1[k]! - cpu0[k]!) / wall;
  const busyCores = ((host1.busy - host0.busy) / (host1.total - host0.total)) * cpus().length;
  return {
    t0,
    tEnd,
    result: {
      offered: total,
      submitted: total - submitErrors,
      submitErrors,
      achievedRate: total / submitSeconds,
      completed,
      missing,
      otherEnds: ph.otherEnds,
      tasksPerSec: completed ? completed / spanS : 0,
      p50Ms: percentile(padded, 50),
      p90Ms: percentile(padded, 90),
      p99Ms: percentile(padded, 99),
      maxMs: padded.length ? padded[padded.length - 1]! : Number.NaN,
      /** p99 of the tasks submitted in each second of the phase (completed ones only). */
      p99MsBySecond: bySecond(ph.samples, t0, seconds),
      hubP50Ms: percentile(hubPadded, 50),
      hubP99Ms: percentile(hubPadded, 99),
      /** p50, p99 and max of each stage of the completed tasks, ms (see the header). */
      stagesMs: Object.fromEntries(STAGES.map((k) => [k, quant(ph.stages[k])])),
      submitAckMs: quant(submitAck),
      agents: agentsWindow,
      hubEventLoopMs: hubEventLoop(t0, tEnd),
      ...samplers,
      /** Messages into and out of nats-server per second over the phase. */
      natsMsgsPerSec: { in: (msgs1.in - msgs0.in) / wall, out: (msgs1.out - msgs0.out) / wall },
      /** CPU used per process over the phase, in cores (CPU s / wall s). */
      cpuCores,
      /**
       * The whole host over the phase: CPU in use, in cores (all processes, this run's and others'),
       * and the share of the time at least one runnable task was waiting for a CPU (/proc/pressure/cpu).
       */
      host: {
        busyCores,
        /** CPU in use by processes other than this run's: another workload on the machine. */
        otherCores: busyCores - Object.values(cpuCores).reduce((a, x) => a + (Number.isFinite(x) ? x : 0), 0),
        cpuWaitShare: (host1.waitUs - host0.waitUs) / (wall * 1e6),
      },
    },
  };
}

async function streamMessages(b: Bus): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  const s = b.names.streams;
  for (const [k, name] of Object.entries({
    reports: s.reports,
    inbox: s.inbox,
    dlq: s.dlq,
    submit: s.submit,
  })) {
    try {
      const info = await withTimeout(b.jsm.streams.info(name), 5000, `stream info ${name}`);
      out[k] = info.state.messages;
    } catch (err) {
      out[k] = `failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return out;
}

/**
 * Waits until the hub is idle: no open task other than the flooders' own, nothing pending or
 * unacked on its intake and report consumers. Returns how long it took, or null when `IDLE_S` ran out.
 */
async function waitIdle(b: Bus, kv: TypedKv<TaskRecord>, ownIds: string[]): Promise<number | null> {
  const t0 = nowMs();
  const n = b.names;
  while (nowMs() - t0 < IDLE_S * 1000 && !cleaning) {
    try {
      const stats = await request(b, 'task.stats', { v: 1 }, TaskStatsReplySchema, { timeoutMs: 5000 });
      const open = [...OPEN].reduce((a, s) => a + (stats.byStatus[s] ?? 0), 0);
      let ownOpen = 0;
      for (const id of ownIds) {
        const r = await kv.get(id);
        if (r && OPEN.has(r.value.status)) ownOpen++;
      }
      const intake = await b.jsm.consumers.info(n.streams.submit, n.consumers.hubIntake);
      const reports = await b.jsm.consumers.info(n.streams.reports, n.consumers.hubReports);
      const busy =
        intake.num_pending + intake.num_ack_pending + reports.num_pending + reports.num_ack_pending;
      if (open - ownOpen <= 0 && busy === 0) return nowMs() - t0;
    } catch {
      // try again
    }
    await sleep(100);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// The run

interface FlooderCounts {
  sent: number;
  seconds: number;
  cut: null | { at: number; error: string | null };
  reconnects: { attempts: number; refused: number; accepted: number; refusedBy: Record<string, number> };
  [k: string]: unknown;
}

async function main(): Promise<Record<string, unknown>> {
  const load = () => loadavg().map((x) => Number(x.toFixed(2)));
  const out: Record<string, unknown> = {
    bench: 'flood',
    machine: { nproc: cpus().length, cpu: cpus()[0]?.model, loadavgStart: load() },
    node: process.version,
    natsServer: await natsServerVersion(),
    params: {
      rate: RATE,
      durationS: DURATION,
      warmupS: WARMUP,
      drainS: DRAIN,
      rampS: RAMP,
      invalidRampS: INVALID_RAMP,
      c: C,
      window: WINDOW,
      retryMs: RETRY_MS,
      flooderNice: FLOODER_NICE,
      idleS: IDLE_S,
      floods: FLOODS,
      prefix,
    },
  };
  const tRun = nowMs();

  // The deployment: an auth directory as `agentcom agent add` leaves it, and its server.
  rootDir = mkdtempSync(join(tmpdir(), 'agentcom-flood-'));
  const authDir = join(rootDir, 'auth');
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const { paths } = await ensureAuthDir(authDir, {
    prefix,
    listen: `127.0.0.1:${port}`,
    storeDir: join(rootDir, 'store'),
  });
  const flooders = FLOODS.map(flooderId);
  for (const id of [...HONEST, ...flooders])
    await createAgentCredentials(paths, {
      id: id as AgentId,
      name: id,
      capabilities: [flooders.includes(id) ? `flood-${id.slice('flooder-'.length)}` : 'honest'],
      queues: ['default' as QueueName],
      slots: 1,
      canSubmit: false,
      servers: url,
      prefix,
    });
  nats = await startNats(paths.config, port, rootDir);
  log(`nats-server on ${url} (auth dir ${authDir}); starting the hub (prefix ${prefix})`);
  const hub = await startHub(url, authDir, join(rootDir, 'data'));
  const agents = forkTs('agents', './flood-agents.ts', [url, prefix, String(C), authDir]);
  await waitMsg(agents, 'ready', 30_000, 'honest agents');
  bus = await connectBus({
    servers: url,
    prefix,
    name: 'flood-producer',
    nkeySeed: await readSeedFile(paths.adminSeed),
    logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  const kv = await openKv(bus, bus.names.buckets.tasks, TaskRecordSchema);
  const watch = await kv.watch({ updatesOnly: true });
  void (async () => {
    for await (const ch of watch) if (ch.operation === 'put' && ch.value) onRecord(ch.key, ch.value);
  })().catch((err: unknown) => log(`task watch ended: ${err instanceof Error ? err.message : String(err)}`));
  // Suspensions of the flooder, as the hub writes them.
  const suspensions: { seenAt: number; s: Suspension }[] = [];
  const configKv = await openKv(bus, bus.names.buckets.config, SuspensionSchema);
  const suspWatch = await configKv.watch({ key: SUSPENSION_KEYS, updatesOnly: true });
  void (async () => {
    for await (const ch of suspWatch)
      if (ch.operation === 'put' && ch.value) suspensions.push({ seenAt: nowMs(), s: ch.value });
  })().catch(() => {});
  out.startupS = (nowMs() - tRun) / 1000;

  const pids: Pids = { hub: hub.pid, agents: agents.pid, nats: nats.pid };
  const ownIds: string[] = [];
  const idleWaitMs: Record<string, number | null> = {};
  if (WARMUP > 0) {
    log(`warm-up ${WARMUP} s at ${RATE}/s`);
    const w = await runPhase(bus, 'warmup', WARMUP, pids, agents);
    out.warmup = { p50Ms: w.result.p50Ms, p99Ms: w.result.p99Ms, missing: w.result.missing };
  }
  idleWaitMs.baseline = await waitIdle(bus, kv, ownIds);
  log(`baseline ${DURATION} s at ${RATE}/s`);
  const baseline = (await runPhase(bus, 'baseline', DURATION, pids, agents)).result;
  log(
    `baseline: p50 ${baseline.p50Ms.toFixed(2)} p99 ${baseline.p99Ms.toFixed(2)} ms, ${baseline.tasksPerSec.toFixed(0)}/s`,
  );
  out.baseline = baseline;

  const floodPhase = async (mode: FloodMode, ramp: number) => {
    idleWaitMs[mode] = await waitIdle(bus!, kv, ownIds);
    const flooder = forkTs(`flooder-${mode}`, './flood-agent.ts', [
      url,
      prefix,
      String(WINDOW),
      mode,
      authDir,
      String(RETRY_MS),
    ]);
    if (FLOODER_NICE && flooder.pid) setPriority(flooder.pid, FLOODER_NICE);
    await waitMsg(flooder, 'ready', 30_000, `flooder (${mode})`);
    // Its own task: only this flooder offers `flood-<mode>`.
    const assigned = waitMsg<{ taskId: string; generation: number }>(
      flooder,
      'assigned',
      10_000,
      `flooder (${mode})`,
    ).catch(() => null);
    const own = await submitTask(bus!, {
      title: `flooder-own-${mode}`,
      capabilities: [`flood-${mode}`],
      metadata: { own: true, mode },
    });
    ownIds.push(own.taskId);
    const held = await assigned;
    if (!held) log(`flooder (${mode}) got no task within 10 s; flooding anyway`);
    const tFlood = nowMs();
    flooder.send({ type: 'flood' });
    const pidsFlood: Pids = { ...pids, flooder: flooder.pid };
    log(`flood ${mode} on (window ${WINDOW}); ramp ${ramp} s, then ${DURATION} s at ${RATE}/s`);
    await sleep(ramp * 1000);
    const { result, t0, tEnd } = await runPhase(bus!, mode, DURATION, pidsFlood, agents);
    const streamsAtEnd = await streamMessages(bus!);
    flooder.send({ type: 'stop' });
    const { counts } = await waitMsg<{ counts: FlooderCounts }>(flooder, 'counts', 20_000, 'flooder');
    log(
      `flood ${mode}: p50 ${result.p50Ms.toFixed(2)} p99 ${result.p99Ms.toFixed(2)} ms, ${result.tasksPerSec.toFixed(0)}/s`,
    );
    flooder.send({ type: 'close' });
    await withTimeout(exited(flooder), 8000, 'flooder close').catch(() => terminate(flooder));
    const ownRecord = await withTimeout(kv.get(own.taskId), 5000, 'own task').catch(() => null);
    const susp = suspensions.find((x) => x.seenAt >= tFlood && x.s.agentId === flooderId(mode));
    const reloadAt = hubLogTime('server users updated for suspensions', tFlood);
    const rel = (t: number) => t - tFlood;
    return {
      result: { ...result, streamMessagesAtEnd: streamsAtEnd },
      flooder: {
        ...counts,
        sentPerSec: counts.sent / counts.seconds,
        ownTask: ownRecord
          ? {
              assignedBeforeFlood: held !== null,
              status: ownRecord.value.status,
              generation: ownRecord.value.generation,
            }
          : 'not found',
        /** Times in ms after the flood began; the measured window ran from measuredFromMs to measuredToMs. */
        timeline: {
          measuredFromMs: rel(t0),
          measuredToMs: rel(tEnd),
          suspendedAtMs: susp ? rel(susp.s.at) : null,
          suspensionSeenAtMs: susp ? rel(susp.seenAt) : null,
          /** The hub's log line after it rewrote the server config and sent the server SIGHUP. */
          serverReloadAtMs: reloadAt === null ? null : rel(reloadAt),
          connectionCutAtMs: counts.cut ? rel(counts.cut.at) : null,
        },
        suspension: susp
          ? {
              reason: susp.s.reason,
              forS: (susp.s.until - susp.s.at) / 1000,
              count: susp.s.count,
            }
          : null,
        reconnectsPerSec: counts.cut
          ? counts.reconnects.attempts /
            Math.max(0.001, (tFlood + counts.seconds * 1000 - counts.cut.at) / 1000)
          : 0,
      },
    };
  };

  const floods: Record<string, Awaited<ReturnType<typeof floodPhase>>> = {};
  for (const mode of FLOODS) floods[mode] = await floodPhase(mode, mode === 'invalid' ? INVALID_RAMP : RAMP);
  watch.stop();
  suspWatch.stop();

  const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null);
  const judge = (flood: typeof baseline) => {
    const p99 = ratio(flood.p99Ms, baseline.p99Ms);
    const throughput = ratio(baseline.tasksPerSec, flood.tasksPerSec);
    return {
      ratios: { p99, throughput },
      within: {
        p99: p99 !== null && p99 <= GOAL,
        throughput: throughput !== null && throughput <= GOAL,
        both: p99 !== null && p99 <= GOAL && throughput !== null && throughput <= GOAL,
      },
    };
  };
  const judged = Object.fromEntries(Object.entries(floods).map(([m, f]) => [m, judge(f.result)]));
  for (const [m, f] of Object.entries(floods)) out[m] = f.result;
  out.flooder = Object.fromEntries(Object.entries(floods).map(([m, f]) => [m, f.flooder]));
  out.idleWaitMs = idleWaitMs;
  out.ratios = Object.fromEntries(Object.entries(judged).map(([m, j]) => [m, j.ratios]));
  out.goal = GOAL;
  out.withinGoal = Object.fromEntries(Object.entries(judged).map(([m, j]) => [m, j.within]));
  out.hub = {
    alive: !gone(hub),
    exitCode: hub.exitCode,
    log: hubLogPath ? await hubLogSummary(hubLogPath) : null,
  };
  out.runS = (nowMs() - tRun) / 1000;
  (out.machine as Record<string, unknown>).loadavgEnd = load();
  return out;
}

await runBench({ main, cleanup, timeoutS: TIMEOUT_S, log });
