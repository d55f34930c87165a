/**
 * What live inspection costs the hub (docs/protocol.md §11e), off and on in one run: the hub's
 * end-to-end task flow of bench/hub.ts (same stack: nats-server, the hub as its own process, `c`
 * agents in one process, this producer), phases of `n` tasks alternating inspection off (no
 * listen: nothing attached) and on (a listener asking for `agent.*` and `hub.*`: every AgentFSM
 * and the supervision tree publish every event), after an unmeasured warm-up. Each phase reports
 * tasks/s and the hub's CPU ms per task; the result gives their medians and on/off ratios, the
 * inspection events per task while on, and the events seen while off (0: off is really off).
 *   npx tsx bench/inspect.ts [--n 3000] [--c 10] [--rounds 3] [--warmup 3000]   (npm run bench:inspect)
 */
import { cpus, loadavg } from 'node:os';
import { submitTask } from '../src/agent/submit.js';
import { InspectListenSchema } from '../src/protocol/inspect.js';
import { type Stack, startStack, waitDone } from './hub-stack.js';
import { addConcurrently, benchFlags, median, nowMs, payload, runBench, sleep } from './peers/common.js';

const flags = benchFlags();
const N = flags.number('n', 3_000, 1_000);
const C = flags.number('c', 10);
const ROUNDS = flags.number('rounds', 3, 1);
const WARMUP = flags.number('warmup', 3_000, 500);
const BASELINE = flags.text('baseline');
/** Short, so that a phase after "on" starts soon after the listen has run out. */
const TTL_MS = 3_000;
const log = (line: string) => process.stderr.write(`${line}\n`);
const load = () => loadavg().map((x) => Number(x.toFixed(2)));

interface Phase {
  inspection: 'off' | 'on' | 'before';
  tasksPerSec: number;
  /** CPU ms per task of each process: hub, agents, nats, producer (this process). */
  cpuMsPerTask: Record<string, number>;
  /** Inspection messages received during the phase, per task. */
  eventsPerTask: number;
}

const LISTEN = InspectListenSchema.parse({
  v: 1,
  listener: 'bench',
  targets: ['agent.*', 'hub.*'],
  ttlMs: TTL_MS,
});

const stacks = new Set<Stack>();

/** A stack (its hub from `checkout`, default this one), warmed up, and its phases. */
async function open(checkout?: string) {
  const prefix = `benchinsp${process.pid}x${stacks.size}`;
  const s = await startStack(prefix, {
    c: C,
    retentionCount: WARMUP + 2 * ROUNDS * N,
    ...(checkout ? { hubCheckout: checkout } : {}),
  });
  stacks.add(s);
  const bus = s.bus;
  const seen = { events: 0, bytes: 0 };
  bus.nc.subscribe(bus.names.subjects.inspectAll, {
    callback: (_e, m) => {
      seen.events++;
      seen.bytes += m.data.length;
    },
  });
  await bus.nc.flush();
  let done = 0;
  let k = 0;
  const runTasks = async (n: number) => {
    await addConcurrently(n, () => {
      const i = k++;
      return submitTask(bus, { title: `i${i}`, metadata: { p: payload(i).pad } });
    });
    done += n;
    await waitDone(s, done);
  };
  log(`[inspect] ${checkout ?? 'this hub'}: warm-up of ${WARMUP} tasks`);
  await runTasks(WARMUP);

  const say = () => bus.nc.publish(bus.names.subjects.inspecting, JSON.stringify(LISTEN));
  let lastListenAt = 0;
  const phase = async (inspection: Phase['inspection']): Promise<Phase> => {
    let repeat: NodeJS.Timeout | undefined;
    if (inspection === 'on') {
      const before = seen.events;
      say();
      lastListenAt = Date.now();
      repeat = setInterval(() => {
        say();
        lastListenAt = Date.now();
      }, TTL_MS / 3);
      // Attached once the hub's tree (announced at attach) starts arriving.
      while (seen.events === before) await sleep(20);
    }
    const cpu0 = s.cpu();
    const events0 = seen.events;
    const t0 = nowMs();
    await runTasks(N);
    const seconds = (nowMs() - t0) / 1000;
    const cpu1 = s.cpu();
    const eventsPerTask = (seen.events - events0) / N;
    if (repeat) {
      clearInterval(repeat);
      // The listen holds TTL_MS after it was last sent; the next phase starts once it has run out.
      while (Date.now() < lastListenAt + TTL_MS + 500) await sleep(100);
    }
    const cpuMsPerTask: Record<string, number> = {};
    for (const key of Object.keys(cpu0)) cpuMsPerTask[key] = ((cpu1[key]! - cpu0[key]!) * 1000) / N;
    const p: Phase = { inspection, tasksPerSec: N / seconds, cpuMsPerTask, eventsPerTask };
    log(
      `[inspect] ${inspection.padEnd(6)} ${p.tasksPerSec.toFixed(0)} tasks/s, hub ${(cpuMsPerTask.hub! * 1000).toFixed(0)} µs CPU/task, ${eventsPerTask.toFixed(1)} events/task`,
    );
    return p;
  };
  const close = async () => {
    stacks.delete(s);
    await s.stop();
  };
  return { phase, close, seen };
}

