/**
 * @module messaging/state
 * The rules of messaging, pure: who may read which message, where a send goes (a reply finds its
 * conversation), which stored subjects make up a mailbox, what a history filter keeps, how a cursor
 * moves, and the channel index (channels, members, each agent's channels) that the hub holding the
 * lease keeps in memory beside the bucket it writes through. No I/O.
 */
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import type {
  Channel,
  Membership,
  Message,
  MessageKind,
  MessageRetention,
  MsgHistoryRequest,
} from '../../src/protocol/message.js';
import type { Names } from '../../src/protocol/subjects.js';

/** Who reads: an agent (by its rules), or a trusted client (everything). */
export type Viewer = { agent: string } | 'trusted';

/** Channels and their members, as the bucket holds them. */
export class ChannelIndex {
  private readonly channels = new Map<string, Channel>();
  private readonly members = new Map<string, Map<string, Membership>>();
  private readonly byAgent = new Map<string, Set<string>>();

  putChannel(c: Channel): void {
    this.channels.set(c.name, c);
  }
  /** Forgets the channel and its memberships; returns the members it had. */
  removeChannel(name: string): Membership[] {
    this.channels.delete(name);
    const ms = [...(this.members.get(name)?.values() ?? [])];
    for (const m of ms) this.byAgent.get(m.agent)?.delete(name);
    this.members.delete(name);
    return ms;
  }
  putMember(m: Membership): void {
    const ms = this.members.get(m.channel) ?? new Map<string, Membership>();
    this.members.set(m.channel, ms.set(m.agent, m));
    const cs = this.byAgent.get(m.agent) ?? new Set<string>();
    this.byAgent.set(m.agent, cs.add(m.channel));
  }
  removeMember(channel: string, agent: string): boolean {
    const had = this.members.get(channel)?.delete(agent) ?? false;
    this.byAgent.get(agent)?.delete(channel);
    return had;
  }
  channel(name: string): Channel | undefined {
    return this.channels.get(name);
  }
  allChannels(): Channel[] {
    return [...this.channels.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }
  membership(channel: string, agent: string): Membership | undefined {
    return this.members.get(channel)?.get(agent);
  }
  membersOf(channel: string): Membership[] {
    return [...(this.members.get(channel)?.values() ?? [])].sort((a, b) => (a.agent < b.agent ? -1 : 1));
  }
  memberCount(channel: string): number {
    return this.members.get(channel)?.size ?? 0;
  }
  channelsOf(agent: string): string[] {
    return [...(this.byAgent.get(agent) ?? [])].sort();
  }
}

/**
 * Whether `viewer` may read `m`: its own direct messages (to or from it), broadcasts, presence, and
 * the posts of its channels made since the channel was created (a removed channel's posts stay in
 * the stream, out of reach of whoever makes a channel of the same name later).
 */
export function visibleTo(m: Message, viewer: Viewer, index: ChannelIndex): boolean {
  if (viewer === 'trusted') return true;
  const id = viewer.agent;
  switch (m.kind) {
    case 'direct':
      return m.to === id || (m.fromKind === 'agent' && m.from === id);
    case 'broadcast':
    case 'presence':
      return true;
    case 'channel': {
      if (m.channel === undefined || index.membership(m.channel, id) === undefined) return false;
      return m.seq > (index.channel(m.channel)?.createdSeq ?? Number.MAX_SAFE_INTEGER);
    }
  }
}

/** Whether `agent` created `c` (an agent's creator rights; a human of the same name has none here). */
export function createdByAgent(c: Channel, agent: string): boolean {
  return c.createdByKind === 'agent' && c.createdBy === agent;
}

/** Whether an invite-only channel admits `agent` (public ones admit anyone). */
export function mayJoin(c: Channel, agent: string): boolean {
  return c.visibility === 'public' || createdByAgent(c, agent) || (c.invited as string[]).includes(agent);
}

/** Whether `viewer` may see that `c` exists (list, members): public, or it is in or invited. */
export function channelVisible(c: Channel, viewer: Viewer, index: ChannelIndex): boolean {
  if (viewer === 'trusted' || c.visibility === 'public') return true;
  return mayJoin(c, viewer.agent) || index.membership(c.name, viewer.agent) !== undefined;
}

export type Target =
  | { kind: 'direct'; to: string }
  | { kind: 'broadcast' }
  | { kind: 'channel'; channel: string };

/**
 * Where a send goes. With `replyTo` alone, the parent's conversation: its channel; in a direct
 * conversation, the other party; after a broadcast, its sender. A target named beside `replyTo`
 * must be that conversation (a thread lives in one place, so it can be read back whole).
 */
export function resolveTarget(
  req: { to?: string | undefined; channel?: string | undefined; broadcast?: true | undefined },
  sender: { id: string; kind: 'agent' | 'human' | 'hub' },
  parent?: Message,
): Target {
  const named = [req.to !== undefined, req.channel !== undefined, req.broadcast === true].filter(
    Boolean,
  ).length;
  if (named > 1)
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      'name one of to, channel and broadcast, not several',
    );
  const explicit: Target | undefined =
    req.to !== undefined
      ? { kind: 'direct', to: req.to }
      : req.channel !== undefined
        ? { kind: 'channel', channel: req.channel }
        : req.broadcast
          ? { kind: 'broadcast' }
          : undefined;
  if (!parent) {
    if (!explicit)
      throw new AgentComError(
        ERROR_CODES.INVALID_PAYLOAD,
        'name a recipient: to, channel, broadcast or replyTo',
      );
    return explicit;
  }
  const inferred = conversationOf(parent, sender);
  if (!inferred)
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `message ${parent.seq} cannot be answered: its sender (${parent.from}) is not an agent`,
      { path: ['replyTo'] },
    );
  if (explicit && !sameTarget(explicit, inferred))
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `a reply goes to the conversation of message ${parent.seq} (${describeTarget(inferred)}), not ${describeTarget(explicit)}`,
      { path: ['replyTo'] },
    );
  return inferred;
}

