/**
 * @module cli/agent
 * `agentcom agent add|list|remove`: onboarding agents (NATS credentials, sidecar config) and
 * revoking them, against the auth directory (`--auth-dir`, env AGENTCOM_AUTH_DIR, default
 * deploy/nats) and the running hub.
 *
 * - add: checks its flags (exit 2) and that the id is new (exit 4 unless --force), reaches NATS as
 *   the admin (exit 69 when it cannot; nothing is written then), writes the agent's seed, sidecar
 *   config, registry entry and the server config, reloads the server, and proves the credentials
 *   work by connecting as the agent: one allowed request answered, one forbidden refused
 *   (exit 1 when not). A re-added id is restored at the hub (removed agents may not hello).
 * - list: the hub's view (online, state, tasks) merged with the registry's credentials.
 * - remove: tells the hub (it forgets the agent and reclaims its tasks at once), removes the user
 *   from the registry and config, deletes the seed, reloads (the server closes the agent's live
 *   connections) and proves the agent can no longer connect. Unknown id: exit 3.
 *
 * Seeds are written 0600 and never printed or logged.
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { z } from 'zod';
import { AGENTCOM_BIN_DIR } from '../agent/install-dir.js';
import { sidecarUnit, sidecarUnitName, userUnitDir } from '../agent/sidecar/service-unit.js';
import type { Bus } from '../bus/connection.js';
import { HubClient } from '../bus/hub-client.js';
import { readSeedFile } from '../bus/nkeys.js';
import {
  createAgentCredentials,
  hasSeedFile,
  revokeAgentCredentials,
} from '../hub/auth/agent-credentials.js';
import {
  type AuthDirPaths,
  assertPrefix,
  authDirPaths,
  DEFAULT_AUTH_DIR,
  ensureAuthDir,
  listenAddressOf,
  readRegistry,
} from '../hub/auth/auth-dir.js';
import { type AuthAgent, findAgent } from '../hub/auth/registry.js';
import { type ReloadResult, reloadNatsServer } from '../hub/auth/reload.js';
import { type AccessCheck, checkAgentAccess, checkAgentRevoked, retryCheck } from '../hub/auth/verify.js';
import { SLOTS_MAX } from '../protocol/agent.js';
import type { AgentListReply, AgentRemoveReply } from '../protocol/api.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { PheromonePatternSchema } from '../protocol/field.js';
import { AgentIdSchema, CapabilitySchema, type QueueName, QueueNameSchema } from '../protocol/ids.js';
import { writeFileAtomic } from '../runtime/atomic-file.js';
import {
  type ConnectionFlags,
  findAuthDir,
  type ResolvedConnection,
  resolveConnection,
  serverRequiresAuth,
  withBus,
  withConnectionFlags,
} from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

/** The hub's default embedded store (src/hub/config.ts dataDir `.agentcom`, plus `nats`). */
const DEFAULT_STORE_DIR = '.agentcom/nats';

/** How long to keep trying to see a reload take effect (the server applies it asynchronously). */
const RELOAD_SETTLE_MS = 10_000;
/** Per verification attempt, so that several fit in RELOAD_SETTLE_MS on a slow machine. */
const attemptTimeout = (conn: ResolvedConnection) => Math.min(conn.timeoutMs, 3_000);

