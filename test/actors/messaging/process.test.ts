/**
 * The Messaging actor against a real nats-server, without a hub around it: retention holds its
 * bounds per kind (the stream's own per-subject limit for the largest count, the actor's sweep for
 * the kinds kept for less, by count and by age), a restarted actor finds its channels and
 * memberships in the bucket, and presence messages follow Presence's casts.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MessagingProcess, type MessagingReply } from '../../../actors/messaging/index.js';
import type { Caller } from '../../../actors/messaging/process.js';
import { openMessageStore, scanSubject } from '../../../actors/messaging/store.js';
import type { Bus } from '../../../src/bus/connection.js';
import { defaultTopology, provision } from '../../../src/bus/provision.js';
import {
  type ChannelInfo,
  type Message,
  type MessageRetention,
  type MessagingOp,
  resolveRetention,
} from '../../../src/protocol/message.js';
import { call, cast, exit, type Pid } from '../../../src/runtime/index.js';
import { startServer } from '../../../src/runtime/server.js';
import { testBus } from '../../bus/support.js';
import { waitUntil } from '../../support/eventually.js';
import { useNatsServer } from '../../support/nats-server.js';

const nats = useNatsServer();
let bus: Bus | undefined;
let pid: Pid | undefined;
afterEach(async () => {
  if (pid) exit(pid, 'shutdown');
  pid = undefined;
  await bus?.drain();
});

async function setup(retention: MessageRetention) {
  bus = await testBus(nats.url);
  await provision(bus, defaultTopology(bus.names, { storage: 'memory', messageRetention: retention }));
  return { bus, store: await openMessageStore(bus) };
}

async function startMessaging(b: Bus, retention: MessageRetention, retentionSweepMs = 100_000) {
  const r = await startServer(MessagingProcess.start, {
    bus: b,
    log: pino({ level: 'silent' }),
    retention,
    retentionSweepMs,
  });
  if (r.kind !== 'ok') throw new Error('messaging did not start');
  pid = r.pid;
  return r.pid;
}

/** One request as the API's endpoints make it; throws the structured error of a refusal. */
async function ask<T>(p: Pid, op: MessagingOp, req: object, caller: Caller): Promise<T> {
  const r = await call<MessagingReply>(
    p,
    { type: 'request', op, req: { v: 1, ...req }, caller },
    { timeout: 10_000 },
  );
  if (!r.ok) throw new Error(`call failed: ${r.error.kind}`);
  if (!r.value.ok) throw Object.assign(new Error(r.value.error.message), { code: r.value.error.code });
  return r.value.value as T;
}
const trusted: Caller = { trusted: true };
const send = (p: Pid, req: object, caller: Caller = trusted) =>
  ask<{ message: Message; duplicate: boolean }>(p, 'msg.send', { body: 'x', ...req }, caller);

