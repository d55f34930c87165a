/**
 * A private, throw-away `redis-server` for the BullMQ baseline: random free loopback port (never
 * 6379), no RDB snapshots (`--save ''`), and either no persistence (`--appendonly no`) or an
 * append-only file fsynced every second (`--appendonly yes --appendfsync everysec`: the durability
 * class of JetStream's file store, which does not fsync each message either) or on every write
 * (`always`); stopped with `redis-cli shutdown nosave`, then SIGTERM/SIGKILL if needed. A
 * process-exit hook kills it if the caller never stops it.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/bus/nats-server.js';
import { superviseServer } from './child-server.js';
import { sleep } from './common.js';

const execFileP = promisify(execFile);

export const RESERVED_REDIS_PORT = 6379;

export interface RedisServer {
  port: number;
  pid: number;
  /** Idempotent; never rejects. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** Binary (default `REDIS_SERVER_BIN` or `redis-server` on PATH). */
  bin?: string;
  /** Bound on start-up, per attempt (default 10 000 ms). */
  timeoutMs?: number;
  /** `none` (default), or an append-only file fsynced every second or on every write. */
  persistence?: RedisPersistence;
}

export type RedisPersistence = 'none' | 'aof-everysec' | 'aof-always';

const PERSISTENCE_ARGS: Record<RedisPersistence, string[]> = {
  none: ['--appendonly', 'no'],
  'aof-everysec': ['--appendonly', 'yes', '--appendfsync', 'everysec'],
  'aof-always': ['--appendonly', 'yes', '--appendfsync', 'always'],
};

/** `redis-server --version` → e.g. `7.0.15` (or the raw line if it cannot be parsed). */
export async function redisServerVersion(
  bin = process.env.REDIS_SERVER_BIN ?? 'redis-server',
): Promise<string> {
  const { stdout } = await execFileP(bin, ['--version'], { timeout: 5000 });
  return /v=(\S+)/.exec(stdout)?.[1] ?? stdout.trim();
}

/** Starts a private redis-server and resolves once it answers PING. Retries on a port race. */
export async function startRedisServer(opts: StartRedisOptions = {}): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function pickPort(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p !== RESERVED_REDIS_PORT) return p;
  }
}

async function startOnce(opts: StartRedisOptions): Promise<RedisServer> {
  const bin = opts.bin ?? process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const port = await pickPort();
  const dir = mkdtempSync(join(tmpdir(), 'agentcom-peer-redis-'));
  const child = spawn(
    bin,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      ...PERSISTENCE_ARGS[opts.persistence ?? 'none'],
      '--daemonize',
      'no',
      '--dir',
      dir,
      '--logfile',
      '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const server = superviseServer('redis-server', child, dir, () =>
    execFileP('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'shutdown', 'nosave'], { timeout: 3000 }),
  );
  const stop = server.stop;

  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (server.exited)
        throw new Error(`redis-server exited during start-up on port ${port}:\n${server.log()}`);
      if (Date.now() > deadline)
        throw new Error(`redis-server on port ${port} did not answer PING in ${timeoutMs} ms`);
      if (await ping(port, 500)) break;
      await sleep(25);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, pid: child.pid ?? -1, stop };
}

/** One inline `PING` over TCP; true on `+PONG`. */
function ping(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}
