/**
 * @module hub/auth/agent-credentials
 * Creating and revoking one agent's credentials in the auth directory: a fresh NKey user (seed in
 * `agent.nk`, 0600), its sidecar config (`sidecar.json`, 0600, pointing at the seed by a relative
 * path so the directory can be copied to the agent's machine as it is), its registry entry, and
 * the server config rewritten to match. All of it happens under the directory's lock.
 *
 * It does not reload the server, verify anything over NATS, or tell the hub: callers do that
 * (reload.ts, verify.ts, the API). A seed never leaves this module except as the return value of
 * {@link revokeAgentCredentials}, which the caller needs to prove the revocation took effect.
 */
import { rm, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { SIDECAR_CONFIG_FILE, type SidecarConfig, SidecarConfigSchema } from '../../agent/sidecar-config.js';
import { createUserKeyPair, readSeedFile } from '../../bus/nkeys.js';
import { AgentComError, ERROR_CODES } from '../../protocol/errors.js';
import type { AgentId, QueueName } from '../../protocol/ids.js';
import { writeFileAtomic } from '../../runtime/atomic-file.js';
import {
  AGENT_SEED_FILE,
  type AuthDirPaths,
  agentDirOf,
  assertPrefix,
  readRegistry,
  withAuthDirLock,
  writeNatsConfig,
  writeRegistry,
  writeSeed,
} from './auth-dir.js';
import { type AuthAgent, type AuthRegistry, findAgent, withAgent, withoutAgent } from './registry.js';

export interface AgentCredentialsInput {
  id: AgentId;
  name: string;
  capabilities: string[];
  queues: QueueName[];
  slots: number;
  canSubmit: boolean;
  /** With canSubmit: the only queues it may submit to (absent: any). */
  submitQueues?: QueueName[];
  /** Pheromone type patterns it may emit and claim (absent: none). */
  emitTypes?: string[];
  claimTypes?: string[];
  /** Where the agent's files go (default `<authDir>/agents/<id>`). */
  outDir?: string;
  /** NATS server URL(s) the sidecar connects to. */
  servers: string | string[];
  prefix: string;
  /** Replace an existing agent with the same id (new keys; the old seed stops working). */
  force?: boolean;
  /** The sidecar's wake command (argv), run when work arrives. */
  wake?: string[];
  now?: number;
}

export interface WrittenFile {
  path: string;
  /** e.g. `0600`. */
  mode: string;
  what: string;
}

export interface CreatedCredentials {
  agent: AuthAgent;
  /** The agent that was replaced (`force`), if any. */
  replaced: AuthAgent | undefined;
  seedFile: string;
  sidecarFile: string;
  files: WrittenFile[];
}

const MODE = 0o600;
const modeText = (m: number) => `0${m.toString(8)}`;

/**
 * Creates the agent's credentials and files.
 * @throws AgentComError `not_found` without a registry, `conflict` for an existing id without
 *   `force`, `invalid_payload` for a prefix the directory was not made for.
 */
export async function createAgentCredentials(
  paths: AuthDirPaths,
  input: AgentCredentialsInput,
): Promise<CreatedCredentials> {
  return withAuthDirLock(paths, async () => {
    const reg = await requireRegistry(paths);
    assertPrefix(paths, reg, input.prefix);
    const existing = findAgent(reg, input.id);
    if (existing && !input.force)
      throw new AgentComError(
        ERROR_CODES.CONFLICT,
        `agent ${input.id} already has credentials (created ${new Date(existing.createdAt).toISOString()}); pass --force to replace them, or remove it first`,
        { path: ['id'] },
      );
    const dir = resolve(input.outDir ?? paths.agentDir(input.id));
    const keys = createUserKeyPair();
    const seedFile = join(dir, AGENT_SEED_FILE);
    const sidecarFile = join(dir, SIDECAR_CONFIG_FILE);
    const sidecar: SidecarConfig = SidecarConfigSchema.parse({
      v: 1,
      agentId: input.id,
      nats: { servers: input.servers, prefix: input.prefix, nkeySeedFile: AGENT_SEED_FILE },
      hello: {
        name: input.name,
        capabilities: input.capabilities,
        queues: input.queues,
        slots: input.slots,
      },
      ...(input.wake ? { wake: { command: input.wake } } : {}),
    });
    const agent: AuthAgent = {
      id: input.id,
      name: input.name,
      capabilities: input.capabilities,
      queues: input.queues,
      slots: input.slots,
      canSubmit: input.canSubmit,
      ...(input.canSubmit && input.submitQueues?.length ? { submitQueues: input.submitQueues } : {}),
      ...(input.emitTypes?.length ? { emitTypes: input.emitTypes } : {}),
      ...(input.claimTypes?.length ? { claimTypes: input.claimTypes } : {}),
      publicKey: keys.publicKey,
      dir: recordedDir(paths, dir),
      createdAt: input.now ?? Date.now(),
    };
    const next = withAgent(reg, agent);
    // Seed and sidecar config first: if we die here, the registry still describes the old state.
    await writeSeed(seedFile, keys.seed);
    await writeFileAtomic(sidecarFile, `${JSON.stringify(sidecar, null, 2)}\n`, { mode: MODE });
    await writeRegistry(paths, next);
    await writeNatsConfig(paths, next);
    // A replaced agent whose files lived elsewhere: its old seed is dead, do not leave it around.
    if (existing && agentDirOf(paths, existing.dir) !== dir)
      await rm(join(agentDirOf(paths, existing.dir), AGENT_SEED_FILE), { force: true });
    return {
      agent,
      replaced: existing,
      seedFile,
      sidecarFile,
      files: [
        { path: seedFile, mode: modeText(MODE), what: 'NKey seed (secret)' },
        { path: sidecarFile, mode: modeText(MODE), what: 'sidecar config' },
        { path: paths.registry, mode: modeText(MODE), what: 'auth registry' },
        { path: paths.config, mode: modeText(MODE), what: 'nats-server config' },
      ],
    };
  });
}

export interface RevokedCredentials {
  agent: AuthAgent;
  /**
   * The revoked seed, read before its file was deleted, so the caller can prove the server now
   * refuses it; null when the file was already gone. Never print or log it.
   */
  seed: string | null;
  seedFile: string;
  files: WrittenFile[];
}

/**
 * Removes the agent from the registry and the server config and deletes its seed file (the
 * sidecar config and work directory are left: they hold no secret and may hold results).
 * @returns null when the registry has no such agent.
 */
export async function revokeAgentCredentials(
  paths: AuthDirPaths,
  id: string,
): Promise<RevokedCredentials | null> {
  return withAuthDirLock(paths, async () => {
    const reg = await readRegistry(paths);
    const agent = reg ? findAgent(reg, id) : undefined;
    if (!reg || !agent) return null;
    const seedFile = join(agentDirOf(paths, agent.dir), AGENT_SEED_FILE);
    const seed = await readSeedFile(seedFile).catch(() => null);
    const next = withoutAgent(reg, id);
    await writeRegistry(paths, next);
    await writeNatsConfig(paths, next);
    await rm(seedFile, { force: true });
    return {
      agent,
      seed,
      seedFile,
      files: [
        { path: paths.registry, mode: modeText(MODE), what: 'auth registry' },
        { path: paths.config, mode: modeText(MODE), what: 'nats-server config' },
      ],
    };
  });
}

async function requireRegistry(paths: AuthDirPaths): Promise<AuthRegistry> {
  const reg = await readRegistry(paths);
  if (!reg)
    throw new AgentComError(
      ERROR_CODES.NOT_FOUND,
      `no auth registry in ${paths.root}: start the hub with --auth-dir ${paths.root} once to create it`,
    );
  return reg;
}

/** Inside the auth directory: relative (the directory can move); elsewhere: absolute. */
function recordedDir(paths: AuthDirPaths, dir: string): string {
  const rel = relative(paths.root, dir);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : dir;
}

/** Whether the agent's seed file exists (reported by `agent list` as credentials present or missing). */
export async function hasSeedFile(paths: AuthDirPaths, agent: AuthAgent): Promise<boolean> {
  return stat(join(agentDirOf(paths, agent.dir), AGENT_SEED_FILE)).then(
    (s) => s.isFile(),
    () => false,
  );
}
