/**
 * @module cli/connection
 * The connection flags every hub-facing command shares, and connecting with them. The CLI fails
 * fast instead of waiting for a server (one connect attempt, no reconnects), and turns NATS
 * connection errors into structured ones: `unavailable` (nothing listening) or `forbidden`
 * (credentials refused), each with a hint on what to do.
 */

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { pino } from 'pino';
import { type Bus, connectBus } from '../bus/connection.js';
import { HubClient } from '../bus/hub-client.js';
import { readSeedFile } from '../bus/nkeys.js';
import { AUTH_DIR_ENV, authDirPaths } from '../hub/auth/auth-dir.js';
import { AuthRegistrySchema } from '../hub/auth/registry.js';
import { DEFAULT_DATA_DIR, type HubFile, readHubFile } from '../hub/hub-file.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';

/** The hub's embedded nats-server listens here by default (see src/hub/config.ts). */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4223';

export interface ConnectionFlags {
  natsUrl?: string;
  prefix?: string;
  nkey?: string;
  authDir?: string;
  timeout?: string;
  json?: boolean;
}

/** Adds `--nats-url`, `--prefix`, `--nkey`, `--timeout` and `--json` to a command. */
export function withConnectionFlags(cmd: Command): Command {
  return cmd
    .option(
      '--nats-url <url>',
      `NATS server of the hub (env NATS_URL or AGENTCOM_NATS_PORT; else the hub.json of the hub started here; default ${DEFAULT_NATS_URL})`,
    )
    .option('--prefix <prefix>', 'subject/stream prefix (env AGENTCOM_PREFIX, default agentcom)')
    .option('--nkey <file>', 'file holding an NKey user seed to authenticate with (env AGENTCOM_NKEY_FILE)')
    .option(
      '--auth-dir <dir>',
      `auth directory of the hub (env ${AUTH_DIR_ENV}); without --nkey, authenticate with its admin.nk`,
    )
    .option('--timeout <ms>', 'how long to wait for the hub, ms (default 5000)')
    .option('--json', 'print results as JSON (one document per result)');
}

export interface ResolvedConnection {
  servers: string;
  prefix: string;
  nkeyFile: string | undefined;
  /** The auth directory given (flag or env), if any. */
  authDir: string | undefined;
  timeoutMs: number;
}

/**
 * Where the hub is, first found wins: the flags; the environment (NATS_URL, else
 * AGENTCOM_NATS_PORT on this machine; AGENTCOM_PREFIX; AGENTCOM_AUTH_DIR); the hub.json that
 * `agentcom hub` wrote into its data directory (AGENTCOM_DATA_DIR, default `.agentcom` here); the
 * listen address of the auth directory in use; the defaults. An auth directory found any of these
 * ways signs in with its admin seed unless --nkey or AGENTCOM_NKEY_FILE names another.
 * @throws AgentComError `invalid_payload` for a bad value.
 */
export function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedConnection {
  const hubFile = hubFileFor(flags, env);
  const authDir = findAuthDir(flags, env, hubFile);
  const servers =
    flags.natsUrl ??
    (env.NATS_URL || portUrl(env.AGENTCOM_NATS_PORT) || hubFile?.natsUrl || authDirUrl(authDir)) ??
    DEFAULT_NATS_URL;
  if (!/^(nats|tls|ws|wss):\/\/\S+$/.test(servers))
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `--nats-url must be a nats:// URL, got ${JSON.stringify(servers)}`,
      {
        path: ['natsUrl'],
      },
    );
  const timeoutMs = flags.timeout === undefined ? 5_000 : Number(flags.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `--timeout must be a positive number of ms, got ${flags.timeout}`,
      {
        path: ['timeout'],
      },
    );
  return {
    servers,
    prefix: flags.prefix ?? (env.AGENTCOM_PREFIX || hubFile?.prefix || 'agentcom'),
    nkeyFile:
      flags.nkey ?? (env.AGENTCOM_NKEY_FILE || (authDir ? authDirPaths(authDir).adminSeed : undefined)),
    authDir,
    timeoutMs,
  };
}

/**
 * The hub.json of the hub started here, when nothing else names a server: once --nats-url,
 * NATS_URL or AGENTCOM_NATS_PORT has, its prefix and auth directory belong to another hub.
 */
function hubFileFor(flags: { natsUrl?: string | undefined }, env: NodeJS.ProcessEnv): HubFile | undefined {
  if (flags.natsUrl || env.NATS_URL || env.AGENTCOM_NATS_PORT) return undefined;
  return readHubFile(env.AGENTCOM_DATA_DIR || DEFAULT_DATA_DIR);
}

