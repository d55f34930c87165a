/**
 * A 3-node nats-server cluster for tests and the chaos suite: JetStream on every node, free
 * loopback client and route ports (never 4222), one temporary store per node. Each node runs
 * deploy/nats/cluster/n*.conf itself, with ports and paths filled in, so the chaos suite tests the
 * configs operators deploy. Nodes can be
 * SIGKILLed and restarted one at a time on the same port and store; `url` lists every node, so a
 * client fails over to the others. Resolves once the cluster answers JetStream requests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { connectBus } from '../../src/bus/connection.js';
import { findNatsServer, freePort, waitForNats } from '../../src/bus/nats-server.js';

export interface ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** The HTTP monitoring port (`/varz`), only when started with `monitor: true`. */
  readonly monitorPort: number | undefined;
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

const DEPLOY_CLUSTER = fileURLToPath(new URL('../../deploy/nats/cluster/', import.meta.url));

/** Replaces what `pattern` matches, which must be exactly one place of the deploy config. */
function fill(text: string, pattern: RegExp, value: string, what: string): string {
  const found = text.match(new RegExp(pattern, `${pattern.flags}g`))?.length ?? 0;
  if (found !== 1) throw new Error(`deploy/nats/cluster config: expected one ${what}, found ${found}`);
  return text.replace(pattern, value);
}

/**
 * Node `index`'s config: deploy/nats/cluster/n<index+1>.conf itself, the very file operators
 * deploy, with loopback ports and a temporary store put in place of its addresses and paths.
 */
export function clusterNodeConfig(
  index: number,
  o: { port: number; routePort: number; routePorts: number[]; storeDir: string },
): string {
  let text = readFileSync(join(DEPLOY_CLUSTER, `n${index + 1}.conf`), 'utf8');
  text = fill(text, /^listen: .*$/m, `listen: 127.0.0.1:${o.port}`, 'client listen');
  text = fill(text, /^ {2}listen: .*$/m, `  listen: 127.0.0.1:${o.routePort}`, 'cluster listen');
  text = fill(text, /store_dir: ".*"/, `store_dir: "${o.storeDir}"`, 'store_dir');
  const routes = o.routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
  return fill(text, /routes: \[[^\]]*\]/, `routes: [ ${routes} ]`, 'routes list');
}

export async function startNatsCluster(size = 3, o: { monitor?: boolean } = {}): Promise<TestNatsCluster> {
  const bin = findNatsServer();
  const root = await mkdtemp(join(tmpdir(), 'agentcom-cluster-'));
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const monitorPorts = o.monitor ? await Promise.all(Array.from({ length: size }, () => freePort())) : [];
  const procs: (ChildProcess | undefined)[] = Array.from({ length: size }, () => undefined);
  const configs: string[] = [];
  for (let i = 0; i < size; i++) {
    const file = join(root, `n${i + 1}.conf`);
    await writeFile(
      file,
      clusterNodeConfig(i, {
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
    const monitor = o.monitor ? ['-m', String(monitorPorts[i])] : [];
    const child = spawn(bin, ['-c', configs[i]!, ...monitor], { stdio: ['ignore', 'ignore', 'pipe'] });
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
      monitorPort: monitorPorts[i],
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