describe('retention', () => {
  it('keeps each kind within its count per target and its age, whatever the stream itself keeps', async () => {
    // Channels keep 6, broadcasts 3 and presence 2 per target: the stream keeps 6 per subject and
    // the sweep trims the rest. Broadcasts are also kept for at most one minute.
    const retention = resolveRetention({
      channel: { maxMessages: 6 },
      broadcast: { maxMessages: 3, maxAgeMs: 60_000 },
      presence: { maxMessages: 2 },
      direct: { maxMessages: 4 },
    });
    const { bus: b, store } = await setup(retention);
    const p = await startMessaging(b, retention);
    await ask(p, 'channel.create', { name: 'c1', visibility: 'public', description: '' }, trusted);
    await ask(p, 'channel.create', { name: 'c2', visibility: 'public', description: '' }, trusted);
    const sent: Record<string, number[]> = { c1: [], c2: [], broadcast: [] };
    for (let i = 0; i < 10; i++) {
      sent.c1!.push((await send(p, { channel: 'c1', body: `c1-${i}` })).message.seq);
      sent.c2!.push((await send(p, { channel: 'c2', body: `c2-${i}` })).message.seq);
      sent.broadcast!.push((await send(p, { broadcast: true, body: `b-${i}` })).message.seq);
    }
    for (let i = 0; i < 5; i++) cast(p, { type: 'agent_down', agentId: 'a1', reason: `r${i}` });
    const subjectSeqs = async (subject: string) =>
      (await scanSubject(store, subject, 0, { limit: 1_000 })).messages.map((m) => m.seq);
    await waitUntil(
      async () => (await subjectSeqs(b.names.subjects.msgPresence('a1'))).length === 5,
      'presence stored',
    );
    // The stream's own limit (the largest count, channels': 6) holds at once, per channel.
    expect(await subjectSeqs(b.names.subjects.msgChannel('c1'))).toEqual(sent.c1!.slice(-6));
    expect(await subjectSeqs(b.names.subjects.msgChannel('c2'))).toEqual(sent.c2!.slice(-6));
    expect((await subjectSeqs(b.names.subjects.msgBroadcast)).length).toBe(6);
    // The sweep trims the kinds kept for less.
    exit(p, 'shutdown');
    await startMessaging(b, retention, 50);
    await waitUntil(
      async () => (await subjectSeqs(b.names.subjects.msgBroadcast)).length === 3,
      'broadcasts trimmed to 3',
    );
    expect(await subjectSeqs(b.names.subjects.msgBroadcast)).toEqual(sent.broadcast!.slice(-3));
    await waitUntil(
      async () => (await subjectSeqs(b.names.subjects.msgPresence('a1'))).length === 2,
      'presence trimmed to 2',
    );
    // Channels are within their own count: untouched.
    expect(await subjectSeqs(b.names.subjects.msgChannel('c1'))).toEqual(sent.c1!.slice(-6));
  });

  it('removes a kind’s messages past its age, and only that kind’s', async () => {
    // Broadcasts are kept a minute (the shortest age allowed), presence 1 per agent: a presence
    // trim shows a sweep ran after the broadcast was stored, and left it (it is young).
    const young = resolveRetention({ broadcast: { maxAgeMs: 60_000 }, presence: { maxMessages: 1 } });
    const { bus: b, store } = await setup(young);
    let p = await startMessaging(b, young, 50);
    await ask(p, 'channel.create', { name: 'keep', visibility: 'public', description: '' }, trusted);
    await send(p, { broadcast: true, body: 'old broadcast' });
    const post = (await send(p, { channel: 'keep', body: 'a post' })).message;
    for (let i = 0; i < 3; i++) cast(p, { type: 'agent_down', agentId: 'probe', reason: `r${i}` });
    const count = async (subject: string) =>
      (await scanSubject(store, subject, 0, { limit: 10 })).messages.length;
    await waitUntil(
      async () => (await count(b.names.subjects.msgPresence('probe'))) === 3,
      'presence stored',
    );
    await waitUntil(async () => (await count(b.names.subjects.msgPresence('probe'))) === 1, 'a sweep ran');
    expect(await count(b.names.subjects.msgBroadcast)).toBe(1);
    // A sweep whose clock is past the broadcast's minute: it goes; the post (30 days) stays.
    exit(p, 'shutdown');
    const realNow = Date.now;
    Date.now = () => realNow() + 61_000;
    try {
      p = await startMessaging(b, young, 50);
      await waitUntil(
        async () => (await count(b.names.subjects.msgBroadcast)) === 0,
        'the old broadcast removed',
      );
    } finally {
      Date.now = realNow;
    }
    const posts = await scanSubject(store, b.names.subjects.msgChannel('keep'), 0, { limit: 10 });
    expect(posts.messages.map((m) => m.seq)).toEqual([post.seq]);
  });
});

