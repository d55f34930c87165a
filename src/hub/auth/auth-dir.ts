/**
 * @module hub/auth/auth-dir
 * The auth directory (default `deploy/nats`): the files that make a NATS server enforce who is
 * who, and where each lives.
 *
 *   <dir>/nats-server.conf     server config with every user and its permissions   (0600)
 *   <dir>/nats-server.pid      written by the server (pid_file), read to reload it
 *   <dir>/agents.json          the registry: settings, users, agents (public keys)  (0600)
 *   <dir>/hub.nk, admin.nk     seeds of the hub and of the admin CLI                (0600)
 *   <dir>/agents/<id>/         agent.nk (seed, 0600) and sidecar.json (0600) per agent
 *
 * Every file is written atomically with mode 0600 (writeFileAtomic); changes are serialised by a
 * lock file so two `agentcom agent add` runs cannot lose each other's agent. Seeds are read and
 * written here and nowhere logged. It does not reload the server (reload.ts) nor talk to NATS.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { createUserKeyPair } from '../../bus/nkeys.js';
import { parseJsonText } from '../../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../../protocol/errors.js';
import { writeFileAtomic } from '../../runtime/atomic-file.js';
import { renderNatsConfig } from './nats-config.js';
import { type AuthRegistry, AuthRegistrySchema, natsConfigInput } from './registry.js';

/** Where `agentcom agent add|list|remove` look when neither `--auth-dir` nor the env names one. */
export const DEFAULT_AUTH_DIR = 'deploy/nats';
export const AUTH_DIR_ENV = 'AGENTCOM_AUTH_DIR';
export const AGENT_SEED_FILE = 'agent.nk';

export interface AuthDirPaths {
  /** Absolute path of the directory. */
  root: string;
  config: string;
  pidFile: string;
  registry: string;
  hubSeed: string;
  adminSeed: string;
  lock: string;
  /** Default directory of an agent's seed and sidecar config. */
  agentDir(id: string): string;
}

export function authDirPaths(dir: string): AuthDirPaths {
  const root = resolve(dir);
  return {
    root,
    config: join(root, 'nats-server.conf'),
    pidFile: join(root, 'nats-server.pid'),
    registry: join(root, 'agents.json'),
    hubSeed: join(root, 'hub.nk'),
    adminSeed: join(root, 'admin.nk'),
    lock: join(root, '.lock'),
    agentDir: (id) => join(root, 'agents', id),
  };
}

/** `host:port` of a NATS URL (the first, for a comma-separated list), for the config's `listen`. */
export function listenAddressOf(servers: string | string[]): string {
  const first = (Array.isArray(servers) ? servers[0] : servers)?.split(',')[0]?.trim() ?? '';
  try {
    const u = new URL(first);
    return `${u.hostname || '127.0.0.1'}:${u.port || '4222'}`;
  } catch {
    return '127.0.0.1:4222';
  }
}

/** An agent's directory as recorded in the registry: relative to the auth dir unless outside it. */
export function agentDirOf(paths: AuthDirPaths, recorded: string): string {
  return isAbsolute(recorded) ? recorded : join(paths.root, recorded);
}

