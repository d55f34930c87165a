/**
 * @module hub/auth/registry
 * The auth registry (`agents.json` in the auth directory): the deployment's settings (prefix,
 * where its server listens and stores) and every user the server knows: the hub, the admin, and
 * each agent with what it announces and whether it may submit tasks. It holds public keys only;
 * seeds live in their own 0600 files. Pure: schema, edits returning a new registry, and the
 * translation into the server config's user list (with each agent's permissions).
 */
import { z } from 'zod';
import { SLOTS_MAX } from '../../protocol/agent.js';
import { PheromonePatternSchema } from '../../protocol/field.js';
import { AgentIdSchema, CapabilitySchema, QueueNameSchema } from '../../protocol/ids.js';
import { agentPermissions } from '../../protocol/permissions.js';
import { names } from '../../protocol/subjects.js';
import type { NatsConfigInput, NatsConfigUser } from './nats-config.js';

const PublicKeySchema = z
  .string()
  .regex(/^U[A-Z2-7]{55}$/, 'must be a public user NKey (U...)')
  .describe('Public NKey of the user (not a secret).');

export const AuthAgentSchema = z
  .object({
    id: AgentIdSchema,
    name: z.string().min(1).max(100).describe('Display name (announced in the hello).'),
    capabilities: z.array(CapabilitySchema).max(64).describe('Capabilities the agent offers.'),
    queues: z.array(QueueNameSchema).min(1).max(32).describe('Named queues it serves.'),
    slots: z.int().min(1).max(SLOTS_MAX).describe('Tasks it may hold at once.'),
    canSubmit: z.boolean().describe('Whether its credentials allow submitting tasks.'),
    submitQueues: z
      .array(QueueNameSchema)
      .min(1)
      .max(32)
      .optional()
      .describe('With canSubmit: the only queues it may submit to (absent: any).'),
    emitTypes: z
      .array(PheromonePatternSchema)
      .max(32)
      .optional()
      .describe('Pheromone type patterns it may emit (absent: none).'),
    claimTypes: z
      .array(PheromonePatternSchema)
      .max(32)
      .optional()
      .describe('Pheromone type patterns it may claim (absent: none).'),
    publicKey: PublicKeySchema,
    dir: z.string().min(1).describe('Directory holding its agent.nk and sidecar.json.'),
    createdAt: z.int().nonnegative().describe('When its current credentials were created (epoch ms).'),
    suspendedUntil: z
      .int()
      .nonnegative()
      .optional()
      .describe(
        'Suspended for invalid traffic until then (epoch ms): left out of the server config, so its connections are refused (written by the hub, docs/security.md, "Suspension").',
      ),
  })
  .describe('An agent with NATS credentials.');
export type AuthAgent = z.infer<typeof AuthAgentSchema>;

export const AuthRegistrySchema = z
  .object({
    v: z.literal(1),
    prefix: z.string().min(1).max(32).describe('Subject prefix the permissions are written for.'),
    listen: z.string().min(1).describe('host:port of the server (flags of an embedded server win).'),
    storeDir: z.string().min(1).describe('JetStream store directory of the server (absolute).'),
    serverName: z.string().min(1).max(64).optional().describe('Server name (the hub’s embedded server).'),
    hub: z.object({ publicKey: PublicKeySchema }).describe('The hub: full access.'),
    admin: z.object({ publicKey: PublicKeySchema }).describe('The admin CLI: full access.'),
    agents: z.array(AuthAgentSchema),
  })
  .describe('agentcom auth registry (agents.json).');
export type AuthRegistry = z.infer<typeof AuthRegistrySchema>;

export function findAgent(reg: AuthRegistry, id: string): AuthAgent | undefined {
  return reg.agents.find((a) => a.id === id);
}

/** The registry with `agent` added, or replacing the agent with the same id (kept sorted by id). */
export function withAgent(reg: AuthRegistry, agent: AuthAgent): AuthRegistry {
  const agents = [...reg.agents.filter((a) => a.id !== agent.id), agent].sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
  );
  return { ...reg, agents };
}

export function withoutAgent(reg: AuthRegistry, id: string): AuthRegistry {
  return { ...reg, agents: reg.agents.filter((a) => a.id !== id) };
}

/**
 * The registry with each agent's `suspendedUntil` set from `active` (agent -> until; only those
 * in force at `now`) and cleared for the others; null when nothing changes.
 */
export function withSuspensions(
  reg: AuthRegistry,
  active: ReadonlyMap<string, number>,
  now: number,
): AuthRegistry | null {
  let changed = false;
  const agents = reg.agents.map((a) => {
    const until = active.get(a.id);
    const want = until !== undefined && until > now ? until : undefined;
    if (a.suspendedUntil === want) return a;
    changed = true;
    const { suspendedUntil: _, ...rest } = a;
    return want === undefined ? rest : { ...rest, suspendedUntil: want };
  });
  return changed ? { ...reg, agents } : null;
}

/**
 * The server config for this registry. The hub and the admin get full access within the account:
 * the hub provisions streams, consumes every agent's reports and writes every inbox; the admin CLI
 * inspects and repairs all of it. Agents get only their own subjects (protocol/permissions.ts).
 * An agent suspended at `now` has no user: the server refuses it (and drops its connections on
 * reload) until a config written after the suspension ends.
 */
export function natsConfigInput(reg: AuthRegistry, pidFile: string, now = Date.now()): NatsConfigInput {
  const n = names(reg.prefix);
  const users: NatsConfigUser[] = [
    { nkey: reg.hub.publicKey, label: 'hub' },
    { nkey: reg.admin.publicKey, label: 'admin' },
    ...reg.agents
      .filter((a) => !(a.suspendedUntil !== undefined && a.suspendedUntil > now))
      .map((a) => ({
        nkey: a.publicKey,
        label: `agent ${a.id}`,
        permissions: agentPermissions(n, a.id, {
          canSubmit: a.canSubmit,
          ...(a.submitQueues ? { submitQueues: a.submitQueues } : {}),
          ...(a.emitTypes ? { emitTypes: a.emitTypes } : {}),
          ...(a.claimTypes ? { claimTypes: a.claimTypes } : {}),
        }),
      })),
  ];
  return {
    listen: reg.listen,
    storeDir: reg.storeDir,
    ...(reg.serverName ? { serverName: reg.serverName } : {}),
    pidFile,
    users,
  };
}
