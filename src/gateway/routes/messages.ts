/**
 * @module gateway/routes/messages
 * Agent messaging over HTTP (docs/gateway.md, "Messaging"): send, history, threads, a mailbox read
 * with a cursor (long-polled) and acked, an agent's status, and channels. Every route forwards to
 * the hub's `msg.*` / `channel.*` endpoints (protocol/message.ts) with the protocol's own schemas.
 *
 * Who the caller is, is the token's to say, never the request's:
 * - an `agent` token calls the agent's own endpoints (`<op>.<agent id>`), exactly as that agent's
 *   NATS connection would: the hub reads the caller from the subject, refuses `as`/`sender` there,
 *   enforces channel membership and visibility, and spends the agent's messaging rate. A request
 *   from an agent token that names another agent (`as`, `?agent=`) is 403 before it is sent;
 * - any other token is a trusted client of the hub. It sends as a human named after the token
 *   (its name when that is a valid sender name, else `http-<token id>`); only an admin token may act
 *   as an agent (`as`, or `?agent=` for a mailbox).
 *
 * Not guaranteed: a mailbox long poll is not cancelled when its client goes away. The read changes
 * nothing (only an ack moves the cursor), so an abandoned poll loses no message; it holds one of
 * the agent's {@link MAX_MESSAGE_POLLS} poll slots on this gateway until the hub answers (at most
 * `wait`). A send whose client went away is still stored: retry it with the same `clientId`.
 */
import { z } from 'zod';
import { request } from '../../bus/service.js';
import { AgentComError, ERROR_CODES } from '../../protocol/errors.js';
import { AgentIdSchema } from '../../protocol/ids.js';
import {
  ChannelCreateRequestSchema,
  ChannelLeaveReplySchema,
  ChannelListReplySchema,
  ChannelMembersReplySchema,
  ChannelNameSchema,
  ChannelReplySchema,
  CursorSchema,
  HumanNameSchema,
  INBOX_WAIT_MAX_MS,
  MessageKindSchema,
  type MessagingOp,
  MsgAckReplySchema,
  MsgHistoryReplySchema,
  MsgInboxReplySchema,
  MsgSendReplySchema,
  MsgSendRequestSchema,
  MsgStatusRequestSchema,
  MsgThreadReplySchema,
  PAGE_MAX,
} from '../../protocol/message.js';
import { qInt } from '../query.js';
import { httpSubmitter, type Principal, type RouteContext, type RouteDef, route } from '../route.js';

/** Long polls one agent may have waiting at once on one gateway (each holds a hub read open). */
export const MAX_MESSAGE_POLLS = 4;

/** The human a non-agent token sends as: its name when that is a valid sender name. */
export function humanSender(p: Pick<Principal, 'name' | 'id'>): string {
  return HumanNameSchema.safeParse(p.name).success ? p.name : httpSubmitter(p.id);
}

/** What the helpers below need of a route's context (the same for every route). */
type Ctx = Pick<RouteContext<unknown, unknown, unknown>, 'principal' | 'call'>;

/**
 * Where a request goes and whom it acts for. An agent token: its own `<op>.<id>` endpoint, and
 * nothing of the request may name another agent. Another token: the trusted `<op>`, with `as` for
 * an admin, or as the human named after the token when `human`.
 */
function caller(
  ctx: Ctx,
  op: MessagingOp,
  as: string | undefined,
  opts: { human?: boolean; path?: (string | number)[] } = {},
): { endpoint: string; extra: Record<string, string> } {
  const p = ctx.principal;
  if (p.role === 'agent') {
    if (!p.agentId) throw new AgentComError(ERROR_CODES.FORBIDDEN, 'this agent token names no agent');
    if (as !== undefined && as !== p.agentId)
      throw new AgentComError(ERROR_CODES.FORBIDDEN, `this token acts as ${p.agentId} only`, {
        ...(opts.path ? { path: opts.path } : {}),
      });
    return { endpoint: `${op}.${p.agentId}`, extra: {} };
  }
  if (as !== undefined) {
    if (p.role !== 'admin')
      throw new AgentComError(ERROR_CODES.FORBIDDEN, 'only an admin token acts as an agent', {
        ...(opts.path ? { path: opts.path } : {}),
      });
    return { endpoint: op, extra: { as } };
  }
  return { endpoint: op, extra: opts.human ? { sender: humanSender(p) } : {} };
}

/** The agent a request about an agent's own state (mailbox, membership) is for. */
function agentFor(ctx: Ctx, named: string | undefined, path: (string | number)[]): string {
  const p = ctx.principal;
  if (p.role === 'agent') {
    if (named !== undefined && named !== p.agentId)
      throw new AgentComError(ERROR_CODES.FORBIDDEN, `this token acts as ${p.agentId} only`, { path });
    return p.agentId as string;
  }
  if (named === undefined)
    throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, 'name the agent (an admin acts for one)', { path });
  return named;
}

