/**
 * @module hub/auth/verify
 * Proves over NATS that an agent's credentials do what the config says, by connecting as the
 * agent (its seed, its reply-inbox prefix):
 *
 * - granted: it connects, may read its own inbox durable's info (a "consumer not found" answer
 *   counts: the request was allowed, the hub creates the durable at the first hello), and is
 *   refused account-wide JetStream info (`$JS.API.INFO`), which only the hub and admin may ask.
 * - revoked: the server refuses the connection.
 *
 * A reload is applied by the server asynchronously, so both retry until a deadline. Outcomes are
 * values; nothing here prints or logs the seed.
 */
import { pino } from 'pino';
import { type Bus, connectBus } from '../../bus/connection.js';
import { agentInboxPrefix } from '../../protocol/permissions.js';

export interface AgentLogin {
  servers: string | string[];
  prefix: string;
  agentId: string;
  seed: string;
  /** Per attempt, ms (default 2000). */
  timeoutMs?: number;
}

export type AccessCheck =
  | { ok: true; allowed: string; refused: string }
  | { ok: false; stage: 'connect' | 'allowed' | 'refused'; message: string };

/** `accepted`: the server let the agent in; otherwise the attempt said nothing either way. */
export type RevocationCheck =
  | { ok: true; message: string }
  | { ok: false; accepted: boolean; message: string };

const isPermissionError = (err: unknown) =>
  err instanceof Error &&
  (err.name === 'PermissionViolationError' || /permissions violation/i.test(err.message));
const isAuthError = (err: unknown) =>
  err instanceof Error && /authorization|authentication|auth.*(violation|expired)/i.test(err.message);
const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function connectAs(login: AgentLogin): Promise<Bus> {
  const timeoutMs = login.timeoutMs ?? 2_000;
  return connectBus({
    servers: login.servers,
    prefix: login.prefix,
    name: `agentcom-verify-${login.agentId}`,
    nkeySeed: login.seed,
    inboxPrefix: agentInboxPrefix(login.agentId),
    waitOnFirstConnect: false,
    maxReconnectAttempts: 0,
    timeoutMs,
    apiTimeoutMs: timeoutMs,
    logger: pino({ level: 'silent' }),
  });
}

/** One attempt: connect as the agent, do one allowed and one forbidden thing. */
export async function checkAgentAccess(login: AgentLogin): Promise<AccessCheck> {
  let bus: Bus;
  try {
    bus = await connectAs(login);
  } catch (err) {
    return { ok: false, stage: 'connect', message: `cannot connect as ${login.agentId}: ${messageOf(err)}` };
  }
  try {
    const stream = bus.names.streams.inbox;
    const durable = bus.names.consumers.agentInbox(login.agentId);
    const allowed = `info of its inbox durable ${stream}/${durable}`;
    try {
      await bus.jsm.consumers.info(stream, durable);
    } catch (err) {
      if (isPermissionError(err) || !/not found/i.test(messageOf(err)))
        return { ok: false, stage: 'allowed', message: `${allowed} was refused: ${messageOf(err)}` };
    }
    const refused = 'account JetStream info ($JS.API.INFO)';
    try {
      await bus.jsm.getAccountInfo();
      return {
        ok: false,
        stage: 'refused',
        message: `${refused} was answered: the server does not enforce the generated permissions (is it running with this auth directory's nats-server.conf?)`,
      };
    } catch (err) {
      if (!isPermissionError(err))
        return { ok: false, stage: 'refused', message: `${refused} failed oddly: ${messageOf(err)}` };
    }
    return { ok: true, allowed, refused };
  } finally {
    await bus.drain().catch(() => undefined);
  }
}

/** One attempt: the server must refuse the agent's connection. */
export async function checkAgentRevoked(login: AgentLogin): Promise<RevocationCheck> {
  try {
    const bus = await connectAs(login);
    await bus.drain().catch(() => undefined);
    return { ok: false, accepted: true, message: `${login.agentId} can still connect` };
  } catch (err) {
    if (isAuthError(err))
      return { ok: true, message: `the server refuses ${login.agentId}: ${messageOf(err)}` };
    return { ok: false, accepted: false, message: `could not tell: ${messageOf(err)}` };
  }
}

/** Repeats `attempt` until it returns ok or `withinMs` passes; returns the last outcome. */
export async function retryCheck<T extends { ok: boolean }>(
  attempt: () => Promise<T>,
  withinMs = 5_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const r = await attempt();
    if (r.ok || Date.now() >= deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
