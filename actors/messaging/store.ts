/**
 * @module messaging/store
 * Messaging's reads and writes of JetStream, in one place: messages appended to `<P>_MESSAGES`
 * (the stream sequence is the id; a client's `clientId` becomes the `Nats-Msg-Id`, so a repeated
 * send is stored once), read back by id (a direct get) or a subject at a time from a sequence (an
 * ephemeral consumer per read, which the server delivers in batches), and the `<p>_messaging`
 * bucket: channels, memberships and mailbox cursors. Only the hub holding the lease writes.
 */
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { z } from 'zod';
import type { Bus } from '../../src/bus/connection.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { publishRaw } from '../../src/bus/publish.js';
import { decodePayload, utf8 } from '../../src/protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import {
  type Channel,
  ChannelSchema,
  type Membership,
  MembershipSchema,
  type Message,
  type StoredMessage,
  StoredMessageSchema,
} from '../../src/protocol/message.js';

export const CursorRecordSchema = z.object({ v: z.literal(1), upTo: z.int().min(0), at: z.int() });
export type CursorRecord = z.infer<typeof CursorRecordSchema>;
const RecordSchema = z.union([ChannelSchema, MembershipSchema, CursorRecordSchema]);
type MessagingRecord = z.infer<typeof RecordSchema>;

export const channelKey = (name: string) => `channel.${name}`;
export const memberKey = (channel: string, agent: string) => `member.${channel}.${agent}`;
export const cursorKey = (agent: string) => `cursor.${agent}`;

export interface MessageStore {
  readonly bus: Bus;
  readonly stream: string;
  readonly kv: TypedKv<MessagingRecord>;
}

export async function openMessageStore(bus: Bus): Promise<MessageStore> {
  return {
    bus,
    stream: bus.names.streams.messages,
    kv: await openKv(bus, bus.names.buckets.messaging, RecordSchema),
  };
}

/**
 * Stores a message; with `clientKey` (sender and client id) a repeat within the stream's dedupe
 * window returns the first one instead (`duplicate`).
 */
export async function appendMessage(
  store: MessageStore,
  subject: string,
  m: StoredMessage,
  clientKey?: string,
): Promise<{ message: Message; duplicate: boolean }> {
  // Without a client key publishRaw draws the id (from a pooled random source): its retries of
  // this publish still share it.
  const r = await publishRaw(
    store.bus,
    subject,
    utf8(JSON.stringify(m)),
    clientKey ? { msgId: clientKey } : {},
  );
  if (!r.duplicate) return { message: { ...m, seq: r.seq }, duplicate: false };
  const first = await getMessage(store, r.seq);
  if (!first)
    throw new AgentComError(ERROR_CODES.NOT_FOUND, `message ${r.seq} (the first with this clientId) is gone`);
  return { message: first, duplicate: true };
}

function decodeStored(seq: number, data: Uint8Array): Message | null {
  // Only the hub writes the stream; a message that does not decode (a hand-made publish) is skipped.
  const r = decodePayload(StoredMessageSchema, data, Number.MAX_SAFE_INTEGER);
  return r.ok ? { ...r.value, seq } : null;
}

/** One message by id, or null when there is none (never stored, or past retention). */
export async function getMessage(store: MessageStore, seq: number): Promise<Message | null> {
  try {
    // From the stream's leader, not a direct get (which a lagging replica may answer): a reply to a
    // message stored a moment ago must find it.
    const sm = await store.bus.jsm.streams.getMessage(store.stream, { seq });
    if (!sm) return null;
    return sm.subject.startsWith(`${store.bus.names.prefix}.msg.`) ? decodeStored(sm.seq, sm.data) : null;
  } catch (err) {
    if ((err as { code?: number }).code === 404 || /not found/i.test(String(err))) return null;
    throw err;
  }
}

/** The last sequence stored (0 when none). */
export async function lastSeq(store: MessageStore): Promise<number> {
  return (await store.bus.jsm.streams.info(store.stream)).state.last_seq;
}

export interface ScanResult {
  messages: Message[];
  /** The last sequence looked at (the `after` of the next read); `after` itself when none. */
  last: number;
  /** True when nothing matching `subject` follows `last`. */
  exhausted: boolean;
}

const BATCH = 500;

/**
 * Messages on `subject` (a filter) after sequence `after`, in order, that `accept` keeps, until
 * `limit` are kept or `maxScan` were looked at. One consumer for the read, deleted after it (and
 * by the server after 10 s idle should this process die first).
 */
