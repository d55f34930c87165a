/**
 * End-to-end hub benchmark, printed as JSON beside the peers measured in the same run with the same
 * shapes (bench/peers): BullMQ, raw JetStream (one store per task) and the JetStream pipeline (the
 * hub's five durable stores per task done with the bare client and no hub logic: the ceiling of
 * this design on this machine):
 *   e2e      N tasks submitted (100 publishes in flight) while `c` agents (slots 1 each) work;
 *            clock stops when the hub reports all N `done` (every transition durable: submit,
 *            record created, assigned, delivered, accepted, completed, record done; the handler
 *            completes at once, so the SDK reports `completed` alone, which implies `accepted`).
 *   latency  single submits at `rate`/s for `warmup` s (not measured: fresh processes run cold, see
 *            LATENCY_DEFAULTS), then for `duration` s; submit (just before publish) -> agent handler
 *            start, across processes on one host. The peers offer the same warm-up
 *            (bench/peers/common.ts offerLoad).
 * Processes: nats-server, the hub (`agentcom hub`), one agents process, and this producer. Each e2e
 *            run also reports CPU ms per task of each process (/proc utime + stime), a figure
 *            far less sensitive than tasks/s to other load on a shared machine.
 *   npx tsx bench/hub.ts [--n 20000] [--c 10] [--rate 1000] [--duration 10] [--warmup 3] [--reps 1] [--no-peers] [--no-e2e]
 *     [--no-latency]
 * With HUB_PROF=1 the hub and agents processes write V8 CPU profiles to /tmp/prof and
 * /tmp/prof-agents (`node --cpu-prof`); that is how the hub's hot spots in the README were found.
 * With LATENCY_DUMP=<path> each latency run also writes its samples to <path>.<rep>.json.
 * HUB_NODE_ARGS='<node flags>' are passed to the hub process (e.g. `--trace-gc`), and HUB_LOG=<path>
 * keeps its stdout (logs, GC traces) in <path>.<run prefix> instead of discarding it.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { submitTask } from '../src/agent/submit.js';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { request } from '../src/bus/service.js';
import { TaskStatsReplySchema } from '../src/protocol/api.js';
import {
  addConcurrently,
  cpuMsPerTask,
  cpuSeconds,
  Deadline,
  LATENCY_DEFAULTS,
  latencySummary,
  median,
  nowMs,
  offeredCount,
  offerLoad,
  ownCpuSeconds,
  payload,
  resolveLatency,
  sleep,
} from './peers/common.js';
import { type NatsTraffic, startNatsServer, trafficPerTask } from './peers/nats.js';
import { runPeerSuite } from './peers/suite.js';

const args = process.argv.slice(2);
const flag = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const N = flag('n', 20_000);
const C = flag('c', 10);
const RATE = flag('rate', LATENCY_DEFAULTS.rate);
const DURATION = flag('duration', LATENCY_DEFAULTS.durationS);
const WARMUP = flag('warmup', LATENCY_DEFAULTS.warmupS);
const REPS = flag('reps', 1);
const PEERS = !args.includes('--no-peers');
const E2E = !args.includes('--no-e2e');
const LATENCY = !args.includes('--no-latency');
const log = (line: string) => process.stderr.write(`${line}\n`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

interface Stack {
  /** CPU seconds (user + system) used so far by each process of the stack. */
  cpu(): Record<string, number>;
  /** The nats-server's message and byte counters so far. */
  traffic(): Promise<NatsTraffic>;
  bus: Bus;
  agents: ChildProcess;
  hub: ChildProcess;
  stop(): Promise<void>;
}

