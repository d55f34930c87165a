/**
 * @module message
 * Agent messaging (seed 004's v1 layer): direct messages, broadcasts, channels (the `room` among
 * them, for humans and agents), threads, presence events, history, and each agent's mailbox read
 * from a cursor it acknowledges.
 *
 * Every message is one record in the `<P>_MESSAGES` stream, written only by the hub holding the
 * lease, on `<p>.msg.<kind>.<target>` (subjects.ts): `direct.<agent>`, `broadcast`,
 * `channel.<name>`, `presence.<agent>`. Its stream sequence is its id (`seq`): replies name their
 * parent by it, and a mailbox cursor is one. The sender is the hub's to write: taken from the
 * request subject (`<p>.api.msg.send.<agent id>`, which only that agent may publish) or, for
 * trusted clients, from what they say they are, never from what an agent writes in a payload.
 * Imports zod only.
 */
import { z } from 'zod';
import { AgentIdSchema } from './ids.js';
import { EpochMsSchema } from './task.js';

/** The most a message's text, title and data may take together, as JSON characters. */
export const MESSAGE_MAX_JSON = 32 * 1024;
/** The built-in channel where humans and agents talk (the original dashboard's chat room). */
export const ROOM_CHANNEL = 'room';
/** Longest page of a mailbox or history read. */
export const PAGE_MAX = 1_000;
/** Longest a mailbox read may wait for a first message, ms. */
export const INBOX_WAIT_MAX_MS = 30_000;

export const MESSAGE_KINDS = ['direct', 'broadcast', 'channel', 'presence'] as const;
export const MessageKindSchema = z
  .enum(MESSAGE_KINDS)
  .describe(
    '`direct`: to one agent; `broadcast`: to every agent; `channel`: to a channel’s members; `presence`: an agent joined, left or set its status (written by the hub).',
  );
export type MessageKind = z.infer<typeof MessageKindSchema>;

export const ChannelNameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,63}$/,
    'channel name must be 1-64 of a-z 0-9 _ - (starting with a letter or digit)',
  )
  .describe('A channel, without its `#`: `reviews`, `room`.');
export type ChannelName = z.infer<typeof ChannelNameSchema>;

/** A human's name as a sender (operators, HTTP users): a token like an agent id. */
export const HumanNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'a sender name must be 1-64 characters of A-Z a-z 0-9 _ -')
  .describe('A human sender’s name (trusted clients only).');

export const SenderKindSchema = z
  .enum(['agent', 'human', 'hub'])
  .describe('What the sender is: an agent (its id), a human (a name a trusted client gave), or the hub.');
export type SenderKind = z.infer<typeof SenderKindSchema>;

export const MessageSeqSchema = z.int().min(1).describe('A message id: its stream sequence.');
export const CursorSchema = z.int().min(0).describe('A stream sequence; 0 is before the first message.');

export const PresenceEventSchema = z
  .strictObject({
    event: z.enum(['join', 'leave', 'status']),
    status: z.string().max(200).optional().describe('The status an agent set (with `status`).'),
    reason: z
      .string()
      .max(200)
      .optional()
      .describe('Why it left (with `leave`): missed heartbeats, goodbye.'),
  })
  .describe('What a presence message announces.');

const TitleSchema = z.string().max(200).describe('An optional title, at most 200 characters.');
const BodySchema = z.string().max(MESSAGE_MAX_JSON).describe('The text.');
const DataSchema = z
  .record(z.string(), z.unknown())
  .describe('Optional structured content (a JSON object) beside the text.');

export const MessageSchema = z
  .object({
    v: z.literal(1),
    seq: MessageSeqSchema,
    kind: MessageKindSchema,
    from: z.string().min(1).max(64).describe('The sender: an agent id, a human’s name, or `hub`.'),
    fromKind: SenderKindSchema,
    to: AgentIdSchema.optional().describe(
      'The recipient of a direct message (a presence message: its agent).',
    ),
    channel: ChannelNameSchema.optional().describe('The channel of a channel message.'),
    title: TitleSchema.optional(),
    body: BodySchema,
    data: DataSchema.optional(),
    replyTo: MessageSeqSchema.optional().describe('The message this one answers.'),
    threadId: MessageSeqSchema.optional().describe(
      'The first message of its thread (absent on a thread’s root).',
    ),
    presence: PresenceEventSchema.optional(),
    at: EpochMsSchema.describe('When the hub stored it.'),
  })
  .describe('A message as stored and as every read returns it.');
