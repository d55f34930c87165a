/**
 * Gateway benchmark (issue 16): what the HTTP gateway costs on this machine, with the NATS paths it
 * stands in front of measured in the same run, against the same hub and nats-server. Processes: a
 * private nats-server (free port, never 4222; its store removed at the end), one hub with its
 * gateway (`agentcom hub`, a separate process, as bench/field.ts starts it) and no agent (tasks stay
 * queued, so every task is one submission and one event), and this process, which runs every client.
 *   submit    `POST /api/tasks` (bearer token of a high rate, keep-alive connections, node:http) by
 *             `c` clients back to back, for each `c` of `--concurrency`; beside it, at the same
 *             concurrency, over one NATS connection as the gateway has: the hub's `task.submit` API
 *             request (HubClient.submit: what the route forwards to; both reply with the stored
 *             record) and the stream publish of src/agent/submit.ts (`submitTask`: the reply is the
 *             PubAck, the hub takes the task in after). Each path sends `n` submissions after `warm`
 *             unmeasured ones, in `rounds` rounds ordered http, api, stream then stream, api, http (the
 *             shared VM drifts); between paths the hub is waited for until it holds every task sent
 *             (the stream path leaves a backlog). Per path: submissions/s, call latency p50/p90/p99/max
 *             (ms), errors, CPU ms per submission of the hub (gateway included), nats-server and this
 *             process. The gateway submits as `http-<token id>`, a submitter the hub limits (200/s by
 *             default): the bench's token is whitelisted (limits `overrides`), as the API path's
 *             trusted connection is. Ratios: http over api and http over stream (throughput: api or
 *             stream over http, so > 1 means the gateway is slower; latency: http over the other).
 *   fanOut    `clients` event-stream clients (`GET /api/events?types=task`, each its own connection
 *             and token: a token may hold 16 streams)
 *             while tasks are submitted (`submitTask`) at `rate`/s on an absolute schedule, `warmup` s
 *             unmeasured then `seconds` s; latency = a client's receipt of the task's event - the
 *             submit call's start (one clock), one sample per (task, client). Beside the clients, in
 *             this process, the gateway's own source: a tail of the tasks bucket (src/bus/kv-tail.ts,
 *             what the gateway reads) gives the floor (submit -> revision seen on NATS). Run with 1
 *             client, then with `clients`: the ratios are fan-out over floor, and `clients` over 1.
 *             Every client must get every task's event exactly once (`missing`, `duplicates`).
 *   npx tsx bench/gateway.ts [--quick] [--concurrency 1,16,64] [--n 3000] [--warm 300] [--rounds 2]
 *     [--paths http,api,stream] [--clients 100] [--rate 200] [--warmup 2] [--seconds 10] [--no-fan-out]
 *     [--timeout 900]
 * `--quick`: n 600, warm 100, rounds 1, seconds 3 (flags given explicitly win). Prints one JSON
 * document on stdout (times in ms); progress on stderr. HUB_LOG=<path> keeps the hub's log lines;
 * GATEWAY_HUB_PROF=<dir> runs the hub with --cpu-prof (read it with bench/profile-modules.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { submitTask } from '../src/agent/submit.js';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { HubClient } from '../src/bus/hub-client.js';
import { type KvTail, kvLastSeq, tailKv } from '../src/bus/kv-tail.js';
import { openLimitsKv } from '../src/bus/live-limits.js';
import { freePort } from '../src/bus/nats-server.js';
import { httpSubmitter } from '../src/gateway/route.js';
import { createToken, openTokensKv } from '../src/gateway/tokens.js';
import { LIMITS_KEY, LimitsSchema } from '../src/protocol/limits.js';
import { taskIdForSubmit } from '../src/protocol/task-id.js';
import {
  benchFlags,
  cpuSeconds,
  nowMs,
  ownCpuSeconds,
  percentile,
  runBench,
  sleep,
  withTimeout,
} from './peers/common.js';
import { type NatsServer, startNatsServer } from './peers/nats.js';
import { dist, errText, loadAverage, machineInfo, ratio } from './report.js';

// ---------------------------------------------------------------------------------------------
// Flags

const args = process.argv.slice(2);
const flags = benchFlags(args);
const QUICK = flags.quick;
const flag = flags.number;
const list = flags.list;
const CONCURRENCY = list('concurrency', [1, 16, 64]);
const PATHS = (() => {
  const i = args.indexOf('--paths');
  const xs = i < 0 ? ['http', 'api', 'stream'] : (args[i + 1] ?? '').split(',');
  if (!xs.length || xs.some((x) => !['http', 'api', 'stream'].includes(x)))
    throw new Error('--paths must be a list of http, api, stream');
  return xs as Path[];
})();
const FAN_OUT = !args.includes('--no-fan-out');
const N = flag('n', 3000, 600);
const WARM = flag('warm', 300, 100);
const ROUNDS = flag('rounds', 2, 1);
const CLIENTS = flag('clients', 100);
const RATE = flag('rate', 200);
const WARMUP_S = flag('warmup', 2, 1);
const SECONDS = flag('seconds', 10, 3);
const TIMEOUT_S = flag('timeout', 900);

const log = (line: string) => process.stderr.write(`[gateway] ${line}\n`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const prefix = `gb${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

// ---------------------------------------------------------------------------------------------
// Summaries

// ---------------------------------------------------------------------------------------------
// Processes and connections, stopped whatever happens

let nats: NatsServer | undefined;
let hub: ChildProcess | undefined;
let hubLogFile: WriteStream | undefined;
const buses: Bus[] = [];
const tails: KvTail[] = [];
const streams: http.ClientRequest[] = [];
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 256 });
const hubLog = { lines: 0, warn: 0, error: 0, samples: [] as string[] };

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const s of streams) s.destroy();
    for (const t of tails) t.stop();
    keepAlive.destroy();
    await Promise.allSettled(
      buses.map((b) => withTimeout(b.drain(), 3000, 'drain').catch(() => b.nc.close())),
    );
    if (hub && !exited(hub)) {
      const h = hub;
      const gone = new Promise<void>((r) => h.once('exit', () => r()));
      h.kill('SIGTERM');
      await withTimeout(gone, 8000, 'hub SIGTERM').catch(async () => {
        if (!exited(h)) h.kill('SIGKILL');
        await withTimeout(gone, 3000, 'hub SIGKILL').catch(() => {});
      });
    }
    hubLogFile?.end();
    await nats?.stop();
  })();
  return cleaning;
}

function startHubProcess(natsUrl: string, httpPort: number): ChildProcess {
  if (process.env.HUB_LOG) hubLogFile = createWriteStream(process.env.HUB_LOG);
  const child = spawn(
    process.execPath,
    [
      ...(process.env.GATEWAY_HUB_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.GATEWAY_HUB_PROF}`]
        : []),
      '--import',
      'tsx',
      here('../src/cli/main.ts'),
      'hub',
      '--nats-url',
      natsUrl,
      '--prefix',
      prefix,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        AGENTCOM_HTTP: 'on',
        AGENTCOM_HTTP_PORT: String(httpPort),
        AGENTCOM_LOG_LEVEL: 'warn',
        AGENTCOM_LOG_FORMAT: 'json',
      },
    },
  );
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    hubLog.lines++;
    hubLogFile?.write(`${l}\n`);
    const level = /"level":(\d+)/.exec(l)?.[1];
    if (level && Number(level) >= 40) {
      if (Number(level) >= 50) hubLog.error++;
      else hubLog.warn++;
      if (hubLog.samples.length < 3) hubLog.samples.push(l.slice(0, 400));
    }
  });
  hub = child;
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

/** One HTTP call on the keep-alive pool: status and body. */
function request(
  base: string,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const bytes = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (bytes) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = bytes.length;
  }
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers, agent: keepAlive }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(bytes);
  });
}

