/**
 * @module gateway/routes/agent-relay
 * Agents that speak HTTP only (docs/gateway.md, "HTTP agents"): the gateway relays their hello,
 * heartbeats, goodbye and reports onto the agent's own NATS subjects, and serves its inbox as a
 * mailbox polled with a cursor and acked "up to" a stream sequence. The agent is the one the token
 * is bound to, never one named in a body: `:agentId` must be the token's agent.
 */
import { z } from 'zod';
import type { Bus } from '../../bus/connection.js';
import { PulledMailbox as Mailbox, type PulledMailbox } from '../../bus/mailbox.js';
import { publish } from '../../bus/publish.js';
import { publishCore, requestTyped } from '../../bus/subscribe.js';
import {
  AgentHelloSchema,
  GoodbyeSchema,
  HeartbeatSchema,
  InboxMessageSchema,
  type Report,
  ReportSchema,
} from '../../protocol/agent.js';
import { decodePayload, validatePayload } from '../../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../../protocol/errors.js';
import { randomHex } from '../../protocol/headers.js';
import { AgentIdSchema } from '../../protocol/ids.js';
import { HelloReplySchema } from '../../protocol/registration.js';
import { TokensUsedSchema } from '../../protocol/task.js';
import { qInt } from '../query.js';
import { type RouteDef, route } from '../route.js';

/** seed 002's PATCH actions and the report type each one is. */
const ACTIONS = {
  accept: 'accepted',
  reject: 'rejected',
  progress: 'progress',
  block: 'blocked',
  unblock: 'unblocked',
  complete: 'completed',
  fail: 'failed',
} as const;

export const TaskPatchSchema = z
  .object({
    action: z.enum(Object.keys(ACTIONS) as [keyof typeof ACTIONS, ...(keyof typeof ACTIONS)[]]),
    generation: z.int().nonnegative().describe('The assignment’s generation (from the inbox message).'),
    pct: z.number().min(0).max(100).optional(),
    message: z.string().max(1000).optional(),
    result: z.unknown().optional().describe('With complete: the result (any JSON).'),
    error: z
      .object({ code: z.string().min(1).max(64).optional(), message: z.string().max(4096) })
      .optional()
      .describe('With fail: what went wrong.'),
    retryable: z.boolean().optional(),
    reason: z.string().min(1).max(1000).optional().describe('With reject and block: why.'),
    tokensUsed: TokensUsedSchema.optional(),
  })
  .describe('PATCH /api/tasks/:id: an agent’s step on its assignment, as in seed 002.');
export type TaskPatch = z.infer<typeof TaskPatchSchema>;

/** The report a PATCH stands for; the fields an action does not take are refused by the report schema. */
export function taskPatchToReport(taskId: string, patch: TaskPatch, now = Date.now()): Report {
  const { action, ...rest } = patch;
  const r = validatePayload(ReportSchema, { v: 1, type: ACTIONS[action], taskId, at: now, ...rest }, 'body');
  if (!r.ok) throw AgentComError.fromWire({ ...r.error, path: ['body', ...(r.error.path ?? [])] });
  return r.value;
}

export const ReportAckSchema = z
  .object({
    v: z.literal(1),
    stored: z.literal(true),
    duplicate: z.boolean().describe('The same report was stored before (a retry); it is applied once.'),
  })
  .describe('The report is stored; the hub applies it (or refuses it as stale) in order.');

/**
 * Stores a report on the agent's report subject with the id the SDK uses (`<task>:<generation>:
 * <type>`), so a retried call is stored once. A progress report gets an id of its own each time
 * (there are many per assignment). When the id is taken, the report is not stored again: a retry of
 * this agent's, or (ids are predictable) a message someone else published first, which the SDK
 * answers with a second copy under a random id (agent/client.ts); here the hub's timeouts reclaim
 * the task then, as after any lost report.
 */
