/**
 * Failover benchmark: how long a deployment with a standby hub is without a scheduler when its
 * leading hub is SIGKILLed, and whether the lease ever moves while the leader is alive and busy.
 *   kills   two hubs (`agentcom hub`, default settings), `--agents` SDK agents in one process, and a
 *           producer submitting a task every 20 ms. The leader is SIGKILLed `--kills` times; after
 *           each kill the bench records kill -> lease held by the standby (the lease bucket's watch)
 *           and kill -> first new assignment (an `assign` for a (task, generation) never seen before,
 *           read from a core subscription on every inbox subject, after the lease changed hands).
 *           The killed hub is then started again as the new standby, and the next kill waits one
 *           heartbeat interval, so that it has heard every agent (as a standby that has been up a
 *           while has).
 *   load    the same two hubs under full end-to-end load (`--load-tasks` tasks, 100 publishes in
 *           flight, `--agents` agents of one slot): counts lease changes while the leader is alive.
 *   npx tsx bench/failover.ts [--kills 10] [--agents 6] [--load-tasks 20000] [--preload 0] [--no-load] [--no-kills]
 * `--preload N` first runs N tasks to the end, so every takeover has N finished records to load.
 * Prints one JSON object (figures in ms) on stdout; progress on stderr. With FAILOVER_LOG=<path> each
 * hub's log lines are appended to <path>.<hub id>.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { LEASE_KEY } from '../actors/leader/index.js';
import { submitTask } from '../src/agent/submit.js';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { openKv } from '../src/bus/kv.js';
import { request } from '../src/bus/service.js';
import { TaskStatsReplySchema } from '../src/protocol/api.js';
import { LeaseSchema } from '../src/protocol/registration.js';
import { type Hub, hubProcess, waitFor } from './hub-process.js';
import { addConcurrently, nowMs, percentile, sleep } from './peers/common.js';
import { type NatsServer, startNatsServer } from './peers/nats.js';

const args = process.argv.slice(2);
const flag = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const KILLS = flag('kills', 10);
const AGENTS = flag('agents', 6);
const LOAD_TASKS = flag('load-tasks', 20_000);
const HEARTBEAT_MS = Number(process.env.AGENTCOM_HEARTBEAT_INTERVAL_MS ?? 5_000);
const PRELOAD = flag('preload', 0);
const log = (line: string) => process.stderr.write(`${line}\n`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

interface Stack {
  nats: NatsServer;
  bus: Bus;
  hubs: Hub[];
  agents: ChildProcess;
  /** Lease holder changes seen so far: [time, holder]. */
  leaseChanges: [number, string | null][];
  holder(): string | null;
  /** First assign of a (task, generation) never seen before, received at or after `since`. */
  firstNewAssignAfter(since: number): number | undefined;
  stop(): Promise<void>;
}

async function startStack(prefix: string): Promise<Stack> {
  const nats = await startNatsServer();
  const hub = (id: string) =>
    hubProcess({ natsUrl: nats.url, prefix, id, logPath: process.env.FAILOVER_LOG });
  const hubs = [hub('hub-a'), hub('hub-b')];
  await hubs[0]!.start();
  await hubs[1]!.start();
  const agents = fork(here('./hub-agents.ts'), [nats.url, prefix, String(AGENTS)], {
    execArgv: ['--import', 'tsx'],
  });
  await new Promise<void>((resolve) =>
    agents.on('message', (m: { type: string }) => m.type === 'ready' && resolve()),
  );
  const bus = await connectBus({ servers: nats.url, prefix, logger: pino({ level: 'warn' }) });

  const leaseChanges: [number, string | null][] = [];
  let holder: string | null = null;
  const leases = await openKv(bus, bus.names.buckets.leases, LeaseSchema);
  const watch = await leases.watch({ key: LEASE_KEY });
  void (async () => {
    for await (const e of watch) {
      const next = e.value?.holder ?? null;
      if (next !== holder) {
        holder = next;
        leaseChanges.push([nowMs(), next]);
      }
    }
  })().catch(() => {});

  const seen = new Set<string>();
  const newAssigns: number[] = [];
  const sub = bus.nc.subscribe(bus.names.subjects.agentAll('inbox'), {
    callback: (_err, m) => {
      try {
        const msg = JSON.parse(new TextDecoder().decode(m.data)) as {
          type: string;
          taskId: string;
          generation: number;
        };
        if (msg.type !== 'assign') return;
        const key = `${msg.taskId}:${msg.generation}`;
        if (seen.has(key)) return;
        seen.add(key);
        newAssigns.push(nowMs());
      } catch {}
    },
  });
  return {
    nats,
    bus,
    hubs,
    agents,
    leaseChanges,
    holder: () => holder,
    firstNewAssignAfter: (since) => newAssigns.find((t) => t >= since),
    async stop() {
      sub.unsubscribe();
      watch.stop();
      agents.send({ type: 'close' });
      await new Promise((r) => agents.once('exit', r));
      await bus.drain();
      await Promise.all(hubs.map((h) => h.stop()));
      await nats.stop();
    },
  };
}

