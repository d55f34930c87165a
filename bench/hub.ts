/**
 * The hub end to end (npm run bench), beside its peers. Stack (bench/hub-stack.ts): a private
 * nats-server, the hub as its own process, `c` agents of 1 slot in one process, this producer.
 * - e2e: `n` tasks submitted `addConcurrently`, timed until the hub counts them all `done`:
 *   tasks/s, CPU ms per task of each process (hub, agents, nats, producer), and messages and bytes
 *   into and out of nats-server per task (its `/varz` counters).
 * - latency: an offered load of `rate` tasks/s for `duration` s after `warmup` s, submit → handler
 *   start percentiles, CPU and traffic per task.
 * - peers (bench/peers/suite.ts): the same shapes on BullMQ and raw JetStream, and the ratios.
 * - `--cluster`: the e2e phase also on a 3-node nats-server cluster (test/support/nats-cluster.ts,
 *   the deploy/nats/cluster configs) with three replicas of every stream and bucket
 *   (AGENTCOM_REPLICAS=3; every process gets every node's URL), alternating with the single node
 *   in each rep (single, cluster, single, cluster for `--reps 2`). The JSON's `cluster` section
 *   gives both sides' medians (tasks/s, CPU ms per task, nats-server traffic per task: on the
 *   cluster `nats` is the sum of the three nodes, each node also listed as `nats.n1`..., and the
 *   traffic is the nodes' counters summed, so it includes replication between them) and the
 *   cluster ÷ single ratios (median of the per-rep ratios). Without it the output is unchanged.
 *   npx tsx bench/hub.ts [--n 20000] [--c 10] [--reps 1] [--rate 1000] [--duration 10] [--warmup 3]
 *     [--no-e2e] [--no-latency] [--no-peers] [--cluster]
 * Prints one JSON document on stdout; progress on stderr. HUB_LOG=<path> keeps each hub's log in
 * <path>.<prefix>; HUB_PROF and HUB_NODE_ARGS as bench/hub-stack.ts reads them.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { submitTask } from '../src/agent/submit.js';
import { startStack, waitDone, waitMsg } from './hub-stack.js';
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
const CLUSTER = args.includes('--cluster');
const log = (line: string) => process.stderr.write(`${line}\n`);

async function e2e(rep: number, cluster = false) {
  const stack = await startStack(`bench${rep}${cluster ? 'c' : 'e'}`, { c: C, retentionCount: N, cluster });
  try {
    const cpu0 = stack.cpu();
    const traffic0 = await stack.traffic();
    const t0 = nowMs();
    await addConcurrently(N, (k) =>
      submitTask(stack.bus, { title: `t${k}`, metadata: { p: payload(k).pad } }),
    );
    const addSeconds = (nowMs() - t0) / 1000;
    await waitDone(stack, N);
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
    await waitDone(stack, total);
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

/**
 * Single node against the 3-node R3 cluster: each side's medians (the single node's runs are
 * `agentcom.e2e.runs`), and cluster ÷ single as the median of the per-rep ratios (the runs of a rep
 * ran one after the other).
 */
function clusterSection(single: E2e[], cluster: E2e[]) {
  const medians = (rs: Record<string, number>[]) =>
    Object.fromEntries(Object.keys(rs[0] ?? {}).map((k) => [k, median(rs.map((r) => r[k]!))]));
  const side = (rs: E2e[]) => ({
    tasksPerSec: median(rs.map((r) => r.tasksPerSec)),
    cpuMsPerTask: medians(rs.map((r) => r.cpuMsPerTask)),
    natsPerTask: medians(rs.map((r) => ({ ...r.natsPerTask }))),
  });
  const pairs = single.map((s, i) => [s, cluster[i]!] as const);
  const ratio = (f: (r: E2e) => number | undefined) =>
    median(pairs.map(([s, c]) => (f(c) ?? Number.NaN) / (f(s) ?? Number.NaN)));
  return {
    nodes: 3,
    replicas: 3,
    single: side(single),
    cluster: { ...side(cluster), runs: cluster },
    ratio: {
      tasksPerSec: ratio((r) => r.tasksPerSec),
      perRep: pairs.map(([s, c]) => c.tasksPerSec / s.tasksPerSec),
      cpuMsPerTask: Object.fromEntries(
        ['hub', 'nats', 'agents', 'producer'].map((k) => [k, ratio((r) => r.cpuMsPerTask[k])]),
      ),
      natsPerTask: {
        inMsgs: ratio((r) => r.natsPerTask.inMsgs),
        inBytes: ratio((r) => r.natsPerTask.inBytes),
      },
    },
  };
}

const load = () => loadavg().map((x) => Number(x.toFixed(2)));
const out: Record<string, unknown> = {
  nproc: cpus().length,
  cpu: cpus()[0]?.model,
  node: process.version,
  config: { n: N, c: C, rate: RATE, durationS: DURATION, warmupS: WARMUP, reps: REPS },
  loadavgStart: load(),
};
type E2e = Awaited<ReturnType<typeof e2e>>;
const e2eRuns: E2e[] = [];
const clusterRuns: E2e[] = [];
const logE2e = (rep: number, what: string, e: E2e) => {
  const cpu = Object.entries(e.cpuMsPerTask)
    .map(([k, v]) => `${k} ${(v * 1000).toFixed(0)}`)
    .join(' ');
  log(
    `[hub] rep ${rep} ${what} ${e.tasksPerSec.toFixed(0)} tasks/s (CPU µs/task: ${cpu}; load ${load()[0]})`,
  );
};
const latRuns = [];
for (let rep = 1; rep <= REPS; rep++) {
  if (E2E || CLUSTER) {
    const e = await e2e(rep);
    logE2e(rep, 'e2e', e);
    e2eRuns.push(e);
  }
  if (CLUSTER) {
    const e = await e2e(rep, true);
    logE2e(rep, 'e2e cluster', e);
    clusterRuns.push(e);
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
if (CLUSTER) out.cluster = clusterSection(e2eRuns, clusterRuns);
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
    throughputVsJetstreamLog: ratio(hub.e2e.tasksPerSec, peers.jetstreamLog?.e2e?.tasksPerSec),
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