export async function relayReport(bus: Bus, agentId: string, report: Report) {
  const subject = bus.names.subjects.agentReport(agentId);
  const base = `${report.taskId}:${report.generation}:${report.type}`;
  const msgId = report.type === 'progress' ? `${base}:${randomHex(8)}` : base;
  const ack = await publish(bus, subject, ReportSchema, report, { msgId, retries: 3 });
  return { v: 1 as const, stored: true as const, duplicate: ack.duplicate };
}

const AgentParams = z.object({ agentId: AgentIdSchema });

const InboxQuery = z.object({
  wait: qInt(0, 30_000).default(0).describe('Wait up to this many ms for a first message (long poll).'),
  max: qInt(1, 100).default(10),
});

export const InboxPollReplySchema = z
  .object({
    v: z.literal(1),
    messages: z.array(
      z.object({
        seq: z.int().positive().describe('Cursor: ack up to it with POST .../inbox/ack.'),
        deliveries: z.int().positive().describe('1 the first time; more when it was not acked in time.'),
        message: InboxMessageSchema,
      }),
    ),
  })
  .describe('Inbox messages in order; each stays until acked (unacked ones come again after the ack wait).');

const AckBody = z.object({ upTo: z.int().positive().describe('Ack every polled message up to this seq.') });
const AckReplySchema = z.object({ v: z.literal(1), acked: z.int().nonnegative() });
const OkSchema = z.object({ v: z.literal(1), ok: z.literal(true) });

/** Polls one agent may have waiting at once on one gateway (each holds a pull request). */
export const MAX_POLLS_PER_AGENT = 4;

/** One mailbox per HTTP agent this gateway serves, opened on first poll. */
export class Mailboxes {
  private readonly open = new Map<string, Promise<PulledMailbox>>();
  private readonly polling = new Map<string, number>();
  constructor(private readonly bus: Bus) {}

  /** Runs `poll` unless the agent already has {@link MAX_POLLS_PER_AGENT} waiting. */
  async limited<T>(agentId: string, poll: () => Promise<T>): Promise<T> {
    const n = this.polling.get(agentId) ?? 0;
    if (n >= MAX_POLLS_PER_AGENT)
      throw new AgentComError(
        ERROR_CODES.RATE_LIMITED,
        `agent ${agentId} has ${n} inbox polls waiting already`,
        { retryAfterMs: 1_000 },
      );
    this.polling.set(agentId, n + 1);
    try {
      return await poll();
    } finally {
      const left = (this.polling.get(agentId) ?? 1) - 1;
      if (left > 0) this.polling.set(agentId, left);
      else this.polling.delete(agentId);
    }
  }
  get(agentId: string): Promise<PulledMailbox> {
    let m = this.open.get(agentId);
    if (!m) {
      const n = this.bus.names;
      m = Mailbox.open(this.bus, n.streams.inbox, n.consumers.agentInbox(agentId));
      this.open.set(agentId, m);
      // A failed open (no hello yet) is not remembered: the next poll tries again.
      m.catch(() => this.open.delete(agentId));
    }
    return m;
  }
  /** Forget an agent's mailbox (after its goodbye). */
  drop(agentId: string): void {
    this.open.delete(agentId);
  }
}

/** The token's agent, which must be the path's. */
function ownAgent(ctx: { params: { agentId: string }; principal: { agentId?: string | undefined } }): string {
  if (ctx.principal.agentId !== undefined && ctx.principal.agentId !== ctx.params.agentId)
    throw new AgentComError(ERROR_CODES.FORBIDDEN, `this token acts as ${ctx.principal.agentId} only`);
  return ctx.params.agentId;
}

