/**
 * @module presence/registrations
 * Writes to the agents bucket on behalf of an operator (the API's `agent.remove` and
 * `agent.restore`). The bucket is the presence actor's, so the format stays here; every hub's
 * presence follows the bucket (KV watch) and acts on these writes itself:
 *
 * - remove: the registration gets `removed: true`. Presence forgets the agent at once (reported
 *   `agent_down`, so the scheduler reclaims its tasks) and refuses its hellos from then on.
 * - restore: a removed registration is deleted, so the agent's next hello registers it afresh. It
 *   is not rewritten without the flag, which would announce an agent that may not be connected.
 *
 * Both are compare-and-set against concurrent hellos, and idempotent.
 *
 * Suspensions (docs/security.md, "Suspension") are kept apart, in the config bucket (`suspended.<id>`), so an
 * agent that never said hello can be suspended too; presence writes them when the violation
 * tracker says so, restore deletes them, and every hub follows them (KV watch).
 */
import type { Bus } from '../../src/bus/connection.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import { type AgentId, AgentIdSchema } from '../../src/protocol/ids.js';
import { type Suspension, SuspensionSchema, suspensionKey } from '../../src/protocol/limits.js';
import { AgentRegistrationSchema } from '../../src/protocol/registration.js';

const ATTEMPTS = 5;

export type RemoveResult = { found: false } | { found: true; alreadyRemoved: boolean };

/** Marks the agent removed. `found: false` when the hub never registered it. */
export async function markAgentRemoved(bus: Bus, agentId: AgentId | string): Promise<RemoveResult> {
  const id = AgentIdSchema.parse(agentId);
  const kv = await openKv(bus, bus.names.buckets.agents, AgentRegistrationSchema);
  for (let i = 0; i < ATTEMPTS; i++) {
    const got = await kv.get(id);
    if (!got) return { found: false };
    if (got.value.removed) return { found: true, alreadyRemoved: true };
    const r = await kv.update(id, { ...got.value, removed: true }, got.revision);
    if (r.ok) return { found: true, alreadyRemoved: false };
  }
  throw conflict(id);
}

/** Deletes a removed registration; returns whether there was one. */
export async function clearAgentRemoved(bus: Bus, agentId: AgentId | string): Promise<boolean> {
  const id = AgentIdSchema.parse(agentId);
  const kv = await openKv(bus, bus.names.buckets.agents, AgentRegistrationSchema);
  for (let i = 0; i < ATTEMPTS; i++) {
    const got = await kv.get(id);
    if (!got?.value.removed) return false;
    const r = await kv.delete(id, { expectedRevision: got.revision });
    if (r.ok) return true;
  }
  throw conflict(id);
}

export function openSuspensions(bus: Bus): Promise<TypedKv<Suspension>> {
  return openKv(bus, bus.names.buckets.config, SuspensionSchema);
}

/** A suspension that ended this long ago no longer makes the next one longer. */
const SUSPENSION_MEMORY_MS = 24 * 3_600_000;

/**
 * Suspends the agent from `now`, for longer each time (violations.ts suspensionMs) unless its last
 * suspension ended more than a day ago.
 */
export async function suspendAgent(
  kv: TypedKv<Suspension>,
  agentId: AgentId,
  reason: string,
  now: number,
  lengthMs: (count: number) => number,
): Promise<Suspension> {
  const prev = await kv.get(suspensionKey(agentId));
  const recent = prev !== null && now - prev.value.until < SUSPENSION_MEMORY_MS;
  const count = recent ? prev.value.count + 1 : 1;
  const s: Suspension = {
    v: 1,
    agentId,
    at: now,
    until: now + lengthMs(count),
    reason: reason.slice(0, 500),
    count,
  };
  await kv.put(suspensionKey(agentId), s);
  return s;
}

/**
 * Suspends the agent by an operator's decision for `forMs`, or keeps a longer suspension already
 * in force (its count is not raised: the automatic doubling answers the agent's traffic only).
 */
export async function suspendAgentFor(
  bus: Bus,
  agentId: AgentId,
  forMs: number,
  reason: string,
): Promise<Suspension> {
  const kv = await openSuspensions(bus);
  const now = Date.now();
  const prev = (await kv.get(suspensionKey(agentId)))?.value;
  const s: Suspension = {
    v: 1,
    agentId,
    at: now,
    until: Math.max(now + forMs, prev && prev.until > now ? prev.until : 0),
    reason: reason.slice(0, 500),
    count: prev?.count ?? 1,
  };
  await kv.put(suspensionKey(agentId), s);
  return s;
}

/** Ends the agent's suspension (and forgets its count); returns whether it was suspended now. */
export async function clearSuspension(bus: Bus, agentId: AgentId | string): Promise<boolean> {
  const id = AgentIdSchema.parse(agentId);
  const kv = await openSuspensions(bus);
  const got = await kv.get(suspensionKey(id));
  if (!got) return false;
  await kv.delete(suspensionKey(id));
  return got.value.until > Date.now();
}

function conflict(id: AgentId): AgentComError {
  return new AgentComError(
    ERROR_CODES.CONFLICT,
    `the registration of agent ${id} kept changing (concurrent hellos); try again`,
  );
}