describe('restart', () => {
  it('a restarted actor knows its channels, members and cursors from the bucket', async () => {
    const r = resolveRetention();
    const { bus: b } = await setup(r);
    let p = await startMessaging(b, r);
    await ask(
      p,
      'channel.create',
      { name: 'ops', visibility: 'invite', description: 'on call' },
      { agent: 'x1' },
    );
    // Only a known agent can be invited: one that came online.
    cast(p, { type: 'agent_up', agentId: 'x2', capabilities: [], queues: [], slots: 1, at: Date.now() });
    await ask(p, 'channel.invite', { name: 'ops', agent: 'x2' }, { agent: 'x1' });
    await ask(p, 'channel.join', { name: 'ops' }, { agent: 'x2' });
    await send(p, { channel: 'ops', body: 'page' }, { agent: 'x1' });
    const inbox = await ask<{ messages: Message[] }>(
      p,
      'msg.inbox',
      { limit: 10, waitMs: 0 },
      { agent: 'x2' },
    );
    await ask(p, 'msg.ack', { upTo: inbox.messages.at(-1)!.seq }, { agent: 'x2' });
    exit(p, 'shutdown');
    p = await startMessaging(b, r);
    const list = await ask<{ channels: ChannelInfo[] }>(p, 'channel.list', {}, { agent: 'x2' });
    expect(list.channels.find((c) => c.name === 'ops')).toMatchObject({ members: 2, joined: true });
    // An agent neither in nor invited does not see the invite-only channel.
    const other = await ask<{ channels: ChannelInfo[] }>(p, 'channel.list', {}, { agent: 'x3' });
    expect(other.channels.map((c) => c.name)).toEqual(['room']);
    const after = await ask<{ messages: Message[]; cursor: number }>(
      p,
      'msg.inbox',
      { limit: 10, waitMs: 0 },
      { agent: 'x2' },
    );
    expect(after.messages).toEqual([]);
    expect(after.cursor).toBe(inbox.messages.at(-1)!.seq);
  });
});

describe('replies fit in one NATS message', () => {
  it('a page of large messages is cut to fit, says there is more, and paging reads them all', async () => {
    const r = resolveRetention();
    const { bus: b } = await setup(r);
    const p = await startMessaging(b, r);
    // 40 messages of 30 KB: 1.2 MB, past the server's 1 MiB max_payload in one reply.
    const sent: number[] = [];
    for (let i = 0; i < 40; i++)
      sent.push((await send(p, { broadcast: true, body: `${i}:${'x'.repeat(30_000)}` })).message.seq);
    const read: number[] = [];
    let after = 0;
    for (let pages = 0; read.length < sent.length; pages++) {
      expect(pages).toBeLessThan(40);
      const page = await ask<{ messages: Message[]; more: boolean }>(
        p,
        'msg.inbox',
        { after, limit: 100, waitMs: 0 },
        { agent: 'reader' },
      );
      expect(page.messages.length).toBeGreaterThan(0);
      expect(page.messages.length).toBeLessThan(40);
      read.push(...page.messages.map((m) => m.seq));
      after = page.messages.at(-1)!.seq;
      expect(page.more).toBe(read.length < sent.length);
    }
    expect(read).toEqual(sent);
    const walked: number[] = [];
    let next: number | null = 0;
    while (next !== null) {
      const page: { messages: Message[]; next: number | null } = await ask(
        p,
        'msg.history',
        { kind: 'broadcast', after: next, limit: 100 },
        trusted,
      );
      walked.push(...page.messages.map((m) => m.seq));
      next = page.next;
    }
    expect(walked).toEqual(sent);
    // A thread's replies are cut the same way (the rest: history with `thread`).
    // Replies to a broadcast go to its sender, who must be a known agent: one that came online.
    cast(p, { type: 'agent_up', agentId: 'speaker', capabilities: [], queues: [], slots: 1, at: Date.now() });
    const root = (await send(p, { broadcast: true, body: 'root' }, { agent: 'speaker' })).message;
    for (let i = 0; i < 20; i++)
      await send(p, { replyTo: root.seq, body: 'y'.repeat(30_000) }, { agent: 'listener' });
    const t = await ask<{ replies: Message[]; more: boolean }>(p, 'msg.thread', { id: root.seq }, trusted);
    expect(t.replies.length).toBeGreaterThan(0);
    expect(t.replies.length).toBeLessThan(20);
    expect(t.more).toBe(true);
  }, 60_000);
});
