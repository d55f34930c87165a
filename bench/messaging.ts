/**
 * Messaging benchmark (issue 14): what the hub's agent messaging costs on this machine, with raw
 * NATS measured in the same run, against the same nats-server, as the baseline. Processes: a
 * private nats-server (free port, never 4222; its store removed at the end), one hub (`agentcom hub
 * --nats-url --http off`, a separate process, as bench/field.ts starts it) and this process, which
 * runs every client. Every simulated agent says hello to the hub (its registration, its task inbox)
 * and heartbeats, as AgentClient does, so the hub knows it as it knows a real one; an agent's calls
 * go to its own subjects (`<p>.api.<op>.<agent id>`, the caller read from the subject, its
 * messaging rate applied), its pushes arrive on `_INBOX.<agent id>.msg`.
 *   direct     agent A sends direct messages to agent B (MessagingClient on A's own subject) at
 *              `rate`/s on an absolute schedule, `warmup` s unmeasured then `seconds` s (open loop:
 *              a send that goes out late, this process being busy, counts against the path);
 *              latency = B's receipt of the live push - the send's scheduled time (one clock).
 *              A is whitelisted (limits `overrides`: 1,000/s is over an agent's default 200/s).
 *              Baselines on the same two connections: a core NATS publish A -> a subscription of B,
 *              and a JetStream publish into a file stream + a pull consumer (`consume`, explicit
 *              acks) delivering to B. Per path: p50/p90/p99/max, missing, duplicates, the call's own
 *              latency (the hub's reply, the PubAck), CPU ms per message of the hub, nats-server and
 *              this process, and the server's messages per message.
 *   broadcast  A broadcasts `k` times, one after another (`k-warm` more first, unmeasured); per
 *              broadcast, send -> the last of `recipients` agents has its push (and -> the first).
 *              Baseline: one core publish to `recipients` subscriptions on the same connections.
 *   channel    `recipients` agents join a channel A created; A posts `k` times, as above.
 *   catchUp    `catchup-n` direct messages to agent C (hello'd, no connection listening) fill its
 *              mailbox (`inflight` sends in flight); C reads it from its cursor to the end, pages of
 *              `page` (`msg.inbox` on its own subject), acking each page's last seq (`msg.ack`):
 *              total time, messages/s, each call's latency. Baseline: as many messages of the same
 *              stored shape in a JetStream file stream, read by a durable consumer (ack all) with
 *              fetches of `page`, each batch's last message acked with `ackAck`. Then `pageCost`:
 *              the hub's inbox read of one page of 10, 100 and `page` messages (`after` given, the
 *              cursor unmoved), `page-reps` times each, against a JetStream fetch of as many
 *              (a new ordered consumer each: the hub too makes a consumer per read); and the
 *              smallest page again once C is a member of `extra-channels` empty channels.
 *   npx tsx bench/messaging.ts [--quick] [--seconds 10] [--warmup 2] [--rate 1000] [--recipients 100]
 *     [--k 200] [--k-warm 10] [--catchup-n 10000] [--page 1000] [--page-reps 5] [--inflight 64]
 *     [--agent-conns 100] [--body 120] [--extra-channels 20 | --no-extra-channels] [--timeout 900]
 * `--quick`: seconds 3, warmup 1, k 50 (flags given explicitly win). `--agent-conns` is how many
 * connections the broadcast and channel recipients share (default one each, as real agents have).
 * Prints one JSON document on stdout (times in ms); progress on stderr. HUB_LOG=<path> keeps the
 * hub's log lines; MESSAGING_HUB_PROF=<dir> runs the hub with --cpu-prof (read it with
 * bench/profile-modules.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AckPolicy, DeliverPolicy, type JsMsg, StorageType } from '@nats-io/jetstream';
import type { Msg } from '@nats-io/nats-core';
import { pino } from 'pino';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { openLimitsKv } from '../src/bus/live-limits.js';
import { MessagingClient } from '../src/bus/messaging-client.js';
import { publishCore, requestTyped } from '../src/bus/subscribe.js';
import { AgentHelloSchema, HeartbeatSchema } from '../src/protocol/agent.js';
import { AgentComError } from '../src/protocol/errors.js';
import { newSessionId } from '../src/protocol/ids.js';
import { LIMITS_KEY, LimitsSchema } from '../src/protocol/limits.js';
import type { Message } from '../src/protocol/message.js';
import { agentInboxPrefix, messagePushSubject } from '../src/protocol/permissions.js';
import { HelloReplySchema } from '../src/protocol/registration.js';
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
const SECONDS = flag('seconds', 10, 3);
const WARMUP_S = flag('warmup', 2, 1);
const RATE = flag('rate', 1000);
const RECIPIENTS = flag('recipients', 100);
const K = flag('k', 200, 50);
const K_WARM = flag('k-warm', 10);
const CATCHUP_N = flag('catchup-n', 10_000);
const PAGE = flag('page', 1000);
const PAGE_REPS = flag('page-reps', 5);
const INFLIGHT = flag('inflight', 64);
const AGENT_CONNS = Math.min(flag('agent-conns', RECIPIENTS), RECIPIENTS);
const BODY = flag('body', 120);
/** Channels the catch-up reader joins for the last page-cost row (0: none). */
const EXTRA_CHANNELS = args.includes('--no-extra-channels') ? 0 : flag('extra-channels', 20);
const TIMEOUT_S = flag('timeout', 900);
/** How long one broadcast or post may take to reach every recipient before it counts as incomplete. */
const FAN_WAIT_MS = 10_000;
/** Request timeout of every hub call: long, so that queueing shows as latency, not as errors. */
const CALL_TIMEOUT_MS = 60_000;