const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: Math.round(percentile(s, 50)),
    p99: Math.round(percentile(s, 99)),
    max: Math.round(s[s.length - 1] ?? 0),
    samples: xs.map(Math.round),
  };
};

async function kills() {
  const stack = await startStack('failk');
  if (PRELOAD > 0) {
    // Finished tasks the new leader has to load before it works (retention keeps 50,000 by default).
    await addConcurrently(PRELOAD, (k) => submitTask(stack.bus, { title: `pre${k}` }));
    for (;;) {
      const s = await request(stack.bus, 'task.stats', { v: 1 }, TaskStatsReplySchema, { timeoutMs: 10_000 });
      if ((s.byStatus.done ?? 0) >= PRELOAD) break;
      await sleep(200);
    }
    log(`[failover] ${PRELOAD} finished tasks in the bucket`);
  }
  let producing = true;
  let k = 0;
  const producer = (async () => {
    while (producing) {
      void submitTask(stack.bus, { title: `f${k++}` }).catch(() => {});
      await sleep(20);
    }
  })();
  const leaseMs: number[] = [];
  const assignMs: number[] = [];
  try {
    for (let i = 0; i < KILLS; i++) {
      const leader = await waitFor('a leader', () => stack.holder() ?? undefined);
      // Steady state: the leader assigns.
      await waitFor('assignments', () => stack.firstNewAssignAfter(nowMs() - 200));
      await sleep(1000);
      const dead = stack.hubs.find((h) => h.id === leader)!;
      const changes = stack.leaseChanges.length;
      const t0 = nowMs();
      await dead.kill();
      const [tLease] = await waitFor('the lease to move', () =>
        stack.leaseChanges.slice(changes).find(([, h]) => h !== null && h !== leader),
      );
      const tAssign = await waitFor('a new assignment', () => stack.firstNewAssignAfter(tLease));
      leaseMs.push(tLease - t0);
      assignMs.push(tAssign - t0);
      log(
        `[failover] kill ${i + 1}: lease ${(tLease - t0).toFixed(0)} ms, first assignment ${(tAssign - t0).toFixed(0)} ms`,
      );
      await dead.start();
      // A standby knows an agent is alive once it has heard one of its beats (every 5 s by default):
      // the next kill waits until the restarted standby has.
      await sleep(HEARTBEAT_MS + 500);
    }
  } finally {
    producing = false;
    await producer;
    await stack.stop();
  }
  return { leaseTakenMs: summary(leaseMs), firstAssignmentMs: summary(assignMs) };
}

async function load() {
  const stack = await startStack('faill');
  try {
    const leader = await waitFor('a leader', () => stack.holder() ?? undefined);
    const changes = stack.leaseChanges.length;
    const t0 = nowMs();
    await addConcurrently(LOAD_TASKS, (k) => submitTask(stack.bus, { title: `l${k}` }));
    for (;;) {
      const s = await request(stack.bus, 'task.stats', { v: 1 }, TaskStatsReplySchema, { timeoutMs: 10_000 });
      if ((s.byStatus.done ?? 0) >= LOAD_TASKS) break;
      await sleep(100);
    }
    const seconds = (nowMs() - t0) / 1000;
    const moved = stack.leaseChanges.slice(changes);
    return {
      tasks: LOAD_TASKS,
      seconds: Number(seconds.toFixed(1)),
      tasksPerSec: Math.round(LOAD_TASKS / seconds),
      leader,
      leaseChanges: moved.length,
    };
  } finally {
    await stack.stop();
  }
}

const out: Record<string, unknown> = {
  nproc: cpus().length,
  cpu: cpus()[0]?.model,
  node: process.version,
  config: { kills: KILLS, agents: AGENTS, loadTasks: LOAD_TASKS, preload: PRELOAD },
  loadavgStart: loadavg().map((x) => Number(x.toFixed(2))),
};
if (!args.includes('--no-kills')) out.kills = await kills();
if (!args.includes('--no-load')) out.load = await load();
out.loadavgEnd = loadavg().map((x) => Number(x.toFixed(2)));
console.log(JSON.stringify(out, null, 2));
process.exit(0);
