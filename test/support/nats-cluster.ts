/**
 * A 3-node nats-server cluster for tests and the chaos suite: JetStream on every node, free
 * loopback client and route ports (never 4222), one temporary store per node. The config each node
 * gets is the shape of deploy/nats/cluster/n*.conf with ports and paths filled in. Nodes can be
 * SIGKILLed and restarted one at a time on the same port and store; `url` lists every node, so a
 * client fails over to the others. Resolves once the cluster answers JetStream requests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectBus } from '../../src/bus/connection.js';
import { findNatsServer, freePort, waitForNats } from '../../src/bus/nats-server.js';

export interface ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number | undefined;
  readonly running: boolean;
}

export interface TestNatsCluster {
  /** Every node's URL, comma-separated (what NATS_URL takes). */
  readonly url: string;
  readonly servers: string[];
  readonly nodes: ClusterNode[];
  /** SIGKILL node i (its store is kept). */
  kill(i: number): Promise<void>;
  /** SIGSTOP / SIGCONT node i. */
  pause(i: number): void;
  resume(i: number): void;
  /** Start node i again on the same ports and store; resolves when JetStream answers. */
  restart(i: number): Promise<void>;
  /** SIGKILL every node and delete the stores. */
  dispose(): Promise<void>;
}

/** A new cluster answers JetStream requests only once its nodes have elected a meta leader. */
async function waitForMetaLeader(servers: string[], timeoutMs = 30_000): Promise<void> {
  const bus = await connectBus({ servers, apiTimeoutMs: 1_000, logger: pino({ level: 'silent' }) });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await bus.jsm.getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the cluster elected no JetStream meta leader: ${err}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await bus.drain();
  }
}

/** The config of one node (the shape of deploy/nats/cluster/n1.conf). */
export function clusterNodeConfig(o: {
  name: string;
  port: number;
  routePort: number;
  routePorts: number[];
  storeDir: string;
  clusterName?: string;
}): string {
  const routes = o.routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
  return `server_name: ${o.name}
listen: 127.0.0.1:${o.port}
jetstream {
  store_dir: "${o.storeDir}"
}
cluster {
  name: ${o.clusterName ?? 'agentcom'}
  listen: 127.0.0.1:${o.routePort}
  routes: [ ${routes} ]
}
`;
}

export async function startNatsCluster(size = 3): Promise<TestNatsCluster> {
  const bin = findNatsServer();
  const root = await mkdtemp(join(tmpdir(), 'agentcom-cluster-'));
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const procs: (ChildProcess | undefined)[] = Array.from({ length: size }, () => undefined);
  const configs: string[] = [];
  for (let i = 0; i < size; i++) {
    const file = join(root, `n${i + 1}.conf`);
    await writeFile(
      file,
      clusterNodeConfig({
        name: `n${i + 1}`,
        port: ports[i]!,
        routePort: routePorts[i]!,
        routePorts,
        storeDir: join(root, `n${i + 1}`),
      }),
    );
    configs.push(file);
  }
  const launch = async (i: number) => {
    let tail = '';
    const child = spawn(bin, ['-c', configs[i]!], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      tail = (tail + d).slice(-4000);
    });
    procs[i] = child;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`nats node n${i + 1} exited early (${code}): ${tail}`))),
    );
    exited.catch(() => {});
    await Promise.race([waitForNats(ports[i]!, 30_000), exited]);
  };
  const stop = async (i: number, signal: NodeJS.Signals) => {
    const child = procs[i];
    procs[i] = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise<void>((r) => child.once('exit', () => r()));
    if (signal === 'SIGKILL') child.kill('SIGCONT'); // a paused node must be able to die
    child.kill(signal);
    await done;
  };
  await Promise.all(Array.from({ length: size }, (_, i) => launch(i)));
  const servers = ports.map((p) => `nats://127.0.0.1:${p}`);
  await waitForMetaLeader(servers);
  return {
    url: servers.join(','),
    servers,
    nodes: ports.map((port, i) => ({
      name: `n${i + 1}`,
      port,
      url: servers[i]!,
      get pid() {
        return procs[i]?.pid;
      },
      get running() {
        return procs[i] !== undefined;
      },
    })),
    kill: (i) => stop(i, 'SIGKILL'),
    pause: (i) => procs[i]?.kill('SIGSTOP'),
    resume: (i) => procs[i]?.kill('SIGCONT'),
    restart: async (i) => {
      await stop(i, 'SIGTERM');
      await launch(i);
    },
    dispose: async () => {
      await Promise.all(procs.map((_, i) => stop(i, 'SIGKILL')));
      await rm(root, { recursive: true, force: true });
    },
  };
}