export type Message = z.infer<typeof MessageSchema>;

/** A message before the stream gives it its sequence (what the hub stores). */
export const StoredMessageSchema = MessageSchema.omit({ seq: true });
export type StoredMessage = z.infer<typeof StoredMessageSchema>;

/** What trusted clients may add to any request: whom they act for. Refused on an agent's subject. */
const actAs = {
  as: AgentIdSchema.optional().describe(
    'Trusted clients only: act as this agent (its mailbox, its channels, its name as sender).',
  ),
};

export const MsgSendRequestSchema = z
  .strictObject({
    v: z.literal(1),
    to: AgentIdSchema.optional().describe('A direct message to this agent.'),
    channel: ChannelNameSchema.optional().describe('A post to this channel (the sender must be a member).'),
    broadcast: z.literal(true).optional().describe('A message to every agent.'),
    replyTo: MessageSeqSchema.optional().describe(
      'Answer this message, in its thread and its conversation (the target may then be left out).',
    ),
    title: TitleSchema.optional(),
    body: BodySchema,
    data: DataSchema.optional(),
    clientId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .optional()
      .describe('Idempotency key: a send repeated with it (within 2 minutes) returns the first, not a copy.'),
    sender: HumanNameSchema.optional().describe(
      'Trusted clients only: send as this human (default `operator`).',
    ),
    ...actAs,
  })
  .describe('Send a message: exactly one of `to`, `channel`, `broadcast`, or only `replyTo`.');
export type MsgSendRequest = z.infer<typeof MsgSendRequestSchema>;

export const MsgSendReplySchema = z.object({
  v: z.literal(1),
  message: MessageSchema,
  duplicate: z.boolean().describe('True when `clientId` named a message sent before: that one is returned.'),
});
export type MsgSendReply = z.infer<typeof MsgSendReplySchema>;

export const MsgInboxRequestSchema = z
  .strictObject({
    v: z.literal(1),
    after: CursorSchema.optional().describe('Read after this sequence (default: the acknowledged cursor).'),
    limit: z.int().min(1).max(PAGE_MAX).default(100),
    waitMs: z
      .int()
      .min(0)
      .max(INBOX_WAIT_MAX_MS)
      .default(0)
      .describe('When nothing is there, wait this long for a first message (a long poll).'),
    ...actAs,
  })
  .describe(
    'Read a mailbox in order: direct messages to the agent, broadcasts, and posts in its channels since it joined (not its own).',
  );
export type MsgInboxRequest = z.infer<typeof MsgInboxRequestSchema>;

export const MsgInboxReplySchema = z.object({
  v: z.literal(1),
  messages: z.array(MessageSchema),
  cursor: CursorSchema.describe('The acknowledged cursor.'),
  more: z.boolean().describe('True when more messages follow the last one returned.'),
});
export type MsgInboxReply = z.infer<typeof MsgInboxReplySchema>;

export const MsgAckRequestSchema = z
  .strictObject({
    v: z.literal(1),
    upTo: CursorSchema.describe(
      'Everything up to this sequence is read. Idempotent; a lower one than the cursor changes nothing.',
    ),
    ...actAs,
  })
  .describe('Move a mailbox cursor forward.');
export const MsgAckReplySchema = z.object({ v: z.literal(1), cursor: CursorSchema });

