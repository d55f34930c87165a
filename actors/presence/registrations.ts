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
 */
import type { Bus } from '../../src/bus/connection.js';
import { openKv } from '../../src/bus/kv.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import { type AgentId, AgentIdSchema } from '../../src/protocol/ids.js';
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

function conflict(id: AgentId): AgentComError {
  return new AgentComError(
    ERROR_CODES.CONFLICT,
    `the registration of agent ${id} kept changing (concurrent hellos); try again`,
  );
}