/** The registry, or null when the directory has none yet. @throws AgentComError when it is corrupt. */
export async function readRegistry(paths: AuthDirPaths): Promise<AuthRegistry | null> {
  let text: string;
  try {
    text = await readFile(paths.registry, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return parseJsonText(AuthRegistrySchema, text, `auth registry ${paths.registry}`);
}

export async function writeRegistry(paths: AuthDirPaths, reg: AuthRegistry): Promise<void> {
  await writeFileAtomic(paths.registry, `${JSON.stringify(AuthRegistrySchema.parse(reg), null, 2)}\n`);
}

/** Renders and writes the server config; returns whether its content changed. */
export async function writeNatsConfig(paths: AuthDirPaths, reg: AuthRegistry): Promise<boolean> {
  const text = renderNatsConfig(natsConfigInput(reg, paths.pidFile));
  const current = await readFile(paths.config, 'utf8').catch(() => null);
  if (current === text) return false;
  await writeFileAtomic(paths.config, text);
  return true;
}

/** Writes a seed file (0600). The seed is the only line. */
export async function writeSeed(file: string, seed: string): Promise<void> {
  await writeFileAtomic(file, `${seed}\n`, { mode: 0o600 });
}

export interface AuthDirSettings {
  prefix: string;
  /** host:port the server listens on. */
  listen: string;
  /** JetStream store directory (made absolute). */
  storeDir: string;
  serverName?: string;
}

export interface EnsuredAuthDir {
  paths: AuthDirPaths;
  registry: AuthRegistry;
  /** True when this call created the directory's keys and registry. */
  created: boolean;
}

/**
 * Opens the auth directory, creating it (hub and admin keys, registry, config) when it has no
 * registry yet. With `updateSettings`, an existing registry takes the given listen address, store
 * and name (the embedded server's, which may have moved). The config is rewritten when it differs.
 * @throws AgentComError `invalid_payload` when the directory belongs to another prefix.
 */
export async function ensureAuthDir(
  dir: string,
  settings: AuthDirSettings,
  opts: { updateSettings?: boolean } = {},
): Promise<EnsuredAuthDir> {
  const paths = authDirPaths(dir);
  return withAuthDirLock(paths, async () => {
    let registry = await readRegistry(paths);
    let created = false;
    if (!registry) {
      const hub = createUserKeyPair();
      const admin = createUserKeyPair();
      await writeSeed(paths.hubSeed, hub.seed);
      await writeSeed(paths.adminSeed, admin.seed);
      registry = {
        v: 1,
        prefix: settings.prefix,
        ...settingsOf(settings),
        hub: { publicKey: hub.publicKey },
        admin: { publicKey: admin.publicKey },
        agents: [],
      };
      await writeRegistry(paths, registry);
      created = true;
    } else {
      assertPrefix(paths, registry, settings.prefix);
      if (opts.updateSettings) {
        const { serverName: _, ...rest } = registry;
        const updated: AuthRegistry = { ...rest, ...settingsOf(settings) };
        if (JSON.stringify(updated) !== JSON.stringify(registry)) {
          registry = updated;
          await writeRegistry(paths, registry);
        }
      }
    }
    await writeNatsConfig(paths, registry);
    return { paths, registry, created };
  });
}

function settingsOf(s: AuthDirSettings): Pick<AuthRegistry, 'listen' | 'storeDir' | 'serverName'> {
  return {
    listen: s.listen,
    storeDir: resolve(s.storeDir),
    ...(s.serverName ? { serverName: s.serverName } : {}),
  };
}

/** @throws AgentComError `invalid_payload` when the registry was written for another prefix. */
export function assertPrefix(paths: AuthDirPaths, reg: AuthRegistry, prefix: string): void {
  if (reg.prefix !== prefix)
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `auth directory ${paths.root} is for prefix ${JSON.stringify(reg.prefix)}, not ${JSON.stringify(prefix)}`,
      { path: ['prefix'] },
    );
}

/**
 * Runs `fn` holding the directory's lock file, which names the holder's pid. The file is created
 * with its content in one step (written beside it, then hard-linked into place, which fails if it
 * exists), so a waiter never sees an empty lock. A lock whose process no longer exists is taken
 * over; a live one is waited for up to `timeoutMs`. (Two waiters taking over the same stale lock
 * at the same instant could both proceed; a crash while holding the lock is rare already.)
 * @throws AgentComError `conflict` when another live process keeps the lock.
 */
export async function withAuthDirLock<T>(
  paths: AuthDirPaths,
  fn: () => Promise<T>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  await mkdir(paths.root, { recursive: true, mode: 0o700 });
  const mine = `${paths.lock}.${process.pid}.${randomBytes(6).toString('hex')}`;
  await writeFile(mine, String(process.pid), { mode: 0o600 });
  try {
    for (;;) {
      try {
        await link(mine, paths.lock);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = Number((await readFile(paths.lock, 'utf8').catch(() => '')).trim());
      if (!Number.isInteger(holder) || holder <= 0 || !processExists(holder)) {
        // Stale: its writer died. Remove it and try again.
        await rm(paths.lock, { force: true });
        continue;
      }
      if (Date.now() >= deadline)
        throw new AgentComError(
          ERROR_CODES.CONFLICT,
          `another agentcom process (pid ${holder}) is changing ${paths.root}; try again when it is done`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await rm(mine, { force: true });
  }
  try {
    return await fn();
  } finally {
    await rm(paths.lock, { force: true });
  }
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