export const MsgHistoryRequestSchema = z
  .strictObject({
    v: z.literal(1),
    kind: MessageKindSchema.optional(),
    channel: ChannelNameSchema.optional(),
    to: AgentIdSchema.optional().describe('Direct messages to this agent.'),
    from: z.string().min(1).max(64).optional().describe('Messages from this sender.'),
    thread: MessageSeqSchema.optional().describe('Messages of this thread (its root and replies).'),
    since: EpochMsSchema.optional(),
    until: EpochMsSchema.optional(),
    after: CursorSchema.optional().describe('Start after this sequence (a page’s `next`).'),
    limit: z.int().min(1).max(PAGE_MAX).default(100),
    ...actAs,
  })
  .describe('Stored messages matching every filter given, oldest first, a page at a time.');
export type MsgHistoryRequest = z.infer<typeof MsgHistoryRequestSchema>;

export const MsgHistoryReplySchema = z.object({
  v: z.literal(1),
  messages: z.array(MessageSchema),
  next: CursorSchema.nullable().describe(
    'Pass as `after` for the next page; null at the end. A page may be short (or empty) and still have a next: a read scans a bounded number of stored messages.',
  ),
});
export type MsgHistoryReply = z.infer<typeof MsgHistoryReplySchema>;

export const MsgThreadRequestSchema = z
  .strictObject({ v: z.literal(1), id: MessageSeqSchema.describe('Any message of the thread.'), ...actAs })
  .describe('A whole thread: its root and every reply, in order.');
export const MsgThreadReplySchema = z.object({
  v: z.literal(1),
  root: MessageSchema,
  replies: z.array(MessageSchema),
  more: z.boolean().describe('True when the thread has more replies than one read returns (1,000).'),
});
export type MsgThreadReply = z.infer<typeof MsgThreadReplySchema>;

export const MsgStatusRequestSchema = z
  .strictObject({ v: z.literal(1), status: z.string().max(200), ...actAs })
  .describe('Set the agent’s status: a presence message everyone can read.');

export const CHANNEL_VISIBILITY = ['public', 'invite'] as const;
/** Invitations one channel holds at most. */
export const CHANNEL_INVITES_MAX = 1_000;
/** Channels one agent may have created at once, and belong to at once. */
export const CHANNELS_CREATED_MAX = 100;
export const CHANNELS_JOINED_MAX = 1_000;
export const ChannelSchema = z
  .object({
    v: z.literal(1),
    name: ChannelNameSchema,
    visibility: z
      .enum(CHANNEL_VISIBILITY)
      .describe('`public`: anyone may join; `invite`: only those invited.'),
    description: z.string().max(500),
    createdBy: z.string().min(1).max(64),
    createdByKind: SenderKindSchema.describe(
      'Whether `createdBy` is an agent (its creator rights), a human or the hub.',
    ),
    createdAt: EpochMsSchema,
    createdSeq: CursorSchema.describe(
      'The stream’s last sequence when it was created: posts at or before it belong to an earlier channel of this name, which agents do not see.',
    ),
    invited: z
      .array(AgentIdSchema)
      .max(CHANNEL_INVITES_MAX)
      .describe('Agents invited to an invite-only channel.'),
  })
  .describe('A channel as stored (`channel.<name>` in the messaging bucket).');
export type Channel = z.infer<typeof ChannelSchema>;

export const MembershipSchema = z
  .object({
    v: z.literal(1),
    channel: ChannelNameSchema,
    agent: AgentIdSchema,
    joinedAt: EpochMsSchema,
    joinedSeq: CursorSchema.describe(
      'The stream’s last sequence when it joined: its mailbox has the posts after.',
    ),
  })
  .describe('An agent’s membership (`member.<channel>.<agent>` in the messaging bucket).');
export type Membership = z.infer<typeof MembershipSchema>;

export const ChannelInfoSchema = ChannelSchema.extend({
  invited: ChannelSchema.shape.invited.optional().describe('Agents invited (left out of lists).'),
  members: z.int().min(0),
  joined: z.boolean().optional().describe('Whether the caller (an agent) is a member.'),
});
export type ChannelInfo = z.infer<typeof ChannelInfoSchema>;

