import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { submitTask } from '../src/agent/submit.js';
import { doneCount, startStack, waitMsg } from './hub-stack.js';
import {
  addConcurrently,
  cpuMsPerTask,
  Deadline,
  LATENCY_DEFAULTS,
  latencySummary,
  median,
  nowMs,
  offeredCount,
  offerLoad,
  payload,
  resolveLatency,
  sleep,
} from './peers/common.js';
import { trafficPerTask } from './peers/nats.js';
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

async function e2e(rep: number) {
  const stack = await startStack(`bench${rep}e`, { c: C, retentionCount: N });
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
  const stack = await startStack(`bench${rep}l`, { c: C, retentionCount: N });
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
    // The headline: BullMQ on a Redis as durable as JetStream's file store (AOF, fsync every second).
    throughputVsBullmqAof: ratio(hub.e2e.tasksPerSec, peers.bullmqAof?.e2e?.tasksPerSec),
    throughputVsBullmq: ratio(hub.e2e.tasksPerSec, peers.bullmq?.e2e?.tasksPerSec),
    throughputVsJetstream: ratio(hub.e2e.tasksPerSec, peers.jetstream?.e2e?.tasksPerSec),
    throughputVsJetstreamPipeline: ratio(hub.e2e.tasksPerSec, peers.jetstreamPipeline?.e2e?.tasksPerSec),
    throughputVsJetstreamMinimal: ratio(hub.e2e.tasksPerSec, peers.jetstreamMinimal?.e2e?.tasksPerSec),
    p50VsBullmqAof: ratio(hub.latency.p50, peers.bullmqAof?.latency?.p50),
    p99VsBullmqAof: ratio(hub.latency.p99, peers.bullmqAof?.latency?.p99),
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