export function registerAgentCommands(program: Command): void {
  const agent = program
    .command('agent')
    .description('add, list and remove agents (credentials and sidecar config)');

  withConnectionFlags(
    agent
      .command('add')
      .description('create an agent: NATS credentials, sidecar config; reload the server and verify')
      .requiredOption('--id <id>', 'agent id (1-64 of A-Z a-z 0-9 _ -)')
      .requiredOption('--name <name>', 'display name')
      .requiredOption('--capabilities <list>', "comma-separated capabilities it offers ('' for none)")
      .option('--queues <list>', 'comma-separated queues it serves (default: default)')
      .option('--slots <n>', `tasks it may hold at once, 1-${SLOTS_MAX} (default 1)`)
      .option('--can-submit', 'allow it to submit tasks')
      .option(
        '--submit-queues <list>',
        'allow it to submit tasks to these queues only (inter-agent triggers, e.g. action); implies --can-submit',
      )
      .option(
        '--emit <patterns>',
        "pheromone types it may emit into the field, comma separated (e.g. 'request.>,error.*'; '*' for all)",
      )
      .option('--claim <patterns>', 'pheromone types it may claim (and release), comma separated')
      .option('--out <dir>', 'directory for its agent.nk and sidecar.json (default <auth-dir>/agents/<id>)')
      .option(
        '--wake <command>',
        'the sidecar\'s wake command, run when work arrives: words split on spaces, or a JSON array (e.g. "openclaw cron wake --mode now")',
      )
      .option('--force', 'replace the credentials of an existing agent (the old seed stops working)')
      .option(
        '--service',
        'also install its sidecar as a systemd user service (written and enabled; the commands are printed where systemd is absent)',
      ),
  ).action((flags: AddFlags) => runCommand('agent add', flags, (out) => addAgent(flags, out)));

  withConnectionFlags(
    agent.command('list').description('agents the hub knows (online, state, tasks) and who has credentials'),
  ).action((flags: ConnectionFlags) => runCommand('agent list', flags, (out) => listAgents(flags, out)));

  withConnectionFlags(
    agent
      .command('restore')
      .description(
        'let a suspended or removed agent connect and hello again now (a suspension otherwise ends by itself)',
      )
      .requiredOption('--id <id>', 'agent id'),
  ).action((flags: RemoveFlags) => runCommand('agent restore', flags, (out) => restoreAgent(flags, out)));

  withConnectionFlags(
    agent
      .command('remove')
      .description('revoke an agent: the hub forgets it and reclaims its tasks, its credentials stop working')
      .requiredOption('--id <id>', 'agent id'),
  ).action((flags: RemoveFlags) => runCommand('agent remove', flags, (out) => removeAgent(flags, out)));
}

// --- Flags ---

interface AddFlags extends ConnectionFlags {
  id: string;
  name: string;
  capabilities: string;
  queues?: string;
  slots?: string;
  canSubmit?: boolean;
  submitQueues?: string;
  emit?: string;
  claim?: string;
  out?: string;
  wake?: string;
  force?: boolean;
  service?: boolean;
}

interface RemoveFlags extends ConnectionFlags {
  id: string;
}

const AddInputSchema = z.object({
  id: AgentIdSchema,
  name: z.string().trim().min(1, 'must not be empty').max(100),
  capabilities: z.array(CapabilitySchema).max(64),
  queues: z.array(QueueNameSchema).min(1).max(32),
  slots: z.coerce.number().int().min(1).max(SLOTS_MAX),
  canSubmit: z.boolean(),
  submitQueues: z.array(QueueNameSchema).min(1, 'name at least one queue').max(32).optional(),
  emit: z.array(PheromonePatternSchema).min(1, 'name at least one type pattern').max(32).optional(),
  claim: z.array(PheromonePatternSchema).min(1, 'name at least one type pattern').max(32).optional(),
  out: z.string().min(1).optional(),
  wake: z.array(z.string().min(1)).min(1, 'must name a command').optional(),
  force: z.boolean(),
});
type AddInput = z.infer<typeof AddInputSchema>;

const list = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Checks `value`; the first issue names the flag. @throws AgentComError `invalid_payload`. */
function checkFlags<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = String(issue?.path[0] ?? 'input');
  throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, `${flagName(key)}: ${issue?.message ?? 'invalid'}`, {
    path: [key],
  });
}