/** The auth directory: --auth-dir, else AGENTCOM_AUTH_DIR, else the one the hub started here runs with. */
export function findAuthDir(
  flags: { authDir?: string | undefined; natsUrl?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
  hubFile = hubFileFor(flags, env),
): string | undefined {
  return flags.authDir ?? (env[AUTH_DIR_ENV] || hubFile?.authDir);
}

/**
 * Whether the server refuses a client without credentials. One without authentication accepts
 * anyone, whatever credentials they bring: per-agent credentials would mean nothing there.
 */
export async function serverRequiresAuth(conn: ResolvedConnection): Promise<boolean> {
  try {
    const bus = await connectCli({ ...conn, nkeyFile: undefined }, 'agentcom-cli-auth-probe');
    await bus.drain();
    return false;
  } catch (err) {
    if (err instanceof AgentComError && err.code === ERROR_CODES.FORBIDDEN) return true;
    throw err;
  }
}

/** AGENTCOM_NATS_PORT (the hub's embedded server on this machine) as a URL. */
function portUrl(port: string | undefined): string | undefined {
  if (!port) return undefined;
  const n = Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `AGENTCOM_NATS_PORT must be a port number (1-65535), got ${JSON.stringify(port)}`,
      { path: ['natsPort'] },
    );
  return `nats://127.0.0.1:${n}`;
}

/** The server address an auth directory was written for (its agents.json), if it has one. */
function authDirUrl(authDir: string | undefined): string | undefined {
  if (!authDir) return undefined;
  try {
    const r = AuthRegistrySchema.safeParse(JSON.parse(readFileSync(authDirPaths(authDir).registry, 'utf8')));
    return r.success ? `nats://${r.data.listen}` : undefined;
  } catch {
    return undefined;
  }
}

/** Connect once; never waits for a server that is not there. */
export async function connectCli(
  conn: ResolvedConnection,
  name = 'agentcom-cli',
  /** An agent's own connection: its reply inboxes, the only subjects it may subscribe to. */
  opts: { inboxPrefix?: string } = {},
): Promise<Bus> {
  const nkeySeed = conn.nkeyFile ? await readSeedFile(conn.nkeyFile) : undefined;
  try {
    return await connectBus({
      servers: conn.servers,
      prefix: conn.prefix,
      name,
      ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}),
      waitOnFirstConnect: false,
      maxReconnectAttempts: 0,
      timeoutMs: conn.timeoutMs,
      apiTimeoutMs: conn.timeoutMs,
      ...(nkeySeed ? { nkeySeed } : {}),
      logger: pino({ level: process.env.AGENTCOM_LOG_LEVEL || 'silent' }),
    });
  } catch (err) {
    throw connectionError(err, conn.servers);
  }
}

/** A nats.js connect failure as a structured error with a hint. */
export function connectionError(err: unknown, servers: string): AgentComError {
  const message = err instanceof Error ? err.message : String(err);
  if (/authorization|authentication|permissions/i.test(message))
    return new AgentComError(
      ERROR_CODES.FORBIDDEN,
      `NATS at ${servers} refused the credentials (${message})`,
      {
        cause: err,
      },
    );
  return new AgentComError(
    ERROR_CODES.UNAVAILABLE,
    `cannot reach NATS at ${servers} (${message}); is the hub running? Start it with \`agentcom hub\`, or pass --nats-url`,
    { cause: err },
  );
}

/**
 * Connects with the shared flags, runs `fn` with a hub client, and drains. A request nobody
 * answers (NATS is up, no hub on this prefix) becomes an `unavailable` error that says so.
 */
export async function withHub<T>(
  flags: ConnectionFlags,
  fn: (hub: HubClient, conn: ResolvedConnection) => Promise<T>,
): Promise<T> {
  const conn = resolveConnection(flags);
  return withBus(conn, async (bus) => {
    try {
      return await fn(new HubClient(bus, conn.timeoutMs), conn);
    } catch (err) {
      throw explainUnreachable(err, conn);
    }
  });
}

/** Connects, runs `fn`, and drains (also when `fn` fails). */
export async function withBus<T>(
  conn: ResolvedConnection,
  fn: (bus: Bus) => Promise<T>,
  name?: string,
): Promise<T> {
  const bus = await connectCli(conn, name);
  try {
    return await fn(bus);
  } finally {
    await bus.drain().catch(() => undefined);
  }
}

/** A hub that does not answer, with what to do about it. */
export function explainUnreachable(err: unknown, conn: ResolvedConnection): unknown {
  if (!(err instanceof AgentComError)) return err;
  const where = `NATS at ${conn.servers}, prefix ${conn.prefix}`;
  if (err.code === ERROR_CODES.UNAVAILABLE && /no responders|503/i.test(err.message))
    return new AgentComError(
      ERROR_CODES.UNAVAILABLE,
      `no hub answers on ${where}; is the hub running (\`agentcom hub\`), and is --prefix right?`,
      { cause: err },
    );
  if (err.code === ERROR_CODES.TIMEOUT)
    return new AgentComError(
      ERROR_CODES.TIMEOUT,
      `the hub on ${where} did not answer within ${conn.timeoutMs} ms (${err.message}); raise --timeout if it is busy`,
      { cause: err },
    );
  return err;
}
