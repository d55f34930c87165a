/**
 * The life of a throw-away server process for a baseline (nats-server, redis-server): keep the tail
 * of its output for error messages, know when it exited, kill it if this process exits first, and
 * stop it politely (an optional graceful command, then SIGTERM, then SIGKILL), removing its data
 * directory. `stop()` is idempotent and never rejects.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { withTimeout } from './common.js';

export interface ServerChild {
  /** True once the process has exited (or failed to spawn). */
  readonly exited: boolean;
  readonly exitedP: Promise<void>;
  /** The last 4000 characters it printed. */
  log(): string;
  stop(): Promise<void>;
}

export function superviseServer(
  name: string,
  child: ChildProcess,
  dataDir: string,
  gracefulStop?: () => Promise<unknown>,
): ServerChild {
  let log = '';
  const keepTail = (chunk: Buffer) => {
    log = (log + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);

  let exited = false;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', (err) => {
      log += `\nspawn error: ${err.message}`;
      exited = true;
      resolve();
    });
  });
  const killOnExit = () => {
    if (!exited) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  const escalate = async (what: string, ms: number, next: () => void) => {
    await withTimeout(exitedP, ms, `${name} ${what}`).catch(next);
  };
  let stopping: Promise<void> | undefined;
  return {
    get exited() {
      return exited;
    },
    exitedP,
    log: () => log.trim(),
    stop() {
      stopping ??= (async () => {
        if (!exited) {
          if (gracefulStop) {
            await gracefulStop().catch(() => {});
            await escalate('graceful stop', 3000, () => child.kill('SIGTERM'));
          } else {
            child.kill('SIGTERM');
          }
          await escalate('SIGTERM', 5000, () => child.kill('SIGKILL'));
          await escalate('SIGKILL', 3000, () => {});
        }
        process.removeListener('exit', killOnExit);
        rmSync(dataDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
