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
import { doneCount, type Stack, startStack } from './hub-stack.js';
import { addConcurrently, benchFlags, median, nowMs, payload, runBench, sleep } from './peers/common.js';

const flags = benchFlags();
const N = flags.number('n', 3_000, 1_000);
const C = flags.number('c', 10);
const ROUNDS = flags.number('rounds', 3, 1);
const WARMUP = flags.number('warmup', 3_000, 500);
/** Short, so that a phase after "on" starts soon after the listen has run out. */
const TTL_MS = 3_000;
const log = (line: string) => process.stderr.write(`${line}\n`);
const load = () => loadavg().map((x) => Number(x.toFixed(2)));

interface Phase {
  inspection: 'off' | 'on';
  tasksPerSec: number;
  /** CPU ms per task of each process: hub, agents, nats, producer (this process). */
  cpuMsPerTask: Record<string, number>;
  /** Inspection messages received during the phase, per task. */
  eventsPerTask: number;
}

let stack: Stack | undefined;

async function main() {
  const prefix = `benchinsp${process.pid}`;
  stack = await startStack(prefix, { c: C, retentionCount: WARMUP + 2 * ROUNDS * N });
  const s = stack;
  const bus = s.bus;
  let events = 0;
  let bytes = 0;
  bus.nc.subscribe(bus.names.subjects.inspectAll, {
    callback: (_e, m) => {
      events++;
      bytes += m.data.length;
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
    while ((await doneCount(bus)) < done) await sleep(50);
  };

  log(`[inspect] warm-up: ${WARMUP} tasks`);
  await runTasks(WARMUP);

  const listen = InspectListenSchema.parse({
    v: 1,
    listener: 'bench',
    targets: ['agent.*', 'hub.*'],
    ttlMs: TTL_MS,
  });
  const say = () => bus.nc.publish(bus.names.subjects.inspecting, JSON.stringify(listen));
  let repeat: NodeJS.Timeout | undefined;
  let lastListenAt = 0;

  const phase = async (inspection: 'off' | 'on'): Promise<Phase> => {
    if (inspection === 'on') {
      const before = events;
      say();
      lastListenAt = Date.now();
      repeat = setInterval(() => {
        say();
        lastListenAt = Date.now();
      }, TTL_MS / 3);
      // Attached once the hub's tree (announced at attach) starts arriving.
      while (events === before) await sleep(20);
    }
    const cpu0 = s.cpu();
    const events0 = events;
    const t0 = nowMs();
    await runTasks(N);
    const seconds = (nowMs() - t0) / 1000;
    const cpu1 = s.cpu();
    const eventsPerTask = (events - events0) / N;
    if (inspection === 'on') {
      clearInterval(repeat);
      // The listen holds TTL_MS after it was last sent; the next phase starts once it has run out.
      while (Date.now() < lastListenAt + TTL_MS + 500) await sleep(100);
    }
    const cpuMsPerTask: Record<string, number> = {};
    for (const key of Object.keys(cpu0)) cpuMsPerTask[key] = ((cpu1[key]! - cpu0[key]!) * 1000) / N;
    const p: Phase = { inspection, tasksPerSec: N / seconds, cpuMsPerTask, eventsPerTask };
    log(
      `[inspect] ${inspection.padEnd(3)} ${p.tasksPerSec.toFixed(0)} tasks/s, hub ${(cpuMsPerTask.hub! * 1000).toFixed(0)} µs CPU/task, ${eventsPerTask.toFixed(1)} events/task`,
    );
    return p;
  };

  const off: Phase[] = [];
  const on: Phase[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    off.push(await phase('off'));
    on.push(await phase('on'));
  }
  const med = (ps: Phase[]) => ({
    tasksPerSec: median(ps.map((p) => p.tasksPerSec)),
    hubCpuMsPerTask: median(ps.map((p) => p.cpuMsPerTask.hub!)),
    eventsPerTask: median(ps.map((p) => p.eventsPerTask)),
  });
  const mOff = med(off);
  const mOn = med(on);
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model,
    node: process.version,
    config: { n: N, c: C, rounds: ROUNDS, warmup: WARMUP, listenTtlMs: TTL_MS, targets: listen.targets },
    off: { ...mOff, runs: off },
    on: { ...mOn, runs: on, bytesPerEvent: events ? bytes / events : 0 },
    ratios: {
      tasksPerSecOnVsOff: mOn.tasksPerSec / mOff.tasksPerSec,
      hubCpuPerTaskOnVsOff: mOn.hubCpuMsPerTask / mOff.hubCpuMsPerTask,
    },
    // Off really is off: no inspection message while no listen held.
    eventsWhileOff: off.reduce((a, p) => a + p.eventsPerTask * N, 0),
    loadavgEnd: load(),
  };
}

await runBench({
  main,
  cleanup: async () => {
    await stack?.stop();
  },
  timeoutS: 300,
  log,
});