async function startStack(prefix: string): Promise<Stack> {
  const nats = await startNatsServer();
  const hub = spawn(
    process.execPath,
    [
      ...(process.env.HUB_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []),
      ...(process.env.HUB_NODE_ARGS ? process.env.HUB_NODE_ARGS.split(' ') : []),
      '--import',
      'tsx',
      here('../src/cli/main.ts'),
      'hub',
      '--nats-url',
      nats.url,
      '--prefix',
      prefix,
      '--log-level',
      'info',
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        AGENTCOM_ACCEPT_TIMEOUT_MS: '60000',
        // Every finished task stays counted until the run has seen them all done.
        AGENTCOM_RETENTION_COUNT: String(Math.max(N, 1_000_000)),
      },
    },
  );
  await new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: hub.stdout! });
    rl.on('line', (l) => {
      if (l.includes('"hub started"')) resolve();
    });
    hub.once('exit', (code) => reject(new Error(`hub exited ${code}`)));
  });
  if (process.env.HUB_LOG) hub.stdout!.pipe(createWriteStream(`${process.env.HUB_LOG}.${prefix}`));
  else hub.stdout!.resume();
  const agents = fork(here('./hub-agents.ts'), [nats.url, prefix, String(C)], {
    execArgv: [
      ...(process.env.HUB_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof-agents'] : []),
      '--import',
      'tsx',
    ],
  });
  await waitMsg(agents, 'ready');
  const bus = await connectBus({ servers: nats.url, prefix, logger: pino({ level: 'warn' }) });
  return {
    cpu: () => ({
      hub: cpuSeconds(hub.pid),
      agents: cpuSeconds(agents.pid),
      nats: cpuSeconds(nats.pid),
      producer: ownCpuSeconds(),
    }),
    traffic: () => nats.traffic(),
    bus,
    agents,
    hub,
    async stop() {
      agents.send({ type: 'close' });
      await new Promise((r) => agents.once('exit', r));
      await bus.drain();
      hub.kill('SIGTERM');
      await new Promise((r) => hub.once('exit', r));
      await nats.stop();
    },
  };
}

function waitMsg<T = Record<string, unknown>>(p: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { type: string }) => {
      if (m.type === type) {
        p.off('message', on);
        resolve(m as T);
      }
    };
    p.on('message', on);
  });
}

async function doneCount(bus: Bus): Promise<number> {
  const s = await request(bus, 'task.stats', { v: 1 }, TaskStatsReplySchema, { timeoutMs: 10_000 });
  return s.byStatus.done ?? 0;
}

async function e2e(rep: number) {
  const stack = await startStack(`bench${rep}e`);
  try {
    const cpu0 = stack.cpu();
    const traffic0 = await stack.traffic();
    const t0 = nowMs();
    await addConcurrently(N, (k) =>
      submitTask(stack.bus, { title: `t${k}`, metadata: { p: payload(k).pad } }),
    );
    const addSeconds = (nowMs() - t0) / 1000;
    while ((await doneCount(stack.bus)) < N) await sleep(50);
    const seconds = (nowMs() - t0) / 1000;
    return {
      n: N,
      c: C,
      seconds,
      addSeconds,
      tasksPerSec: N / seconds,
      cpuMsPerTask: cpuMsPerTask(cpu0, stack.cpu(), N),
      natsPerTask: trafficPerTask(traffic0, await stack.traffic(), N),
    };
  } finally {
    await stack.stop();
  }
}