export const ChannelCreateRequestSchema = z.strictObject({
  v: z.literal(1),
  name: ChannelNameSchema,
  visibility: z.enum(CHANNEL_VISIBILITY).default('public'),
  description: z.string().max(500).default(''),
  ...actAs,
});
export const ChannelRefRequestSchema = z.strictObject({ v: z.literal(1), name: ChannelNameSchema, ...actAs });
export const ChannelInviteRequestSchema = z.strictObject({
  v: z.literal(1),
  name: ChannelNameSchema,
  agent: AgentIdSchema,
  ...actAs,
});
export const ChannelListRequestSchema = z.strictObject({
  v: z.literal(1),
  after: ChannelNameSchema.optional().describe('List the channels named after this one (a page’s last).'),
  ...actAs,
});
export const ChannelReplySchema = z.object({ v: z.literal(1), channel: ChannelInfoSchema });
export const ChannelListReplySchema = z.object({
  v: z.literal(1),
  channels: z.array(ChannelInfoSchema).describe('By name, without their invitations.'),
  more: z
    .boolean()
    .optional()
    .describe('True when more channels follow than one reply carries: list from `after` the last name.'),
});
export const ChannelMembersReplySchema = z.object({
  v: z.literal(1),
  channel: ChannelInfoSchema,
  members: z.array(MembershipSchema),
});
export const ChannelLeaveReplySchema = z.object({
  v: z.literal(1),
  left: z.boolean().describe('False when it was not a member (leaving is idempotent).'),
});

/** What the hub pushes to an agent's connection as each message for it is stored (no ack). */
export const MessagePushSchema = z
  // Strict, so no reply of the API (which a request may address to any subject) passes for one.
  .strictObject({ v: z.literal(1), message: MessageSchema })
  .describe('A live copy of a stored message, on `_INBOX.<agent id>.msg`; the mailbox holds it too.');

/** Retention of one kind: per target (a mailbox, a channel) at most `maxMessages`, none older than `maxAgeMs`. */
export const KindRetentionSchema = z.strictObject({
  maxMessages: z.int().min(1).max(10_000_000),
  maxAgeMs: z
    .int()
    .min(60_000)
    .max(10 * 365 * 86_400_000),
});
export type KindRetention = z.infer<typeof KindRetentionSchema>;
export type MessageRetention = Record<MessageKind, KindRetention>;

const DAY = 86_400_000;
/**
 * The original kept 100 messages per mailbox for 7 days; these keep more (an agent offline for a
 * working week catches up) and stay bounded in count and age per target.
 */
export const DEFAULT_MESSAGE_RETENTION: MessageRetention = {
  direct: { maxMessages: 10_000, maxAgeMs: 30 * DAY },
  broadcast: { maxMessages: 10_000, maxAgeMs: 7 * DAY },
  channel: { maxMessages: 10_000, maxAgeMs: 30 * DAY },
  presence: { maxMessages: 1_000, maxAgeMs: DAY },
};

/** Overrides of the defaults: kinds and fields left out keep them. */
export const MessageRetentionOverridesSchema = z.partialRecord(
  MessageKindSchema,
  KindRetentionSchema.partial(),
);
export type MessageRetentionOverrides = z.infer<typeof MessageRetentionOverridesSchema>;

export function resolveRetention(over: MessageRetentionOverrides = {}): MessageRetention {
  const out = { ...DEFAULT_MESSAGE_RETENTION };
  for (const k of MESSAGE_KINDS) out[k] = { ...out[k], ...over[k] };
  return out;
}

/** The agent-callable endpoints: each as `<p>.api.<op>.<agent id>`, the caller read from the subject. */
export const AGENT_MESSAGING_OPS = [
  'msg.send',
  'msg.inbox',
  'msg.ack',
  'msg.history',
  'msg.thread',
  'msg.status',
  'channel.create',
  'channel.list',
  'channel.join',
  'channel.leave',
  'channel.invite',
  'channel.members',
  'channel.remove',
] as const;
export type MessagingOp = (typeof AGENT_MESSAGING_OPS)[number];