function conversationOf(parent: Message, sender: { id: string; kind: string }): Target | undefined {
  if (parent.kind === 'channel' && parent.channel) return { kind: 'channel', channel: parent.channel };
  if (parent.kind === 'direct' && parent.to) {
    // The other party: the recipient answers the sender, the sender writes again to the recipient.
    const self = sender.kind === 'agent' && parent.to === sender.id;
    if (!self) return { kind: 'direct', to: parent.to };
    return parent.fromKind === 'agent' ? { kind: 'direct', to: parent.from } : undefined;
  }
  // A broadcast or a presence message: answered privately, to the agent that sent or announced it.
  if (parent.kind === 'presence' && parent.to) return { kind: 'direct', to: parent.to };
  return parent.fromKind === 'agent' ? { kind: 'direct', to: parent.from } : undefined;
}

const sameTarget = (a: Target, b: Target) =>
  a.kind === b.kind &&
  (a.kind !== 'direct' || a.to === (b as { to: string }).to) &&
  (a.kind !== 'channel' || a.channel === (b as { channel: string }).channel);

export function describeTarget(t: Target): string {
  return t.kind === 'direct' ? `agent ${t.to}` : t.kind === 'channel' ? `#${t.channel}` : 'broadcast';
}

/** The stored subject of a message to `t`. */
export function targetSubject(n: Names, t: Target): string {
  return t.kind === 'direct'
    ? n.subjects.msgDirect(t.to)
    : t.kind === 'channel'
      ? n.subjects.msgChannel(t.channel)
      : n.subjects.msgBroadcast;
}

/** The thread a reply to `parent` belongs to: its parent's, or the parent itself when that is a root. */
export function threadOf(parent: Message): number {
  return parent.threadId ?? parent.seq;
}

/**
 * The stored subjects whose messages make up `agent`'s mailbox, each with the sequence after which
 * it counts: its direct messages and the broadcasts from the start, a channel's posts after it joined.
 */
