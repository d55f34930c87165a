/**
 * Shared pieces of the peer baselines (BullMQ on Redis, raw NATS JetStream): the payload, the clock,
 * percentiles, option/result shapes, deadlines, and the parent side of the forked worker process.
 * Methods mirror /work/shared/peer-bench (lib.mjs, bench.mjs, js-bench.mjs).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { NatsTraffic } from './nats.js';

/** Wall-clock in ms with sub-ms resolution, comparable across processes on one host. */
export const nowMs = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A bench's numeric flags: `--<name> <n>` (positive), with a default, and a smaller one under
 * `--quick`; `list` reads `--<name> 1,16,64` (positive whole numbers); `text` reads `--<name> <word>`.
 */
export function benchFlags(args: readonly string[] = process.argv.slice(2)) {
  const quick = args.includes('--quick');
  return {
    quick,
    number(name: string, def: number, quickDef = def): number {
      const i = args.indexOf(`--${name}`);
      if (i < 0) return quick ? quickDef : def;
      const v = Number(args[i + 1]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
      return v;
    },
    text(name: string): string | undefined {
      const i = args.indexOf(`--${name}`);
      if (i < 0) return undefined;
      const v = args[i + 1];
      if (!v || v.startsWith('--')) throw new Error(`--${name} needs a value`);
      return v;
    },
    list(name: string, def: number[]): number[] {
      const i = args.indexOf(`--${name}`);
      if (i < 0) return def;
      const xs = (args[i + 1] ?? '').split(',').map(Number);
      if (!xs.length || xs.some((x) => !Number.isInteger(x) || x < 1))
        throw new Error(`--${name} must be a list of positive whole numbers`);
      return xs;
    },
  };
}

/** Calls the e2e shape's producer keeps outstanding at once. */
const IN_FLIGHT = 100;

/** The e2e shape's producer: `add(0)` … `add(n - 1)`, `IN_FLIGHT` of them outstanding at a time. */
export async function addConcurrently(n: number, add: (i: number) => Promise<unknown>): Promise<void> {
  let i = 0;
  const lane = async () => {
    while (i < n) await add(i++);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
}

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const PAD = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(13).slice(0, 440);

/** The task body: ~510 bytes of JSON once `tAdd` holds a timestamp. */
export interface TaskPayload {
  seq: number;
  agent: string;
  /** Producer wall clock taken just before the add/publish call (0 = not a latency sample). */
  tAdd: number;
  pad: string;
}

export function payload(seq: number, tAdd = 0): TaskPayload {
  return { seq, agent: 'agent-capability-x', tAdd, pad: PAD };
}

// ---------------------------------------------------------------------------------------------
// Options and results

export interface E2eOptions {
  /** Tasks to push through (default 20 000). */
  n?: number;
  /** Consumer concurrency: max handlers in flight in the worker process (default 10). */
  c?: number;
  /** Whole-run bound, setup included (default 60 000 ms). */
  timeoutMs?: number;
}

/**
 * Defaults of a latency run, for every system alike. The warm-up is 3 s because a freshly started
 * hub runs cold (JIT) for its first second or so at 1,000/s: it fell 250 and 540 ms behind in two
 * runs and was steady 2.2 and 3.3 s after start (`LATENCY_DUMP=/tmp/lat npx tsx bench/hub.ts
 * --no-peers --no-e2e --warmup 1`, then `npx tsx bench/latency-windows.ts /tmp/lat.1.json`). So a
 * slow start can still reach into the measured window now and then: that counts against the hub.
 */
export const LATENCY_DEFAULTS = { rate: 1000, durationS: 10, warmupS: 3, c: 10 } as const;

export interface LatencyOptions {
  /** Offered rate, tasks per second, single adds on an absolute schedule (default 1000). */
  rate?: number;
  /** Seconds of offered load, measured (default 10). */
  durationS?: number;
  /** Seconds of the same load offered first and not measured (default 3, see LATENCY_DEFAULTS). */
  warmupS?: number;
  /** Consumer concurrency (default 10). */
  c?: number;
  /** Whole-run bound, setup included (default durationS·1000 + 30 000 ms). */
  timeoutMs?: number;
}

export interface PeerRunOptions {
  e2e?: E2eOptions;
  latency?: LatencyOptions;
}

export interface E2eResult {
  n: number;
  c: number;
  /** First add → N-th completion, seconds. */
  seconds: number;
  /** First add → last add acknowledged by the broker, seconds. */
  addSeconds: number;
  tasksPerSec: number;
  /**
   * CPU ms (user + system, /proc) per task of each process over the timed window (first add → N-th
   * completion): `nats` (nats-server), `workers`, `dispatcher` (pipeline peer only), `producer`.
   */
  cpuMsPerTask?: Record<string, number>;
  /** NATS messages and bytes per task, counted by the server (JetStream systems only). */
  natsPerTask?: NatsTraffic;
  /** Hub-log appends per task, each a group commit of several steps (the pipeline's `log` variant). */
  logAppendsPerTask?: number;
}

export interface LatencyResult {
  /** Offered rate (tasks/s). */
  rate: number;
  durationS: number;
  c: number;
  /** Latency samples (should equal rate·durationS). */
  samples: number;
  /** Tasks offered / (first add → last add acknowledged), tasks/s. */
  achievedRate: number;
  /** add → worker handler start, ms. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** Duration of the producer's add/publish call itself, ms. */
  addCallP50: number;
  addCallP99: number;
}

export interface PeerResult {
  system:
    | 'bullmq'
    | 'bullmq-aof-everysec'
    | 'bullmq-aof-always'
    | 'jetstream'
    | 'jetstream-pipeline'
    | 'jetstream-minimal'
    | 'jetstream-log';
  e2e?: E2eResult;
  latency?: LatencyResult;
}

export interface ResolvedE2e {
  n: number;
  c: number;
  timeoutMs: number;
}
export interface ResolvedLatency {
  rate: number;
  durationS: number;
  warmupS: number;
  c: number;
  timeoutMs: number;
}

export function resolveE2e(o: E2eOptions): ResolvedE2e {
  const n = o.n ?? 20_000;
  const c = o.c ?? 10;
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`e2e.n must be a positive integer, got ${n}`);
  if (!(Number.isInteger(c) && c > 0)) throw new Error(`e2e.c must be a positive integer, got ${c}`);
  return { n, c, timeoutMs: o.timeoutMs ?? 60_000 };
}

export function resolveLatency(o: LatencyOptions): ResolvedLatency {
  const rate = o.rate ?? LATENCY_DEFAULTS.rate;
  const durationS = o.durationS ?? LATENCY_DEFAULTS.durationS;
  const c = o.c ?? LATENCY_DEFAULTS.c;
  const warmupS = o.warmupS ?? LATENCY_DEFAULTS.warmupS;
  if (!(rate > 0)) throw new Error(`latency.rate must be > 0, got ${rate}`);
  if (!(warmupS >= 0)) throw new Error(`latency.warmupS must be >= 0, got ${warmupS}`);
  if (!(durationS > 0)) throw new Error(`latency.durationS must be > 0, got ${durationS}`);
  if (!(Number.isInteger(c) && c > 0)) throw new Error(`latency.c must be a positive integer, got ${c}`);
  return { rate, durationS, c, warmupS, timeoutMs: o.timeoutMs ?? (warmupS + durationS) * 1000 + 30_000 };
}

/** When neither shape is requested, both run with their defaults. */
export function shapesToRun(opts: PeerRunOptions): PeerRunOptions {
  return opts.e2e || opts.latency ? opts : { e2e: {}, latency: {} };
}

/** Turns [tAdd, tStart, tAdd, tStart, …] into the latency summary. */
export function latencySummary(
  o: ResolvedLatency,
  starts: readonly number[],
  addCalls: number[],
  achievedRate: number,
): LatencyResult {
  const lat: number[] = [];
  for (let i = 0; i + 1 < starts.length; i += 2) lat.push(starts[i + 1]! - starts[i]!);
  lat.sort((a, b) => a - b);
  addCalls.sort((a, b) => a - b);
  return {
    rate: o.rate,
    durationS: o.durationS,
    c: o.c,
    samples: lat.length,
    achievedRate,
    p50: percentile(lat, 50),
    p90: percentile(lat, 90),
    p99: percentile(lat, 99),
    max: lat.length ? lat[lat.length - 1]! : Number.NaN,
    mean: lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : Number.NaN,
    addCallP50: percentile(addCalls, 50),
    addCallP99: percentile(addCalls, 99),
  };
}

/** Tasks a latency run offers in all: the warm-up ones, then the measured ones. */
export function offeredCount(o: ResolvedLatency): { warm: number; measured: number; total: number } {
  const warm = Math.round(o.rate * o.warmupS);
  const measured = Math.round(o.rate * o.durationS);
  return { warm, measured, total: warm + measured };
}

/**
 * Offers a latency run's load: one `add(i, tAdd)` every 1000/rate ms on an absolute schedule, the
 * warm-up tasks first with `tAdd` 0 (workers sample only tasks with a `tAdd`), then the measured
 * ones with `tAdd` taken just before the call. Resolves once every add is acknowledged, with the
 * measured adds' call durations and the rate achieved over the measured part.
 */
export async function offerLoad(
  o: ResolvedLatency,
  add: (i: number, tAdd: number) => Promise<unknown>,
  dl: Deadline,
): Promise<{ addCalls: number[]; achievedRate: number }> {
  const { warm, total } = offeredCount(o);
  const interval = 1000 / o.rate;
  const addCalls: number[] = [];
  const pending: Promise<void>[] = [];
  const t0 = nowMs();
  let tMeasured = t0;
  for (let i = 0; i < total; i++) {
    const d = t0 + i * interval - nowMs();
    if (d > 0) await sleep(d);
    dl.check('offering load');
    const measured = i >= warm;
    const tAdd = nowMs();
    if (i === warm) tMeasured = tAdd;
    const added = add(i, measured ? tAdd : 0).then(() => {
      if (measured) addCalls.push(nowMs() - tAdd);
    });
    added.catch(() => {}); // surfaced by Promise.all below
    pending.push(added);
  }
  await dl.race(Promise.all(pending), 'awaiting adds');
  return { addCalls, achievedRate: (total - warm) / ((nowMs() - tMeasured) / 1000) };
}

// ---------------------------------------------------------------------------------------------
// CPU accounting

/** utime + stime of a process from /proc (Linux), seconds; NaN when unavailable. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined || pid <= 0) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds used so far by this process (user + system). */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Reads CPU seconds of named processes now; `pids` values of `'self'` mean this process. */
export function cpuSnapshot(pids: Record<string, number | 'self' | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, pid] of Object.entries(pids)) out[k] = pid === 'self' ? ownCpuSeconds() : cpuSeconds(pid);
  return out;
}

