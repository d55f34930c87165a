/**
 * Stigmergy field benchmark (issue 15): what the hub's field costs on this machine, with raw NATS
 * JetStream KV measured in the same run, against the same nats-server, as the baseline (plain
 * buckets, history 1, file storage, as the field's; values of the same shape; no request/reply,
 * validation or audit). Processes: a private nats-server (free port, never 4222; its store removed
 * at the end), one hub (`agentcom hub --nats-url`, a separate process, as bench/hub.ts starts it),
 * `observer-procs` child processes holding the latency section's observers (bench/field-observers.ts:
 * one Node process cannot take 50 observers at 1000/s without its own queueing showing as latency;
 * their clocks' offsets from this one are measured and subtracted), and this process, which runs
 * every other client, each on its own connection.
 *   latency   `observers` agent connections each `FieldClient.observe(['lat.main.>'])` (through
 *             the hub: `field.observe.<id>`, a push consumer delivering to its own inbox) while
 *             `emitters` trusted connections emit `lat.main.item` (payload {seq, t}) at `rate`/s in
 *             total, on one absolute schedule, `warmup` s (not measured) then `seconds` s;
 *             latency = observed - t (wall clocks of one machine, the observer processes' offsets
 *             measured and subtracted), one sample per (emit, observer) pair; missing pairs are
 *             counted. Load comes from trusted connections, which the per-agent field rate (100/s)
 *             does not limit. Baseline: `put`s of pheromone-shaped records at the same rate from as
 *             many connections, observed by as many `kv.watch`es, each on its own connection, on a
 *             plain bucket. `atReferenceRate`: the same, shorter, at `ref-rate`/s (a rate this
 *             machine takes without saturating: what the path costs apart from queueing for CPU).
 *   claims    `m` pheromones; for each in turn, `c` agent connections (`field.claim.<id>.<type>`)
 *             all claim it at once (their sends start in a rotating order); per pheromone:
 *             exactly one winner (replies, and the stored record), resolution = first claim sent
 *             -> last claim answered, and every claim call's latency. Baseline: `c` connections
 *             racing a KV `update` of the same key with the same expected revision (a loser then
 *             `get`s the key to learn the winner, as the hub's reply tells it).
 *   expiry    `expiry-n` pheromones with ttls spread over 1-3 s, observed by an agent; lag = the
 *             first `gone` observation (the `expired` revision, or the key's delete when that
 *             revision was replaced first) - expiresAt (wall clocks of one machine). Baseline (this
 *             nats-server, 2.9, has no per-message TTL): a client timer per key that deletes it at
 *             its expiresAt, observed by a `kv.watch`.
 *   catchUp   `catchup-n` live pheromones; observe(['catchup.>']) and observe(['*']) -> all of them
 *             received as initial observations. Baseline: KV watches over a plain bucket as large.
 *   trusted   (last) the claim race of `trusted-m` pheromones by `c` trusted connections naming
 *             only the id (`field.claim` with `by`): the hub finds the key in the Field actor's
 *             index (`keyLookupProbe` times the direct get it falls back to, for the oldest and the
 *             newest key).
 *   npx tsx bench/field.ts [--quick] [--rate 1000] [--observers 50] [--observer-procs 2]
 *     [--emitters 4] [--warmup 1] [--seconds 4] [--ref-rate 200] [--no-ref] [--m 100] [--c 50]
 *     [--expiry-n 1000] [--catchup-n 5000] [--catchup-k 64] [--trusted-m 50] [--timeout 240]
 *     [--no-trusted-claims] [--no-catchup]
 * `--quick` shortens the latency run and divides the counts by about 5-10 (observers, claimants
 * and the rate stay; flags given explicitly win). Prints one JSON document on stdout (times in
 * ms); progress on stderr. HUB_LOG=<path> keeps the hub's log lines in <path>;
 * OBSERVERS_CPU_PROF=<dir> writes a CPU profile of each observer process there.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { StorageType } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { FieldClient, type Observation } from '../src/agent/field.js';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { nextBySubject } from '../src/bus/direct-get.js';
import { openKv } from '../src/bus/kv.js';
import { openLimitsKv } from '../src/bus/live-limits.js';
import { AgentComError, ERROR_CODES } from '../src/protocol/errors.js';
import { type Pheromone, PheromoneSchema } from '../src/protocol/field.js';
import { DEFAULT_RATES, LIMITS_KEY, LimitsSchema } from '../src/protocol/limits.js';
import { agentInboxPrefix } from '../src/protocol/permissions.js';
import type { FromObservers, ObserverSession, ToObservers } from './field-observers.js';
import {
  benchFlags,
  cpuSeconds,
  nowMs,
  ownCpuSeconds,
  runBench,
  sleep,
  withTimeout,
} from './peers/common.js';
import { type NatsServer, startNatsServer } from './peers/nats.js';
import {
  commandLine,
  type Dist,
  dist,
  errText,
  loadAverage,
  machineInfo,
  ratio,
  sourceState,
  until,
} from './report.js';

// ---------------------------------------------------------------------------------------------
// Flags

const args = process.argv.slice(2);
const flags = benchFlags(args);
const QUICK = flags.quick;
const flag = flags.number;
const RATE = flag('rate', 1000);
const OBSERVERS = flag('observers', 50);
const EMITTERS = flag('emitters', 4);
/** Child processes the observers are spread over (one Node process cannot take 50 at 1000/s). */
const OBSERVER_PROCS = flag('observer-procs', 2);
/** A second, shorter latency run at this rate (0: none), as a reference below saturation. */
const REF_RATE = args.includes('--no-ref') ? 0 : flag('ref-rate', 200);
const WARMUP_S = flag('warmup', 1, 0.5);
const SECONDS = flag('seconds', 4, 1);
const MA = flag('m', 100, 20);
const C = flag('c', 50);
const EXPIRY_N = flag('expiry-n', 1000, 200);
const CATCHUP_N = flag('catchup-n', 5000, 500);
const CATCHUP_K = flag('catchup-k', 64);
const TRUSTED_M = flag('trusted-m', 50, 10);
const TIMEOUT_S = flag('timeout', 240);
const TRUSTED_CLAIMS = !args.includes('--no-trusted-claims');
const CATCHUP = !args.includes('--no-catchup');
/** Claim rounds before the measured ones (connections' reply subscriptions, JIT). */
const CLAIM_WARM = 3;
/** Request timeout of every field call: long, so that queueing shows as latency, not as errors. */
const CALL_TIMEOUT_MS = 40_000;