const med = (ps: Phase[]) => ({
  tasksPerSec: median(ps.map((p) => p.tasksPerSec)),
  hubCpuMsPerTask: median(ps.map((p) => p.cpuMsPerTask.hub!)),
  eventsPerTask: median(ps.map((p) => p.eventsPerTask)),
});

const machine = () => ({ nproc: cpus().length, cpu: cpus()[0]?.model, node: process.version });

/** Off and on, alternating, on one stack. */
async function offAndOn() {
  const s = await open();
  const off: Phase[] = [];
  const on: Phase[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    off.push(await s.phase('off'));
    on.push(await s.phase('on'));
  }
  await s.close();
  const mOff = med(off);
  const mOn = med(on);
  return {
    ...machine(),
    config: { n: N, c: C, rounds: ROUNDS, warmup: WARMUP, listenTtlMs: TTL_MS, targets: LISTEN.targets },
    off: { ...mOff, runs: off },
    on: { ...mOn, runs: on, bytesPerEvent: s.seen.events ? s.seen.bytes / s.seen.events : 0 },
    ratios: {
      tasksPerSecOnVsOff: mOn.tasksPerSec / mOff.tasksPerSec,
      hubCpuPerTaskOnVsOff: mOn.hubCpuMsPerTask / mOff.hubCpuMsPerTask,
    },
    // Off really is off: no inspection message while no listen held.
    eventsWhileOff: off.reduce((a, p) => a + p.eventsPerTask * N, 0),
    loadavgEnd: load(),
  };
}

/** Off against the hub of `checkout` (no inspection at all), fresh stacks in ABBA order. */
async function offAgainst(checkout: string) {
  const before: Phase[] = [];
  const off: Phase[] = [];
  const one = async (which: 'before' | 'off') => {
    const s = await open(which === 'before' ? checkout : undefined);
    try {
      (which === 'before' ? before : off).push(await s.phase(which));
    } finally {
      await s.close();
    }
  };
  for (let r = 0; r < ROUNDS; r++) {
    const order: ('before' | 'off')[] = r % 2 === 0 ? ['before', 'off'] : ['off', 'before'];
    for (const which of order) await one(which);
  }
  const mBefore = med(before);
  const mOff = med(off);
  return {
    ...machine(),
    config: { n: N, c: C, rounds: ROUNDS, warmup: WARMUP, baseline: checkout },
    before: { ...mBefore, runs: before },
    off: { ...mOff, runs: off },
    ratios: {
      tasksPerSecOffVsBefore: mOff.tasksPerSec / mBefore.tasksPerSec,
      hubCpuPerTaskOffVsBefore: mOff.hubCpuMsPerTask / mBefore.hubCpuMsPerTask,
    },
    eventsWhileOff: off.reduce((a, p) => a + p.eventsPerTask * N, 0),
    loadavgEnd: load(),
  };
}

await runBench({
  main: () => (BASELINE ? offAgainst(BASELINE) : offAndOn()),
  cleanup: async () => {
    for (const s of stacks) await s.stop();
  },
  timeoutS: BASELINE ? 300 + ROUNDS * 240 : 300,
  log,
});
