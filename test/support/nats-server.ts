/**
 * A real nats-server for tests: JetStream on, a free loopback port (never 4222), a temporary store.
 * `kill()` sends SIGKILL; `restart()` starts a new process on the same port and store, so tests can
 * prove that nothing acknowledged by the server is lost.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { findNatsServer, freePort, natsServerArgs, waitForNats } from '../../src/bus/nats-server.js';

export interface TestNatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number | undefined;
  /** Graceful stop (SIGTERM), waiting for the process to exit. */
  stop(): Promise<void>;
  /** SIGKILL, waiting for the process to exit. The store is kept. */
  kill(): Promise<void>;
  /** Start again on the same port and store (after stop or kill). */
  restart(): Promise<void>;
  /** Stop the process and delete the store. Safe to call twice. */
  dispose(): Promise<void>;
}

export interface StartNatsOptions {
  /** Config file; it must set `jetstream { store_dir }` (`storeDir` is then not used). */
  configFile?: string;
  storeDir?: string;
  port?: number;
}

export async function startNatsServer(opts: StartNatsOptions = {}): Promise<TestNatsServer> {
  const bin = findNatsServer();
  const port = opts.port ?? (await freePort());
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), 'agentcom-nats-')));
  let proc: ChildProcess | undefined;
  let stderrTail = '';

  const launch = async () => {
    // A config file brings its own store_dir (with -sd as well, 2.9 could not reload it).
    const args = opts.configFile
      ? natsServerArgs({ port, configFile: opts.configFile })
      : natsServerArgs({ port, storeDir });
    const child = spawn(bin, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      stderrTail = (stderrTail + d).slice(-4000);
    });
    proc = child;
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) =>
        reject(new Error(`nats-server exited early (code ${code}): ${stderrTail}`)),
      ),
    );
    exited.catch(() => {});
    await Promise.race([waitForNats(port, 15_000), exited]);
  };

  const terminate = async (signal: NodeJS.Signals) => {
    const child = proc;
    proc = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await done;
  };

  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    get pid() {
      return proc?.pid;
    },
    stop: () => terminate('SIGTERM'),
    kill: () => terminate('SIGKILL'),
    restart: async () => {
      await terminate('SIGTERM');
      await launch();
    },
    dispose: async () => {
      await terminate('SIGKILL');
      if (!opts.storeDir) await rm(storeDir, { recursive: true, force: true });
    },
  };
}

/**
 * One server for the enclosing file or `describe`: started in `beforeAll`, disposed in `afterAll`.
 * The returned object forwards to that server, so it can be used like one.
 */
export function useNatsServer(opts: StartNatsOptions = {}): TestNatsServer {
  let current: TestNatsServer | undefined;
  beforeAll(async () => {
    current = await startNatsServer(opts);
  });
  afterAll(async () => {
    await current?.dispose();
  });
  const get = () => {
    if (!current) throw new Error('useNatsServer: used outside a test');
    return current;
  };
  return {
    get url() {
      return get().url;
    },
    get port() {
      return get().port;
    },
    get storeDir() {
      return get().storeDir;
    },
    get pid() {
      return get().pid;
    },
    stop: () => get().stop(),
    kill: () => get().kill(),
    restart: () => get().restart(),
    dispose: () => get().dispose(),
  };
}