const log = (line: string) => process.stderr.write(`[field] ${line}\n`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const prefix = `fb${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
/** The raw baseline's plain buckets (history 1, file storage, as the field's). */
const RAW = {
  lat: `${prefix}_rawlat`,
  claim: `${prefix}_rawclaim`,
  exp: `${prefix}_rawexp`,
  cu: `${prefix}_rawcu`,
};
const isRateLimited = (err: unknown) => err instanceof AgentComError && err.code === ERROR_CODES.RATE_LIMITED;

// ---------------------------------------------------------------------------------------------
// Summaries

const ratios = (h: Dist, r: Dist, keys: (keyof Dist)[] = ['p50', 'p90', 'p99', 'max']) =>
  Object.fromEntries(keys.map((k) => [k, ratio(h[k], r[k])]));

/**
 * CPU of each process between start and `per(n)`: ms per op, and cores busy (CPU s / wall s; 2
 * cores here, shared by all of them); the server's messages per op. `observers`: the observer
 * child processes together.
 */
function meter(pids: { hub: number | undefined; nats: number; observers: number[] }, server: NatsServer) {
  const snap = (): Record<string, number> => ({
    hub: cpuSeconds(pids.hub),
    nats: cpuSeconds(pids.nats),
    bench: ownCpuSeconds(),
    ...(pids.observers.length
      ? { observers: pids.observers.reduce((a, pid) => a + cpuSeconds(pid), 0) }
      : {}),
  });
  const cpu0 = snap();
  const t0 = nowMs();
  const traffic0 = server.traffic().catch(() => null);
  return async (n: number) => {
    const cpu1 = snap();
    const wallS = (nowMs() - t0) / 1000;
    const tr0 = await traffic0;
    const tr1 = await server.traffic().catch(() => null);
    const cpuMsPerOp: Record<string, number> = {};
    const coresBusy: Record<string, number> = {};
    for (const k of Object.keys(cpu0)) {
      cpuMsPerOp[k] = ((cpu1[k]! - cpu0[k]!) * 1000) / Math.max(1, n);
      coresBusy[k] = (cpu1[k]! - cpu0[k]!) / wallS;
    }
    return {
      cpuMsPerOp,
      coresBusy,
      natsMsgsPerOp:
        tr0 && tr1
          ? {
              in: (tr1.inMsgs - tr0.inMsgs) / Math.max(1, n),
              out: (tr1.outMsgs - tr0.outMsgs) / Math.max(1, n),
            }
          : null,
    };
  };
}
type Meter = ReturnType<typeof meter>;

// ---------------------------------------------------------------------------------------------
// Load shapes

/**
 * `n` calls of `op(i)` on an absolute schedule at `rate`/s, none awaited before the next starts
 * (the calls due when the timer fires all go out then).
 */
async function steady(n: number, rate: number, op: (i: number) => Promise<unknown>) {
  const interval = 1000 / rate;
  const callMs: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let maxBehindMs = 0;
  const pending: Promise<void>[] = [];
  const t0 = nowMs();
  let i = 0;
  while (i < n) {
    const now = nowMs();
    while (i < n && t0 + i * interval <= now) {
      maxBehindMs = Math.max(maxBehindMs, now - (t0 + i * interval));
      const t = nowMs();
      pending.push(
        op(i).then(
          () => {
            callMs.push(nowMs() - t);
          },
          (err: unknown) => {
            errors++;
            firstError ??= errText(err);
          },
        ),
      );
      i++;
    }
    if (i < n) await sleep(Math.max(0, t0 + i * interval - nowMs()));
  }
  const tSent = nowMs();
  await Promise.all(pending);
  return {
    callMs,
    errors,
    firstError,
    /** Sends per second from the first to the last. */
    achievedRate: (n - 1) / ((tSent - t0) / 1000 || 1),
    /** How far behind its schedule a send went out at worst (this process busy). */
    maxBehindMs,
  };
}

/** `k` lanes each calling `op(i)` back to back until `total` calls are made. */
async function closedLoop(k: number, total: number, op: (i: number) => Promise<unknown>) {
  const callMs: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let next = 0;
  const t0 = nowMs();
  const lane = async () => {
    while (next < total) {
      const i = next++;
      const t = nowMs();
      try {
        await op(i);
        callMs.push(nowMs() - t);
      } catch (err) {
        errors++;
        firstError ??= errText(err);
      }
    }
  };
  await Promise.all(Array.from({ length: k }, lane));
  const seconds = (nowMs() - t0) / 1000;
  return { ops: callMs.length, errors, firstError, seconds, opsPerSec: callMs.length / seconds, callMs };
}

// ---------------------------------------------------------------------------------------------
// The raw baseline's values: pheromone-shaped records, so the bytes stored match the field's

function record(id: string, type: string, payload: Record<string, unknown>, ttlMs: number | null = null) {
  const now = Date.now();
  const p: Pheromone = {
    v: 1,
    id,
    type,
    selector: '',
    payload,
    timestamp: now,
    source: 'api',
    ttl: ttlMs === null ? null : ttlMs / 1000,
    expiresAt: ttlMs === null ? null : now + ttlMs,
    claimedBy: null,
    claimedAt: null,
    taskId: null,
    event: 'emitted',
    eventAt: now,
    eventBy: 'api',
  };
  return p;
}
const rawId = (tag: string, i: number) => `r${tag}${i.toString(36).padStart(18, '0')}`;

// ---------------------------------------------------------------------------------------------
// Processes and connections, stopped whatever happens

let nats: NatsServer | undefined;
let hub: ChildProcess | undefined;
let hubLogFile: WriteStream | undefined;
const buses: Bus[] = [];
/** The run's first pheromone (emitted at start-up, never ended): the oldest key in the bucket. */
let oldestLive: Pheromone | undefined;
/** The observer child processes (ObserverProc), stopped at the end. */
const observerProcs: { child: ChildProcess }[] = [];
const observations: { stop(): void }[] = [];
const hubLog = {
  lines: 0,
  warn: 0,
  error: 0,
  /** Every log message (with its error's message) and how often. */
  byMsg: {} as Record<string, number>,
  /** Lease and role changes, with the section running then. */
  roleEvents: [] as { section: string; atS: number; msg: string }[],
  samples: [] as string[],
};
let section = 'startup';
const tStart = nowMs();
const ROLE_MSGS = /lease|stopping work|standby|took the|field started|api service started/;

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const o of observations) o.stop();
    for (const p of observerProcs) if (!exited(p.child)) p.child.kill('SIGTERM');
    await Promise.allSettled(
      buses.map((b) => withTimeout(b.drain(), 3000, 'drain').catch(() => b.nc.close())),
    );
    if (hub && !exited(hub)) {
      const h = hub;
      const gone = new Promise<void>((r) => h.once('exit', () => r()));
      h.kill('SIGTERM');
      await withTimeout(gone, 8000, 'hub SIGTERM').catch(async () => {
        if (!exited(h)) h.kill('SIGKILL');
        await withTimeout(gone, 2000, 'hub SIGKILL').catch(() => {});
      });
    }
    await nats?.stop();
    hubLogFile?.end();
  })();
  return cleaning;
}
process.once('exit', () => {
  if (hub && !exited(hub)) hub.kill('SIGKILL');
  for (const p of observerProcs) if (!exited(p.child)) p.child.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    log(`${sig}: stopping everything`);
    void cleanup().finally(() => process.exit(130));
  });

async function startHubProcess(url: string): Promise<ChildProcess> {
  if (process.env.HUB_LOG) hubLogFile = createWriteStream(process.env.HUB_LOG);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      here('../src/cli/main.ts'),
      'hub',
      '--nats-url',
      url,
      '--prefix',
      prefix,
      '--log-level',
      'info',
      '--log-format',
      'json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
  );
  hub = child;
  // The banner (stderr) goes to our stderr; the JSON log lines are counted (and kept with HUB_LOG).
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  const rl = createInterface({ input: child.stdout! });
  const started = new Promise<void>((resolve, reject) => {
    rl.on('line', (l) => {
      hubLog.lines++;
      hubLogFile?.write(`${l}\n`);
      if (l.includes('"hub started"')) resolve();
      try {
        const j = JSON.parse(l) as { level?: number | string; msg?: string; err?: { message?: string } };
        const lvl =
          typeof j.level === 'number' ? j.level : j.level === 'warn' ? 40 : j.level === 'error' ? 50 : 0;
        const key = `${j.msg ?? '?'}${j.err?.message ? `: ${j.err.message.slice(0, 120)}` : ''}`;
        hubLog.byMsg[key] = (hubLog.byMsg[key] ?? 0) + 1;
        if (j.msg && ROLE_MSGS.test(j.msg))
          hubLog.roleEvents.push({ section, atS: (nowMs() - tStart) / 1000, msg: key });
        if (lvl >= 40) {
          if (lvl >= 50) hubLog.error++;
          else hubLog.warn++;
          if (hubLog.samples.length < 3) hubLog.samples.push(l.slice(0, 400));
        }
      } catch {
        // not JSON
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`hub exited (code ${code}, signal ${signal})`)));
  });
  await withTimeout(started, 60_000, 'hub start');
  return child;
}

/** A connection; with `agentId`, an agent's (its reply inboxes under its own prefix). */
async function bus(name: string, agentId?: string): Promise<Bus> {
  const b = await connectBus({
    servers: nats!.url,
    prefix,
    name,
    ...(agentId ? { inboxPrefix: agentInboxPrefix(agentId) } : {}),
    logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  buses.push(b);
  return b;
}

/** `n` connections named `${name}-<i>`, made 10 at a time. */
async function busesNamed(name: string, n: number, agents: boolean): Promise<Bus[]> {
  const out: Bus[] = [];
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, (_, j) => {
      const id = `${name}-${i + j}`;
      return bus(id, agents ? id : undefined);
    });
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

async function closeAll(bs: Bus[]): Promise<void> {
  for (const b of bs) {
    const i = buses.indexOf(b);
    if (i >= 0) buses.splice(i, 1);
  }
  await Promise.allSettled(bs.map((b) => withTimeout(b.drain(), 3000, 'drain').catch(() => b.nc.close())));
}

/** Emits `n` pheromones of `type`, `k` in flight; returns them in order, and the rate. */
async function emitMany(
  fc: FieldClient,
  n: number,
  k: number,
  type: string,
  opts: (i: number) => { ttl?: number; payload?: Record<string, unknown> } = () => ({}),
) {
  const out: Pheromone[] = new Array(n);
  const r = await closedLoop(k, n, async (i) => {
    out[i] = await fc.emit(type, opts(i));
  });
  if (r.errors) throw new Error(`emitting ${type}: ${r.errors} of ${n} failed (${r.firstError})`);
  return { pheromones: out, seconds: r.seconds, perSec: r.opsPerSec, callMs: dist(r.callMs) };
}

// ---------------------------------------------------------------------------------------------
// 1. emit -> observe latency, `OBSERVERS` observers, `RATE` emits/s

/** One observer child process (bench/field-observers.ts), driven over IPC. */
class ObserverProc {
  readonly child: ChildProcess;
  private readonly waiting = new Map<string, ((m: FromObservers) => void)[]>();
  seen = 0;
  /** Its clock minus ours, ms (measured by ping). */
  offsetMs = 0;
  rttMs = Number.NaN;

  constructor(index: number) {
    // OBSERVERS_CPU_PROF=<dir>: a CPU profile of each observer process, written there at its exit.
    const prof = process.env.OBSERVERS_CPU_PROF;
    const profArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [];
    this.child = spawn(process.execPath, [...profArgs, '--import', 'tsx', here('./field-observers.ts')], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env },
    });
    observerProcs.push(this);
    this.child.on('message', (m: FromObservers) => {
      if (m.type === 'seen') {
        this.seen = m.seen;
        return;
      }
      if (m.type === 'error') {
        log(`observers ${index}: ${m.message}`);
        this.failAll(m.message);
        return;
      }
      this.waiting.get(m.type)?.shift()?.(m);
    });
    this.child.once('exit', (code, signal) => this.failAll(`exited (code ${code}, signal ${signal})`));
  }

  /** Every call waiting for an answer fails with `message`. */
  private failAll(message: string) {
    for (const list of this.waiting.values()) for (const w of list.splice(0)) w({ type: 'error', message });
  }

  private next<T extends FromObservers['type']>(type: T, ms = 60_000): Promise<FromObservers & { type: T }> {
    return withTimeout(
      new Promise<FromObservers & { type: T }>((resolve, reject) => {
        const list = this.waiting.get(type) ?? [];
        list.push((m) =>
          m.type === 'error' ? reject(new Error(m.message)) : resolve(m as FromObservers & { type: T }),
        );
        this.waiting.set(type, list);
      }),
      ms,
      `observers: ${type}`,
    );
  }

  send(m: ToObservers) {
    this.child.send(m);
  }

  /** The offset of its clock from ours: of 30 pings, the one with the shortest round trip. */
  async measureClock() {
    let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
    for (let id = 0; id < 30; id++) {
      const t0 = nowMs();
      const pong = this.next('pong', 5000);
      this.send({ type: 'ping', id });
      const { t } = await pong;
      const t1 = nowMs();
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: t - (t0 + t1) / 2 };
    }
    this.offsetMs = best.offset;
    this.rttMs = best.rtt;
  }

  async start(session: ObserverSession) {
    this.seen = 0;
    const ready = this.next('ready');
    this.send({ type: 'start', session });
    return (await ready).observeCallMs;
  }

  async stop() {
    const r = this.next('result');
    this.send({ type: 'stop' });
    return r;
  }
}

/** The observers' names split over the child processes. */
const shares = (names: string[], parts: number) =>
  Array.from({ length: parts }, (_, i) => names.filter((_, j) => j % parts === i));

/** Starts a session of `names` over the processes; returns a stop that merges the results. */
async function startObservers(procs: ObserverProc[], base: Omit<ObserverSession, 'names'>, names: string[]) {
  const t0 = nowMs();
  const parts = shares(names, procs.length);
  const calls = (await Promise.all(procs.map((p, i) => p.start({ ...base, names: parts[i]! })))).flat();
  const allS = (nowMs() - t0) / 1000;
  return {
    observeCallMs: dist(calls),
    observeAllS: allS,
    seen: () => procs.reduce((a, p) => a + p.seen, 0),
    async stop() {
      const results = await Promise.all(procs.map((p) => p.stop()));
      const all: number[] = [];
      const perObserverP99: number[] = [];
      let missing = 0;
      let observersMissingAny = 0;
      let duplicates = 0;
      let otherObservations = 0;
      let initialObservations = 0;
      results.forEach((r, pi) => {
        duplicates += r.duplicates;
        otherObservations += r.otherObservations;
        initialObservations += r.initialObservations;
        const off = procs[pi]!.offsetMs;
        for (const row of r.latencies) {
          const mine: number[] = [];
          for (const x of row) if (x !== null) mine.push(x - off);
          all.push(...mine);
          perObserverP99.push(dist(mine).p99);
          if (mine.length < base.n) observersMissingAny++;
          missing += base.n - mine.length;
        }
      });
      return {
        pairsExpected: base.n * names.length,
        pairsSeen: all.length,
        missing,
        observersMissingAny,
        duplicates,
        latencyMs: dist(all),
        perObserverP99Ms: { min: Math.min(...perObserverP99), max: Math.max(...perObserverP99) },
        otherObservations,
        initialObservations,
      };
    },
  };
}

/** CPU seconds of the observer processes together. */
const observersCpu = (procs: ObserverProc[]) => procs.reduce((a, p) => a + cpuSeconds(p.child.pid), 0);

/**
 * One latency run at `rate`: the field (agents observing, trusted emitters), then raw KV (as many
 * watchers and putters), `warmupS` then `seconds` each. `tag` keeps runs apart (types, keys).
 */
async function latencyRun(
  m: () => Meter,
  procs: ObserverProc[],
  o: { tag: string; rate: number; warmupS: number; seconds: number },
) {
  const warm = Math.round(o.rate * o.warmupS);
  const n = Math.round(o.rate * o.seconds);
  const url = nats!.url;
  const type = `lat.${o.tag}.item`;
  const sum = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

  // The field: agents observing through the hub, trusted emitters.
  log(
    `latency ${o.tag}: ${OBSERVERS} agent observers in ${procs.length} processes, ${EMITTERS} trusted emitters`,
  );
  const emitBuses = await busesNamed(`lat-emit-${o.tag}`, EMITTERS, false);
  const emitters = emitBuses.map(
    (b, i) => new FieldClient(b, { by: `lat-emit-${i}`, timeoutMs: CALL_TIMEOUT_MS }),
  );
  const hubCpu0 = observersCpu(procs);
  const hubObs = await startObservers(
    procs,
    { mode: 'hub', url, prefix, pattern: `lat.${o.tag}.>`, n },
    Array.from({ length: OBSERVERS }, (_, i) => `lat-obs-${i}`),
  );
  const emit = (i: number, payload: Record<string, unknown>) =>
    emitters[i % EMITTERS]!.emit(type, { payload });
  log(`latency ${o.tag}: field, ${warm} warm-up + ${n} emits at ${o.rate}/s`);
  const w = await steady(warm, o.rate, (i) => emit(i, { seq: i, t: 0, warm: true }));
  if (w.errors) throw new Error(`latency warm-up: ${w.errors} emits failed (${w.firstError})`);
  const meterHub = m();
  const hubRun = await steady(n, o.rate, (i) => emit(i, { seq: i, t: nowMs() }));
  const hubCost = await meterHub(n);
  const hubAllSeen = await until(() => hubObs.seen() >= (n - hubRun.errors) * OBSERVERS, 10_000);
  const hubPairs = await hubObs.stop();
  const hubObsCpuUs = ((observersCpu(procs) - hubCpu0) * 1e6) / ((warm + n) * OBSERVERS);
  await closeAll(emitBuses);

  // Raw KV: as many putters and watchers, each on its own connection.
  log(`latency ${o.tag}: raw KV, ${OBSERVERS} watchers in ${procs.length} processes, ${EMITTERS} putters`);
  const putBuses = await busesNamed(`raw-put-${o.tag}`, EMITTERS, false);
  const putKvs: KV[] = await Promise.all(putBuses.map((b) => new Kvm(b.nc).open(RAW.lat)));
  const rawCpu0 = observersCpu(procs);
  const rawObs = await startObservers(
    procs,
    { mode: 'raw', url, prefix, pattern: `*.lat.${o.tag}.>`, bucket: RAW.lat, n },
    Array.from({ length: OBSERVERS }, (_, i) => `raw-watch-${i}`),
  );
  const put = (t: string, i: number, payload: Record<string, unknown>) => {
    const id = rawId(`${o.tag}${t}`, i);
    return putKvs[i % EMITTERS]!.put(`${id}.${type}`, JSON.stringify(record(id, type, payload)));
  };
  log(`latency ${o.tag}: raw KV, ${warm} warm-up + ${n} puts at ${o.rate}/s`);
  const rw = await steady(warm, o.rate, (i) => put('w', i, { seq: i, t: 0, warm: true }));
  if (rw.errors) throw new Error(`raw warm-up: ${rw.errors} puts failed (${rw.firstError})`);
  const meterRaw = m();
  const rawRun = await steady(n, o.rate, (i) => put('l', i, { seq: i, t: nowMs() }));
  const rawCost = await meterRaw(n);
  const rawAllSeen = await until(() => rawObs.seen() >= (n - rawRun.errors) * OBSERVERS, 10_000);
  const rawPairs = await rawObs.stop();
  const rawObsCpuUs = ((observersCpu(procs) - rawCpu0) * 1e6) / ((warm + n) * OBSERVERS);
  await closeAll(putBuses);

  const { callMs: hubCalls, ...hubSched } = hubRun;
  const { callMs: rawCalls, ...rawSched } = rawRun;
  return {
    rate: o.rate,
    warmupS: o.warmupS,
    seconds: o.seconds,
    emits: n,
    hub: {
      ...hubSched,
      allSeenWithin10s: hubAllSeen,
      ...hubPairs,
      emitCallMs: dist(hubCalls),
      observeCallMs: hubObs.observeCallMs,
      observeAllS: hubObs.observeAllS,
      ...hubCost,
      /** Sum of coresBusy over the measured window: 2 means this 2-core machine was saturated. */
      machineCoresBusy: sum(hubCost.coresBusy),
      /** The observer processes' CPU per observation (warm-up included), µs: FieldClient.observe's cost. */
      observerCpuUsPerObservation: hubObsCpuUs,
    },
    raw: {
      ...rawSched,
      allSeenWithin10s: rawAllSeen,
      ...rawPairs,
      putCallMs: dist(rawCalls),
      watchCallMs: rawObs.observeCallMs,
      watchAllS: rawObs.observeAllS,
      ...rawCost,
      machineCoresBusy: sum(rawCost.coresBusy),
      /** The watcher processes' CPU per observation (warm-up included), µs: kv.watch's cost. */
      observerCpuUsPerObservation: rawObsCpuUs,
    },
    ratioHubOverRaw: {
      latency: ratios(hubPairs.latencyMs, rawPairs.latencyMs),
      call: ratios(dist(hubCalls), dist(rawCalls), ['p50', 'p99']),
      observerCpuPerObservation: ratio(hubObsCpuUs, rawObsCpuUs),
    },
  };
}

async function latency(m: () => Meter, procs: ObserverProc[]) {
  const main = await latencyRun(m, procs, { tag: 'main', rate: RATE, warmupS: WARMUP_S, seconds: SECONDS });
  // The same shape at a rate this machine takes without saturating (a reference, not issue 15's).
  const ref = REF_RATE
    ? await latencyRun(m, procs, { tag: 'ref', rate: REF_RATE, warmupS: 0.5, seconds: QUICK ? 1 : 2 })
    : null;
  return {
    observers: OBSERVERS,
    observerProcesses: procs.length,
    /** Each observer process's clock minus this one's (subtracted from its latencies), and the ping's round trip. */
    observerClocks: procs.map((p) => ({ offsetMs: p.offsetMs, rttMs: p.rttMs })),
    emitters: EMITTERS,
    load: 'emits from trusted connections in this process (not rate limited); observers are agents (field.observe.<id>), each on its own connection, in the observer processes',
    ...main,
    atReferenceRate: ref,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. claim races, `C` claimants per pheromone

interface Race {
  /** First claim sent -> last claim answered. */
  resolutionMs: number[];
  /** First claim sent -> the winner's answer. */
  winnerMs: number[];
  callMs: number[];
  exactlyOne: number;
  none: number;
  several: number;
  /** Every loser was told the winner. */
  losersSawWinner: number;
  winners: string[];
  errors: number;
  rateLimited: number;
  firstError: string | null;
}

/**
 * Races `count` pheromones one after another: for each, every claimant's `claim(j)` starts at once
 * (in an order rotating with j); `claim` returns whether it won and the holder it saw.
 */
async function races(
  count: number,
  claimants: number,
  claim: (j: number, ci: number) => Promise<{ won: boolean; holder: string | null }>,
  nameOf: (ci: number) => string,
): Promise<Race> {
  const r: Race = {
    resolutionMs: [],
    winnerMs: [],
    callMs: [],
    exactlyOne: 0,
    none: 0,
    several: 0,
    losersSawWinner: 0,
    winners: [],
    errors: 0,
    rateLimited: 0,
    firstError: null,
  };
  for (let j = 0; j < count; j++) {
    const won: number[] = [];
    const saw = new Set<string>();
    let tWin = Number.NaN;
    let tLast = 0;
    const t0 = nowMs();
    const calls: Promise<void>[] = [];
    for (let k = 0; k < claimants; k++) {
      const ci = (j + k) % claimants;
      const t = nowMs();
      calls.push(
        claim(j, ci).then(
          (x) => {
            const now = nowMs();
            r.callMs.push(now - t);
            tLast = Math.max(tLast, now);
            if (x.won) {
              won.push(ci);
              tWin = now;
            } else saw.add(x.holder ?? '(none)');
          },
          (err: unknown) => {
            tLast = Math.max(tLast, nowMs());
            r.errors++;
            if (isRateLimited(err)) r.rateLimited++;
            r.firstError ??= errText(err);
          },
        ),
      );
    }
    await Promise.all(calls);
    r.resolutionMs.push(tLast - t0);
    if (won.length === 1) {
      r.exactlyOne++;
      r.winnerMs.push(tWin - t0);
      r.winners.push(nameOf(won[0]!));
      if (saw.size === 1 && saw.has(nameOf(won[0]!))) r.losersSawWinner++;
      else if (claimants === 1) r.losersSawWinner++;
    } else if (won.length === 0) r.none++;
    else r.several++;
  }
  return r;
}

function raceSummary(r: Race, count: number) {
  return {
    pheromones: count,
    claimsPerPheromone: C,
    claims: r.callMs.length + r.errors,
    errors: r.errors,
    rateLimited: r.rateLimited,
    firstError: r.firstError,
    pheromonesWithExactlyOneWinner: r.exactlyOne,
    pheromonesWithNoWinner: r.none,
    pheromonesWithSeveralWinners: r.several,
    /** Every loser's answer named the winner. */
    losersSawWinner: r.losersSawWinner,
    distinctWinners: new Set(r.winners).size,
    resolutionMs: dist(r.resolutionMs),
    winnerAnsweredMs: dist(r.winnerMs),
    claimCallMs: dist(r.callMs),
  };
}

/**
 * What a trusted ref without a type costs the hub: its key lookup (store.ts findKey: a direct get
 * of the first message under `$KV.<bucket>.<id>.>` from sequence 1), for the bucket's oldest and
 * newest pheromone, against the typed path's exact-key get; LOOKUPS each, one at a time, with the
 * server's CPU per lookup (/proc's 10 ms ticks: coarse).
 */
async function keyLookupProbe(b: Bus, m: () => Meter, oldest: Pheromone, newest: Pheromone) {
  const LOOKUPS = 200;
  const bucket = b.names.buckets.field;
  const kv = await new Kvm(b.nc).open(bucket);
  const time = async (f: () => Promise<unknown>) => {
    const cost = m();
    const ms: number[] = [];
    for (let i = 0; i < LOOKUPS; i++) {
      const t = nowMs();
      await f();
      ms.push(nowMs() - t);
    }
    const c = await cost(LOOKUPS);
    return { ms: dist(ms), natsCpuMsPerLookup: c.cpuMsPerOp.nats };
  };
  const lookup = (p: Pheromone) => () => nextBySubject(b, `KV_${bucket}`, 1, `$KV.${bucket}.${p.id}.>`);
  return {
    bucketMessages: (await b.jsm.streams.info(`KV_${bucket}`)).state.messages,
    wildcardNextBySubjectOldest: await time(lookup(oldest)),
    wildcardNextBySubjectNewest: await time(lookup(newest)),
    exactKeyGetNewest: await time(() => kv.get(`${newest.id}.${newest.type}`)),
  };
}

/** The field's race: agents (`field.claim.<id>.<type>`), or trusted clients naming only the id. */
async function claimRace(mode: 'agent' | 'trusted', m: () => Meter) {
  const M = mode === 'agent' ? MA : TRUSTED_M;
  const type = `claim.${mode}`;
  const name = mode === 'agent' ? 'claim-a' : 'claim-t';
  const emitterBus = await bus(`${name}-emitter`);
  const emitter = new FieldClient(emitterBus, { timeoutMs: CALL_TIMEOUT_MS });
  // The per-agent field rate: each claimant makes one claim per pheromone; beyond the burst (with
  // some headroom) they are whitelisted, and the JSON says so.
  let limits = 'defaults (trusted clients are not rate limited)';
  if (mode === 'agent') {
    const perAgent = M + CLAIM_WARM;
    if (perAgent > DEFAULT_RATES.field.burst * 0.8) {
      const overrides = Object.fromEntries(
        Array.from({ length: C }, (_, i) => [`${name}-${i}`, 'unlimited']),
      );
      await (await openLimitsKv(emitterBus)).put(LIMITS_KEY, LimitsSchema.parse({ v: 1, overrides }));
      await sleep(300);
      limits = `overrides: the ${C} claimants 'unlimited' (${perAgent} claims each > 80% of the burst ${DEFAULT_RATES.field.burst})`;
    } else
      limits = `defaults (${DEFAULT_RATES.field.perSecond}/s, burst ${DEFAULT_RATES.field.burst} per agent; ${perAgent} claims each)`;
  }
  const bucketMessages = (await emitterBus.jsm.streams.info(`KV_${emitterBus.names.buckets.field}`)).state
    .messages;
  const { pheromones } = await emitMany(emitter, M + CLAIM_WARM, 32, type);
  const lookupProbe =
    mode === 'trusted' && oldestLive
      ? await keyLookupProbe(emitterBus, m, oldestLive, pheromones.at(-1)!)
      : undefined;
  const claimBuses = await busesNamed(name, C, mode === 'agent');
  const names = claimBuses.map((_, i) => `${name}-${i}`);
  const clients = claimBuses.map((b, i) =>
    mode === 'agent'
      ? new FieldClient(b, { agentId: names[i]!, timeoutMs: CALL_TIMEOUT_MS })
      : new FieldClient(b, { by: names[i]!, timeoutMs: CALL_TIMEOUT_MS }),
  );
  // Agents name the type in the subject; trusted clients here name only the id (a key lookup).
  const ref = (p: Pheromone) => (mode === 'agent' ? p : { id: p.id, type: '' });
  const claimOf = (off: number) => async (j: number, ci: number) => {
    const r = await clients[ci]!.claim(ref(pheromones[off + j]!));
    return { won: r.claimed, holder: r.pheromone.claimedBy };
  };
  log(`claims (${mode}): ${CLAIM_WARM} warm-up + ${M} pheromones, ${C} claimants each`);
  await races(CLAIM_WARM, C, claimOf(0), (ci) => names[ci]!);
  const cost = m();
  const t0 = nowMs();
  const r = await races(M, C, claimOf(CLAIM_WARM), (ci) => names[ci]!);
  const seconds = (nowMs() - t0) / 1000;
  const costs = await cost(M * C);
  // The stored records: claimed by the one winner each reply named.
  const kv = await openKv(emitterBus, emitterBus.names.buckets.field, PheromoneSchema);
  let storedMatch = 0;
  for (let j = 0; j < M; j++) {
    const p = pheromones[CLAIM_WARM + j]!;
    const got = await kv.get(`${p.id}.${p.type}`);
    if (got && got.value.claimedBy !== null && r.winners.includes(got.value.claimedBy)) storedMatch++;
  }
  await closeAll([...claimBuses, emitterBus]);
  const s = raceSummary(r, M);
  return {
    mode,
    path:
      mode === 'agent'
        ? 'field.claim.<agent>.<type> (the key from the subject)'
        : "field.claim {id, by} without type (the hub finds the key in the Field actor's index)",
    limits,
    fieldBucketMessagesBefore: bucketMessages,
    ...(lookupProbe ? { keyLookupProbe: lookupProbe } : {}),
    ...s,
    storedRecordsMatchWinner: storedMatch,
    ok: s.pheromonesWithExactlyOneWinner === M && storedMatch === M && s.errors === 0,
    seconds,
    claimsPerSec: (M * C) / seconds,
    ...costs,
  };
}

/** Raw: `C` connections racing `update(key, claimed, revision)`; a loser reads the winner. */
async function rawClaimRace(m: () => Meter) {
  const M = MA;
  const putBus = await bus('raw-claim-put');
  const kvPut = await new Kvm(putBus.nc).open(RAW.claim);
  const keys: { key: string; revision: number; rec: Pheromone }[] = [];
  await closedLoop(32, M + CLAIM_WARM, async (i) => {
    const id = rawId('k', i);
    const rec = record(id, 'claim.raw', {});
    const key = `${id}.claim.raw`;
    keys[i] = { key, revision: await kvPut.put(key, JSON.stringify(rec)), rec };
  });
  const claimBuses = await busesNamed('raw-claim', C, false);
  const kvs = await Promise.all(claimBuses.map((b) => new Kvm(b.nc).open(RAW.claim)));
  const names = claimBuses.map((_, i) => `raw-claim-${i}`);
  const claimOf = (off: number) => async (j: number, ci: number) => {
    const { key, revision, rec } = keys[off + j]!;
    const now = Date.now();
    const mine = { ...rec, claimedBy: names[ci]!, claimedAt: now, event: 'claimed', eventAt: now };
    try {
      await kvs[ci]!.update(key, JSON.stringify(mine), revision);
      return { won: true, holder: names[ci]! };
    } catch {
      const got = await kvs[ci]!.get(key);
      return { won: false, holder: got ? got.json<Pheromone>().claimedBy : null };
    }
  };
  log(`claims (raw): ${CLAIM_WARM} warm-up + ${M} keys, ${C} connections each`);
  await races(CLAIM_WARM, C, claimOf(0), (ci) => names[ci]!);
  const cost = m();
  const t0 = nowMs();
  const r = await races(M, C, claimOf(CLAIM_WARM), (ci) => names[ci]!);
  const seconds = (nowMs() - t0) / 1000;
  const costs = await cost(M * C);
  let storedMatch = 0;
  for (let j = 0; j < M; j++) {
    const got = await kvPut.get(keys[CLAIM_WARM + j]!.key);
    const by = got?.json<Pheromone>().claimedBy;
    if (by && r.winners.includes(by)) storedMatch++;
  }
  await closeAll([...claimBuses, putBus]);
  const s = raceSummary(r, M);
  return {
    path: 'kv.update(key, value, expected revision) on a plain bucket; a loser then kv.get',
    ...s,
    storedRecordsMatchWinner: storedMatch,
    ok: s.pheromonesWithExactlyOneWinner === M && storedMatch === M && s.errors === 0,
    seconds,
    claimsPerSec: (M * C) / seconds,
    ...costs,
  };
}

async function claims(m: () => Meter) {
  const hubR = await claimRace('agent', m);
  const rawR = await rawClaimRace(m);
  return {
    agent: hubR,
    raw: rawR,
    ratioHubOverRaw: {
      resolution: ratios(hubR.resolutionMs, rawR.resolutionMs, ['p50', 'p99', 'max']),
      claimCall: ratios(hubR.claimCallMs, rawR.claimCallMs, ['p50', 'p99', 'max']),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 3. expiry lag

// ttls 1..3 s, in an order that mixes them (i * 7919 mod n is a permutation for n not a multiple of 7919).
const ttlMsOf = (i: number) =>
  Math.round(1000 + (2000 * ((i * 7919) % EXPIRY_N)) / Math.max(1, EXPIRY_N - 1));

async function expiryHub() {
  const obsBus = await bus('exp-obs', 'exp-obs');
  const observer = new FieldClient(obsBus, { agentId: 'exp-obs' });
  const emitBus = await bus('exp-emitter');
  const emitter = new FieldClient(emitBus, { timeoutMs: CALL_TIMEOUT_MS });
  /** Per pheromone, the first `gone` observation. */
  const first = new Map<
    string,
    { kind: 'expired' | 'removed' | 'deleted'; lag: number; hubLag: number | null }
  >();
  let goneObservations = 0;
  let otherEvents = 0;
  const obs = await observer.observe(['exp.>']);
  observations.push(obs);
  // A second view of the same keys: a bare KV watch of the field's bucket, deletes included.
  const rawView = new Map<string, { expiredPut: boolean; deleted: boolean }>();
  const viewBus = await bus('exp-raw-view');
  const rawIt = await (await new Kvm(viewBus.nc).open(viewBus.names.buckets.field)).watch({ key: '*.exp.>' });
  observations.push(rawIt);
  const rawReading = (async () => {
    for await (const e of rawIt) {
      const id = e.key.split('.')[0]!;
      const v = rawView.get(id) ?? { expiredPut: false, deleted: false };
      if (e.operation === 'PUT' && e.json<Pheromone>().event === 'expired') v.expiredPut = true;
      if (e.operation === 'DEL' || e.operation === 'PURGE') v.deleted = true;
      rawView.set(id, v);
    }
  })();
  const reading = (async () => {
    for await (const o of obs) {
      const now = nowMs();
      const p = o.pheromone;
      if (!o.gone) {
        if (p.event !== 'emitted') otherEvents++;
        continue;
      }
      goneObservations++;
      if (first.has(p.id) || p.expiresAt === null) continue;
      const kind = p.event === 'expired' ? 'expired' : p.event === 'removed' ? 'removed' : 'deleted';
      first.set(p.id, {
        kind,
        lag: now - p.expiresAt,
        hubLag: kind === 'expired' ? p.eventAt - p.expiresAt : null,
      });
    }
  })();
  log(`expiry: ${EXPIRY_N} pheromones with ttl 1-3 s`);
  const tEmit = nowMs();
  const { pheromones, seconds } = await emitMany(emitter, EXPIRY_N, 32, 'exp.item', (i) => ({
    ttl: ttlMsOf(i) / 1000,
  }));
  const lastExpiry = Math.max(...pheromones.map((p) => p.expiresAt ?? 0));
  await until(() => first.size >= EXPIRY_N, Math.max(0, lastExpiry - Date.now()) + 15_000);
  const waitedS = (nowMs() - tEmit) / 1000;
  obs.stop();
  await reading;
  await until(() => [...rawView.values()].filter((v) => v.deleted).length >= EXPIRY_N, 2000);
  rawIt.stop();
  await rawReading;
  const kv = await openKv(emitBus, emitBus.names.buckets.field, PheromoneSchema);
  const left = (await kv.keys('*.exp.>')).length;
  // The hub's audit trail: one `expired` event per pheromone it ended.
  const n = emitBus.names;
  const audit = await emitBus.jsm.streams.info(n.streams.field, {
    subjects_filter: n.subjects.fieldAudit('expired', '*', 'exp.>'),
  });
  const audited = new Set(Object.keys(audit.state.subjects ?? {}).map((s) => s.split('.').at(-3)!));
  await closeAll([obsBus, emitBus, viewBus]);
  const vals = [...first.values()];
  const missed = pheromones.filter((p) => !first.has(p.id));
  const hubLags = vals.flatMap((v) => (v.hubLag === null ? [] : [v.hubLag]));
  return {
    emitSeconds: seconds,
    seen: first.size,
    allSeen: first.size === EXPIRY_N,
    /** Which observation came first per pheromone: its `expired` revision, or the key's delete. */
    firstBy: {
      expired: vals.filter((v) => v.kind === 'expired').length,
      deleted: vals.filter((v) => v.kind === 'deleted').length,
      removed: vals.filter((v) => v.kind === 'removed').length,
    },
    goneObservations,
    otherEvents,
    keysLeftAfter: left,
    /** Pheromones of this section with an `expired` event in the hub's audit trail. */
    expiredAudited: pheromones.filter((p) => audited.has(p.id)).length,
    /** The bare KV watch of the same keys: `expired` revisions and deletes it saw. */
    rawWatchOfFieldBucket: {
      expiredPuts: [...rawView.values()].filter((v) => v.expiredPut).length,
      deletes: [...rawView.values()].filter((v) => v.deleted).length,
    },
    /** Pheromones never observed gone (first 5). */
    missed: missed
      .slice(0, 5)
      .map((p) => ({ id: p.id, audited: audited.has(p.id), rawWatch: rawView.get(p.id) ?? null })),
    /** expiresAt (the hub's Date.now) -> first gone observation (this process's wall clock, sub-ms). */
    lagMs: dist(vals.map((v) => v.lag)),
    /** eventAt - expiresAt of the `expired` revisions: the hub's timer and write. */
    hubLagMs: dist(hubLags),
    waitedS,
  };
}

async function expiryRaw() {
  const putBus = await bus('rawexp-put');
  const watchBus = await bus('rawexp-watch');
  const kv = await new Kvm(putBus.nc).open(RAW.exp);
  const seen = new Map<string, number>();
  const expiresAt = new Map<string, number>();
  const it = await (await new Kvm(watchBus.nc).open(RAW.exp)).watch({ key: '*.exp.>' });
  observations.push(it);
  const reading = (async () => {
    for await (const e of it) {
      if (e.operation === 'PUT') continue;
      const at = expiresAt.get(e.key);
      if (at !== undefined && !seen.has(e.key)) seen.set(e.key, nowMs() - at);
    }
  })();
  const timers: NodeJS.Timeout[] = [];
  let deleteErrors = 0;
  log(`expiry (raw): ${EXPIRY_N} keys, a client timer deleting each at its expiresAt`);
  const put = await closedLoop(32, EXPIRY_N, async (i) => {
    const id = rawId('e', i);
    const rec = record(id, 'exp.item', {}, ttlMsOf(i));
    const key = `${id}.exp.item`;
    const rev = await kv.put(key, JSON.stringify(rec));
    expiresAt.set(key, rec.expiresAt!);
    timers.push(
      setTimeout(
        () => {
          kv.delete(key, { previousSeq: rev }).catch(() => deleteErrors++);
        },
        Math.max(0, rec.expiresAt! - Date.now()),
      ),
    );
  });
  if (put.errors) throw new Error(`raw expiry puts: ${put.errors} failed (${put.firstError})`);
  const lastExpiry = Math.max(...expiresAt.values());
  await until(() => seen.size >= EXPIRY_N, Math.max(0, lastExpiry - Date.now()) + 10_000);
  for (const t of timers) clearTimeout(t);
  it.stop();
  await reading;
  await closeAll([putBus, watchBus]);
  return {
    path: 'kv.put, then a setTimeout at expiresAt -> kv.delete (this nats-server has no per-message TTL); kv.watch sees the delete',
    putSeconds: put.seconds,
    seen: seen.size,
    allSeen: seen.size === EXPIRY_N,
    deleteErrors,
    lagMs: dist([...seen.values()]),
  };
}

async function expiry() {
  const hubR = await expiryHub();
  const rawR = await expiryRaw();
  return {
    n: EXPIRY_N,
    ttlS: [1, 3],
    hub: hubR,
    raw: rawR,
    ratioHubOverRaw: { lag: ratios(hubR.lagMs, rawR.lagMs, ['p50', 'p99', 'max']) },
  };
}

// ---------------------------------------------------------------------------------------------
// 4. late-subscriber catch-up

async function observeAll(agentId: string, patterns: string[], want: number) {
  const b = await bus(agentId, agentId);
  const fc = new FieldClient(b, { agentId, timeoutMs: CALL_TIMEOUT_MS });
  const t0 = nowMs();
  const obs: Observation = await fc.observe(patterns);
  observations.push(obs);
  const tReady = nowMs();
  let catchup = 0;
  let initial = 0;
  let tFirst = Number.NaN;
  let tAll = Number.NaN;
  const done = (async () => {
    for await (const o of obs) {
      if (!o.initial) continue;
      initial++;
      if (initial === 1) tFirst = nowMs();
      if (o.pheromone.type === 'catchup.item' && ++catchup === want) {
        tAll = nowMs();
        break;
      }
    }
  })();
  const ok = await withTimeout(done, 60_000, `observe(${patterns.join(',')})`).then(
    () => true,
    () => false,
  );
  obs.stop();
  await closeAll([b]);
  const ms = tAll - t0;
  return {
    patterns,
    received: catchup,
    initialReceived: initial,
    complete: ok && catchup === want,
    observeCallMs: tReady - t0,
    firstMs: tFirst - t0,
    allMs: ms,
    perSec: (catchup / ms) * 1000,
  };
}

async function catchUp() {
  const emitBus = await bus('cu-emitter');
  const emitter = new FieldClient(emitBus, { timeoutMs: CALL_TIMEOUT_MS });
  log(`catch-up: emitting ${CATCHUP_N} pheromones, ${CATCHUP_K} in flight`);
  const emitted = await emitMany(emitter, CATCHUP_N, CATCHUP_K, 'catchup.item', (i) => ({ payload: { i } }));
  const fieldState = (await emitBus.jsm.streams.info(`KV_${emitBus.names.buckets.field}`)).state;
  log(`catch-up: observe(['catchup.>']), then observe(['*'])`);
  const narrow = await observeAll('cu-narrow', ['catchup.>'], CATCHUP_N);
  const all = await observeAll('cu-all', ['*'], CATCHUP_N);

  const putBus = await bus('cu-raw-put');
  const kv = await new Kvm(putBus.nc).open(RAW.cu);
  // As many other messages in the raw bucket as the field's holds besides the catch-up ones.
  const fillers = Math.max(0, fieldState.messages - CATCHUP_N);
  log(
    `catch-up: raw KV, ${fillers} other keys, then ${CATCHUP_N} puts, ${CATCHUP_K} in flight, then a watch`,
  );
  const fill = await closedLoop(CATCHUP_K, fillers, (i) => {
    const id = rawId('f', i);
    return kv.put(`${id}.other.item`, JSON.stringify(record(id, 'other.item', { i })));
  });
  if (fill.errors) throw new Error(`raw catch-up fillers: ${fill.errors} failed (${fill.firstError})`);
  const put = await closedLoop(CATCHUP_K, CATCHUP_N, (i) => {
    const id = rawId('c', i);
    return kv.put(`${id}.catchup.item`, JSON.stringify(record(id, 'catchup.item', { i })));
  });
  if (put.errors) throw new Error(`raw catch-up puts: ${put.errors} failed (${put.firstError})`);
  const rawState = (await putBus.jsm.streams.info(`KV_${RAW.cu}`)).state;
  const watchBus = await bus('cu-raw-watch');
  const watcher = await new Kvm(watchBus.nc).open(RAW.cu);
  const rawWatch = async (key: string) => {
    const t0 = nowMs();
    const it = await watcher.watch({ key });
    observations.push(it);
    const tReady = nowMs();
    let got = 0;
    let initial = 0;
    let tFirst = Number.NaN;
    let tAll = Number.NaN;
    const done = (async () => {
      for await (const e of it) {
        if (e.operation !== 'PUT') continue;
        initial++;
        if (initial === 1) tFirst = nowMs();
        if (e.json<Pheromone>().type === 'catchup.item' && ++got === CATCHUP_N) {
          tAll = nowMs();
          break;
        }
      }
    })();
    const ok = await withTimeout(done, 60_000, `raw watch ${key}`).then(
      () => true,
      () => false,
    );
    it.stop();
    const ms = tAll - t0;
    return {
      key,
      received: got,
      initialReceived: initial,
      complete: ok && got === CATCHUP_N,
      watchCallMs: tReady - t0,
      firstMs: tFirst - t0,
      allMs: ms,
      perSec: (got / ms) * 1000,
    };
  };
  const rawNarrow = await rawWatch('*.catchup.>');
  const rawAll = await rawWatch('>');
  await closeAll([emitBus, putBus, watchBus]);
  return {
    n: CATCHUP_N,
    k: CATCHUP_K,
    hub: {
      emitSeconds: emitted.seconds,
      emitsPerSec: emitted.perSec,
      emitCallMs: emitted.callMs,
      /** The field bucket's stream when observing began (live keys of every section, delete markers). */
      bucketMessages: fieldState.messages,
      narrow,
      all,
    },
    raw: {
      putSeconds: put.seconds,
      putsPerSec: put.opsPerSec,
      putCallMs: dist(put.callMs),
      bucketMessages: rawState.messages,
      narrow: rawNarrow,
      all: rawAll,
    },
    ratioHubOverRaw: {
      narrowAllMs: ratio(narrow.allMs, rawNarrow.allMs),
      allAllMs: ratio(all.allMs, rawAll.allMs),
      emitVsPutPerSec: ratio(emitted.perSec, put.opsPerSec),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The run

async function main(): Promise<Record<string, unknown>> {
  const tRun = nowMs();
  const out: Record<string, unknown> = {
    bench: 'field',
    command: commandLine('bench/field.ts', args),
    source: sourceState(),
    machine: await machineInfo(),
    params: {
      quick: QUICK,
      rate: RATE,
      observers: OBSERVERS,
      observerProcs: OBSERVER_PROCS,
      refRate: REF_RATE || null,
      emitters: EMITTERS,
      warmupS: WARMUP_S,
      seconds: SECONDS,
      m: MA,
      c: C,
      claimWarmRounds: CLAIM_WARM,
      expiryN: EXPIRY_N,
      catchupN: CATCHUP ? CATCHUP_N : null,
      catchupK: CATCHUP_K,
      trustedM: TRUSTED_CLAIMS ? TRUSTED_M : null,
      prefix,
    },
  };
  nats = await startNatsServer();
  log(`nats-server on ${nats.url}; starting the hub (prefix ${prefix})`);
  const h = await startHubProcess(nats.url);
  const admin = await bus('admin');
  // The API answers once the hub leads: the first emit may need a moment.
  const probe = new FieldClient(admin, { timeoutMs: 2000 });
  for (let i = 0; ; i++) {
    try {
      oldestLive = await probe.emit('probe.up');
      break;
    } catch (err) {
      if (i >= 30) throw new Error(`the hub's field API never answered: ${errText(err)}`);
      await sleep(500);
    }
  }
  for (const b of Object.values(RAW))
    await new Kvm(admin.nc).create(b, { history: 1, storage: StorageType.File });
  out.startupS = (nowMs() - tRun) / 1000;
  const procs = Array.from({ length: OBSERVER_PROCS }, (_, i) => new ObserverProc(i));
  for (const p of procs) await p.measureClock();
  const m = () =>
    meter(
      {
        hub: h.pid,
        nats: nats!.pid,
        observers: procs.filter((p) => !exited(p.child)).map((p) => p.child.pid ?? -1),
      },
      nats!,
    );

  const timed = async <T>(name: string, f: () => Promise<T>) => {
    section = name;
    const t = nowMs();
    const r = await f();
    log(`${name} done in ${((nowMs() - t) / 1000).toFixed(1)} s (load ${loadAverage().join(' ')})`);
    return { ...r, sectionS: (nowMs() - t) / 1000, loadavgAfter: loadAverage() };
  };
  out.emitObserveLatency = await timed('latency', () => latency(m, procs));
  for (const p of procs) {
    const gone = new Promise<void>((r) => p.child.once('exit', () => r()));
    p.send({ type: 'exit' });
    await withTimeout(gone, 5000, 'observer process exit').catch(() => p.child.kill('SIGKILL'));
  }
  out.claimRace = await timed('claims', () => claims(m));
  out.expiryLag = await timed('expiry', () => expiry());
  out.catchUp = CATCHUP ? await timed('catch-up', () => catchUp()) : null;
  out.trustedClaimRace = TRUSTED_CLAIMS
    ? await timed('claims (trusted)', () => claimRace('trusted', m))
    : null;
  section = 'end';
  out.hub = { alive: !exited(h), log: hubLog };
  out.runS = (nowMs() - tRun) / 1000;
  (out.machine as Record<string, unknown>).loadavgEnd = loadAverage();
  return out;
}

await runBench({ main, cleanup, timeoutS: TIMEOUT_S, log });
