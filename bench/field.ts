/**
 * Stigmergy field benchmark: what the hub's field costs on this machine, with raw NATS JetStream KV
 * measured in the same run, against the same nats-server, as the baseline (a plain bucket, history
 * 1, file storage, as the field's; values of the same size; no request/reply, validation or audit).
 * Processes: a private nats-server (free port, never 4222; its store removed at the end), one hub
 * (`agentcom hub --nats-url`, a separate process, as bench/hub.ts starts it) and this process, which
 * runs every client, each on its own connection.
 *   latency     a trusted FieldClient observes `bench.>` while another connection emits `n`
 *               pheromones (`bench.lat`, payload {seq, t}) at `rate`/s after `warmup` s of the same
 *               load (not measured); latency = observed - t (this process's clock). Baseline: `put`
 *               of a pheromone-shaped record into a plain bucket at the same rate, observed by a KV
 *               watch on another connection.
 *   throughput  `k` emits in flight from one client for `seconds` s (after a short warm-up), versus
 *               raw `put`s with the same concurrency; with CPU ms per op of each process and the
 *               server's messages per op.
 *   claims      (the trusted round runs last, after catch-up) `m` pheromones, `c` connections each claiming every one of them (`claim-window`
 *               claims in flight per connection, all going through them in the same order, so the
 *               `c` claims of a pheromone race each other). Two rounds: as agents (each connection
 *               its own `field.claim.<id>.<type>` subject) and as trusted clients (`field.claim`
 *               with `by`, on `trusted-m` pheromones: each such claim lists the bucket's keys first,
 *               see the report). Exactly one winner per pheromone is checked (replies and the stored
 *               record).
 *   expiry      `expiry-n` pheromones with ttls spread over 1-3 s; an observer records the `expired`
 *               revision; lag = seen (Date.now, the hub's clock) - expiresAt; `hubLagMs` is the
 *               record's eventAt - expiresAt (the hub's timer and write), `deliverMs` seen - eventAt.
 *   catchUp     `catchup-n` live pheromones (emitted `catchup-k` in flight): observe(['catchup.>'])
 *               and observe(['*']) -> all of them received as initial observations. Baseline: KV
 *               watches (`*.catchup.>`, `>`) over a plain bucket holding as many keys, and as many
 *               other messages as the field's bucket holds then (the earlier sections' keys).
 *   npx tsx bench/field.ts [--quick] [--n 2000] [--rate 200] [--warmup 1] [--k 32] [--seconds 3]
 *     [--m 200] [--trusted-m m/4] [--c 20] [--claim-window 10] [--expiry-n 1000] [--catchup-n 10000] [--catchup-k 64]
 *     [--timeout 240] [--no-trusted-claims]
 * `--quick` divides the sizes by about 10 (flags given explicitly win). Prints one JSON document on
 * stdout (times in ms); progress on stderr. HUB_LOG=<path> keeps the hub's log lines in <path>.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { StorageType } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { FieldClient, type Observation } from '../src/agent/field.js';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { openKv } from '../src/bus/kv.js';
import { type Pheromone, PheromoneSchema } from '../src/protocol/field.js';
import { cpuSeconds, nowMs, ownCpuSeconds, percentile, sleep, withTimeout } from './peers/common.js';
import { type NatsServer, natsServerVersion, startNatsServer } from './peers/nats.js';

// ---------------------------------------------------------------------------------------------
// Flags

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const flag = (name: string, def: number, quick = def): number => {
  const i = args.indexOf(`--${name}`);
  if (i >= 0) {
    const v = Number(args[i + 1]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
    return v;
  }
  return QUICK ? quick : def;
};
const N = flag('n', 2000, 200);
const RATE = flag('rate', 200);
const WARMUP_S = flag('warmup', 1, 0.3);
const K = flag('k', 32);
const SECONDS = flag('seconds', 3, 0.5);
const MA = flag('m', 200, 20);
const C = flag('c', 20);
const CLAIM_WINDOW = flag('claim-window', 10);
const EXPIRY_N = flag('expiry-n', 1000, 100);
const CATCHUP_N = flag('catchup-n', 10_000, 1000);
const CATCHUP_K = flag('catchup-k', 64);
const TIMEOUT_S = flag('timeout', 240);
const TRUSTED_CLAIMS = !args.includes('--no-trusted-claims');
/** Pheromones of the trusted claim round (each trusted claim first lists the bucket's keys: slow). */
const TRUSTED_M = flag('trusted-m', Math.max(1, Math.round(MA / 4)), Math.max(1, Math.round(MA / 4)));
/** Request timeout of every field call: long, so that queueing shows as latency, not as errors. */
const CALL_TIMEOUT_MS = 40_000;