function parseAddFlags(flags: AddFlags): AddInput {
  return checkFlags(AddInputSchema, {
    id: flags.id,
    name: flags.name,
    capabilities: list(flags.capabilities),
    queues: flags.queues === undefined ? ['default'] : list(flags.queues),
    slots: flags.slots ?? '1',
    // --submit-queues implies --can-submit, for those queues only.
    canSubmit: flags.canSubmit === true || flags.submitQueues !== undefined,
    submitQueues: flags.submitQueues === undefined ? undefined : list(flags.submitQueues),
    emit: flags.emit === undefined ? undefined : list(flags.emit),
    claim: flags.claim === undefined ? undefined : list(flags.claim),
    out: flags.out,
    wake: flags.wake === undefined ? undefined : wakeArgv(flags.wake),
    force: flags.force === true,
  });
}

/** `--wake`: a JSON array of words, or words separated by spaces (no shell: nothing is expanded). */
function wakeArgv(text: string): unknown {
  const t = text.trim();
  if (!t.startsWith('[')) return t.split(/\s+/).filter(Boolean);
  try {
    return JSON.parse(t);
  } catch {
    return 'not a JSON array';
  }
}

/**
 * The auth directory: the flag, the env, else the default, which `list` and `remove` use only when
 * it exists (a deployment without authentication has none).
 */
function resolveAuthDir(flags: ConnectionFlags, useDefault: 'always' | 'if-present'): string | undefined {
  const given = findAuthDir(flags);
  if (given) return given;
  if (useDefault === 'always') return DEFAULT_AUTH_DIR;
  return existsSync(authDirPaths(DEFAULT_AUTH_DIR).registry) ? DEFAULT_AUTH_DIR : undefined;
}

/** The admin connection; before the directory has an admin seed, connect without one. */
function adminConnection(flags: ConnectionFlags, authDir: string | undefined): ResolvedConnection {
  const conn = resolveConnection({ ...flags, ...(authDir ? { authDir } : {}) });
  if (authDir && conn.nkeyFile === authDirPaths(authDir).adminSeed && !existsSync(conn.nkeyFile))
    return { ...conn, nkeyFile: undefined };
  return conn;
}

type HubOutcome<T> = { ok: true; value: T } | { ok: false; error: AgentComError };

async function askHub<T>(fn: () => Promise<T>): Promise<HubOutcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (err instanceof AgentComError) return { ok: false, error: err };
    throw err;
  }
}

const hubSilent = (e: AgentComError) => e.code === ERROR_CODES.UNAVAILABLE || e.code === ERROR_CODES.TIMEOUT;

function reloadLine(r: ReloadResult): string {
  return r.ok ? `reloaded nats-server (pid ${r.pid})` : `did not reload nats-server: ${r.message}`;
}

// --- add ---