/** CPU of each process between now and the returned function's call, ms per operation. */
function meter() {
  const snap = () => ({ hub: cpuSeconds(hub?.pid), nats: cpuSeconds(nats?.pid), bench: ownCpuSeconds() });
  const a = snap();
  const t0 = nowMs();
  return (n: number) => {
    const b = snap();
    const wallS = (nowMs() - t0) / 1000;
    const keys = Object.keys(a) as (keyof typeof a)[];
    return {
      cpuMsPerOp: Object.fromEntries(keys.map((k) => [k, ((b[k] - a[k]) * 1000) / Math.max(1, n)])),
      coresBusy: Object.fromEntries(keys.map((k) => [k, (b[k] - a[k]) / wallS])),
    };
  };
}

// ---------------------------------------------------------------------------------------------
// Submit: POST /api/tasks against task.submit and the stream publish

type Path = 'http' | 'api' | 'stream';

/** `c` lanes calling `op(i)` back to back until `total` calls are made. */
async function closedLoop(c: number, total: number, op: (i: number) => Promise<void>) {
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
  await Promise.all(Array.from({ length: c }, lane));
  return { seconds: (nowMs() - t0) / 1000, callMs, errors, firstError };
}

async function submitSection(base: string, token: string, admin: Bus) {
  const api = new HubClient(admin, 30_000);
  let sent = 0;
  const initial = (await api.stats()).total;
  const ops: Record<Path, (i: number) => Promise<void>> = {
    http: async (i) => {
      const r = await request(base, 'POST', '/api/tasks', token, { title: `http ${i}`, queue: 'bench-http' });
      if (r.status !== 201) throw new Error(`POST /api/tasks: ${r.status} ${r.body.slice(0, 200)}`);
    },
    api: async (i) => {
      await api.submit({ title: `api ${i}`, queue: 'bench-api' });
    },
    stream: async (i) => {
      await submitTask(admin, { title: `stream ${i}`, queue: 'bench-stream' });
    },
  };
  /** The hub holds every task sent so far (the stream path's backlog taken in). */
  const settle = async () => {
    const end = nowMs() + 120_000;
    for (;;) {
      const total = (await api.stats()).total;
      if (total >= initial + sent) return;
      if (nowMs() > end)
        throw new Error(`the hub holds ${total - initial} of the ${sent} tasks submitted, after 120 s`);
      await sleep(100);
    }
  };
  const out: Record<string, unknown> = {};
  for (const c of CONCURRENCY) {
    const runs: Record<
      Path,
      {
        seconds: number;
        callMs: number[];
        errors: number;
        firstError: string | null;
        cpu: Record<string, number>[];
      }
    > = {
      http: { seconds: 0, callMs: [], errors: 0, firstError: null, cpu: [] },
      api: { seconds: 0, callMs: [], errors: 0, firstError: null, cpu: [] },
      stream: { seconds: 0, callMs: [], errors: 0, firstError: null, cpu: [] },
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? PATHS : [...PATHS].reverse();
      for (const p of order) {
        const w = await closedLoop(c, WARM, ops[p]);
        sent += w.callMs.length;
        await settle();
        const m = meter();
        const r = await closedLoop(c, N, ops[p]);
        sent += r.callMs.length;
        await settle();
        if (w.errors) log(`submit c=${c} ${p} warm-up: ${w.errors} errors (${w.firstError})`);
        const run = runs[p];
        run.seconds += r.seconds;
        run.callMs.push(...r.callMs);
        run.errors += r.errors;
        run.firstError ??= r.firstError;
        // CPU over the calls and the hub's intake after them (the stream path's work lands there).
        run.cpu.push(m(N).cpuMsPerOp);
        log(
          `submit c=${c} round ${round + 1} ${p}: ${(r.callMs.length / r.seconds).toFixed(0)}/s, p50 ${percentile(
            [...r.callMs].sort((x, y) => x - y),
            50,
          ).toFixed(2)} ms`,
        );
      }
    }
    const summary = (p: Path) => {
      const run = runs[p];
      const d = dist(run.callMs);
      const cpu = Object.fromEntries(
        Object.keys(run.cpu[0] ?? {}).map((k) => [
          k,
          run.cpu.reduce((s, x) => s + x[k]!, 0) / run.cpu.length,
        ]),
      );
      return {
        submissions: d.count,
        perSecond: d.count / run.seconds,
        latencyMs: d,
        errors: run.errors,
        firstError: run.firstError,
        cpuMsPerSubmit: cpu,
      };
    };
    const h = summary('http');
    const a = summary('api');
    const s = summary('stream');
    out[`c${c}`] = {
      concurrency: c,
      http: h,
      api: a,
      stream: s,
      ratios: {
        httpOverApi: {
          throughput: ratio(a.perSecond, h.perSecond),
          p50: ratio(h.latencyMs.p50, a.latencyMs.p50),
          p99: ratio(h.latencyMs.p99, a.latencyMs.p99),
          hubCpu: ratio(h.cpuMsPerSubmit.hub!, a.cpuMsPerSubmit.hub!),
        },
        httpOverStream: {
          throughput: ratio(s.perSecond, h.perSecond),
          p50: ratio(h.latencyMs.p50, s.latencyMs.p50),
          p99: ratio(h.latencyMs.p99, s.latencyMs.p99),
        },
      },
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fan-out: event-stream clients while tasks are submitted at a fixed rate

/** One event-stream client: calls `onTask(id, t)` for each task event; resolves once it is open. */
function openStream(base: string, token: string, onTask: (id: string, t: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      `${base}/api/events?types=task`,
      { agent: false, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`event stream: ${res.statusCode}`));
          return;
        }
        res.setEncoding('utf8');
        let buf = '';
        let ready = false;
        res.on('data', (d: string) => {
          const t = nowMs();
          buf += d;
          let cut = buf.indexOf('\n\n');
          while (cut >= 0) {
            const frame = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            cut = buf.indexOf('\n\n');
            if (!ready && frame.includes('event: ready')) {
              ready = true;
              resolve();
            }
            if (!frame.includes('event: task')) continue;
            const at = frame.indexOf('"id":"');
            if (at >= 0) onTask(frame.slice(at + 6, frame.indexOf('"', at + 6)), t);
          }
        });
      },
    );
    req.on('error', (err) => reject(err));
    streams.push(req);
  });
}