async function latency(rep: number) {
  const o = resolveLatency({ rate: RATE, durationS: DURATION, c: C, warmupS: WARMUP });
  const dl = new Deadline(o.timeoutMs, `hub latency rate=${o.rate}`);
  const stack = await startStack(`bench${rep}l`);
  try {
    await sleep(500);
    const cpu0 = stack.cpu();
    const traffic0 = await stack.traffic();
    const { addCalls, achievedRate } = await offerLoad(
      o,
      (k, tAdd) => submitTask(stack.bus, { title: `l${k}`, metadata: { tAdd, p: payload(k).pad } }),
      dl,
    );
    const { total } = offeredCount(o);
    while ((await doneCount(stack.bus)) < total) await sleep(50);
    stack.agents.send({ type: 'samples' });
    const { starts } = await waitMsg<{ starts: number[] }>(stack.agents, 'samples');
    if (process.env.LATENCY_DUMP) {
      // Every sample as [submitted at, ms to handler start], in submit order: for finding what the
      // slow ones have in common (a time, a period) rather than only how many there are.
      const pairs: [number, number][] = [];
      for (let i = 0; i + 1 < starts.length; i += 2) pairs.push([starts[i]!, starts[i + 1]! - starts[i]!]);
      pairs.sort((a, b) => a[0] - b[0]);
      writeFileSync(`${process.env.LATENCY_DUMP}.${rep}.json`, JSON.stringify(pairs));
    }
    return {
      ...latencySummary(o, starts, addCalls, achievedRate),
      cpuMsPerTask: cpuMsPerTask(cpu0, stack.cpu(), total),
      natsPerTask: trafficPerTask(traffic0, await stack.traffic(), total),
    };
  } finally {
    await stack.stop();
  }
}

const load = () => loadavg().map((x) => Number(x.toFixed(2)));
const out: Record<string, unknown> = {
  nproc: cpus().length,
  cpu: cpus()[0]?.model,
  node: process.version,
  config: { n: N, c: C, rate: RATE, durationS: DURATION, warmupS: WARMUP, reps: REPS },
  loadavgStart: load(),
};
const e2eRuns = [];
const latRuns = [];
for (let rep = 1; rep <= REPS; rep++) {
  if (E2E) {
    const e = await e2e(rep);
    const cpu = Object.entries(e.cpuMsPerTask)
      .map(([k, v]) => `${k} ${(v * 1000).toFixed(0)}`)
      .join(' ');
    log(`[hub] rep ${rep} e2e ${e.tasksPerSec.toFixed(0)} tasks/s (CPU µs/task: ${cpu}; load ${load()[0]})`);
    e2eRuns.push(e);
  }
  if (LATENCY) {
    const l = await latency(rep);
    log(`[hub] rep ${rep} latency p50 ${l.p50.toFixed(2)} p99 ${l.p99.toFixed(2)} ms`);
    latRuns.push(l);
  }
}
const hub = {
  e2e: { tasksPerSec: median(e2eRuns.map((r) => r.tasksPerSec)), runs: e2eRuns },
  latency: {
    p50: median(latRuns.map((r) => r.p50)),
    p90: median(latRuns.map((r) => r.p90)),
    p99: median(latRuns.map((r) => r.p99)),
    achievedRate: median(latRuns.map((r) => r.achievedRate)),
    runs: latRuns,
  },
};
out.agentcom = hub;
if (PEERS) {
  const peers = await runPeerSuite({
    reps: REPS,
    e2e: E2E ? { n: N, c: C } : false,
    latency: LATENCY ? { rate: RATE, durationS: DURATION, c: C, warmupS: WARMUP } : false,
    log,
  });
  out.peers = peers;
  const ratio = (a: number | undefined, b: number | undefined) =>
    a && b ? Number((a / b).toFixed(2)) : null;
  out.ratios = {
    throughputVsBullmq: ratio(hub.e2e.tasksPerSec, peers.bullmq?.e2e?.tasksPerSec),
    throughputVsJetstream: ratio(hub.e2e.tasksPerSec, peers.jetstream?.e2e?.tasksPerSec),
    throughputVsJetstreamPipeline: ratio(hub.e2e.tasksPerSec, peers.jetstreamPipeline?.e2e?.tasksPerSec),
    throughputVsJetstreamMinimal: ratio(hub.e2e.tasksPerSec, peers.jetstreamMinimal?.e2e?.tasksPerSec),
    p50VsBullmq: ratio(hub.latency.p50, peers.bullmq?.latency?.p50),
    p99VsBullmq: ratio(hub.latency.p99, peers.bullmq?.latency?.p99),
  };
}
out.loadavgEnd = load();
console.log(
  JSON.stringify(
    out,
    (_k, v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(3)) : v),
    2,
  ),
);
process.exit(0);