const log = (line: string) => process.stderr.write(`[messaging] ${line}\n`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const prefix = `mb${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const P = prefix.toUpperCase();

/** The simulated agents. */
const A = 'bench-a';
const B = 'bench-b';
const C = 'bench-c';
const recipientId = (i: number) => `bench-r${String(i).padStart(3, '0')}`;
const CHANNEL = 'bench-fan';
/** The raw baselines' streams and subjects (not under `<p>.msg.`, so the hub never sees them). */
const RAW = {
  dmStream: `${P}_RAWDM`,
  dmSubject: `${prefix}.rawdm.${B}`,
  cuStream: `${P}_RAWCU`,
  cuSubject: `${prefix}.rawcu.${C}`,
  coreDm: `${prefix}.rawcore.${B}`,
  fan: `${prefix}.rawfan`,
};

const BODY_TEXT = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor '
  .repeat(Math.ceil(BODY / 78) + 1)
  .slice(0, BODY);

// ---------------------------------------------------------------------------------------------
// Summaries

const ratios = (h: Dist, r: Dist) => ({
  p50: ratio(h.p50, r.p50),
  p90: ratio(h.p90, r.p90),
  p99: ratio(h.p99, r.p99),
  max: ratio(h.max, r.max),
});

// ---------------------------------------------------------------------------------------------
// Processes and connections, stopped whatever happens

let nats: NatsServer | undefined;
let hub: ChildProcess | undefined;
let hubLogFile: WriteStream | undefined;
const buses: Bus[] = [];
const timers: NodeJS.Timeout[] = [];
const hubLog = {
  lines: 0,
  warn: 0,
  error: 0,
  /** Every log message (with its error's message) and how often. */
  byMsg: {} as Record<string, number>,
  samples: [] as string[],
};

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const t of timers) clearInterval(t);
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
});
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    log(`${sig}: stopping everything`);
    void cleanup().finally(() => process.exit(130));
  });

async function startHubProcess(url: string): Promise<ChildProcess> {
  if (process.env.HUB_LOG) hubLogFile = createWriteStream(process.env.HUB_LOG);
  const prof = process.env.MESSAGING_HUB_PROF;
  const child = spawn(
    process.execPath,
    [
      ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []),
      '--import',
      'tsx',
      here('../src/cli/main.ts'),
      'hub',
      '--nats-url',
      url,
      '--prefix',
      prefix,
      '--http',
      'off',
      '--log-level',
      'info',
      '--log-format',
      'json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
  );
  hub = child;
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  const rl = createInterface({ input: child.stdout! });
  const started = new Promise<void>((resolve, reject) => {
    rl.on('line', (l) => {
      hubLog.lines++;
      hubLogFile?.write(`${l}\n`);
      if (l.includes('"hub started"')) resolve();
      try {
        const j = JSON.parse(l) as { level?: number; msg?: string; err?: { message?: string } };
        const key = `${j.msg ?? '?'}${j.err?.message ? `: ${j.err.message.slice(0, 120)}` : ''}`;
        hubLog.byMsg[key] = (hubLog.byMsg[key] ?? 0) + 1;
        if ((j.level ?? 0) >= 40) {
          if ((j.level ?? 0) >= 50) hubLog.error++;
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

/** A connection; with `agentId`, that agent's own (its reply inboxes under its prefix). */
async function bus(name: string, agentId?: string): Promise<Bus> {
  const b = await connectBus({
    servers: nats!.url,
    prefix,
    name,
    ...(agentId ? { inboxPrefix: agentInboxPrefix(agentId) } : {}),
    apiTimeoutMs: CALL_TIMEOUT_MS,
    logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  buses.push(b);
  return b;
}

/**
 * Registers `agentId` as AgentClient.connect does (a hello, answered by the hub: its registration
 * and its task inbox) and heartbeats for it from then on, so the hub keeps it online.
 */
async function helloAgent(b: Bus, agentId: string): Promise<void> {
  const session = newSessionId();
  const hello = AgentHelloSchema.parse({ v: 1, session, name: agentId, slots: 1 });
  const ask = () =>
    requestTyped(b, b.names.subjects.agentHello(agentId), AgentHelloSchema, hello, HelloReplySchema, 10_000);
  let r: Awaited<ReturnType<typeof ask>>;
  for (let attempt = 0; ; attempt++) {
    try {
      r = await ask();
      break;
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(500);
    }
  }
  if (!r.ok) throw AgentComError.fromWire(r.error);
  const beat = () =>
    publishCore(b, b.names.subjects.agentHeartbeat(agentId), HeartbeatSchema, {
      v: 1,
      at: Date.now(),
      session,
      running: [],
      finished: [],
    });
  beat();
  const t = setInterval(beat, r.heartbeatIntervalMs);
  t.unref();
  timers.push(t);
}

/**
 * CPU of each process between start and `per(n)`: ms per op, and cores busy (CPU s / wall s; the
 * machine's cores are shared by all of them); the server's messages per op.
 */
function meter() {
  const snap = () => ({ hub: cpuSeconds(hub?.pid), nats: cpuSeconds(nats?.pid), bench: ownCpuSeconds() });
  const a = snap();
  const t0 = nowMs();
  const traffic0 = nats!.traffic().catch(() => null);
  return async (n: number) => {
    const b = snap();
    const wallS = (nowMs() - t0) / 1000;
    const tr0 = await traffic0;
    const tr1 = await nats!.traffic().catch(() => null);
    const keys = Object.keys(a) as (keyof typeof a)[];
    return {
      cpuMsPerOp: Object.fromEntries(keys.map((k) => [k, ((b[k] - a[k]) * 1000) / Math.max(1, n)])),
      coresBusy: Object.fromEntries(keys.map((k) => [k, (b[k] - a[k]) / wallS])),
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

// ---------------------------------------------------------------------------------------------
// Payloads: the raw baselines carry bytes of the shape the hub pushes and stores

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A message as the hub would store and push it (for the raw baselines). */
function fakeMessage(
  seq: number,
  kind: Message['kind'],
  data: Record<string, unknown>,
  to?: string,
): Message {
  return {
    v: 1,
    seq,
    kind,
    from: A,
    fromKind: 'agent',
    ...(to ? { to: to as never } : {}),
    ...(kind === 'channel' ? { channel: CHANNEL } : {}),
    body: BODY_TEXT,
    data,
    at: Date.now(),
  };
}
const pushBytes = (m: Message) => encoder.encode(JSON.stringify({ v: 1, message: m }));

/** The `data` of a pushed or delivered message (every receiver parses the whole JSON, as a reader would). */
function pushedData(data: Uint8Array): Record<string, unknown> | undefined {
  try {
    return (JSON.parse(decoder.decode(data)) as { message?: { data?: Record<string, unknown> } }).message
      ?.data;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Direct messages at a fixed offered rate

interface OpenLoopResult {
  sendErrors: number;
  firstError: string | null;
  achievedRate: number;
  maxBehindMs: number;
  callMs: number[];
}

/**
 * `n` calls of `op(i)` on an absolute schedule at `rate`/s (`due[i]` = its scheduled time), none
 * awaited before the next is due: the calls due when the timer fires all go out then. The calls
 * from `measured` on are the measured ones (call latency, lateness, rate).
 */
async function openLoop(
  n: number,
  measured: number,
  rate: number,
  due: Float64Array,
  op: (i: number) => Promise<unknown>,
): Promise<OpenLoopResult> {
  const interval = 1000 / rate;
  const callMs: number[] = [];
  let sendErrors = 0;
  let firstError: string | null = null;
  let maxBehindMs = 0;
  const pending: Promise<void>[] = [];
  const t0 = nowMs() + 20;
  for (let i = 0; i < n; i++) due[i] = t0 + i * interval;
  let i = 0;
  while (i < n) {
    const now = nowMs();
    while (i < n && due[i]! <= now) {
      const m = i >= measured;
      if (m) maxBehindMs = Math.max(maxBehindMs, now - due[i]!);
      const t = nowMs();
      pending.push(
        op(i).then(
          () => {
            if (m) callMs.push(nowMs() - t);
          },
          (err: unknown) => {
            sendErrors++;
            firstError ??= errText(err);
          },
        ),
      );
      i++;
    }
    if (i < n) await sleep(Math.max(0, due[i]! - nowMs()));
  }
  const tSent = nowMs();
  await Promise.all(pending);
  const span = (tSent - due[Math.min(measured, n - 1)]!) / 1000 || 1;
  return { sendErrors, firstError, achievedRate: (n - measured) / span, maxBehindMs, callMs };
}

/** Where a direct-message run's receipts go: the receiver calls `got(i)`. */
class Receipts {
  readonly at: Float64Array;
  duplicates = 0;
  received = 0;
  constructor(readonly n: number) {
    this.at = new Float64Array(n).fill(Number.NaN);
  }
  got(i: unknown): void {
    if (typeof i !== 'number' || !(i >= 0 && i < this.n)) return;
    if (Number.isNaN(this.at[i]!)) {
      this.at[i] = nowMs();
      this.received++;
    } else this.duplicates++;
  }
}

async function directRun(
  name: string,
  send: (i: number) => Promise<unknown>,
  listen: (r: Receipts) => Promise<() => Promise<void> | void>,
) {
  const warm = Math.round(RATE * WARMUP_S);
  const total = warm + Math.round(RATE * SECONDS);
  const receipts = new Receipts(total);
  const stop = await listen(receipts);
  await sleep(200);
  const due = new Float64Array(total);
  const m = meter();
  const r = await openLoop(total, warm, RATE, due, send);
  // Stragglers: up to 10 s for the last ones to arrive.
  await until(() => receipts.received >= total - r.sendErrors, 10_000);
  const cpu = await m(total);
  await stop();
  const lat: number[] = [];
  let missing = 0;
  for (let i = warm; i < total; i++) {
    const t = receipts.at[i]!;
    if (Number.isNaN(t)) missing++;
    else lat.push(t - due[i]!);
  }
  const latencyMs = dist(lat);
  log(
    `direct ${name}: p50 ${latencyMs.p50.toFixed(2)} p99 ${latencyMs.p99.toFixed(2)} ms, ${missing} missing, ${r.sendErrors} send errors (load ${loadAverage().join(' ')})`,
  );
  return {
    offered: total - warm,
    achievedRate: r.achievedRate,
    maxBehindMs: r.maxBehindMs,
    sendErrors: r.sendErrors,
    firstError: r.firstError,
    missing,
    duplicates: receipts.duplicates,
    latencyMs,
    callMs: dist(r.callMs),
    ...cpu,
  };
}

async function directSection(busA: Bus, busB: Bus) {
  const mc = new MessagingClient(busA, { agentId: A, timeoutMs: CALL_TIMEOUT_MS });
  const subscribeB = (subject: string) => async (r: Receipts) => {
    const sub = busB.nc.subscribe(subject, {
      callback: (_err: unknown, msg: Msg) => r.got(pushedData(msg.data)?.dm),
    });
    await busB.nc.flush();
    return () => sub.unsubscribe();
  };

  // Core NATS: publish A -> subscription of B.
  const natsCore = await directRun(
    'nats core',
    async (i) => busA.nc.publish(RAW.coreDm, pushBytes(fakeMessage(i + 1, 'direct', { dm: i }, B))),
    subscribeB(RAW.coreDm),
  );

  // JetStream: publish into a file stream, a pull consumer (consume, explicit acks) delivering to B.
  await busA.jsm.streams.add({ name: RAW.dmStream, subjects: [RAW.dmSubject], storage: StorageType.File });
  const jetstream = await directRun(
    'jetstream',
    (i) =>
      busA.js.publish(
        RAW.dmSubject,
        encoder.encode(JSON.stringify({ ...fakeMessage(i + 1, 'direct', { dm: i }, B), seq: undefined })),
      ),
    async (r) => {
      const ci = await busB.jsm.consumers.add(RAW.dmStream, {
        durable_name: 'raw-b',
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        max_ack_pending: 10_000,
      });
      const consumer = await busB.js.consumers.get(RAW.dmStream, ci.name);
      const msgs = await consumer.consume({
        max_messages: 1000,
        callback: (m: JsMsg) => {
          // The stored record has no push envelope: its `data` is at the top.
          try {
            r.got((JSON.parse(decoder.decode(m.data)) as { data?: { dm?: number } }).data?.dm);
          } catch {
            // not ours
          }
          m.ack();
        },
      });
      return async () => {
        await msgs.close();
      };
    },
  );

  // AgentCom: A sends on its own subject (msg.send.<A>), B gets the hub's push.
  const agentcom = await directRun(
    'agentcom',
    (i) => mc.send({ to: B, body: BODY_TEXT, data: { dm: i } }),
    subscribeB(messagePushSubject(B)),
  );

  return {
    offeredRate: RATE,
    warmupS: WARMUP_S,
    seconds: SECONDS,
    latencyFrom: 'the send’s scheduled time (open loop)',
    agentcom,
    natsCore,
    jetstream,
    ratios: {
      agentcomOverNatsCore: ratios(agentcom.latencyMs, natsCore.latencyMs),
      agentcomOverJetstream: ratios(agentcom.latencyMs, jetstream.latencyMs),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 2, 3. Fan-out: a broadcast, a channel post, to RECIPIENTS agents

/** The recipients' pushes: per send `k`, when each recipient got it. */
class FanReceipts {
  private readonly at: Float64Array;
  private readonly count: Int32Array;
  private waiter: { k: number; resolve: () => void } | undefined;
  duplicates = 0;
  constructor(
    readonly sends: number,
    readonly recipients: number,
  ) {
    this.at = new Float64Array(sends * recipients).fill(Number.NaN);
    this.count = new Int32Array(sends);
  }
  got(k: unknown, r: number): void {
    if (typeof k !== 'number' || !(k >= 0 && k < this.sends)) return;
    const j = k * this.recipients + r;
    if (!Number.isNaN(this.at[j]!)) {
      this.duplicates++;
      return;
    }
    this.at[j] = nowMs();
    if (++this.count[k]! === this.recipients && this.waiter?.k === k) this.waiter.resolve();
  }
  /** Resolves true once every recipient has send `k`, false after `ms`. */
  all(k: number, ms: number): Promise<boolean> {
    if (this.count[k] === this.recipients) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(false);
      }, ms);
      this.waiter = {
        k,
        resolve: () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve(true);
        },
      };
    });
  }
  span(k: number): { first: number; last: number; got: number } {
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (let r = 0; r < this.recipients; r++) {
      const t = this.at[k * this.recipients + r]!;
      if (Number.isNaN(t)) continue;
      first = Math.min(first, t);
      last = Math.max(last, t);
    }
    return { first, last, got: this.count[k]! };
  }
}

/**
 * `K_WARM + K` sends, one after another, each waited for until every recipient has it; `field`
 * is the key of `data` naming the send. Returns send -> all, send -> first, the call's latency.
 */
async function fanRun(
  name: string,
  recvBuses: Bus[],
  subjectOf: (r: number) => string,
  field: string,
  send: (k: number) => Promise<unknown>,
) {
  const total = K_WARM + K;
  const rec = new FanReceipts(total, RECIPIENTS);
  const subs = Array.from({ length: RECIPIENTS }, (_, r) =>
    recvBuses[r % recvBuses.length]!.nc.subscribe(subjectOf(r), {
      callback: (_err: unknown, msg: Msg) => rec.got(pushedData(msg.data)?.[field], r),
    }),
  );
  await Promise.all(recvBuses.map((b) => b.nc.flush()));
  const toAll: number[] = [];
  const toFirst: number[] = [];
  const callMs: number[] = [];
  let incomplete = 0;
  let sendErrors = 0;
  let firstError: string | null = null;
  let m: ReturnType<typeof meter> | undefined;
  for (let k = 0; k < total; k++) {
    if (k === K_WARM) m = meter();
    const t0 = nowMs();
    const all = rec.all(k, FAN_WAIT_MS);
    try {
      await send(k);
      if (k >= K_WARM) callMs.push(nowMs() - t0);
    } catch (err) {
      sendErrors++;
      firstError ??= errText(err);
      continue;
    }
    const ok = await all;
    if (k < K_WARM) continue;
    const s = rec.span(k);
    if (!ok) incomplete++;
    else toAll.push(s.last - t0);
    if (s.got > 0) toFirst.push(s.first - t0);
  }
  const cpu = await m!(K);
  for (const s of subs) s.unsubscribe();
  const toAllMs = dist(toAll);
  log(
    `${name}: send -> all ${RECIPIENTS}: p50 ${toAllMs.p50.toFixed(2)} p99 ${toAllMs.p99.toFixed(2)} ms, ${incomplete} incomplete (load ${loadAverage().join(' ')})`,
  );
  return {
    sends: K,
    recipients: RECIPIENTS,
    toAllMs,
    toFirstMs: dist(toFirst),
    callMs: dist(callMs),
    incomplete,
    duplicates: rec.duplicates,
    sendErrors,
    firstError,
    ...cpu,
  };
}

async function fanSection(kind: 'broadcast' | 'channel', busA: Bus, recvBuses: Bus[]) {
  const mc = new MessagingClient(busA, { agentId: A, timeoutMs: CALL_TIMEOUT_MS });
  const field = kind === 'broadcast' ? 'bc' : 'ch';
  const natsCore = await fanRun(
    `${kind} nats core`,
    recvBuses,
    () => RAW.fan,
    field,
    async (k) => {
      busA.nc.publish(RAW.fan, pushBytes(fakeMessage(k + 1, kind, { [field]: k })));
      await busA.nc.flush();
    },
  );
  const agentcom = await fanRun(
    `${kind} agentcom`,
    recvBuses,
    (r) => messagePushSubject(recipientId(r)),
    field,
    (k) =>
      mc.send(
        kind === 'broadcast'
          ? { broadcast: true, body: BODY_TEXT, data: { [field]: k } }
          : { channel: CHANNEL, body: BODY_TEXT, data: { [field]: k } },
      ),
  );
  return {
    agentcom,
    natsCore,
    ratios: { agentcomOverNatsCore: ratios(agentcom.toAllMs, natsCore.toAllMs) },
  };
}

// ---------------------------------------------------------------------------------------------
// 4. Catch-up: an offline agent's mailbox of CATCHUP_N messages, read from its cursor

/** `k` lanes each calling `op(i)` back to back until `total` calls are made; throws on any error. */
async function closedLoop(k: number, total: number, op: (i: number) => Promise<unknown>) {
  let next = 0;
  let errors = 0;
  let firstError: string | null = null;
  const t0 = nowMs();
  const lane = async () => {
    while (next < total) {
      const i = next++;
      try {
        await op(i);
      } catch (err) {
        errors++;
        firstError ??= errText(err);
      }
    }
  };
  await Promise.all(Array.from({ length: k }, lane));
  const seconds = (nowMs() - t0) / 1000;
  if (errors) throw new Error(`${errors} of ${total} calls failed (${firstError})`);
  return { seconds, perSec: total / seconds };
}

async function catchUpSection(busA: Bus, busC: Bus, admin: Bus) {
  const sender = new MessagingClient(busA, { agentId: A, timeoutMs: CALL_TIMEOUT_MS });
  const mc = new MessagingClient(busC, { agentId: C, timeoutMs: CALL_TIMEOUT_MS });
  // C's mailbox holds the broadcasts sent so far: acked, so it holds exactly what follows.
  await mc.ack(Number.MAX_SAFE_INTEGER);
  const empty = await mc.inbox({ limit: 1 });
  if (empty.messages.length || empty.more) throw new Error('catch-up: the mailbox is not empty after acking');

  // Fill (C has no connection listening: the hub's pushes to it go nowhere).
  const mFill = meter();
  const fill = await closedLoop(INFLIGHT, CATCHUP_N, (i) =>
    sender.send({ to: C, body: BODY_TEXT, data: { cu: i } }),
  );
  const fillCpu = await mFill(CATCHUP_N);
  log(`catch-up: ${CATCHUP_N} messages sent in ${fill.seconds.toFixed(1)} s (${fill.perSec.toFixed(0)}/s)`);

  // Read from the cursor to the end, acking each page.
  const inboxMs: number[] = [];
  const ackMs: number[] = [];
  let read = 0;
  let lastSeq = 0;
  let outOfOrder = 0;
  let firstSeq = 0;
  const m = meter();
  const t0 = nowMs();
  for (;;) {
    const t1 = nowMs();
    const page = await mc.inbox({ limit: PAGE });
    inboxMs.push(nowMs() - t1);
    for (const msg of page.messages) {
      if (msg.seq <= lastSeq) outOfOrder++;
      lastSeq = msg.seq;
      firstSeq ||= msg.seq;
      read++;
    }
    if (page.messages.length) {
      const t2 = nowMs();
      await mc.ack(lastSeq);
      ackMs.push(nowMs() - t2);
    }
    if (!page.more) break;
    if (inboxMs.length > (CATCHUP_N / PAGE) * 4 + 20)
      throw new Error('catch-up: the mailbox read never ends');
  }
  const seconds = (nowMs() - t0) / 1000;
  const readCpu = await m(CATCHUP_N);
  log(`catch-up agentcom: ${read} read in ${seconds.toFixed(2)} s (${inboxMs.length} pages)`);
  const agentcom = {
    fill: { seconds: fill.seconds, perSec: fill.perSec, inflight: INFLIGHT, ...fillCpu },
    read: {
      messages: read,
      complete: read === CATCHUP_N && outOfOrder === 0,
      outOfOrder,
      seconds,
      msgsPerSec: read / seconds,
      pages: inboxMs.length,
      inboxCallMs: dist(inboxMs),
      ackCallMs: dist(ackMs),
      ...readCpu,
    },
  };

  // The raw baseline: the same number of messages of the stored shape in a file stream.
  await admin.jsm.streams.add({ name: RAW.cuStream, subjects: [RAW.cuSubject], storage: StorageType.File });
  const mRawFill = meter();
  const rawFill = await closedLoop(INFLIGHT, CATCHUP_N, (i) =>
    busA.js.publish(
      RAW.cuSubject,
      encoder.encode(JSON.stringify({ ...fakeMessage(i + 1, 'direct', { cu: i }, C), seq: undefined })),
    ),
  );
  const rawFillCpu = await mRawFill(CATCHUP_N);
  const ci = await busC.jsm.consumers.add(RAW.cuStream, {
    durable_name: 'raw-c',
    ack_policy: AckPolicy.All,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 20_000,
  });
  const consumer = await busC.js.consumers.get(RAW.cuStream, ci.name);
  const fetchMs: number[] = [];
  const rawAckMs: number[] = [];
  let rawRead = 0;
  const mRaw = meter();
  const tr0 = nowMs();
  while (rawRead < CATCHUP_N) {
    const t1 = nowMs();
    const batch = await consumer.fetch({ max_messages: Math.min(PAGE, CATCHUP_N - rawRead), expires: 5_000 });
    let last: JsMsg | undefined;
    let got = 0;
    for await (const jm of batch) {
      JSON.parse(decoder.decode(jm.data));
      last = jm;
      got++;
    }
    fetchMs.push(nowMs() - t1);
    if (!last) throw new Error(`catch-up baseline: a fetch returned nothing after ${rawRead}`);
    rawRead += got;
    const t2 = nowMs();
    await last.ackAck();
    rawAckMs.push(nowMs() - t2);
  }
  const rawSeconds = (nowMs() - tr0) / 1000;
  const rawCpu = await mRaw(CATCHUP_N);
  log(`catch-up jetstream: ${rawRead} read in ${rawSeconds.toFixed(2)} s`);
  const jetstream = {
    fill: { seconds: rawFill.seconds, perSec: rawFill.perSec, inflight: INFLIGHT, ...rawFillCpu },
    read: {
      messages: rawRead,
      seconds: rawSeconds,
      msgsPerSec: rawRead / rawSeconds,
      fetches: fetchMs.length,
      fetchMs: dist(fetchMs),
      ackCallMs: dist(rawAckMs),
      ...rawCpu,
    },
  };

  const pageCost = await pageCostSection(mc, busC, admin, firstSeq);
  return {
    messages: CATCHUP_N,
    page: PAGE,
    agentcom,
    jetstream,
    ratios: {
      readSeconds: ratio(agentcom.read.seconds, jetstream.read.seconds),
      fillSeconds: ratio(agentcom.fill.seconds, jetstream.fill.seconds),
    },
    pageCost,
  };
}

/**
 * One page of the hub's mailbox read (`after` given: the cursor stays) against a JetStream fetch of
 * as many from the catch-up stream by a new ordered consumer (the hub, too, makes a consumer per
 * read), per page size, `PAGE_REPS` times each: the hub's fixed cost per page and per message. Then
 * the smallest page again with C a member of `EXTRA_CHANNELS` more (empty) channels: the hub reads
 * each of an agent's channels for every page.
 */
async function pageCostSection(mc: MessagingClient, busC: Bus, admin: Bus, firstSeq: number) {
  const rawFetch = async (n: number) => {
    const t = nowMs();
    const oc = await busC.js.consumers.get(RAW.cuStream);
    const batch = await oc.fetch({ max_messages: n, expires: 5_000 });
    let got = 0;
    for await (const jm of batch) {
      JSON.parse(decoder.decode(jm.data));
      got++;
    }
    const ms = nowMs() - t;
    if (got !== n) throw new Error(`page cost: a fetch of ${n} returned ${got}`);
    return ms;
  };
  const measure = async (size: number, channels: number) => {
    const hubMs: number[] = [];
    const fetchMs: number[] = [];
    let returned = 0;
    const tr0 = await nats!.traffic().catch(() => null);
    const c0 = cpuSeconds(hub?.pid);
    for (let rep = 0; rep < PAGE_REPS; rep++) {
      const t = nowMs();
      const page = await mc.inbox({ after: firstSeq - 1, limit: size });
      hubMs.push(nowMs() - t);
      returned = page.messages.length;
    }
    const hubCpuMsPerPage = ((cpuSeconds(hub?.pid) - c0) * 1000) / PAGE_REPS;
    const tr1 = await nats!.traffic().catch(() => null);
    // Messages the server received per page read: the request, and the hub's JetStream API calls.
    const natsMsgsInPerPage = tr0 && tr1 ? (tr1.inMsgs - tr0.inMsgs) / PAGE_REPS : null;
    // As many as the hub returned (a page of large messages is cut short to fit one reply).
    for (let rep = 0; rep < PAGE_REPS; rep++) fetchMs.push(await rawFetch(returned));
    const h = dist(hubMs);
    const f = dist(fetchMs);
    return {
      size,
      returned,
      channelsOfReader: channels,
      reps: PAGE_REPS,
      hubInboxMs: h,
      hubCpuMsPerPage,
      natsMsgsInPerPage,
      hubMsPerMessageP50: h.p50 / Math.max(1, returned),
      jetstreamFetchMs: f,
      ratioP50: ratio(h.p50, f.p50),
    };
  };
  const sizes = [...new Set([10, 100, PAGE].filter((s) => s <= Math.min(PAGE, CATCHUP_N)))];
  const out: Record<string, unknown>[] = [];
  for (const size of sizes) out.push(await measure(size, 0));
  if (EXTRA_CHANNELS > 0) {
    const trusted = new MessagingClient(admin, { timeoutMs: CALL_TIMEOUT_MS });
    for (let i = 0; i < EXTRA_CHANNELS; i++) {
      const name = `bench-extra-${i}`;
      await trusted.channelCreate({ name });
      await mc.channelJoin(name);
    }
    out.push(await measure(sizes[0]!, EXTRA_CHANNELS));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<Record<string, unknown>> {
  const tRun = nowMs();
  const out: Record<string, unknown> = {
    bench: 'messaging',
    command: commandLine('bench/messaging.ts', args),
    source: sourceState(),
    machine: await machineInfo(),
    params: {
      quick: QUICK,
      rate: RATE,
      warmupS: WARMUP_S,
      seconds: SECONDS,
      recipients: RECIPIENTS,
      k: K,
      kWarm: K_WARM,
      catchupN: CATCHUP_N,
      page: PAGE,
      pageReps: PAGE_REPS,
      inflight: INFLIGHT,
      agentConns: AGENT_CONNS,
      bodyChars: BODY,
      extraChannels: EXTRA_CHANNELS,
      prefix,
    },
    notes: [
      `Every agent is registered with the hub by a hello (registration, task inbox) and heartbeats as AgentClient does; ${RECIPIENTS + 3} agents in all (sender ${A}, direct recipient ${B}, catch-up reader ${C}, ${RECIPIENTS} fan-out recipients).`,
      `Agent calls go to the agent's own subjects (<p>.api.<op>.<agent id>, MessagingClient with agentId), not trusted 'as' calls: the hub reads the caller from the subject and applies the agent's messaging rate. The server runs without authentication, so the permissions are not exercised; the hub's work is the same.`,
      `${A} is whitelisted (limits overrides: unlimited): ${RATE} sends/s from one agent is over the default rate (200/s, burst 2000).`,
      `Connections: ${A}, ${B} and ${C} each their own (agent inbox prefix); the ${RECIPIENTS} fan-out recipients on ${AGENT_CONNS} connection(s)${AGENT_CONNS === RECIPIENTS ? ' (one each, as real agents)' : ' (shared: subscriptions to _INBOX.<id>.msg, hellos and heartbeats of several agents on one connection)'}. The raw baselines use the same connections.`,
      'A broadcast is pushed to every registered agent but its sender (all of the above), so the hub publishes more pushes per broadcast than there are measured recipients.',
      'Raw baselines carry bytes of the shape the hub pushes ({v, message}) or stores; every receiver, hub path or raw, JSON-parses each message.',
      'Latency and fan-out times are wall-clock differences within this one process (one clock).',
      'CPU: /proc utime+stime of the hub and nats-server processes and of this process over each measured run, per message (direct, catch-up) or per send (fan-out); coresBusy = CPU s / wall s, on a machine whose cores all of them share.',
    ],
  };
  nats = await startNatsServer();
  log(`nats-server on ${nats.url}; starting the hub (prefix ${prefix})`);
  const h = await startHubProcess(nats.url);
  const admin = await bus('bench-admin');
  // The API answers once the hub leads.
  const probe = new MessagingClient(admin, { timeoutMs: 2000 });
  for (let i = 0; ; i++) {
    try {
      await probe.channelList();
      break;
    } catch (err) {
      if (i >= 60) throw new Error(`the hub's messaging API never answered: ${errText(err)}`);
      await sleep(500);
    }
  }
  await (await openLimitsKv(admin)).put(
    LIMITS_KEY,
    LimitsSchema.parse({ v: 1, overrides: { [A]: 'unlimited' } }),
  );

  const busA = await bus(A, A);
  const busB = await bus(B, B);
  const busC = await bus(C, C);
  const recvBuses: Bus[] = [];
  for (let i = 0; i < AGENT_CONNS; i += 10) {
    const batch = Array.from({ length: Math.min(10, AGENT_CONNS - i) }, (_, j) =>
      AGENT_CONNS === RECIPIENTS ? bus(recipientId(i + j), recipientId(i + j)) : bus(`bench-recv-${i + j}`),
    );
    recvBuses.push(...(await Promise.all(batch)));
  }
  const busOf = (r: number) => recvBuses[r % recvBuses.length]!;
  await helloAgent(busA, A);
  await helloAgent(busB, B);
  await helloAgent(busC, C);
  for (let i = 0; i < RECIPIENTS; i += 10)
    await Promise.all(
      Array.from({ length: Math.min(10, RECIPIENTS - i) }, (_, j) =>
        helloAgent(busOf(i + j), recipientId(i + j)),
      ),
    );
  // The channel: A creates it (and is its first member), each recipient joins on its own subject.
  await new MessagingClient(busA, { agentId: A, timeoutMs: CALL_TIMEOUT_MS }).channelCreate({
    name: CHANNEL,
  });
  for (let i = 0; i < RECIPIENTS; i += 10)
    await Promise.all(
      Array.from({ length: Math.min(10, RECIPIENTS - i) }, (_, j) =>
        new MessagingClient(busOf(i + j), {
          agentId: recipientId(i + j),
          timeoutMs: CALL_TIMEOUT_MS,
        }).channelJoin(CHANNEL),
      ),
    );
  // The whitelist is followed: a burst over the default rate is accepted.
  const mcA = new MessagingClient(busA, { agentId: A, timeoutMs: CALL_TIMEOUT_MS });
  for (let i = 0; ; i++) {
    try {
      await closedLoop(64, 2_100, (j) => mcA.send({ to: B, body: 'rate probe', data: { probe: j } }));
      break;
    } catch (err) {
      if (i >= 20) throw new Error(`the hub never applied the whitelist of ${A}: ${errText(err)}`);
      await sleep(500);
    }
  }
  out.startupS = (nowMs() - tRun) / 1000;
  log(
    `${RECIPIENTS + 3} agents registered, #${CHANNEL} has ${RECIPIENTS + 1} members (startup ${(out.startupS as number).toFixed(1)} s)`,
  );

  const timed = async <T extends object>(name: string, f: () => Promise<T>) => {
    const t = nowMs();
    const r = await f();
    log(`${name} done in ${((nowMs() - t) / 1000).toFixed(1)} s (load ${loadAverage().join(' ')})`);
    return { ...r, sectionS: (nowMs() - t) / 1000, loadavgAfter: loadAverage() };
  };
  out.direct = await timed('direct', () => directSection(busA, busB));
  out.broadcast = await timed('broadcast', () => fanSection('broadcast', busA, recvBuses));
  out.channelFanOut = await timed('channel', () => fanSection('channel', busA, recvBuses));
  out.catchUp = await timed('catch-up', () => catchUpSection(busA, busC, admin));
  out.hub = { alive: !exited(h), log: hubLog };
  out.runS = (nowMs() - tRun) / 1000;
  (out.machine as Record<string, unknown>).loadavgEnd = loadAverage();
  return out;
}

await runBench({ main, cleanup, timeoutS: TIMEOUT_S, log });