/** Calls a messaging endpoint as `caller` said; the request's own `as` is replaced by the caller's. */
function callAs<O>(
  ctx: Ctx,
  who: { endpoint: string; extra: Record<string, string> },
  input: Record<string, unknown>,
  reply: z.ZodType<O>,
): Promise<O> {
  const { as: _as, ...rest } = input;
  return ctx.call(who.endpoint, { ...rest, v: 1, ...who.extra }, reply);
}

const SeqParams = z.object({ seq: qInt(1, Number.MAX_SAFE_INTEGER).describe('A message id (its seq).') });
const NameParams = z.object({ name: ChannelNameSchema });
const AgentParams = z.object({ agentId: AgentIdSchema });

const seqQ = (what: string) => qInt(0, Number.MAX_SAFE_INTEGER).describe(what);
const AsQuery = {
  as: AgentIdSchema.optional().describe('Admin only: read as this agent sees it.'),
};
const PageQuery = {
  from: z
    .string()
    .min(1)
    .max(64)
    .optional()
    .describe('Messages from this sender (an agent id or a human’s name).'),
  thread: qInt(1, Number.MAX_SAFE_INTEGER).optional().describe('Messages of this thread (any of its seqs).'),
  since: seqQ('At or after this time (epoch ms).').optional(),
  until: seqQ('At or before this time (epoch ms).').optional(),
  after: seqQ('Start after this seq (a page’s `next`).').optional(),
  limit: qInt(1, PAGE_MAX).optional(),
  ...AsQuery,
};

const HistoryQuery = z.object({
  kind: MessageKindSchema.optional(),
  channel: ChannelNameSchema.optional(),
  to: AgentIdSchema.optional().describe('Direct messages to this agent.'),
  ...PageQuery,
});

const InboxQuery = z.object({
  agent: AgentIdSchema.optional().describe('Admin only: whose mailbox (an agent token reads its own).'),
  after: seqQ('Read after this seq (default: the acknowledged cursor).').optional(),
  limit: qInt(1, PAGE_MAX).optional(),
  wait: qInt(0, INBOX_WAIT_MAX_MS)
    .default(0)
    .describe('When the mailbox has nothing, wait up to this many ms for a first message (long poll).'),
});

const AckBody = z.strictObject({
  v: z.literal(1),
  upTo: CursorSchema.describe('Everything up to this seq is read (idempotent; never moves the cursor back).'),
  agent: AgentIdSchema.optional().describe('Admin only: whose cursor.'),
});

/** A send: the protocol's request; `sender` is the token's to say, never the body's. */
const SendBody = MsgSendRequestSchema.omit({ sender: true });
/** A channel post: a send whose target is the path's channel. */
const PostBody = MsgSendRequestSchema.omit({ sender: true, to: true, channel: true, broadcast: true });
const StatusBody = MsgStatusRequestSchema.omit({ as: true });
const AsBody = z
  .strictObject({
    v: z.literal(1),
    as: AgentIdSchema.optional().describe('Admin only: the agent (required for an admin token).'),
  })
  .optional();
const InviteBody = z.strictObject({
  v: z.literal(1),
  agent: AgentIdSchema.describe('The agent invited.'),
  as: AgentIdSchema.optional().describe('Admin only: invite as this agent.'),
});
const ChannelHistoryQuery = z.object(PageQuery);

/** Join or leave: an agent token for its agent, an admin for the agent it names with `as`. */
function membership<R>(
  op: 'join' | 'leave',
  summary: string,
  reply: z.ZodType<R>,
  errors: number[],
): RouteDef {
  return route({
    method: 'POST',
    url: `/api/channels/:name/${op}`,
    tag: 'channels',
    summary,
    roles: ['agent'],
    params: NameParams,
    body: AsBody,
    reply,
    errors,
    handler: (ctx) => {
      const agent = agentFor(ctx, ctx.body?.as, ['body', 'as']);
      const who = caller(ctx, `channel.${op}`, ctx.principal.role === 'agent' ? undefined : agent);
      return callAs(ctx, who, { name: ctx.params.name }, reply);
    },
  });
}

