/**
 * @module bus/messaging-client
 * The hub's messaging endpoints (docs/protocol.md §13, protocol/message.ts) as typed calls, for the
 * agent SDK, the sidecar, the CLI and the gateway. On an agent's own connection (`agentId` given)
 * every call goes to the endpoint's `<op>.<agent id>` subject, the only one its permissions allow,
 * and the hub reads the caller from it. A trusted connection (hub, admin) calls `<op>` and may act
 * as an agent (`as`) or, for sends, name a human sender (`sender`).
 *
 * Errors arrive as AgentComError with the hub's code: `not_found` (an unknown agent, channel or
 * message), `forbidden` (a channel it is not in), `payload_too_large`, `rate_limited`...
 */
import type { z } from 'zod';
import {
  type ChannelInfo,
  ChannelLeaveReplySchema,
  ChannelListReplySchema,
  ChannelMembersReplySchema,
  ChannelReplySchema,
  type Message,
  type MessageKind,
  type MessagingOp,
  MsgAckReplySchema,
  type MsgHistoryReply,
  MsgHistoryReplySchema,
  type MsgInboxReply,
  MsgInboxReplySchema,
  type MsgSendReply,
  MsgSendReplySchema,
  type MsgThreadReply,
  MsgThreadReplySchema,
} from '../protocol/message.js';
import type { Bus } from './connection.js';
import { request } from './service.js';

/** What a trusted client may add to a call: the agent it acts as. */
export interface ActAs {
  as?: string;
}

/** A send (protocol/message.ts MsgSendRequestSchema; ids as plain strings, the hub checks them). */
export interface SendInput extends ActAs {
  to?: string;
  channel?: string;
  broadcast?: true;
  replyTo?: number;
  title?: string;
  body: string;
  data?: Record<string, unknown>;
  clientId?: string;
  sender?: string;
}

/** A history query (MsgHistoryRequestSchema). */
export interface HistoryQuery extends ActAs {
  kind?: MessageKind;
  channel?: string;
  to?: string;
  from?: string;
  thread?: number;
  since?: number;
  until?: number;
  after?: number;
  limit?: number;
}

export class MessagingClient {
  /** `agentId`: this connection is that agent's own (its subjects, its permissions). */
  constructor(
    readonly bus: Bus,
    private readonly opts: { agentId?: string; timeoutMs?: number } = {},
  ) {}

  private call<O>(op: MessagingOp, input: object, schema: z.ZodType<O>, timeoutMs?: number): Promise<O> {
    const endpoint = this.opts.agentId ? `${op}.${this.opts.agentId}` : op;
    return request(this.bus, endpoint, { v: 1, ...input }, schema, {
      timeoutMs: timeoutMs ?? this.opts.timeoutMs ?? 5_000,
    });
  }

  /** Send a message; with the same `clientId` again (a retry), the first one comes back. */
  send(req: SendInput): Promise<MsgSendReply> {
    return this.call('msg.send', req, MsgSendReplySchema);
  }
  /**
   * A page of the mailbox after `after` (default: the acknowledged cursor); with `waitMs`, waits
   * that long for a first message when there is none.
   */
  inbox(req: { after?: number; limit?: number; waitMs?: number } & ActAs = {}): Promise<MsgInboxReply> {
    const t = (this.opts.timeoutMs ?? 5_000) + (req.waitMs ?? 0);
    return this.call('msg.inbox', req, MsgInboxReplySchema, t);
  }
  /** Everything up to `upTo` is read (idempotent); the cursor after it. */
  async ack(upTo: number, actAs: ActAs = {}): Promise<number> {
    return (await this.call('msg.ack', { upTo, ...actAs }, MsgAckReplySchema)).cursor;
  }
  history(req: HistoryQuery = {}): Promise<MsgHistoryReply> {
    return this.call('msg.history', req, MsgHistoryReplySchema);
  }
  thread(id: number, actAs: ActAs = {}): Promise<MsgThreadReply> {
    return this.call('msg.thread', { id, ...actAs }, MsgThreadReplySchema);
  }
  /** Set the agent's status (a presence message). */
  async status(status: string, actAs: ActAs = {}): Promise<Message> {
    return (await this.call('msg.status', { status, ...actAs }, MsgSendReplySchema)).message;
  }

  async channelCreate(
    req: { name: string; visibility?: 'public' | 'invite'; description?: string } & ActAs,
  ): Promise<ChannelInfo> {
    return (await this.call('channel.create', req, ChannelReplySchema)).channel;
  }
  /** Every channel the caller may see, by name (the pages of a long list followed to the end). */
  async channelList(actAs: ActAs = {}): Promise<ChannelInfo[]> {
    const out: ChannelInfo[] = [];
    for (let after: string | undefined; ; ) {
      const page = await this.call(
        'channel.list',
        { ...actAs, ...(after !== undefined ? { after } : {}) },
        ChannelListReplySchema,
      );
      out.push(...page.channels);
      if (!page.more || page.channels.length === 0) return out;
      after = page.channels.at(-1)!.name;
    }
  }
  async channelJoin(name: string, actAs: ActAs = {}): Promise<ChannelInfo> {
    return (await this.call('channel.join', { name, ...actAs }, ChannelReplySchema)).channel;
  }
  /** False when it was not a member. */
  async channelLeave(name: string, actAs: ActAs = {}): Promise<boolean> {
    return (await this.call('channel.leave', { name, ...actAs }, ChannelLeaveReplySchema)).left;
  }
  async channelInvite(name: string, agent: string, actAs: ActAs = {}): Promise<ChannelInfo> {
    return (await this.call('channel.invite', { name, agent, ...actAs }, ChannelReplySchema)).channel;
  }
  channelMembers(name: string, actAs: ActAs = {}) {
    return this.call('channel.members', { name, ...actAs }, ChannelMembersReplySchema);
  }
  async channelRemove(name: string, actAs: ActAs = {}): Promise<ChannelInfo> {
    return (await this.call('channel.remove', { name, ...actAs }, ChannelReplySchema)).channel;
  }
}
