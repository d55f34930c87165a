/**
 * A sidecar as a separate OS process (`agentcom sidecar --config`, through tsx), for tests that
 * SIGKILL it. Readiness is its "sidecar online" log line; its log lines are kept for assertions.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitUntil } from './eventually.js';

const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface SidecarProcess {
  proc: ChildProcess;
  /** Parsed pino lines (non-JSON lines are kept as `{ msg }`). */
  lines: { msg?: string; [k: string]: unknown }[];
  /** Start (again); resolves once it logged "sidecar online". */
  start(): Promise<void>;
  kill(): Promise<void>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Resolves once a line with this msg (and matching fields) was logged after `from`. */
  waitFor(msg: string, match?: Record<string, unknown>, from?: number, timeout?: number): Promise<void>;
}

export function sidecarProcess(configFile: string, env: Record<string, string> = {}): SidecarProcess {
  const s: SidecarProcess = {
    proc: undefined as unknown as ChildProcess,
    lines: [],
    async start() {
      const from = s.lines.length;
      const proc = spawn(process.execPath, ['--import', 'tsx', cli, 'sidecar', '--config', configFile], {
        env: { ...process.env, AGENTCOM_LOG_LEVEL: 'info', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      s.proc = proc;
      for (const stream of [proc.stdout, proc.stderr]) {
        createInterface({ input: stream }).on('line', (line) => {
          try {
            s.lines.push(JSON.parse(line));
          } catch {
            s.lines.push({ msg: line });
          }
        });
      }
      await s.waitFor('sidecar online', {}, from, 30_000);
    },
    async kill() {
      const p = s.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await done;
    },
    async stop() {
      const p = s.proc;
      if (p.exitCode !== null || p.signalCode !== null) return p.exitCode;
      const done = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      p.kill('SIGTERM');
      return done;
    },
    async waitFor(msg, match = {}, from = 0, timeout = 20_000) {
      await waitUntil(
        () => {
          if (s.proc.exitCode !== null)
            throw new Error(`sidecar exited (${s.proc.exitCode}) while waiting for "${msg}"`);
          return s.lines
            .slice(from)
            .some((l) => l.msg === msg && Object.entries(match).every(([k, v]) => l[k] === v));
        },
        `sidecar log "${msg}"`,
        { timeout, interval: 25 },
      );
    },
  };
  return s;
}