async function addAgent(flags: AddFlags, out: Output): Promise<ExitCode | undefined> {
  const input = parseAddFlags(flags);
  const authDir = resolveAuthDir(flags, 'always') as string;
  const paths = authDirPaths(authDir);
  const conn = adminConnection(flags, authDir);
  // Refuse before touching anything: the directory's prefix, an existing id.
  const before = await readRegistry(paths);
  if (before) {
    assertPrefix(paths, before, conn.prefix);
    const existing = findAgent(before, input.id);
    if (existing && !input.force)
      throw new AgentComError(
        ERROR_CODES.CONFLICT,
        `agent ${input.id} already exists in ${paths.root}; pass --force to replace its credentials (the old seed stops working), or \`agentcom agent remove --id ${input.id}\` first`,
        { path: ['id'] },
      );
  }
  // Credentials on a server that lets anyone in would protect nothing: refuse before writing any.
  if (!(await serverRequiresAuth(conn)))
    throw new AgentComError(
      ERROR_CODES.INVALID_STATE,
      `the server at ${conn.servers} lets any client in: its hub runs without authentication, so agent credentials would not be checked. Stop the hub and start it with \`agentcom hub --auth-dir ${authDir}\` (it creates the directory and keeps the tasks it has), then add agents; nothing was written`,
      { path: ['authDir'] },
    );
  return withBus(conn, async (bus: Bus) => {
    out.progress(`adding agent ${input.id}`);
    // A directory made here is for a server not started with it yet: it proposes the hub's
    // default store, and the verification below says so when the server does not use it.
    const ensured = await ensureAuthDir(authDir, {
      prefix: conn.prefix,
      listen: listenAddressOf(conn.servers),
      storeDir: DEFAULT_STORE_DIR,
    });
    const created = await createAgentCredentials(paths, {
      id: input.id,
      name: input.name,
      capabilities: input.capabilities,
      queues: input.queues,
      slots: input.slots,
      canSubmit: input.canSubmit,
      ...(input.submitQueues ? { submitQueues: input.submitQueues as QueueName[] } : {}),
      ...(input.emit ? { emitTypes: input.emit } : {}),
      ...(input.claim ? { claimTypes: input.claim } : {}),
      servers: conn.servers,
      prefix: conn.prefix,
      force: input.force,
      ...(input.out ? { outDir: input.out } : {}),
      ...(input.wake ? { wake: input.wake } : {}),
    });
    const reload = await reloadNatsServer(paths.pidFile);
    out.progress(`verifying ${input.id}`);
    const seed = await readSeedFile(created.seedFile);
    const login = {
      servers: conn.servers,
      prefix: conn.prefix,
      agentId: input.id,
      seed,
      timeoutMs: attemptTimeout(conn),
    };
    const access: AccessCheck = await retryCheck(
      () => checkAgentAccess(login),
      reload.ok ? RELOAD_SETTLE_MS : 0,
    );
    // A removed agent's registration refuses its hellos; clear it so the new credentials are usable.
    const restore = await askHub(() => new HubClient(bus, conn.timeoutMs).restoreAgent(input.id));
    const sidecarCommand = `agentcom sidecar --config ${created.sidecarFile}`;
    const service = flags.service ? await installSidecarService(input.id, created.sidecarFile) : undefined;
    const a = created.agent;
    out.result(
      {
        v: 1,
        agent: a,
        authDir: paths.root,
        createdAuthDir: ensured.created,
        replaced: created.replaced !== undefined,
        files: created.files,
        reload,
        verified: access,
        hub: restore.ok ? { restored: restore.value.restored } : { error: restore.error.toWire() },
        sidecarCommand,
        ...(service ? { service } : {}),
      },
      [
        `${created.replaced ? 'replaced the credentials of' : 'added'} agent ${a.id} (${a.name}): capabilities ${a.capabilities.join(',') || '(none)'}; queues ${a.queues.join(',')}; slots ${a.slots}; may submit tasks: ${a.canSubmit ? (a.submitQueues ? `to ${a.submitQueues.join(',')}` : 'yes') : 'no'}`,
        ...(ensured.created ? [`  created the auth directory ${paths.root} (hub.nk, admin.nk)`] : []),
        ...created.files.map((f) => `  wrote ${f.path} (${f.mode}): ${f.what}`),
        `  ${reloadLine(reload)}`,
        access.ok
          ? `  verified on ${conn.servers}: ${a.id} connects; ${access.allowed}: allowed; ${access.refused}: refused`
          : `  NOT verified: ${access.message}`,
        restore.ok
          ? restore.value.restored
            ? `  the hub had ${a.id} as removed: restored, it may hello again`
            : ''
          : `  the hub did not answer (${restore.error.message}); if ${a.id} was removed before, run this again once the hub is up`,
        ...(service ? serviceLines(service) : []),
        service?.enabled ? '' : `start its sidecar with: ${sidecarCommand}`,
      ].filter(Boolean),
    );
    if (access.ok) return undefined;
    out.error(
      new AgentComError(
        ERROR_CODES.FORBIDDEN,
        `the credentials of ${a.id} were written but do not work as intended yet: ${access.message}`,
      ),
    );
    return EXIT.FAILURE;
  });
}

// --- add --service ---

const execFileAsync = promisify(execFile);

