/**
 * The hub as a separate OS process (`agentcom hub` through tsx), for tests that SIGKILL it.
 * Readiness is the hub's own "hub started" log line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ENV_VARS } from '../../src/hub/config.js';
import { waitUntil } from './eventually.js';
import { TEST_HUB_SETTINGS } from './hub.js';

const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface HubProcess {
  readonly hubId: string;
  proc: ChildProcess;
  lines: string[];
  /** Start (again); resolves when the hub logged that it started. */
  start(): Promise<void>;
  kill(): Promise<void>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export function hubProcess(natsUrl: string, prefix: string, hubId: string): HubProcess {
  return hubProcessWith(['--nats-url', natsUrl, '--prefix', prefix], hubId);
}

/**
 * A hub process with these `agentcom hub` flags (plus `--hub-id`), the test timeouts, and `env`
 * over them (e.g. `AGENTCOM_MISSED_BEATS`).
 */
export function hubProcessWith(
  flags: string[],
  hubId: string,
  extraEnv: Record<string, string> = {},
): HubProcess {
  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  for (const [k, v] of Object.entries(TEST_HUB_SETTINGS))
    env[ENV_VARS[k as keyof typeof ENV_VARS]] = String(v);
  env.AGENTCOM_LOG_LEVEL = 'info';
  Object.assign(env, extraEnv);
  const h: HubProcess = {
    hubId,
    proc: undefined as unknown as ChildProcess,
    lines: [],
    async start() {
      const proc = spawn(process.execPath, ['--import', 'tsx', cli, 'hub', ...flags, '--hub-id', hubId], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      h.proc = proc;
      const lines: string[] = [];
      h.lines = lines;
      createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (d: string) => lines.push(d));
      await waitUntil(
        () => {
          if (proc.exitCode !== null)
            throw new Error(`hub exited ${proc.exitCode}: ${lines.slice(-5).join('\n')}`);
          return lines.some((l) => l.includes('"hub started"'));
        },
        `hub ${hubId} started`,
        { timeout: 30_000 },
      );
    },
    async kill() {
      const p = h.proc;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    },
    async stop() {
      const p = h.proc;
      if (p.exitCode !== null || p.signalCode !== null) return p.exitCode;
      const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      p.kill('SIGTERM');
      return exited;
    },
  };
  return h;
}