/** CPU ms per task of each process between two snapshots. */
export function cpuMsPerTask(
  a: Record<string, number>,
  b: Record<string, number>,
  n: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a)) out[k] = ((b[k]! - a[k]!) * 1000) / n;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Deadlines

export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/** Rejects with a {@link TimeoutError} if `p` has not settled within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new TimeoutError(`${what}: timed out after ${Math.round(ms)} ms`)),
      ms,
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** One run's overall time bound. */
export class Deadline {
  private readonly end: number;
  constructor(
    readonly ms: number,
    readonly label: string,
  ) {
    this.end = Date.now() + ms;
  }
  remaining(): number {
    return this.end - Date.now();
  }
  check(what: string): void {
    if (this.remaining() <= 0) throw new TimeoutError(`${this.label}: ${what}: run exceeded ${this.ms} ms`);
  }
  race<T>(p: Promise<T>, what: string): Promise<T> {
    return withTimeout(p, Math.max(1, this.remaining()), `${this.label}: ${what}`).catch((err: unknown) => {
      if (err instanceof TimeoutError)
        throw new TimeoutError(`${this.label}: ${what}: run exceeded ${this.ms} ms`);
      throw err;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Parent <-> worker IPC

export type ToWorker =
  | { type: 'expect'; n: number }
  | { type: 'run' }
  | { type: 'samples' }
  | { type: 'close' };

/** What a worker child process does on each of its parent's messages (see `serveParent`). */
export interface WorkerRole {
  /** Name in error messages. */
  label: string;
  /** The run will end after this many completions (post `done` when reached). */
  expect?(n: number): void;
  /** Start consuming (errors are printed; the parent's deadline notices a stall). */
  run(): Promise<void>;
  /** The latency samples so far: [tAdd, tStart, …]. */
  samples?(): number[];
  /** Stop consuming and drain; the process exits afterwards whatever happens. */
  close(): Promise<void>;
}

/**
 * The child side of the worker protocol: answers `expect`, `run` (then `running` 50 ms later, so
 * the first pull or blocking fetch is out), `samples` and `close`, and posts `ready` now.
 */
export function serveParent(role: WorkerRole): void {
  process.on('message', (raw) => {
    const m = raw as ToWorker;
    switch (m.type) {
      case 'expect':
        role.expect?.(m.n);
        break;
      case 'run':
        role.run().catch((err: unknown) => console.error(`${role.label}: run failed:`, err));
        setTimeout(() => postToParent({ type: 'running', t: nowMs() }), 50);
        break;
      case 'samples':
        postToParent({ type: 'samples', starts: role.samples?.() ?? [] });
        break;
      case 'close':
        role
          .close()
          .catch(() => {}) // exiting anyway
          .finally(() => process.exit(0));
        break;
    }
  });
  postToParent({ type: 'ready' });
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'running'; t: number }
  /** `logAppends`: the hub log's appends so far (the pipeline peer's `log` variant). */
  | { type: 'done'; t: number; logAppends?: number }
  | { type: 'samples'; starts: number[] };

type MsgOf<T extends FromWorker['type']> = Extract<FromWorker, { type: T }>;

/** Loader for forking `.ts` workers; resolved from here so the caller's cwd does not matter. */
function tsxLoader(): string {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
}

/**
 * A forked worker process. Messages are buffered per type, so a `wait` registered after the message
 * arrived still sees it. If the child exits, every pending and later `wait` rejects.
 */
export class WorkerProcess {
  private readonly child: ChildProcess;
  private readonly inbox = new Map<string, FromWorker[]>();
  private readonly waiters = new Map<
    string,
    { resolve: (m: FromWorker) => void; reject: (e: Error) => void }
  >();
  private exitError: Error | undefined;
  readonly exited: Promise<void>;

  constructor(
    modulePath: string,
    args: string[],
    private readonly label: string,
  ) {
    this.child = fork(modulePath, args, {
      execArgv: ['--import', tsxLoader()],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (raw) => {
      const m = raw as FromWorker;
      const w = this.waiters.get(m.type);
      if (w) {
        this.waiters.delete(m.type);
        w.resolve(m);
      } else {
        const q = this.inbox.get(m.type) ?? [];
        q.push(m);
        this.inbox.set(m.type, q);
      }
    });
    this.exited = new Promise<void>((resolve) => {
      const onGone = (why: string) => {
        this.exitError ??= new Error(`${this.label}: worker process ${why}`);
        for (const w of this.waiters.values()) w.reject(this.exitError);
        this.waiters.clear();
        resolve();
      };
      this.child.once('exit', (code, signal) => onGone(`exited (code ${code}, signal ${signal})`));
      this.child.once('error', (err) => onGone(`failed: ${err.message}`));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  send(m: ToWorker): void {
    if (this.child.connected) this.child.send(m);
  }

  /** The next message of `type`, or a rejection after `timeoutMs` or when the child exits. */
  wait<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<MsgOf<T>> {
    const queued = this.inbox.get(type)?.shift();
    if (queued) return Promise.resolve(queued as MsgOf<T>);
    if (this.exitError) return Promise.reject(this.exitError);
    if (this.waiters.has(type))
      return Promise.reject(new Error(`${this.label}: already waiting for '${type}'`));
    return new Promise<MsgOf<T>>((resolve, reject) => {
      const entry = {
        resolve: (m: FromWorker) => {
          clearTimeout(timer);
          resolve(m as MsgOf<T>);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(
        () => {
          if (this.waiters.get(type) === entry) this.waiters.delete(type);
          reject(
            new TimeoutError(
              `${this.label}: waiting for worker '${type}': timed out after ${Math.round(timeoutMs)} ms`,
            ),
          );
        },
        Math.max(1, timeoutMs),
      );
      this.waiters.set(type, entry);
    });
  }

  /** Asks the worker to close; SIGKILLs it if it has not exited within `graceMs`. */
  async close(graceMs = 5000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.send({ type: 'close' });
    try {
      await withTimeout(this.exited, graceMs, `${this.label}: worker close`);
    } catch {
      this.kill();
      await withTimeout(this.exited, 2000, `${this.label}: worker kill`).catch(() => {});
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Worker-side helper: post a message to the parent (no-op when not forked). */
export function postToParent(m: FromWorker): void {
  process.send?.(m);
}

/** Worker-side helper: exit when the parent goes away, so no orphan keeps a server busy. */
export function exitWithParent(): void {
  process.on('disconnect', () => process.exit(2));
}

/**
 * A bench's ending: `main` under a deadline (past it, `cleanup` and exit 1), its result printed as
 * one JSON document (fractions to 3 decimals), `cleanup`, and the exit status.
 */
export async function runBench(o: {
  main: () => Promise<unknown>;
  cleanup: () => Promise<void>;
  timeoutS: number;
  log: (line: string) => void;
}): Promise<never> {
  const deadline = setTimeout(() => {
    o.log(`run exceeded ${o.timeoutS} s: stopping everything`);
    void o.cleanup().finally(() => process.exit(1));
  }, o.timeoutS * 1000);
  deadline.unref();
  let code = 0;
  try {
    const out = await o.main();
    const round = (_k: string, v: unknown) =>
      typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(3)) : v;
    process.stdout.write(`${JSON.stringify(out, round, 2)}\n`);
  } catch (err) {
    o.log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    code = 1;
  }
  await o.cleanup();
  process.exit(code);
}