interface ServiceInstall {
  unitFile: string;
  /** Enabled and started with `systemctl --user`. */
  enabled: boolean;
  /** Why it was not enabled (systemd absent, or systemctl failed). */
  reason?: string;
  /** What to run where systemd is available. */
  commands: string[];
}

/** Writes the sidecar's user unit and enables it, or says how where systemd is absent. */
async function installSidecarService(agentId: string, sidecarFile: string): Promise<ServiceInstall> {
  if (!AGENTCOM_BIN_DIR)
    throw new AgentComError(
      ERROR_CODES.INTERNAL,
      'cannot find this installation of agentcom (bin/agentcom.js)',
    );
  const name = sidecarUnitName(agentId);
  const unitFile = join(userUnitDir(), name);
  await writeFileAtomic(
    unitFile,
    sidecarUnit({
      agentId,
      node: process.execPath,
      agentcomJs: join(AGENTCOM_BIN_DIR, 'agentcom.js'),
      sidecarConfig: resolve(sidecarFile),
    }),
    { mode: 0o644 },
  );
  const commands = ['systemctl --user daemon-reload', `systemctl --user enable --now ${name}`];
  const systemctl = (...args: string[]) =>
    execFileAsync('systemctl', ['--user', ...args], { timeout: 15_000 });
  try {
    await systemctl('show-environment');
  } catch (err) {
    return { unitFile, enabled: false, reason: `no systemd user manager here (${firstLine(err)})`, commands };
  }
  try {
    await systemctl('daemon-reload');
    await systemctl('enable', '--now', name);
    return { unitFile, enabled: true, commands };
  } catch (err) {
    return { unitFile, enabled: false, reason: `systemctl failed: ${firstLine(err)}`, commands };
  }
}

function serviceLines(s: ServiceInstall): string[] {
  return s.enabled
    ? [`  wrote ${s.unitFile} and enabled it: the sidecar runs now and at every login`]
    : [
        `  wrote ${s.unitFile}; not enabled: ${s.reason}`,
        `  on a machine with systemd: ${s.commands.join(' && ')} (and loginctl enable-linger to start it at boot)`,
      ];
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: string; message?: string };
  return (e.stderr?.trim() || e.message || String(err)).split('\n')[0]!;
}

// --- list ---

interface AgentRow {
  id: string;
  name: string | null;
  online: boolean;
  state: string;
  tasks: string[];
  completed: number;
  /** `yes` (registry entry and seed), `seed missing`, `none` (unknown to the registry), or null (no auth dir). */
  credentials: 'yes' | 'seed missing' | 'none' | null;
  canSubmit: boolean | null;
  /** With canSubmit: the only queues it may submit to (null: any, or unknown). */
  submitQueues: string[] | null;
  /** Suspended now for invalid traffic (docs/security.md, "Suspension"). */
  suspended: { until: number; reason: string; count: number } | null;
}

async function listAgents(flags: ConnectionFlags, out: Output): Promise<ExitCode | undefined> {
  const authDir = resolveAuthDir(flags, 'if-present');
  const conn = adminConnection(flags, authDir);
  const paths = authDir ? authDirPaths(authDir) : undefined;
  const registry = paths ? await readRegistry(paths) : null;
  const reply = await withBus(conn, async (bus: Bus) => {
    const r = await askHub(() => new HubClient(bus, conn.timeoutMs).agents());
    if (!r.ok) throw explainHubError(r.error, conn);
    return r.value;
  });
  const rows = await mergeAgents(reply, registry?.agents ?? null, paths);
  out.result({ v: 1, authDir: paths?.root ?? null, agents: rows }, agentTable(rows));
  return undefined;
}