/** Messaging routes; `timeoutMs` is the gateway's hub timeout (a long poll waits that much beyond `wait`). */
export function messageRoutes(opts: { timeoutMs: number }): RouteDef[] {
  /** Polls waiting per agent on this gateway. */
  const polling = new Map<string, number>();
  async function limitedPoll<T>(agent: string, poll: () => Promise<T>): Promise<T> {
    const n = polling.get(agent) ?? 0;
    if (n >= MAX_MESSAGE_POLLS)
      throw new AgentComError(
        ERROR_CODES.RATE_LIMITED,
        `agent ${agent} has ${n} mailbox polls waiting already`,
        {
          retryAfterMs: 1_000,
        },
      );
    polling.set(agent, n + 1);
    try {
      return await poll();
    } finally {
      const left = (polling.get(agent) ?? 1) - 1;
      if (left > 0) polling.set(agent, left);
      else polling.delete(agent);
    }
  }

  return [
    route({
      method: 'POST',
      url: '/api/messages',
      tag: 'messages',
      summary:
        'Send a message: exactly one of `to` (direct), `channel`, `broadcast: true`, or only `replyTo`. An agent token sends as its agent; other tokens as the human named after the token (an admin may send as an agent with `as`). `clientId` makes a retry return the first message.',
      roles: ['submitter', 'agent'],
      body: SendBody,
      reply: MsgSendReplySchema,
      status: 201,
      errors: [404],
      handler: (ctx) =>
        callAs(
          ctx,
          caller(ctx, 'msg.send', ctx.body.as, { human: true, path: ['body', 'as'] }),
          ctx.body,
          MsgSendReplySchema,
        ),
    }),
    route({
      method: 'GET',
      url: '/api/messages',
      tag: 'messages',
      summary:
        'Stored messages matching every filter, oldest first, a page at a time (`next` is the `after` of the next page; null at the end). An agent token sees what is visible to its agent.',
      roles: ['read', 'submitter', 'agent'],
      query: HistoryQuery,
      reply: MsgHistoryReplySchema,
      errors: [404],
      handler: (ctx) =>
        callAs(
          ctx,
          caller(ctx, 'msg.history', ctx.query.as, { path: ['query', 'as'] }),
          ctx.query,
          MsgHistoryReplySchema,
        ),
    }),
    route({
      method: 'GET',
      url: '/api/messages/inbox',
      tag: 'messages',
      summary:
        'A page of a mailbox in order (direct messages, broadcasts, posts in its channels; never its own), from the acknowledged cursor or `after`. `wait` long-polls. An agent token reads its own; an admin names the agent with `agent`.',
      roles: ['agent'],
      query: InboxQuery,
      reply: MsgInboxReplySchema,
      handler: async (ctx) => {
        const agent = agentFor(ctx, ctx.query.agent, ['query', 'agent']);
        const who = caller(ctx, 'msg.inbox', ctx.principal.role === 'agent' ? undefined : agent);
        const { wait, agent: _a, ...q } = ctx.query;
        const input = { ...q, v: 1, waitMs: wait, ...who.extra };
        const read = () =>
          // The hub holds the read up to `wait`: this side waits that much longer than any call.
          request(ctx.bus, who.endpoint, input, MsgInboxReplySchema, {
            timeoutMs: opts.timeoutMs + wait,
            correlationId: ctx.correlationId,
          });
        return wait > 0 ? limitedPoll(agent, read) : read();
      },
    }),
    route({
      method: 'POST',
      url: '/api/messages/inbox/ack',
      tag: 'messages',
      summary:
        'Everything in the mailbox up to `upTo` is read: the cursor moves to it (never back; idempotent). An agent token acks its own; an admin names the agent with `agent`.',
      roles: ['agent'],
      body: AckBody,
      reply: MsgAckReplySchema,
      handler: (ctx) => {
        const agent = agentFor(ctx, ctx.body.agent, ['body', 'agent']);
        const who = caller(ctx, 'msg.ack', ctx.principal.role === 'agent' ? undefined : agent);
        return callAs(ctx, who, { upTo: ctx.body.upTo }, MsgAckReplySchema);
      },
    }),
    route({
      method: 'GET',
      url: '/api/messages/:seq/thread',
      tag: 'messages',
      summary: 'The thread a message belongs to: its first message and every reply, in order.',
      roles: ['read', 'submitter', 'agent'],
      params: SeqParams,
      query: z.object(AsQuery),
      reply: MsgThreadReplySchema,
      errors: [404],
      handler: (ctx) =>
        callAs(
          ctx,
          caller(ctx, 'msg.thread', ctx.query.as, { path: ['query', 'as'] }),
          { id: ctx.params.seq },
          MsgThreadReplySchema,
        ),
    }),
    route({
      method: 'POST',
      url: '/api/agents/:agentId/status',
      tag: 'messages',
      summary: 'Set the agent’s status: a presence message everyone can read.',
      roles: ['agent'],
      params: AgentParams,
      body: StatusBody,
      reply: MsgSendReplySchema,
      status: 201,
      handler: (ctx) => {
        // app.ts has refused an agent token naming another agent in the path already.
        const who = caller(
          ctx,
          'msg.status',
          ctx.principal.role === 'agent' ? undefined : ctx.params.agentId,
        );
        return callAs(ctx, who, { status: ctx.body.status }, MsgSendReplySchema);
      },
    }),
    route({
      method: 'GET',
      url: '/api/channels',
      tag: 'channels',
      summary:
        'The channels the caller may see (public ones, and invite-only ones its agent is in or invited to), with member counts and, for an agent, `joined`.',
      roles: ['read', 'submitter', 'agent'],
      query: z.object({
        ...AsQuery,
        after: ChannelNameSchema.optional().describe(
          'Channels named after this one (the last of a page with `more`).',
        ),
      }),
      reply: ChannelListReplySchema,
      handler: (ctx) =>
        callAs(
          ctx,
          caller(ctx, 'channel.list', ctx.query.as, { path: ['query', 'as'] }),
          ctx.query.after !== undefined ? { after: ctx.query.after } : {},
          ChannelListReplySchema,
        ),
    }),
    route({
      method: 'POST',
      url: '/api/channels',
      tag: 'channels',
      summary:
        'Create a channel (`public`, or `invite`-only); an agent creating it is its first member (an admin may create as an agent with `as`).',
      roles: ['agent'],
      body: ChannelCreateRequestSchema,
      reply: ChannelReplySchema,
      status: 201,
      errors: [409],
      handler: (ctx) =>
        callAs(
          ctx,
          caller(ctx, 'channel.create', ctx.body.as, { path: ['body', 'as'] }),
          ctx.body,
          ChannelReplySchema,
        ),
    }),
    route({
      method: 'GET',
      url: '/api/channels/:name',
      tag: 'channels',
      summary: 'A channel and its members.',
      roles: ['read', 'submitter', 'agent'],
      params: NameParams,
      query: z.object(AsQuery),
      reply: ChannelMembersReplySchema,
      errors: [404],
      handler: (ctx) =>
        callAs(
          ctx,
          caller(ctx, 'channel.members', ctx.query.as, { path: ['query', 'as'] }),
          { name: ctx.params.name },
          ChannelMembersReplySchema,
        ),
    }),
    route({
      method: 'DELETE',
      url: '/api/channels/:name',
      tag: 'channels',
      summary:
        'Remove a channel and its memberships (its creator, or an admin); its messages stay in history. `room` cannot be removed.',
      roles: ['agent'],
      params: NameParams,
      reply: ChannelReplySchema,
      errors: [404],
      handler: (ctx) =>
        callAs(ctx, caller(ctx, 'channel.remove', undefined), { name: ctx.params.name }, ChannelReplySchema),
    }),
    membership(
      'join',
      'Join a channel (idempotent; an invite-only one needs an invitation). An admin names the agent with `as`.',
      ChannelReplySchema,
      [404],
    ),
    membership(
      'leave',
      'Leave a channel (idempotent: `left` is false when it was not a member). An admin names the agent with `as`.',
      ChannelLeaveReplySchema,
      [],
    ),
    route({
      method: 'POST',
      url: '/api/channels/:name/invite',
      tag: 'channels',
      summary:
        'Invite an agent to a channel (its creator, its members, an admin); an invite-only channel admits only those invited.',
      roles: ['agent'],
      params: NameParams,
      body: InviteBody,
      reply: ChannelReplySchema,
      errors: [404, 409],
      handler: (ctx) =>
        callAs(
          ctx,
          caller(ctx, 'channel.invite', ctx.body.as, { path: ['body', 'as'] }),
          { name: ctx.params.name, agent: ctx.body.agent },
          ChannelReplySchema,
        ),
    }),
    route({
      method: 'POST',
      url: '/api/channels/:name/messages',
      tag: 'channels',
      summary:
        'Post to a channel (an agent must be a member: 403 otherwise). Other tokens post as the human named after the token.',
      roles: ['submitter', 'agent'],
      params: NameParams,
      body: PostBody,
      reply: MsgSendReplySchema,
      status: 201,
      errors: [404],
      handler: (ctx) =>
        callAs(
          ctx,
          caller(ctx, 'msg.send', ctx.body.as, { human: true, path: ['body', 'as'] }),
          { ...ctx.body, channel: ctx.params.name },
          MsgSendReplySchema,
        ),
    }),
    route({
      method: 'GET',
      url: '/api/channels/:name/messages',
      tag: 'channels',
      summary:
        'A channel’s messages, oldest first, paged with `after` (an agent must be a member: 403 otherwise).',
      roles: ['read', 'submitter', 'agent'],
      params: NameParams,
      query: ChannelHistoryQuery,
      reply: MsgHistoryReplySchema,
      errors: [404],
      handler: (ctx) =>
        callAs(
          ctx,
          caller(ctx, 'msg.history', ctx.query.as, { path: ['query', 'as'] }),
          { ...ctx.query, channel: ctx.params.name },
          MsgHistoryReplySchema,
        ),
    }),
  ];
}