export function mailboxSources(
  n: Names,
  agent: string,
  index: ChannelIndex,
): { subject: string; after: number }[] {
  return [
    { subject: n.subjects.msgDirect(agent), after: 0 },
    { subject: n.subjects.msgBroadcast, after: 0 },
    ...index.channelsOf(agent).map((c) => ({
      subject: n.subjects.msgChannel(c),
      after: Math.max(index.membership(c, agent)?.joinedSeq ?? 0, index.channel(c)?.createdSeq ?? 0),
    })),
  ];
}

/** A mailbox does not hold what the agent itself sent (its broadcasts, its channel posts). */
export function inMailbox(m: Message, agent: string): boolean {
  return !(m.fromKind === 'agent' && m.from === agent);
}

/** The ids of the agents a stored message is pushed to live: its recipients, never its sender. */
export function recipientsOf(m: Message, index: ChannelIndex, knownAgents: Iterable<string>): string[] {
  const notSender = (id: string) => !(m.fromKind === 'agent' && m.from === id);
  switch (m.kind) {
    case 'direct':
      return m.to && notSender(m.to) ? [m.to] : [];
    case 'channel':
      return m.channel
        ? index
            .membersOf(m.channel)
            .map((x) => x.agent)
            .filter(notSender)
        : [];
    case 'broadcast':
      return [...knownAgents].filter(notSender);
    case 'presence':
      return [];
  }
}

/** The narrowest stored subject a history query can read (a filter; wildcards allowed). */
export function historySubject(n: Names, q: Pick<MsgHistoryRequest, 'kind' | 'channel' | 'to'>): string {
  if (q.channel !== undefined) return n.subjects.msgChannel(q.channel);
  if (q.to !== undefined && (q.kind === undefined || q.kind === 'direct')) return n.subjects.msgDirect(q.to);
  if (q.kind !== undefined) return n.subjects.msgKind(q.kind);
  return n.subjects.msgAll;
}

/** Whether `m` passes every filter of a history query (the subject has done its part already). */
export function matchesHistory(
  m: Message,
  q: Pick<MsgHistoryRequest, 'kind' | 'channel' | 'to' | 'from' | 'thread' | 'since' | 'until'>,
): boolean {
  if (q.kind !== undefined && m.kind !== q.kind) return false;
  if (q.channel !== undefined && m.channel !== q.channel) return false;
  if (q.to !== undefined && m.to !== q.to) return false;
  if (q.from !== undefined && m.from !== q.from) return false;
  if (q.thread !== undefined && m.seq !== q.thread && m.threadId !== q.thread) return false;
  if (q.since !== undefined && m.at < q.since) return false;
  if (q.until !== undefined && m.at > q.until) return false;
  return true;
}

/**
 * A cursor after acking up to `upTo`: it never goes back (acks are idempotent and may arrive out
 * of order) and never past the last stored message (an ack from the future would skip mail not
 * yet written).
 */
export function advanceCursor(cursor: number, upTo: number, lastSeq: number): number {
  return Math.max(cursor, Math.min(upTo, lastSeq));
}

/** The kinds the stream's own limits keep longer or more of than their retention: the sweep trims them. */
export function kindsToTrim(r: MessageRetention): { byAge: MessageKind[]; byCount: MessageKind[] } {
  const kinds = Object.keys(r) as MessageKind[];
  const maxAge = Math.max(...kinds.map((k) => r[k].maxAgeMs));
  const maxCount = Math.max(...kinds.map((k) => r[k].maxMessages));
  return {
    byAge: kinds.filter((k) => r[k].maxAgeMs < maxAge),
    byCount: kinds.filter((k) => r[k].maxMessages < maxCount),
  };
}

/** Merges pages read from several subjects (each in sequence order) into one, by sequence. */
export function mergeBySeq(pages: Message[][]): Message[] {
  return pages.flat().sort((a, b) => a.seq - b.seq);
}