async function fanOut(base: string, tokens: string[], admin: Bus, clients: number) {
  const tasksBucket = admin.names.buckets.tasks;
  const total = Math.round(RATE * (WARMUP_S + SECONDS));
  const warm = Math.round(RATE * WARMUP_S);
  const idx = new Map<string, number>();
  const submitAt = new Float64Array(total).fill(Number.NaN);
  /** receipt[task * clients + client]: when that client got that task's event (NaN: not yet). */
  const receipt = new Float64Array(total * clients).fill(Number.NaN);
  const floorAt = new Float64Array(total).fill(Number.NaN);
  let duplicates = 0;
  const opened: http.ClientRequest[] = [];
  const firstStream = streams.length;
  await Promise.all(
    Array.from({ length: clients }, (_, ci) =>
      openStream(base, tokens[ci]!, (id, t) => {
        const ti = idx.get(id);
        if (ti === undefined) return;
        const k = ti * clients + ci;
        if (Number.isNaN(receipt[k]!)) receipt[k] = t;
        else duplicates++;
      }),
    ),
  );
  opened.push(...streams.slice(firstStream));
  // The floor: the gateway's own source (a tail of the tasks bucket), read in this process.
  const tail = await tailKv(admin, tasksBucket, (await kvLastSeq(admin, tasksBucket)) + 1, (r) => {
    const ti = idx.get(r.key);
    if (ti !== undefined && Number.isNaN(floorAt[ti]!)) floorAt[ti] = nowMs();
  });
  tails.push(tail);
  await sleep(500);
  const m = meter();
  const interval = 1000 / RATE;
  const pending: Promise<unknown>[] = [];
  let submitErrors = 0;
  let maxBehindMs = 0;
  const t0 = nowMs();
  for (let i = 0; i < total; i++) {
    const due = t0 + i * interval;
    const wait = due - nowMs();
    if (wait > 0) await sleep(wait);
    maxBehindMs = Math.max(maxBehindMs, nowMs() - due);
    // With a key the task id is known before the publish (protocol/task-id.ts), so an event is
    // matched however early it comes.
    const key = `${prefix}-fan-${clients}-${i}`;
    idx.set(taskIdForSubmit({ idempotencyKey: key, now: 0 }), i);
    const t = nowMs();
    submitAt[i] = t;
    const p = submitTask(admin, {
      title: `fan ${clients} ${i}`,
      queue: 'bench-fan',
      idempotencyKey: key,
    }).catch(() => {
      submitErrors++;
      submitAt[i] = Number.NaN;
    });
    pending.push(p);
  }
  await Promise.all(pending);
  const sentS = (nowMs() - t0) / 1000;
  // Stragglers: up to 10 s for every client to have every measured task.
  const measured = Array.from({ length: total - warm }, (_, j) => warm + j);
  const complete = () =>
    measured.every((i) => {
      for (let ci = 0; ci < clients; ci++) if (Number.isNaN(receipt[i * clients + ci]!)) return false;
      return true;
    });
  const end = nowMs() + 10_000;
  while (!complete() && nowMs() < end) await sleep(100);
  const cpu = m(total - warm);
  tail.stop();
  for (const s of opened) s.destroy();
  const lat: number[] = [];
  const floor: number[] = [];
  let missing = 0;
  let clientsWithAll = 0;
  const perClientMissing = new Array<number>(clients).fill(0);
  for (const i of measured) {
    if (Number.isNaN(submitAt[i]!)) continue;
    if (!Number.isNaN(floorAt[i]!)) floor.push(floorAt[i]! - submitAt[i]!);
    for (let ci = 0; ci < clients; ci++) {
      const r = receipt[i * clients + ci]!;
      if (Number.isNaN(r)) {
        missing++;
        perClientMissing[ci]!++;
      } else lat.push(r - submitAt[i]!);
    }
  }
  for (const x of perClientMissing) if (x === 0) clientsWithAll++;
  const sse = dist(lat);
  const fl = dist(floor);
  return {
    clients,
    rate: RATE,
    warmupS: WARMUP_S,
    seconds: SECONDS,
    tasks: measured.length,
    achievedRate: (total - 1) / sentS,
    maxBehindMs,
    submitErrors,
    expectedDeliveries: measured.length * clients,
    delivered: lat.length,
    missing,
    duplicates,
    everyClientGotEveryEvent: missing === 0 && duplicates === 0 && submitErrors === 0,
    clientsWithAll,
    latencyMs: sse,
    floorMs: fl,
    overFloor: { p50: ratio(sse.p50, fl.p50), p99: ratio(sse.p99, fl.p99), max: ratio(sse.max, fl.max) },
    ...cpu,
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<Record<string, unknown>> {
  const tRun = nowMs();
  const out: Record<string, unknown> = {
    bench: 'gateway',
    command: `npx tsx bench/gateway.ts ${args.join(' ')}`.trim(),
    machine: await machineInfo(),
    params: {
      quick: QUICK,
      concurrency: CONCURRENCY,
      paths: PATHS,
      n: N,
      warm: WARM,
      rounds: ROUNDS,
      clients: CLIENTS,
      rate: RATE,
      warmupS: WARMUP_S,
      seconds: SECONDS,
      prefix,
    },
  };
  nats = await startNatsServer();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  log(`nats-server on ${nats.url}; starting the hub (prefix ${prefix}, gateway ${base})`);
  const h = startHubProcess(nats.url, port);
  const admin = await bus('bench-admin');
  // The gateway answers once it listens and the hub leads.
  const tokensKv = await (async () => {
    for (let i = 0; ; i++) {
      try {
        const r = await request(base, 'GET', '/readyz', null);
        if (r.status === 200) return await openTokensKv(admin);
      } catch {
        // not listening yet
      }
      if (exited(h)) throw new Error('the hub exited while starting');
      if (i > 300) throw new Error('the gateway never became ready');
      await sleep(200);
    }
  })();
  const fast = { perSecond: 1_000_000, burst: 1_000_000 };
  const made = await createToken(tokensKv, { name: 'bench-submitter', role: 'submitter', rate: fast });
  const submitter = made.token;
  // The gateway submits as `http-<token id>`, which the hub limits like any submitter (200/s by
  // default): whitelisted here, as the API path's trusted connection is, so the gateway's own cost
  // is what is measured.
  await (await openLimitsKv(admin)).put(
    LIMITS_KEY,
    LimitsSchema.parse({ v: 1, overrides: { [httpSubmitter(made.record.id)]: 'unlimited' } }),
  );
  // One token per client, as browsers would have (a token may hold 16 streams on a gateway).
  const readers: string[] = [];
  for (let i = 0; i < CLIENTS; i++)
    readers.push(
      (await createToken(tokensKv, { name: `bench-reader-${i}`, role: 'read', rate: fast })).token,
    );
  for (let i = 0; ; i++) {
    const r = await request(base, 'POST', '/api/tasks', submitter, { title: 'probe', queue: 'bench-probe' });
    if (r.status === 201) break;
    if (i > 100) throw new Error(`POST /api/tasks never answered 201: ${r.status} ${r.body}`);
    await sleep(200);
  }
  out.startupS = (nowMs() - tRun) / 1000;
  const timed = async <T>(name: string, f: () => Promise<T>) => {
    const t = nowMs();
    const r = await f();
    log(`${name} done in ${((nowMs() - t) / 1000).toFixed(1)} s (load ${loadAverage().join(' ')})`);
    return r;
  };
  out.submit = await timed('submit', () => submitSection(base, submitter, admin));
  if (FAN_OUT) {
    const one = await timed('fan-out to 1', () => fanOut(base, readers, admin, 1));
    const many = await timed(`fan-out to ${CLIENTS}`, () => fanOut(base, readers, admin, CLIENTS));
    out.fanOut = {
      one,
      many,
      manyOverOne: {
        p50: ratio(many.latencyMs.p50, one.latencyMs.p50),
        p99: ratio(many.latencyMs.p99, one.latencyMs.p99),
        max: ratio(many.latencyMs.max, one.latencyMs.max),
      },
    };
  }
  out.hub = { alive: !exited(h), log: hubLog };
  out.runS = (nowMs() - tRun) / 1000;
  (out.machine as Record<string, unknown>).loadavgEnd = loadAverage();
  return out;
}

await runBench({ main, cleanup, timeoutS: TIMEOUT_S, log });
