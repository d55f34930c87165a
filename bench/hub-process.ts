/**
 * A hub (`agentcom hub`) as its own process that can be started, started again, SIGKILLed or
 * stopped, and a poll-until helper: what bench/failover.ts and bench/scale.ts share.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nowMs, sleep } from './peers/common.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export interface Hub {
  id: string;
  proc: ChildProcess | undefined;
  /** Spawns the process; resolves at its `hub started` log line. */
  start(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface HubProcessOptions {
  natsUrl: string;
  prefix: string;
  id: string;
  /** Extra environment (over this process's, AGENTCOM_HUB_ID and AGENTCOM_LOG_LEVEL=info). */
  env?: Record<string, string>;
  /** Node flags before `--import tsx`. */
  nodeArgs?: string[];
  /** Modules imported before the hub's own (`--import`, after tsx). */
  preload?: string[];
  /** Open an IPC channel to the process (for a preloaded probe). */
  ipc?: boolean;
  /** Append the hub's log lines to this file (`<path>.<id>`). */
  logPath?: string;
  /** Called with each of the hub's log lines (stdout). */
  onLine?: (line: string) => void;
}

export function hubProcess(o: HubProcessOptions): Hub {
  const h: Hub = {
    id: o.id,
    proc: undefined,
    async start() {
      const proc = spawn(
        process.execPath,
        [
          ...(o.nodeArgs ?? []),
          '--import',
          'tsx',
          ...(o.preload ?? []).flatMap((m) => ['--import', m]),
          here('../src/cli/main.ts'),
          'hub',
          '--nats-url',
          o.natsUrl,
          '--prefix',
          o.prefix,
        ],
        {
          stdio: ['ignore', 'pipe', 'inherit', ...(o.ipc ? (['ipc'] as const) : [])],
          env: { ...process.env, AGENTCOM_HUB_ID: o.id, AGENTCOM_LOG_LEVEL: 'info', ...o.env },
        },
      );
      h.proc = proc;
      const logTo = o.logPath ? createWriteStream(`${o.logPath}.${o.id}`, { flags: 'a' }) : undefined;
      await new Promise<void>((resolve, reject) => {
        const rl = createInterface({ input: proc.stdout! });
        rl.on('line', (l) => {
          logTo?.write(`${l}\n`);
          o.onLine?.(l);
          if (l.includes('"hub started"')) resolve();
        });
        proc.once('exit', (code) => reject(new Error(`hub ${o.id} exited ${code}`)));
      });
    },
    async kill() {
      const p = h.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    },
    async stop() {
      const p = h.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    },
  };
  return h;
}

/** Polls `f` every 5 ms until it returns something other than undefined or false. */
export async function waitFor<T>(what: string, f: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = nowMs() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (nowMs() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