const log = (line: string) => process.stderr.write(`[field] ${line}\n`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const prefix = `fb${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
/** The raw baseline's plain buckets (history 1, file storage, as the field's). */
const RAW_BUCKET = `${prefix}_raw`;
const RAW_THR_BUCKET = `${prefix}_rawthr`;
const RAW_CU_BUCKET = `${prefix}_rawcu`;
const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

// ---------------------------------------------------------------------------------------------
// Summaries

interface Dist {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

function dist(xs: readonly number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  return {
    count: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1]! : Number.NaN,
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : Number.NaN,
  };
}

const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null);

/** CPU ms per op of each process, and the server's messages per op, between start and `per(n)`. */
function meter(pids: { hub: number | undefined; nats: number }, nats: NatsServer) {
  const snap = () => ({ hub: cpuSeconds(pids.hub), nats: cpuSeconds(pids.nats), bench: ownCpuSeconds() });
  const cpu0 = snap();
  const traffic0 = nats.traffic().catch(() => null);
  return async (n: number) => {
    const cpu1 = snap();
    const t0 = await traffic0;
    const t1 = await nats.traffic().catch(() => null);
    const cpuMsPerOp: Record<string, number> = {};
    for (const k of Object.keys(cpu0) as (keyof typeof cpu0)[])
      cpuMsPerOp[k] = ((cpu1[k] - cpu0[k]) * 1000) / Math.max(1, n);
    return {
      cpuMsPerOp,
      natsMsgsPerOp:
        t0 && t1
          ? { in: (t1.inMsgs - t0.inMsgs) / Math.max(1, n), out: (t1.outMsgs - t0.outMsgs) / Math.max(1, n) }
          : null,
    };
  };
}

// ---------------------------------------------------------------------------------------------
// Load shapes

/** `n` calls of `op(i)` on an absolute schedule at `rate`/s (none awaited before the next starts). */
async function steady(n: number, rate: number, op: (i: number) => Promise<unknown>) {
  const interval = 1000 / rate;
  const callMs: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const pending: Promise<void>[] = [];
  const t0 = nowMs();
  for (let i = 0; i < n; i++) {
    const d = t0 + i * interval - nowMs();
    if (d > 0) await sleep(d);
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
  }
  const tSent = nowMs();
  await Promise.all(pending);
  return { callMs, errors, firstError, achievedRate: n / ((tSent - t0) / 1000 || 1), tLastSend: tSent };
}

/** `k` lanes each calling `op(i)` back to back until `seconds` have passed (or `total` calls made). */
async function closedLoop(
  k: number,
  op: (i: number) => Promise<unknown>,
  limit: { seconds?: number; total?: number },
) {
  const callMs: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let next = 0;
  const t0 = nowMs();
  const end = limit.seconds === undefined ? Number.POSITIVE_INFINITY : t0 + limit.seconds * 1000;
  const total = limit.total ?? Number.POSITIVE_INFINITY;
  const lane = async () => {
    while (nowMs() < end && next < total) {
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

/** Resolves when `cond()` holds (polled every 10 ms), or false after `ms`. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = nowMs() + ms;
  while (!cond()) {
    if (nowMs() > end) return false;
    await sleep(10);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The raw baseline's values: pheromone-shaped records, so the bytes stored match the field's

function record(id: string, type: string, payload: Record<string, unknown>, ttlS: number | null = null) {
  const now = Date.now();
  const p: Pheromone = {
    v: 1,
    id,
    type,
    selector: '',
    payload,
    timestamp: now,
    source: 'api',
    ttl: ttlS,
    expiresAt: ttlS === null ? null : now + ttlS * 1000,
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

const gone = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const o of observations) o.stop();
    await Promise.allSettled(
      buses.map((b) => withTimeout(b.drain(), 3000, 'drain').catch(() => b.nc.close())),
    );
    if (hub && !gone(hub)) {
      const h = hub;
      const exited = new Promise<void>((r) => h.once('exit', () => r()));
      h.kill('SIGTERM');
      await withTimeout(exited, 8000, 'hub SIGTERM').catch(async () => {
        if (!gone(h)) h.kill('SIGKILL');
        await withTimeout(exited, 2000, 'hub SIGKILL').catch(() => {});
      });
    }
    await nats?.stop();
    hubLogFile?.end();
  })();
  return cleaning;
}
process.once('exit', () => {
  if (hub && !gone(hub)) hub.kill('SIGKILL');
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

async function bus(name: string): Promise<Bus> {
  const b = await connectBus({
    servers: nats!.url,
    prefix,
    name,
    logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  buses.push(b);
  return b;
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
  const r = await closedLoop(
    k,
    async (i) => {
      out[i] = await fc.emit(type, opts(i));
    },
    { total: n },
  );
  if (r.errors) throw new Error(`emitting ${type}: ${r.errors} of ${n} failed (${r.firstError})`);
  return { pheromones: out, seconds: r.seconds, perSec: r.opsPerSec, callMs: dist(r.callMs) };
}

// ---------------------------------------------------------------------------------------------
// 1. emit -> observe latency

async function latency(m: () => ReturnType<typeof meter>) {
  const warm = Math.round(RATE * WARMUP_S);
  // The field
  const observer = new FieldClient(await bus('lat-observer'));
  const emitter = new FieldClient(await bus('lat-emitter'), { timeoutMs: CALL_TIMEOUT_MS });
  const seen = new Map<number, number>();
  let bytes = 0;
  const obs = await observer.observe(['bench.>']);
  observations.push(obs);
  const reading = (async () => {
    for await (const o of obs) {
      const t = nowMs();
      const p = o.pheromone;
      if (p.type !== 'bench.lat' || p.event !== 'emitted' || o.initial || p.payload.warm) continue;
      const seq = p.payload.seq as number;
      if (!seen.has(seq)) seen.set(seq, t - (p.payload.t as number));
      bytes ||= JSON.stringify(p).length;
    }
  })();
  log(`latency: field, ${warm} warm-up + ${N} emits at ${RATE}/s`);
  const w = await steady(warm, RATE, (i) =>
    emitter.emit('bench.lat', { payload: { seq: i, t: 0, warm: true } }),
  );
  if (w.errors) throw new Error(`latency warm-up: ${w.errors} emits failed (${w.firstError})`);
  const meterHub = m();
  const hubRun = await steady(N, RATE, (i) => emitter.emit('bench.lat', { payload: { seq: i, t: nowMs() } }));
  await until(() => seen.size >= N - hubRun.errors, 15_000);
  const hubCost = await meterHub(N);
  obs.stop();
  await reading;

  // Raw KV: put on one connection, watch on another
  const rawPut = await new Kvm((await bus('raw-put')).nc).open(RAW_BUCKET);
  const rawWatch = await new Kvm((await bus('raw-watch')).nc).open(RAW_BUCKET);
  const rawSeen = new Map<number, number>();
  let rawBytes = 0;
  const it = await rawWatch.watch({ key: '*.bench.>' });
  observations.push(it);
  const rawReading = (async () => {
    for await (const e of it) {
      const t = nowMs();
      if (e.operation !== 'PUT') continue;
      const p = e.json<Pheromone>();
      if (p.payload.warm) continue;
      const seq = p.payload.seq as number;
      if (!rawSeen.has(seq)) rawSeen.set(seq, t - (p.payload.t as number));
      rawBytes ||= e.length;
    }
  })();
  const put = (tag: string, i: number, payload: Record<string, unknown>) => {
    const id = rawId(tag, i);
    return rawPut.put(`${id}.bench.lat`, JSON.stringify(record(id, 'bench.lat', payload)));
  };
  log(`latency: raw KV, ${warm} warm-up + ${N} puts at ${RATE}/s`);
  const rw = await steady(warm, RATE, (i) => put('w', i, { seq: i, t: 0, warm: true }));
  if (rw.errors) throw new Error(`raw warm-up: ${rw.errors} puts failed (${rw.firstError})`);
  const meterRaw = m();
  const rawRun = await steady(N, RATE, (i) => put('l', i, { seq: i, t: nowMs() }));
  await until(() => rawSeen.size >= N - rawRun.errors, 15_000);
  const rawCost = await meterRaw(N);
  it.stop();
  await rawReading;

  const hubD = dist([...seen.values()]);
  const rawD = dist([...rawSeen.values()]);
  return {
    n: N,
    rate: RATE,
    warmupS: WARMUP_S,
    hub: {
      emitted: N - hubRun.errors,
      errors: hubRun.errors,
      firstError: hubRun.firstError,
      observed: seen.size,
      missing: N - seen.size,
      achievedRate: hubRun.achievedRate,
      latencyMs: hubD,
      emitCallMs: dist(hubRun.callMs),
      recordBytes: bytes,
      ...hubCost,
    },
    raw: {
      put: N - rawRun.errors,
      errors: rawRun.errors,
      firstError: rawRun.firstError,
      observed: rawSeen.size,
      missing: N - rawSeen.size,
      achievedRate: rawRun.achievedRate,
      latencyMs: rawD,
      putCallMs: dist(rawRun.callMs),
      recordBytes: rawBytes,
      ...rawCost,
    },
    ratioHubOverRaw: { p50: ratio(hubD.p50, rawD.p50), p99: ratio(hubD.p99, rawD.p99) },
  };
}

// ---------------------------------------------------------------------------------------------
// 2. emit throughput

async function throughput(m: () => ReturnType<typeof meter>) {
  const emitter = new FieldClient(await bus('thr-emitter'), { timeoutMs: CALL_TIMEOUT_MS });
  const warmS = Math.min(0.5, SECONDS / 4);
  log(`throughput: field, ${K} in flight for ${SECONDS} s`);
  await closedLoop(K, (i) => emitter.emit('thr.item', { payload: { i, warm: true } }), { seconds: warmS });
  const meterHub = m();
  const hubRun = await closedLoop(K, (i) => emitter.emit('thr.item', { payload: { i } }), {
    seconds: SECONDS,
  });
  const hubCost = await meterHub(hubRun.ops);

  const kv: KV = await new Kvm((await bus('thr-raw')).nc).open(RAW_THR_BUCKET);
  const put = (tag: string, i: number, payload: Record<string, unknown>) => {
    const id = rawId(tag, i);
    return kv.put(`${id}.thr.item`, JSON.stringify(record(id, 'thr.item', payload)));
  };
  log(`throughput: raw KV, ${K} in flight for ${SECONDS} s`);
  await closedLoop(K, (i) => put('tw', i, { i, warm: true }), { seconds: warmS });
  const meterRaw = m();
  const rawRun = await closedLoop(K, (i) => put('t', i, { i }), { seconds: SECONDS });
  const rawCost = await meterRaw(rawRun.ops);
  const { callMs: hubCalls, ...hubRest } = hubRun;
  const { callMs: rawCalls, ...rawRest } = rawRun;
  return {
    k: K,
    seconds: SECONDS,
    hub: { ...hubRest, emitCallMs: dist(hubCalls), ...hubCost },
    raw: { ...rawRest, putCallMs: dist(rawCalls), ...rawCost },
    ratioHubOverRaw: { opsPerSec: ratio(hubRun.opsPerSec, rawRun.opsPerSec) },
  };
}

// ---------------------------------------------------------------------------------------------
// 3. claim contention

async function claimRound(
  mode: 'agent' | 'trusted',
  emitter: FieldClient,
  claimers: Bus[],
  m: () => ReturnType<typeof meter>,
) {
  const type = `claim.${mode}`;
  const M = mode === 'agent' ? MA : TRUSTED_M;
  const { pheromones } = await emitMany(emitter, M, 32, type);
  const names = claimers.map((_, i) => `claimer-${mode}-${i}`);
  const clients = claimers.map((b, i) =>
    mode === 'agent'
      ? new FieldClient(b, { agentId: names[i]!, timeoutMs: CALL_TIMEOUT_MS })
      : new FieldClient(b, { by: names[i]!, timeoutMs: CALL_TIMEOUT_MS }),
  );
  const winners = new Map<string, string[]>();
  const losersSaw = new Map<string, Set<string>>();
  const callMs: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  log(`claims (${mode}): ${C} connections x ${M} pheromones, ${CLAIM_WINDOW} in flight each`);
  const cost = m();
  const t0 = nowMs();
  await Promise.all(
    clients.map(async (fc, ci) => {
      let next = 0;
      const lane = async () => {
        while (next < M) {
          const p = pheromones[next++]!;
          const t = nowMs();
          try {
            const r = await fc.claim(p);
            callMs.push(nowMs() - t);
            if (r.claimed) winners.set(p.id, [...(winners.get(p.id) ?? []), names[ci]!]);
            else {
              const s = losersSaw.get(p.id) ?? new Set<string>();
              s.add(r.pheromone.claimedBy ?? '(none)');
              losersSaw.set(p.id, s);
            }
          } catch (err) {
            errors++;
            firstError ??= errText(err);
          }
        }
      };
      await Promise.all(Array.from({ length: CLAIM_WINDOW }, lane));
    }),
  );
  const seconds = (nowMs() - t0) / 1000;
  const claims = callMs.length + errors;
  const costs = await cost(claims);
  // The stored records: claimed by the one winner each reply named.
  const kv = await openKv(claimers[0]!, claimers[0]!.names.buckets.field, PheromoneSchema);
  let storedMatch = 0;
  let losersConsistent = 0;
  for (const p of pheromones) {
    const w = winners.get(p.id);
    const got = await kv.get(`${p.id}.${p.type}`);
    if (w?.length === 1 && got?.value.claimedBy === w[0]) storedMatch++;
    const saw = losersSaw.get(p.id);
    if (w?.length === 1 && saw && saw.size === 1 && saw.has(w[0]!)) losersConsistent++;
  }
  const counts = [...winners.values()].map((w) => w.length);
  const exactlyOne = pheromones.filter((p) => winners.get(p.id)?.length === 1).length;
  return {
    mode,
    pheromones: M,
    connections: C,
    windowPerConnection: CLAIM_WINDOW,
    claims,
    errors,
    firstError,
    winners: counts.reduce((a, b) => a + b, 0),
    pheromonesWithExactlyOneWinner: exactlyOne,
    pheromonesWithNoWinner: M - winners.size,
    pheromonesWithSeveralWinners: counts.filter((x) => x > 1).length,
    /** Stored record's claimedBy is the winner. */
    storedRecordsMatchWinner: storedMatch,
    /** Every loser's reply named the winner. */
    losersSawWinner: losersConsistent,
    ok: exactlyOne === M && storedMatch === M && errors === 0,
    seconds,
    claimsPerSec: claims / seconds,
    pheromonesPerSec: M / seconds,
    claimCallMs: dist(callMs),
    claimsOver1s: callMs.filter((x) => x > 1000).length,
    claimsOver10s: callMs.filter((x) => x > 10_000).length,
    callTimeoutMs: CALL_TIMEOUT_MS,
    ...costs,
  };
}

async function claimContention(mode: 'agent' | 'trusted', m: () => ReturnType<typeof meter>) {
  const emitter = new FieldClient(await bus(`claim-emitter-${mode}`), { timeoutMs: CALL_TIMEOUT_MS });
  const claimers: Bus[] = [];
  for (let i = 0; i < C; i++) claimers.push(await bus(`claimer-${mode}-${i}`));
  const r = await claimRound(mode, emitter, claimers, m);
  for (const b of claimers) {
    buses.splice(buses.indexOf(b), 1);
    await b.drain().catch(() => {});
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// 4. expiry lag

async function expiry() {
  const observer = new FieldClient(await bus('exp-observer'));
  const emitter = new FieldClient(await bus('exp-emitter'), { timeoutMs: CALL_TIMEOUT_MS });
  const lag = new Map<string, { lag: number; hubLag: number; deliver: number }>();
  const obs = await observer.observe(['exp.>']);
  observations.push(obs);
  let otherEvents = 0;
  // A second view of the same keys: a bare KV watch of the field's bucket, deletes included.
  const rawView = new Map<string, { expiredPut: boolean; deleted: boolean }>();
  const fieldBus = await bus('exp-raw-view');
  const rawIt = await (await new Kvm(fieldBus.nc).open(fieldBus.names.buckets.field)).watch({
    key: '*.exp.>',
  });
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
      const now = Date.now();
      const p = o.pheromone;
      if (p.event === 'expired' && p.expiresAt !== null) {
        if (!lag.has(p.id))
          lag.set(p.id, {
            lag: now - p.expiresAt,
            hubLag: p.eventAt - p.expiresAt,
            deliver: now - p.eventAt,
          });
      } else if (p.event !== 'emitted') otherEvents++;
    }
  })();
  // ttls 1..3 s, in an order that mixes them (i * 7919 mod n is a permutation for n not a multiple of 7919).
  const ttl = (i: number) => 1 + (2 * ((i * 7919) % EXPIRY_N)) / Math.max(1, EXPIRY_N - 1);
  log(`expiry: ${EXPIRY_N} pheromones with ttl 1-3 s`);
  const tEmit = nowMs();
  const { pheromones, seconds } = await emitMany(emitter, EXPIRY_N, 32, 'exp.item', (i) => ({
    ttl: Number(ttl(i).toFixed(3)),
  }));
  const lastExpiry = Math.max(...pheromones.map((p) => p.expiresAt ?? 0));
  // Until every expiry is seen, or every key is deleted (then a second more for the observer).
  const deleted = () => [...rawView.values()].filter((v) => v.deleted).length;
  await until(
    () => lag.size >= EXPIRY_N || deleted() >= EXPIRY_N,
    Math.max(0, lastExpiry - Date.now()) + 15_000,
  );
  await until(() => lag.size >= EXPIRY_N, 1000);
  const waitedS = (nowMs() - tEmit) / 1000;
  obs.stop();
  await reading;
  // Every expired pheromone's key is deleted afterwards.
  await sleep(300);
  rawIt.stop();
  await rawReading;
  const kv = await openKv(buses[0]!, buses[0]!.names.buckets.field, PheromoneSchema);
  const left = (await kv.keys('*.exp.>')).length;
  // The hub's audit trail: one `expired` event per pheromone it ended.
  const n = fieldBus.names;
  const audit = await fieldBus.jsm.streams.info(n.streams.field, {
    subjects_filter: n.subjects.fieldAudit('expired', '*', 'exp.>'),
  });
  const audited = new Set(Object.keys(audit.state.subjects ?? {}).map((s) => s.split('.').at(-3)!));
  const missed = pheromones.filter((p) => !lag.has(p.id));
  const vals = [...lag.values()];
  return {
    n: EXPIRY_N,
    emitSeconds: seconds,
    expiredSeen: lag.size,
    allExpired: lag.size === EXPIRY_N,
    keysLeftAfter: left,
    /** Pheromones of this section with an `expired` event in the hub's audit trail. */
    expiredAudited: pheromones.filter((p) => audited.has(p.id)).length,
    /** The bare KV watch of the same keys: `expired` revisions and deletes it saw. */
    rawWatch: {
      expiredPuts: [...rawView.values()].filter((v) => v.expiredPut).length,
      deletes: [...rawView.values()].filter((v) => v.deleted).length,
      deletedWithoutExpiredPut: [...rawView.values()].filter((v) => v.deleted && !v.expiredPut).length,
    },
    /** Pheromones whose `expired` revision the FieldClient never delivered (first 5). */
    missedByObserver: missed.slice(0, 5).map((p) => ({
      id: p.id,
      audited: audited.has(p.id),
      rawWatch: rawView.get(p.id) ?? null,
    })),
    otherEvents,
    lagMs: dist(vals.map((v) => v.lag)),
    /** eventAt - expiresAt: the hub's timer and its write. */
    hubLagMs: dist(vals.map((v) => v.hubLag)),
    /** seen - eventAt: the write's way to the observer. */
    deliverMs: dist(vals.map((v) => v.deliver)),
    waitedS,
  };
}

// ---------------------------------------------------------------------------------------------
// 5. late-subscriber catch-up

async function observeAll(fc: FieldClient, patterns: string[], want: number) {
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
  const emitter = new FieldClient(await bus('cu-emitter'), { timeoutMs: CALL_TIMEOUT_MS });
  log(`catch-up: emitting ${CATCHUP_N} pheromones, ${CATCHUP_K} in flight`);
  const emitted = await emitMany(emitter, CATCHUP_N, CATCHUP_K, 'catchup.item', (i) => ({ payload: { i } }));
  const fieldKeys = (await buses[0]!.jsm.streams.info(`KV_${buses[0]!.names.buckets.field}`)).state;
  log(`catch-up: observe(['catchup.>']), then observe(['*'])`);
  const narrow = await observeAll(new FieldClient(await bus('cu-narrow')), ['catchup.>'], CATCHUP_N);
  const all = await observeAll(new FieldClient(await bus('cu-all')), ['*'], CATCHUP_N);

  const kv = await new Kvm((await bus('cu-raw-put')).nc).open(RAW_CU_BUCKET);
  // As many other messages in the raw bucket as the field's holds besides the catch-up ones.
  const fillers = Math.max(0, fieldKeys.messages - CATCHUP_N);
  log(
    `catch-up: raw KV, ${fillers} other keys, then ${CATCHUP_N} puts, ${CATCHUP_K} in flight, then a watch`,
  );
  const fill = await closedLoop(
    CATCHUP_K,
    (i) => {
      const id = rawId('f', i);
      return kv.put(`${id}.other.item`, JSON.stringify(record(id, 'other.item', { i })));
    },
    { total: fillers },
  );
  if (fill.errors) throw new Error(`raw catch-up fillers: ${fill.errors} failed (${fill.firstError})`);
  const put = await closedLoop(
    CATCHUP_K,
    (i) => {
      const id = rawId('c', i);
      return kv.put(`${id}.catchup.item`, JSON.stringify(record(id, 'catchup.item', { i })));
    },
    { total: CATCHUP_N },
  );
  if (put.errors) throw new Error(`raw catch-up puts: ${put.errors} failed (${put.firstError})`);
  const rawKeys = (await buses[0]!.jsm.streams.info(`KV_${RAW_CU_BUCKET}`)).state;
  const watcher = await new Kvm((await bus('cu-raw-watch')).nc).open(RAW_CU_BUCKET);
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
  return {
    n: CATCHUP_N,
    k: CATCHUP_K,
    hub: {
      emitSeconds: emitted.seconds,
      emitsPerSec: emitted.perSec,
      emitCallMs: emitted.callMs,
      /** The field bucket's stream when observing began (live keys of every section, delete markers). */
      bucketMessages: fieldKeys.messages,
      narrow,
      all,
    },
    raw: {
      putSeconds: put.seconds,
      putsPerSec: put.opsPerSec,
      putCallMs: dist(put.callMs),
      bucketMessages: rawKeys.messages,
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

function commandLine(): string {
  const ev = process.env.npm_lifecycle_event;
  const rest = args.join(' ');
  if (ev) return `npm run ${ev}${rest ? ` -- ${rest}` : ''}`;
  return `npx tsx bench/field.ts${rest ? ` ${rest}` : ''}`;
}

/** The code measured: the commit, and the files that differ from it (a work tree being edited). */
function sourceState(): { commit: string; dirty: string[] } | null {
  try {
    const git = (...a: string[]) => execFileSync('git', a, { cwd: here('..'), encoding: 'utf8' });
    return {
      commit: git('rev-parse', 'HEAD').trim(),
      dirty: git('status', '--porcelain', '--untracked-files=all', '--', 'src', 'actors', 'bench')
        .split('\n')
        .filter(Boolean),
    };
  } catch {
    return null;
  }
}

async function main(): Promise<Record<string, unknown>> {
  const load = () => loadavg().map((x) => Number(x.toFixed(2)));
  const tRun = nowMs();
  const out: Record<string, unknown> = {
    bench: 'field',
    command: commandLine(),
    source: sourceState(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      node: process.version,
      natsServer: await natsServerVersion(),
      loadavgStart: load(),
    },
    params: {
      quick: QUICK,
      n: N,
      rate: RATE,
      warmupS: WARMUP_S,
      k: K,
      seconds: SECONDS,
      m: MA,
      trustedM: TRUSTED_CLAIMS ? TRUSTED_M : null,
      c: C,
      claimWindow: CLAIM_WINDOW,
      expiryN: EXPIRY_N,
      catchupN: CATCHUP_N,
      catchupK: CATCHUP_K,
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
      await probe.emit('probe.up');
      break;
    } catch (err) {
      if (i >= 30) throw new Error(`the hub's field API never answered: ${errText(err)}`);
      await sleep(500);
    }
  }
  for (const b of [RAW_BUCKET, RAW_THR_BUCKET, RAW_CU_BUCKET])
    await new Kvm(admin.nc).create(b, { history: 1, storage: StorageType.File });
  out.startupS = (nowMs() - tRun) / 1000;
  const m = () => meter({ hub: h.pid, nats: nats!.pid }, nats!);

  const timed = async <T>(name: string, f: () => Promise<T>) => {
    section = name;
    const t = nowMs();
    const r = await f();
    log(`${name} done in ${((nowMs() - t) / 1000).toFixed(1)} s`);
    return { ...r, sectionS: (nowMs() - t) / 1000 };
  };
  out.emitObserveLatency = await timed('latency', () => latency(m));
  out.emitThroughput = await timed('throughput', () => throughput(m));
  const claims: Record<string, unknown> = {};
  out.claimContention = claims;
  claims.agent = await timed('claims (agent)', () => claimContention('agent', m));
  out.expiryLag = await timed('expiry', () => expiry());
  out.catchUp = await timed('catch-up', () => catchUp());
  // Last: each trusted claim lists the bucket's keys (a consumer per call), which loads the server.
  claims.trusted = TRUSTED_CLAIMS
    ? await timed('claims (trusted)', () => claimContention('trusted', m))
    : null;
  section = 'end';
  out.hub = { alive: !gone(h), log: hubLog };
  out.runS = (nowMs() - tRun) / 1000;
  (out.machine as Record<string, unknown>).loadavgEnd = load();
  return out;
}

const deadline = setTimeout(() => {
  log(`run exceeded ${TIMEOUT_S} s: stopping everything`);
  void cleanup().finally(() => process.exit(1));
}, TIMEOUT_S * 1000);
deadline.unref();

let code = 0;
try {
  const out = await main();
  process.stdout.write(
    `${JSON.stringify(
      out,
      (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(3)) : v),
      2,
    )}\n`,
  );
} catch (err) {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  code = 1;
}
await cleanup();
process.exit(code);