export function agentRelayRoutes(mailboxes: Mailboxes): RouteDef[] {
  return [
    route({
      method: 'POST',
      url: '/api/agents/:agentId/hello',
      tag: 'http agents',
      summary:
        'Say hello as the agent (registers it; provisions its inbox). Replies with the heartbeat interval.',
      roles: ['agent'],
      params: AgentParams,
      body: AgentHelloSchema,
      reply: HelloReplySchema,
      errors: [409],
      handler: async (ctx) => {
        const id = ownAgent(ctx);
        const n = ctx.bus.names;
        const reply = await requestTyped(
          ctx.bus,
          n.subjects.agentHello(id),
          AgentHelloSchema,
          ctx.body,
          HelloReplySchema,
        );
        if (!reply.ok) throw AgentComError.fromWire(reply.error);
        return reply;
      },
    }),
    route({
      method: 'POST',
      url: '/api/agents/:agentId/heartbeat',
      tag: 'http agents',
      summary:
        'Heartbeat as the agent (every heartbeatIntervalMs from the hello reply), listing what it holds.',
      roles: ['agent'],
      params: AgentParams,
      body: HeartbeatSchema,
      reply: OkSchema,
      handler: async (ctx) => {
        publishCore(ctx.bus, ctx.bus.names.subjects.agentHeartbeat(ownAgent(ctx)), HeartbeatSchema, ctx.body);
        return { v: 1 as const, ok: true as const };
      },
    }),
    route({
      method: 'POST',
      url: '/api/agents/:agentId/goodbye',
      tag: 'http agents',
      summary: 'Leave: the agent goes offline at once and its tasks are reclaimed.',
      roles: ['agent'],
      params: AgentParams,
      body: GoodbyeSchema,
      reply: OkSchema,
      handler: async (ctx) => {
        const id = ownAgent(ctx);
        publishCore(ctx.bus, ctx.bus.names.subjects.agentGoodbye(id), GoodbyeSchema, ctx.body);
        await ctx.bus.nc.flush();
        mailboxes.drop(id);
        return { v: 1 as const, ok: true as const };
      },
    }),
    route({
      method: 'GET',
      url: '/api/agents/:agentId/inbox',
      tag: 'http agents',
      summary:
        'Poll the agent’s inbox (assignments, cancels, notices) in order; `wait` long-polls. Ack with POST .../inbox/ack.',
      roles: ['agent'],
      params: AgentParams,
      query: InboxQuery,
      reply: InboxPollReplySchema,
      errors: [404],
      handler: async (ctx) => {
        const id = ownAgent(ctx);
        let box: PulledMailbox;
        try {
          box = await mailboxes.get(id);
        } catch {
          throw new AgentComError(ERROR_CODES.NOT_FOUND, `agent ${id} has no inbox yet: say hello first`);
        }
        const got = await mailboxes.limited(id, () => box.poll(ctx.query.max, ctx.query.wait));
        const messages = [];
        for (const m of got) {
          const d = decodePayload(InboxMessageSchema, m.data);
          // The hub wrote it; one that does not decode is skipped (and acked with the next ack past it).
          if (!d.ok) {
            ctx.log.warn({ agent_id: id, seq: m.seq, error: d.error }, 'undecodable inbox message skipped');
            continue;
          }
          messages.push({ seq: m.seq, deliveries: m.deliveries, message: d.value });
        }
        return { v: 1 as const, messages };
      },
    }),
    route({
      method: 'POST',
      url: '/api/agents/:agentId/inbox/ack',
      tag: 'http agents',
      summary: 'Ack every polled inbox message up to `upTo` (idempotent).',
      roles: ['agent'],
      params: AgentParams,
      body: AckBody,
      reply: AckReplySchema,
      handler: async (ctx) => {
        const box = await mailboxes.get(ownAgent(ctx)).catch(() => undefined);
        return { v: 1 as const, acked: box ? await box.ackUpTo(ctx.body.upTo) : 0 };
      },
    }),
    route({
      method: 'POST',
      url: '/api/agents/:agentId/reports',
      tag: 'http agents',
      summary: 'A report on an assignment, exactly as on NATS (docs/protocol.md §10).',
      roles: ['agent'],
      params: AgentParams,
      body: ReportSchema,
      reply: ReportAckSchema,
      status: 202,
      handler: (ctx) => relayReport(ctx.bus, ownAgent(ctx), ctx.body),
    }),
  ];
}