export async function scanSubject(
  store: MessageStore,
  subject: string,
  after: number,
  opts: {
    limit: number;
    maxScan?: number;
    /** Stop once the messages kept take this many bytes (as stored). */
    maxBytes?: number;
    accept?: (m: Message) => boolean;
    /** Stop at the first message for which it holds (that one is not kept). */
    stop?: (m: Message) => boolean;
  },
): Promise<ScanResult> {
  const { bus, stream } = store;
  const maxScan = opts.maxScan ?? Number.MAX_SAFE_INTEGER;
  const ci = await bus.jsm.consumers.add(stream, {
    filter_subject: subject,
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: after + 1,
    inactive_threshold: nanos(10_000),
    mem_storage: true,
  });
  const messages: Message[] = [];
  let last = after;
  let pending = ci.num_pending;
  let scanned = 0;
  let skipped = false;
  let bytes = 0;
  const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
  let full = () => messages.length >= opts.limit || bytes >= maxBytes;
  try {
    // From the info the add returned: no second round trip to ask for it.
    const consumer = bus.js.consumers.getConsumerFromInfo(ci);
    while (pending > 0 && !full() && scanned < maxScan) {
      const want = Math.min(pending, BATCH, maxScan - scanned);
      // The shortest wait the client allows: what `pending` counted may be gone (a retention trim) by
      // the time the batch is asked for, and then the fetch waits for messages that will not come.
      const batch = await consumer.fetch({ max_messages: want, expires: 1_000 });
      let got = 0;
      for await (const jm of batch) {
        got++;
        scanned++;
        pending = jm.info.pending;
        // Delivered past the page: the next read starts from `last` again.
        if (full()) {
          skipped = true;
          continue;
        }
        const m = decodeStored(jm.seq, jm.data);
        if (m && opts.stop?.(m)) {
          // Ends the read: what follows is not looked at (the caller knows why it stopped).
          skipped = true;
          full = () => true;
          continue;
        }
        last = jm.seq;
        if (m && (!opts.accept || opts.accept(m))) {
          messages.push(m);
          bytes += jm.data.length;
        }
      }
      if (got === 0) break;
    }
  } finally {
    await bus.jsm.consumers.delete(stream, ci.name).catch(() => {});
  }
  return { messages, last, exhausted: pending === 0 && !skipped };
}

// --- The bucket ---

export async function loadIndexRecords(
  store: MessageStore,
): Promise<{ channels: Channel[]; members: Membership[] }> {
  const channels: Channel[] = [];
  const members: Membership[] = [];
  for (const [key, { value }] of await store.kv.entries()) {
    if (key.startsWith('channel.')) channels.push(value as Channel);
    else if (key.startsWith('member.')) members.push(value as Membership);
  }
  return { channels, members };
}

/** Creates a channel; false when one by that name exists. */
export async function createChannel(store: MessageStore, c: Channel): Promise<boolean> {
  return (await store.kv.create(channelKey(c.name), c)).ok;
}

export async function putChannel(store: MessageStore, c: Channel): Promise<void> {
  await store.kv.put(channelKey(c.name), c);
}

export async function deleteChannel(store: MessageStore, name: string, members: string[]): Promise<void> {
  for (const a of members) await store.kv.delete(memberKey(name, a));
  await store.kv.delete(channelKey(name));
}

export async function putMember(store: MessageStore, m: Membership): Promise<void> {
  await store.kv.put(memberKey(m.channel, m.agent), m);
}

export async function deleteMember(store: MessageStore, channel: string, agent: string): Promise<void> {
  await store.kv.delete(memberKey(channel, agent));
}

export async function readCursor(store: MessageStore, agent: string): Promise<number> {
  const e = await store.kv.get(cursorKey(agent));
  return e ? (e.value as CursorRecord).upTo : 0;
}

/** Moves the cursor to `next(current)` with compare-and-set; returns where it ends. */
export async function moveCursor(
  store: MessageStore,
  agent: string,
  next: (current: number) => number,
): Promise<number> {
  for (;;) {
    const e = await store.kv.get(cursorKey(agent));
    const current = e ? (e.value as CursorRecord).upTo : 0;
    const to = next(current);
    if (to === current) return current;
    const value: CursorRecord = { v: 1, upTo: to, at: Date.now() };
    const r = e
      ? await store.kv.update(cursorKey(agent), value, e.revision)
      : await store.kv.create(cursorKey(agent), value);
    if (r.ok) return to;
  }
}

/** Removes what the stream holds for `filter` below `seq` (a retention trim). */
export async function purgeBelow(store: MessageStore, filter: string, seq: number): Promise<number> {
  return (await store.bus.jsm.streams.purge(store.stream, { filter, seq })).purged;
}

/** Keeps the newest `keep` of `subject`. */
export async function purgeKeep(store: MessageStore, subject: string, keep: number): Promise<number> {
  return (await store.bus.jsm.streams.purge(store.stream, { filter: subject, keep })).purged;
}

/** How many messages each subject matching `filter` holds. */
export async function subjectCounts(store: MessageStore, filter: string): Promise<Record<string, number>> {
  const info = await store.bus.jsm.streams.info(store.stream, { subjects_filter: filter });
  return (info.state.subjects ?? {}) as Record<string, number>;
}
