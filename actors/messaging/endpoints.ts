/**
 * @module messaging/endpoints
 * The `msg.*` and `channel.*` endpoints of the hub's API. Each is served twice: `<op>` for trusted
 * clients (hub and admin users, the gateway), who may act as an agent (`as`) or send as a human
 * (`sender`); and `<op>.<agent id>` for agents, where the caller is read from the subject (the only
 * one its permissions let it publish), so no agent can read another's mailbox or post as another.
 * An agent's requests share one rate (protocol/limits.ts, `messages`). The Messaging actor answers.
 */
import type { z } from 'zod';
import type { LiveLimits } from '../../src/bus/live-limits.js';
import type { AgentcomService } from '../../src/bus/service.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import { rateFor } from '../../src/protocol/limits.js';
import {
  ChannelCreateRequestSchema,
  ChannelInviteRequestSchema,
  ChannelLeaveReplySchema,
  ChannelListReplySchema,
  ChannelListRequestSchema,
  ChannelMembersReplySchema,
  ChannelRefRequestSchema,
  ChannelReplySchema,
  type MessagingOp,
  MsgAckReplySchema,
  MsgAckRequestSchema,
  MsgHistoryReplySchema,
  MsgHistoryRequestSchema,
  MsgInboxReplySchema,
  MsgInboxRequestSchema,
  MsgSendReplySchema,
  MsgSendRequestSchema,
  MsgStatusRequestSchema,
  MsgThreadReplySchema,
  MsgThreadRequestSchema,
} from '../../src/protocol/message.js';
import { type Names, parseMessagingSubject } from '../../src/protocol/subjects.js';
import { call, type Registry } from '../../src/runtime/index.js';
import { KeyedRateLimiter } from '../../src/runtime/rate-limit.js';
import type { Caller, MessagingReply } from './process.js';

/** What every request may carry beside its own fields (the schemas check them). */
type Common = { as?: string; sender?: string };

const OPS: Record<MessagingOp, { input: z.ZodType<Common>; output: z.ZodType; description: string }> = {
  'msg.send': {
    input: MsgSendRequestSchema,
    output: MsgSendReplySchema,
    description: 'Send a direct message, a broadcast, a channel post or a reply.',
  },
  'msg.inbox': {
    input: MsgInboxRequestSchema,
    output: MsgInboxReplySchema,
    description:
      'A page of a mailbox from its cursor (or `after`), optionally waiting for the first message.',
  },
  'msg.ack': {
    input: MsgAckRequestSchema,
    output: MsgAckReplySchema,
    description: 'Move a mailbox cursor forward (idempotent).',
  },
  'msg.history': {
    input: MsgHistoryRequestSchema,
    output: MsgHistoryReplySchema,
    description: 'Stored messages by kind, channel, recipient, sender, thread and time, a page at a time.',
  },
  'msg.thread': {
    input: MsgThreadRequestSchema,
    output: MsgThreadReplySchema,
    description: 'A thread: its first message and every reply, in order.',
  },
  'msg.status': {
    input: MsgStatusRequestSchema,
    output: MsgSendReplySchema,
    description: 'Set an agent’s status (a presence message).',
  },
  'channel.create': {
    input: ChannelCreateRequestSchema,
    output: ChannelReplySchema,
    description: 'Create a channel (public or invite-only); an agent creating it joins it.',
  },
  'channel.list': {
    input: ChannelListRequestSchema,
    output: ChannelListReplySchema,
    description: 'The channels the caller may see, with member counts.',
  },
  'channel.join': {
    input: ChannelRefRequestSchema,
    output: ChannelReplySchema,
    description: 'Join a channel (idempotent; invite-only ones need an invitation).',
  },
  'channel.leave': {
    input: ChannelRefRequestSchema,
    output: ChannelLeaveReplySchema,
    description: 'Leave a channel (idempotent).',
  },
  'channel.invite': {
    input: ChannelInviteRequestSchema,
    output: ChannelReplySchema,
    description: 'Invite an agent to a channel (its creator, its members, trusted clients).',
  },
  'channel.members': {
    input: ChannelRefRequestSchema,
    output: ChannelMembersReplySchema,
    description: 'A channel and its members.',
  },
  'channel.remove': {
    input: ChannelRefRequestSchema,
    output: ChannelReplySchema,
    description:
      'Remove a channel and its memberships (its creator, trusted clients); its messages stay in history.',
  },
};

export function registerMessagingEndpoints(
  svc: AgentcomService,
  opts: { names: Names; registry: Registry; messaging: string; limits: LiveLimits },
): void {
  const { names } = opts;
  const rate = new KeyedRateLimiter((id) => rateFor(opts.limits.current, id, 'messages'));
  const ask = async (op: MessagingOp, req: unknown, caller: Caller): Promise<unknown> => {
    const waitMs = (req as { waitMs?: number }).waitMs ?? 0;
    const r = await call<MessagingReply>(
      opts.messaging,
      { type: 'request', op, req, caller },
      { registry: opts.registry, timeout: 10_000 + waitMs },
    );
    if (!r.ok)
      throw new AgentComError(ERROR_CODES.UNAVAILABLE, `messaging is not available (${r.error.kind})`);
    if (!r.value.ok) throw AgentComError.fromWire(r.value.error);
    return r.value.value;
  };
  for (const op of Object.keys(OPS) as MessagingOp[]) {
    const def = OPS[op];
    svc.addEndpoint(op, {
      input: def.input,
      output: def.output,
      description: `${def.description} Trusted clients; \`as\` acts as an agent.`,
      handler: (req) => {
        const caller: Caller =
          req.as !== undefined ? { agent: req.as } : { trusted: true, sender: req.sender };
        return ask(op, req, caller);
      },
    });
    svc.addEndpoint(`${op}.>`, {
      input: def.input,
      output: def.output,
      description: `${def.description} As the agent the subject names (${op}.<id>).`,
      handler: (req, ctx) => {
        const agent = parseMessagingSubject(names, op, ctx.subject);
        if (!agent)
          throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, `not a ${op} subject: ${ctx.subject}`);
        if (req.as !== undefined || req.sender !== undefined)
          throw new AgentComError(
            ERROR_CODES.FORBIDDEN,
            'an agent acts as itself: `as` and `sender` are for trusted clients',
            { path: [req.as !== undefined ? 'as' : 'sender'] },
          );
        const wait = rate.take(agent, Date.now());
        if (wait > 0)
          throw new AgentComError(ERROR_CODES.RATE_LIMITED, `agent ${agent} is over its messaging rate`, {
            retryAfterMs: wait,
          });
        return ask(op, req, { agent });
      },
    });
  }
}
