/**
 * @module nats-server
 * Locating and launching a local `nats-server` binary: used by the hub to embed a server when no
 * `NATS_URL` is given, and by the test support code. It does not supervise the process: the
 * runtime's OS-process child (or the test launcher) owns its lifecycle.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, connect as tcpConnect } from 'node:net';
import { delimiter, join } from 'node:path';

/** Well-known install locations searched after `PATH` (Debian puts it in /usr/sbin). */
const FALLBACK_DIRS = ['/usr/sbin', '/usr/local/bin', '/usr/bin'];

/** The port another process may own on this machine; never use it for a spawned server. */
export const RESERVED_NATS_PORT = 4222;

export class NatsServerNotFoundError extends Error {
  readonly code = 'NATS_SERVER_NOT_FOUND';
  constructor() {
    super('nats-server was not found on PATH or in /usr/sbin, /usr/local/bin, /usr/bin');
    this.name = 'NatsServerNotFoundError';
  }
}

/** Absolute path of the nats-server binary: `NATS_SERVER_BIN`, then `PATH`, then the fallbacks. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NATS_SERVER_BIN && existsSync(env.NATS_SERVER_BIN)) return env.NATS_SERVER_BIN;
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), ...FALLBACK_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (existsSync(candidate)) return candidate;
  }
  throw new NatsServerNotFoundError();
}

/** A currently free TCP port on 127.0.0.1, never {@link RESERVED_NATS_PORT}. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port !== RESERVED_NATS_PORT && port !== 0) return port;
  }
}

export interface NatsServerArgs {
  port: number;
  /**
   * JetStream store directory (`-sd`). Leave it out when the config file sets `store_dir`: 2.9
   * refuses a store dir given both ways, and refuses to reload (SIGHUP) a server whose store dir
   * or server name came from flags ("config reload not supported for jetstream storage dir").
   */
  storeDir?: string;
  /** A config file (accounts, users); flags given here still win over it. */
  configFile?: string;
  /** Server name, shown in `nats server ls` and logs (`-n`; see storeDir about reloads). */
  serverName?: string;
  /** Where the server writes its pid (`-P`), so a later owner can find it (see stopOrphanedServer). */
  pidFile?: string;
}

/** Command-line arguments for a loopback, JetStream-enabled server with a file store. */
export function natsServerArgs(opts: NatsServerArgs): string[] {
  const args: string[] = [];
  if (opts.configFile) args.push('-c', opts.configFile);
  args.push('-a', '127.0.0.1', '-p', String(opts.port), '-js');
  if (opts.storeDir) args.push('-sd', opts.storeDir);
  if (opts.serverName) args.push('-n', opts.serverName);
  if (opts.pidFile) args.push('-P', opts.pidFile);
  return args;
}

export type OrphanCheck =
  | { kind: 'none' }
  | { kind: 'stopped'; pid: number }
  /** A live nats-server whose parent is still running: another owner's, left alone. */
  | { kind: 'owned'; pid: number; parent: number };

/**
 * A nats-server embedded by a hub that was SIGKILLed outlives it (children are not killed with
 * their parent) and keeps the port and the store, so the restarted hub could not start its own.
 * This finds such a server through the pid file it wrote and stops it (SIGINT, its clean stop;
 * SIGKILL after `graceMs`), but only when the pid is a nats-server (checked through /proc) whose
 * parent is gone (it was re-parented to init or a subreaper that is not an agentcom process).
 * Without /proc (not Linux) nothing is signalled.
 */
export async function stopOrphanedServer(pidFile: string, graceMs = 10_000): Promise<OrphanCheck> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return { kind: 'none' };
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (cmdline === null || !cmdline.includes('nats-server')) return { kind: 'none' };
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Field 4 of /proc/<pid>/stat, after the parenthesised command name.
  const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  const parentCmd = await readFile(`/proc/${parent}/cmdline`, 'utf8').catch(() => '');
  if (parent > 1 && /agentcom|cli[/\\]main/.test(parentCmd)) return { kind: 'owned', pid, parent };
  const gone = () =>
    readFile(`/proc/${pid}/cmdline`, 'utf8').then(
      () => false,
      () => true,
    );
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return { kind: 'none' };
  }
  const deadline = Date.now() + graceMs;
  let killed = false;
  while (!(await gone())) {
    if (!killed && Date.now() > deadline) {
      killed = true;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Exited meanwhile.
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { kind: 'stopped', pid };
}

/**
 * Resolves once a server on `port` accepts a connection and announces JetStream in its INFO line;
 * rejects after `timeoutMs`. Polls, because the process may not have bound the port yet.
 */
export async function waitForNats(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const info = await readInfoLine(port, Math.max(100, deadline - Date.now()));
      if (info.includes('"jetstream":true')) return;
      lastError = new Error('server is up but JetStream is not enabled');
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nats-server on port ${port} not ready after ${timeoutMs} ms: ${String(lastError)}`);
}

function readInfoLine(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('timed out waiting for INFO'));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\r\n');
      if (nl >= 0) {
        clearTimeout(timer);
        sock.destroy();
        resolve(buf.slice(0, nl));
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