async function mergeAgents(
  reply: AgentListReply,
  registered: AuthAgent[] | null,
  paths: AuthDirPaths | undefined,
): Promise<AgentRow[]> {
  const byId = new Map<string, AgentRow>();
  for (const a of reply.agents)
    byId.set(a.id, {
      id: a.id,
      name: a.hello.name ?? null,
      online: a.online,
      state: a.state,
      tasks: a.tasks,
      completed: a.completed,
      credentials: registered ? 'none' : null,
      canSubmit: null,
      submitQueues: null,
      suspended: null,
    });
  // A suspended agent is not among the registered ones while it lasts: shown all the same.
  for (const s of reply.suspended ?? []) {
    const row = byId.get(s.agentId) ?? {
      id: s.agentId,
      name: null,
      online: false,
      state: 'suspended',
      tasks: [],
      completed: 0,
      credentials: registered ? 'none' : null,
      canSubmit: null,
      submitQueues: null,
      suspended: null,
    };
    row.state = 'suspended';
    row.suspended = { until: s.until, reason: s.reason, count: s.count };
    byId.set(s.agentId, row);
  }
  for (const r of registered ?? []) {
    const credentials = paths && (await hasSeedFile(paths, r)) ? 'yes' : 'seed missing';
    const row = byId.get(r.id);
    // The name the operator gave `agent add --name` wins over the one the agent says in its hello.
    const submitQueues = r.submitQueues ?? null;
    if (row) Object.assign(row, { name: r.name, credentials, canSubmit: r.canSubmit, submitQueues });
    else
      byId.set(r.id, {
        id: r.id,
        name: r.name,
        online: false,
        state: 'never connected',
        tasks: [],
        completed: 0,
        credentials,
        canSubmit: r.canSubmit,
        submitQueues,
        suspended: null,
      });
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function agentTable(rows: AgentRow[]): string[] {
  if (!rows.length) return ['no agents'];
  const suspended = rows.filter((r) => r.suspended);
  const header = ['ID', 'NAME', 'ONLINE', 'STATE', 'TASKS', 'DONE', 'CREDENTIALS', 'SUBMIT'];
  const body = rows.map((r) => [
    r.id,
    r.name ?? '-',
    r.online ? 'yes' : 'no',
    r.state,
    r.tasks.length ? r.tasks.join(',') : '-',
    String(r.completed),
    r.credentials ?? '-',
    r.canSubmit === null ? '-' : r.canSubmit ? (r.submitQueues?.join(',') ?? 'yes') : 'no',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [
    line(header),
    ...body.map(line),
    ...suspended.map(
      (r) =>
        `${r.id}: suspended until ${new Date(r.suspended!.until).toISOString()} (suspension ${r.suspended!.count}): ${r.suspended!.reason}; \`agentcom agent restore --id ${r.id}\` ends it now`,
    ),
  ];
}

// --- restore ---

async function restoreAgent(flags: RemoveFlags, out: Output): Promise<ExitCode | undefined> {
  const id = checkFlags(z.object({ id: AgentIdSchema }), { id: flags.id }).id;
  const conn = adminConnection(flags, resolveAuthDir(flags, 'if-present'));
  const reply = await withBus(conn, async (bus: Bus) => {
    const r = await askHub(() => new HubClient(bus, conn.timeoutMs).restoreAgent(id));
    if (!r.ok) throw explainHubError(r.error, conn);
    return r.value;
  });
  out.result(reply, [
    reply.unsuspended
      ? `${id}: suspension ended; it may connect and hello again now`
      : reply.restored
        ? `${id}: restored; it may hello again`
        : `${id} was neither suspended nor removed: nothing to do`,
  ]);
  return undefined;
}

function explainHubError(err: AgentComError, conn: ResolvedConnection): AgentComError {
  if (!hubSilent(err)) return err;
  return new AgentComError(
    ERROR_CODES.UNAVAILABLE,
    `no hub answers on NATS at ${conn.servers}, prefix ${conn.prefix} (${err.message}); is the hub running (\`agentcom hub\`), and is --prefix right?`,
    { cause: err },
  );
}

// --- remove ---

async function removeAgent(flags: RemoveFlags, out: Output): Promise<ExitCode | undefined> {
  const id = checkFlags(z.object({ id: AgentIdSchema }), { id: flags.id }).id;
  const authDir = resolveAuthDir(flags, 'if-present');
  const conn = adminConnection(flags, authDir);
  const paths = authDir ? authDirPaths(authDir) : undefined;
  return withBus(conn, async (bus: Bus) => {
    const registry = paths ? await readRegistry(paths) : null;
    const known = registry ? findAgent(registry, id) : undefined;
    // The hub first: it forgets the agent and reclaims its work at once, and refuses its hellos,
    // so the agent cannot re-register in the moment before its credentials stop working.
    const hub = await askHub<AgentRemoveReply>(() => new HubClient(bus, conn.timeoutMs).removeAgent(id));
    const hubNotFound = !hub.ok && hub.error.code === ERROR_CODES.NOT_FOUND;
    if (!hub.ok && !hubNotFound && !hubSilent(hub.error)) throw hub.error;
    if (!known) {
      if (hubNotFound)
        throw new AgentComError(
          ERROR_CODES.NOT_FOUND,
          `unknown agent id ${id}: the hub has no such agent${paths ? ` and ${paths.root} has no credentials for it` : ''}`,
          { path: ['id'] },
        );
      if (!hub.ok) throw explainHubError(hub.error, conn);
    }
    const revoked = paths && known ? await revokeAgentCredentials(paths, id) : null;
    const reload = revoked && paths ? await reloadNatsServer(paths.pidFile) : null;
    const login = revoked?.seed
      ? {
          servers: conn.servers,
          prefix: conn.prefix,
          agentId: id,
          seed: revoked.seed,
          timeoutMs: attemptTimeout(conn),
        }
      : null;
    const refused = login
      ? await retryCheck(() => checkAgentRevoked(login), reload?.ok ? RELOAD_SETTLE_MS : 0)
      : null;
    out.result(
      {
        v: 1,
        id,
        hub: hub.ok
          ? { removed: true, alreadyRemoved: hub.value.alreadyRemoved, tasks: hub.value.tasks }
          : hubNotFound
            ? { removed: false, registered: false }
            : { removed: false, error: hub.error.toWire() },
        credentials: revoked
          ? { revoked: true, seedFile: revoked.seedFile, seedDeleted: true, files: revoked.files }
          : { revoked: false },
        reload,
        verified: refused,
      },
      [
        hub.ok
          ? hub.value.alreadyRemoved
            ? `the hub had ${id} as removed already`
            : `the hub forgot ${id}${hub.value.tasks.length ? ` and reclaims its tasks ${hub.value.tasks.join(', ')}` : ' (it held no tasks)'}`
          : hubNotFound
            ? `the hub has no registration for ${id} (it never connected)`
            : `the hub did not answer (${hub.error.message}); it will notice ${id} is gone when its heartbeats stop`,
        ...(revoked
          ? [
              `removed ${id} from ${revoked.files.map((f) => f.path).join(' and ')}`,
              `deleted its seed ${revoked.seedFile}`,
            ]
          : [`no credentials for ${id} in ${paths?.root ?? '(no auth directory)'}`]),
        ...(reload ? [reloadLine(reload)] : []),
        ...(refused
          ? [refused.ok ? `verified: ${refused.message}` : `NOT verified: ${refused.message}`]
          : revoked
            ? ['not verified: its seed file was already gone']
            : []),
      ],
    );
    if (refused && !refused.ok) {
      out.error(
        refused.accepted
          ? new AgentComError(
              ERROR_CODES.INVALID_STATE,
              `${id} was removed from the config but the server still accepts it; reload the server (nats-server --signal reload=<pid>)`,
            )
          : new AgentComError(
              ERROR_CODES.TIMEOUT,
              `${id} was removed from the config, but whether the server refuses it could not be confirmed (${refused.message})`,
            ),
      );
      return EXIT.FAILURE;
    }
    return undefined;
  });
}
