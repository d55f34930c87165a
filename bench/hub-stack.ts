/**
 * The hub benchmark's stack, shared by bench/hub.ts and bench/inspect.ts: a private nats-server
 * (or, with `cluster`, a private 3-node cluster from test/support/nats-cluster.ts and three
 * replicas of every stream and bucket), the hub as its own process, the agents process
 * (bench/hub-agents.ts) and a client connection, with the CPU seconds of each process.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { request } from '../src/bus/service.js';
import { TaskStatsReplySchema } from '../src/protocol/api.js';
import { startNatsCluster } from '../test/support/nats-cluster.js';
import { cpuSeconds, ownCpuSeconds, sleep } from './peers/common.js';
import { type NatsTraffic, natsTraffic, startNatsServer, sumTraffic } from './peers/nats.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export interface Stack {
  /**
   * CPU seconds (user + system) used so far by each process of the stack; on a cluster `nats` is
   * the sum of the nodes, and each node is also there (`nats.n1`, `nats.n2`, `nats.n3`).
   */
  cpu(): Record<string, number>;
  /** The nats-server's message and byte counters so far; on a cluster, the sum of the nodes'. */
  traffic(): Promise<NatsTraffic>;
  bus: Bus;
  agents: ChildProcess;
  hub: ChildProcess;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Agents (slots 1 each) in the agents process. */
  c: number;
  /** Finished tasks the hub keeps counted (AGENTCOM_RETENTION_COUNT); at least every task of the run. */
  retentionCount: number;
  /** Extra environment of the hub process. */
  hubEnv?: Record<string, string>;
  /** The checkout whose hub runs (default: this one), e.g. a worktree of an earlier commit to compare with. */
  hubCheckout?: string;
  /**
   * A 3-node cluster instead of one nats-server: the hub, the agents and the client get every
   * node's URL, and the hub keeps three replicas of everything (AGENTCOM_REPLICAS=3).
   */
  cluster?: boolean;
}

/** What the stack needs of its nats-server(s). */
interface Nats {
  url: string;
  cpu(): Record<string, number>;
  traffic(): Promise<NatsTraffic>;
  stop(): Promise<void>;
}

async function startNats(cluster: boolean): Promise<Nats> {
  if (!cluster) {
    const nats = await startNatsServer();
    return {
      url: nats.url,
      cpu: () => ({ nats: cpuSeconds(nats.pid) }),
      traffic: nats.traffic,
      stop: nats.stop,
    };
  }
  const c = await startNatsCluster(3, { monitor: true });
  // The cluster's nodes are not killed with this process otherwise.
  const kill = () => {
    for (const node of c.nodes) {
      try {
        if (node.pid) process.kill(node.pid, 'SIGKILL');
      } catch {} // already gone
    }
  };
  process.once('exit', kill);
  return {
    url: c.url,
    cpu: () => {
      const nodes = Object.fromEntries(c.nodes.map((node) => [`nats.${node.name}`, cpuSeconds(node.pid)]));
      return { nats: Object.values(nodes).reduce((a, b) => a + b, 0), ...nodes };
    },
    traffic: async () => sumTraffic(await Promise.all(c.nodes.map((node) => natsTraffic(node.monitorPort!)))),
    stop: async () => {
      process.off('exit', kill);
      await c.dispose();
    },
  };
}

/**
 * nats-server, the hub (`agentcom hub`, its own process) and one agents process (`c` agents), and
 * a client connection. With HUB_PROF, HUB_NODE_ARGS and HUB_LOG as bench/hub.ts describes.
 */
export async function startStack(prefix: string, o: StackOptions): Promise<Stack> {
  const nats = await startNats(o.cluster ?? false);
  try {
    return await startOn(nats, prefix, o);
  } catch (err) {
    await nats.stop();
    throw err;
  }
}

async function startOn(nats: Nats, prefix: string, o: StackOptions): Promise<Stack> {
  const hub = spawn(
    process.execPath,
    [
      ...(process.env.HUB_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []),
      ...(process.env.HUB_NODE_ARGS ? process.env.HUB_NODE_ARGS.split(' ') : []),
      '--import',
      'tsx',
      o.hubCheckout ? `${o.hubCheckout}/src/cli/main.ts` : here('../src/cli/main.ts'),
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
        AGENTCOM_RETENTION_COUNT: String(Math.max(o.retentionCount, 1_000_000)),
        ...(o.cluster ? { AGENTCOM_REPLICAS: '3' } : {}),
        ...o.hubEnv,
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
  const agents = fork(here('./hub-agents.ts'), [nats.url, prefix, String(o.c)], {
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
      ...nats.cpu(),
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

export function waitMsg<T = Record<string, unknown>>(p: ChildProcess, type: string): Promise<T> {
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

/** Tasks the hub counts `done`. */
export async function doneCount(bus: Bus): Promise<number> {
  const s = await request(bus, 'task.stats', { v: 1 }, TaskStatsReplySchema, { timeoutMs: 10_000 });
  return s.byStatus.done ?? 0;
}

/**
 * Waits until the hub has recorded `n` tasks done: until the agents have handled `n` (asked of the
 * agents process, which costs the hub nothing), then by `task.stats` every 20 ms. Asking the hub
 * all along, every 50 ms as this bench used to, was measured in its figures: each `task.stats`
 * counts every kept record. The hub's API service took 2.9 % of its busy samples that way, 0.2 %
 * now (`HUB_PROF=1 npx tsx bench/hub.ts --no-peers --no-latency --n 10000`, then `npx tsx
 * bench/profile-modules.ts /tmp/prof --under src/bus/service.ts`): work the peers' runs do not have.
 */
export async function waitDone(stack: Pick<Stack, 'agents' | 'bus'>, n: number): Promise<void> {
  for (;;) {
    stack.agents.send({ type: 'handled' });
    const { handled } = await waitMsg<{ handled: number }>(stack.agents, 'handled');
    if (handled >= n) break;
    await sleep(50);
  }
  while ((await doneCount(stack.bus)) < n) await sleep(20);
}
