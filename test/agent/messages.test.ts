/**
 * The SDK's messaging (`client.messages`, src/agent/messages.ts) against a real hub and
 * nats-server: sends, replies and threads; a repeated clientId stored once; the hub's errors as
 * codes; channels; history paging; and the incoming stream: catch-up from the cursor then live,
 * each message once and in seq order with concurrent senders, acks and restarts from the cursor,
 * handler mode, a reconnect that lost pushes, pushes that carry nothing the mailbox lacks, and a
 * send retried across a hub restart with its clientId.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import type { MessageStream } from '../../src/agent/messages.js';
import { MessagingClient } from '../../src/bus/messaging-client.js';
import type { HubHandle } from '../../src/hub/main.js';
import { AgentComError } from '../../src/protocol/errors.js';
import type { Message } from '../../src/protocol/message.js';
import { messagePushSubject } from '../../src/protocol/permissions.js';
import { eventually, waitUntil } from '../support/eventually.js';
import { startTestHub, type TestClient, testClient } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

const nats = useNatsServer();
let hub: HubHandle | undefined;
let client: TestClient | undefined;
let prefix = '';
let agents: AgentClient[] = [];
let cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  // A hub per test: a broadcast is in every mailbox, so tests must not share one.
  prefix = uniqueName('msgsdk').replace(/_/g, '-').toLowerCase();
  hub = await startTestHub(nats.url, prefix);
  client = await testClient(nats.url, prefix);
  // The API answers once this hub holds the lease, a moment after it started.
  await eventually(() => trusted().channelList(), { timeout: 20_000, interval: 50 });
});

afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
  await Promise.all(agents.map((a) => a.stop({ goodbye: false }).catch(() => {})));
  agents = [];
  await client?.close();
  await hub?.stop();
  client = undefined;
  hub = undefined;
});

async function agent(name: string, servers = nats.url): Promise<AgentClient> {
  const a = await AgentClient.connect({
    connection: { servers, prefix },
    agentId: `${name}-${prefix.slice(-6)}`,
    logger: pino({ level: 'silent' }),
    helloTimeoutMs: 20_000,
  });
  agents.push(a);
  return a;
}

/** The hub's API as a trusted client (a human sender). */
const trusted = () => new MessagingClient(client!.bus, { timeoutMs: 10_000 });

/** Collects what a stream yields, in order, until it ends. */
function collect(stream: MessageStream): { got: Message[]; ended: Promise<unknown> } {
  const got: Message[] = [];
  const ended = (async () => {
    for await (const m of stream) got.push(m);
  })().catch((err) => err);
  return { got, ended };
}

async function codeOf(p: Promise<unknown>): Promise<{ code: string; path?: unknown }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AgentComError) return { code: err.code, path: err.path };
    throw err;
  }
  throw new Error('expected an error');
}

const isIncreasing = (xs: number[]) => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

describe('agent messaging (SDK)', { timeout: 60_000 }, () => {
  it('send, reply and thread: a conversation between two agents, from the subject, in order', async () => {
    const a = await agent('ann');
    const b = await agent('bob');
    const first = await a.messages.send(b.agentId, 'can you review #42?', {
      title: 'review',
      data: { pr: 42 },
    });
    expect(first.duplicate).toBe(false);
    expect(first.message).toMatchObject({
      kind: 'direct',
      from: a.agentId,
      fromKind: 'agent',
      to: b.agentId,
      title: 'review',
      body: 'can you review #42?',
      data: { pr: 42 },
    });
    const r1 = await b.messages.reply(first.message.seq, 'on it');
    expect(r1.message).toMatchObject({
      kind: 'direct',
      from: b.agentId,
      to: a.agentId,
      replyTo: first.message.seq,
      threadId: first.message.seq,
    });
    const r2 = await a.messages.reply(r1.message.seq, 'thanks');
    expect(r2.message).toMatchObject({ to: b.agentId, replyTo: r1.message.seq, threadId: first.message.seq });

    const t = await b.messages.thread(r2.message.seq);
    expect(t.root.seq).toBe(first.message.seq);
    expect(t.replies.map((m) => m.body)).toEqual(['on it', 'thanks']);
    expect(t.more).toBe(false);

    const inbox = await b.messages.inbox();
    expect(inbox.messages.map((m) => m.body)).toEqual(['can you review #42?', 'thanks']);
    expect(inbox.cursor).toBe(0);
  });

  it('a repeated clientId returns the first message (duplicate: true), stored once', async () => {
    const a = await agent('ann');
    const b = await agent('bob');
    const one = await a.messages.send(b.agentId, 'once', { clientId: 'retry-1' });
    const two = await a.messages.send(b.agentId, 'once', { clientId: 'retry-1' });
    expect(two.duplicate).toBe(true);
    expect(two.message.seq).toBe(one.message.seq);
    // Without a clientId each send is its own message.
    const x = await a.messages.send(b.agentId, 'twice');
    const y = await a.messages.send(b.agentId, 'twice');
    expect(y.message.seq).not.toBe(x.message.seq);
    const inbox = await b.messages.inbox();
    expect(inbox.messages.map((m) => m.body)).toEqual(['once', 'twice', 'twice']);
  });

  it('errors come back with the hub’s codes and paths', async () => {
    const a = await agent('ann');
    const b = await agent('bob');
    expect(await codeOf(a.messages.send('nobody-here', 'hello?'))).toMatchObject({
      code: 'not_found',
      path: ['to'],
    });
    expect(await codeOf(a.messages.post('no-such-channel', 'hello?'))).toMatchObject({ code: 'not_found' });
    await b.messages.channels.create('bobs');
    expect(await codeOf(a.messages.post('bobs', 'let me in'))).toMatchObject({
      code: 'forbidden',
      path: ['channel'],
    });
    expect(await codeOf(a.messages.history({ channel: 'bobs' }))).toMatchObject({ code: 'forbidden' });
    const big = { data: { pad: 'y'.repeat(5_000) } }; // each part within its limit, together over 32 KiB
    expect(await codeOf(a.messages.send(b.agentId, 'x'.repeat(30_000), big))).toMatchObject({
      code: 'payload_too_large',
    });
    expect(await codeOf(a.messages.send(b.agentId, 'hi', { clientId: 'not a valid id!' }))).toMatchObject({
      code: 'invalid_payload',
      path: ['clientId'],
    });
    expect(await codeOf(a.messages.reply(999_999, 'to nothing'))).toMatchObject({ code: 'not_found' });
    expect(await codeOf(a.messages.channels.create('bobs'))).toMatchObject({ code: 'conflict' });
  });

  it('channels: create, list, join, post, members, invite-only, leave, remove', async () => {
    const a = await agent('ann');
    const b = await agent('bob');
    const c = await agent('cat');
    const team = await a.messages.channels.create('team', { description: 'the team' });
    expect(team).toMatchObject({
      name: 'team',
      visibility: 'public',
      createdBy: a.agentId,
      members: 1,
      joined: true,
    });
    expect((await b.messages.channels.list()).find((x) => x.name === 'team')).toMatchObject({
      joined: false,
    });
    await b.messages.channels.join('team');
    await b.messages.channels.join('team'); // idempotent
    const members = await a.messages.channels.members('team');
    expect(members.members.map((m) => m.agent).sort()).toEqual([a.agentId, b.agentId].sort());
    const post = await b.messages.post('team', 'hello team');
    expect(post.message).toMatchObject({ kind: 'channel', channel: 'team', from: b.agentId });
    expect((await a.messages.inbox()).messages.map((m) => m.seq)).toEqual([post.message.seq]);
    expect((await b.messages.inbox()).messages).toEqual([]); // never one's own

    await a.messages.channels.create('secret', { visibility: 'invite' });
    expect(await codeOf(c.messages.channels.join('secret'))).toMatchObject({ code: 'not_found' });
    await a.messages.channels.invite('secret', c.agentId);
    expect(await c.messages.channels.join('secret')).toMatchObject({ name: 'secret', joined: true });

    expect(await b.messages.channels.leave('team')).toBe(true);
    expect(await b.messages.channels.leave('team')).toBe(false);
    expect(await codeOf(b.messages.channels.remove('team'))).toMatchObject({ code: 'forbidden' });
    expect(await a.messages.channels.remove('team')).toMatchObject({ name: 'team' });
    expect((await a.messages.channels.list()).map((x) => x.name)).not.toContain('team');
  });

  it('history pages and historyAll agree, oldest first', async () => {
    const a = await agent('ann');
    const b = await agent('bob');
    const sent: number[] = [];
    for (let i = 0; i < 12; i++) sent.push((await a.messages.send(b.agentId, `m${i}`)).message.seq);
    const pages: number[] = [];
    let after: number | undefined;
    for (;;) {
      const page = await b.messages.history({
        to: b.agentId,
        limit: 5,
        ...(after !== undefined ? { after } : {}),
      });
      pages.push(...page.messages.map((m) => m.seq));
      if (page.next === null) break;
      after = page.next;
    }
    expect(pages).toEqual(sent);
    const all: number[] = [];
    for await (const m of b.messages.historyAll({ to: b.agentId, limit: 5 })) all.push(m.seq);
    expect(all).toEqual(sent);
  });

  it('the incoming stream catches up from the cursor, then follows live: every message once, in seq order', async () => {
    const r = await agent('reader');
    const s = await agent('sender');
    const o = await agent('other');
    const t = trusted();
    await s.messages.channels.create('team');
    await r.messages.channels.join('team');
    const expected = new Set<number>();
    const mine = async (p: Promise<{ message: Message }>) => expected.add((await p).message.seq);
    const notMine = async (p: Promise<unknown>) => {
      await p;
    };
    const traffic = async (round: string, n: number) => {
      // Concurrent sends from several senders: the hub stores them in some order, the stream must
      // yield them in that order.
      await Promise.all(
        Array.from({ length: n }, (_, i) => [
          mine(s.messages.send(r.agentId, `${round} dm ${i}`)),
          mine(t.send({ to: r.agentId as never, body: `${round} human ${i}`, sender: 'alice' })),
          mine(s.messages.post('team', `${round} post ${i}`)),
          notMine(s.messages.send(o.agentId, `${round} not for r ${i}`)),
          notMine(r.messages.post('team', `${round} r's own ${i}`)),
        ]).flat(),
      );
      await mine(t.send({ broadcast: true, body: `${round} broadcast` }));
      await mine(o.messages.broadcast(`${round} broadcast from o`));
    };
    await traffic('before', 8);
    const stream = r.messages.incoming({ batch: 7 });
    cleanups.push(() => stream.stop());
    const { got, ended } = collect(stream);
    await stream.caughtUp;
    await traffic('live', 10);
    const sentinel = await s.messages.send(r.agentId, 'sentinel');
    await waitUntil(() => got.some((m) => m.seq === sentinel.message.seq), 'the sentinel', {
      timeout: 30_000,
    });
    stream.stop();
    expect(await ended).toBeUndefined();
    const seqs = got.map((m) => m.seq);
    expect(isIncreasing(seqs)).toBe(true);
    expect(seqs.slice(0, -1)).toEqual([...expected].sort((x, y) => x - y));
    expect(got.every((m) => !(m.fromKind === 'agent' && m.from === r.agentId))).toBe(true);
  });

  it('ack moves the cursor; a new stream starts after it; stop() ends the iteration', async () => {
    const r = await agent('reader');
    const s = await agent('sender');
    const sent: number[] = [];
    for (let i = 0; i < 10; i++) sent.push((await s.messages.send(r.agentId, `m${i}`)).message.seq);
    const first = r.messages.incoming();
    const a = collect(first);
    await waitUntil(() => a.got.length === 10, 'ten messages');
    expect(a.got.map((m) => m.seq)).toEqual(sent);
    expect(await r.messages.ack(sent[5]!)).toBe(sent[5]);
    expect(await r.messages.ack(sent[2]!)).toBe(sent[5]); // never backwards
    first.stop();
    expect(await a.ended).toBeUndefined();
    expect(first.lastSeq).toBe(sent[9]);

    const second = r.messages.incoming();
    const b = collect(second);
    await second.caughtUp;
    await waitUntil(() => b.got.length === 4, 'the four unacked');
    expect(b.got.map((m) => m.seq)).toEqual(sent.slice(6));
    const more = await s.messages.send(r.agentId, 'later');
    await waitUntil(() => b.got.length === 5, 'the live one');
    expect(b.got[4]!.seq).toBe(more.message.seq);
    second.stop();
    await b.ended;

    // `after` starts anywhere, whatever the cursor.
    const third = r.messages.incoming({ after: sent[7]! });
    const c = collect(third);
    await third.caughtUp;
    await waitUntil(() => c.got.length === 3, 'from after');
    expect(c.got.map((m) => m.seq)).toEqual([sent[8], sent[9], more.message.seq]);
    third.stop();
  });

  it('onMessage acks each message once its handler resolved; a handler that throws ends it unacked', async () => {
    const r = await agent('reader');
    const s = await agent('sender');
    const seen: number[] = [];
    const sub = r.messages.onMessage(async (m) => {
      seen.push(m.seq);
    });
    cleanups.push(() => sub.stop());
    const sent: number[] = [];
    for (let i = 0; i < 5; i++) sent.push((await s.messages.send(r.agentId, `m${i}`)).message.seq);
    await waitUntil(async () => (await r.messages.inbox()).cursor === sent[4], 'the cursor at the last one', {
      timeout: 20_000,
    });
    expect(seen).toEqual(sent);
    await sub.stop();
    await sub.done;

    const later: number[] = [];
    for (let i = 0; i < 4; i++) later.push((await s.messages.send(r.agentId, `n${i}`)).message.seq);
    const handled: number[] = [];
    const failing = r.messages.onMessage((m) => {
      if (m.seq === later[2]) throw new Error('cannot handle this one');
      handled.push(m.seq);
    });
    await expect(failing.done).rejects.toThrow('cannot handle this one');
    expect(handled).toEqual(later.slice(0, 2));
    expect((await r.messages.inbox()).cursor).toBe(later[1]);
  });

  it('after a reconnect the stream reads the messages whose pushes were lost while it was away', async () => {
    const proxy = await tcpProxy(nats.port);
    cleanups.push(() => proxy.close());
    const r = await agent('reader', proxy.url);
    const s = await agent('sender');
    // Polling off: only the reconnect can make it read.
    const stream = r.messages.incoming({ pollMs: 600_000 });
    cleanups.push(() => stream.stop());
    const { got } = collect(stream);
    await stream.caughtUp;
    const before = await s.messages.send(r.agentId, 'before');
    await waitUntil(() => got.length === 1, 'the live message');

    const events: string[] = [];
    const off = r.bus.onStatus((e) => events.push(e.type));
    cleanups.push(() => void off());
    proxy.cut();
    await waitUntil(() => events.includes('disconnect'), 'the disconnect', { timeout: 20_000 });
    const during: number[] = [];
    for (let i = 0; i < 5; i++)
      during.push((await s.messages.send(r.agentId, `while away ${i}`)).message.seq);
    expect(got).toHaveLength(1); // their pushes went nowhere
    proxy.restore();
    await waitUntil(() => got.length === 6, 'the messages sent while away', { timeout: 30_000 });
    expect(got.map((m) => m.seq)).toEqual([before.message.seq, ...during]);
    expect(events).toContain('reconnect');
  });

  it('a push only prompts a read: an invalid push is dropped, and one for a message not in the mailbox yields nothing', async () => {
    const r = await agent('reader');
    const s = await agent('sender');
    const stream = r.messages.incoming();
    cleanups.push(() => stream.stop());
    const { got } = collect(stream);
    await stream.caughtUp;
    const forged: Message = {
      v: 1,
      seq: 9_999_999,
      kind: 'direct',
      from: s.agentId,
      fromKind: 'agent',
      to: r.agentId,
      body: 'forged',
      at: Date.now(),
    };
    const pushTo = messagePushSubject(r.agentId);
    client!.bus.nc.publish(pushTo, JSON.stringify({ v: 1, message: forged }));
    client!.bus.nc.publish(pushTo, 'not json');
    client!.bus.nc.publish(pushTo, JSON.stringify({ v: 1, message: { seq: 'x' } }));
    const real = await s.messages.send(r.agentId, 'real');
    await waitUntil(() => got.length >= 1, 'the real message');
    const after = await s.messages.send(r.agentId, 'after');
    await waitUntil(() => got.length >= 2, 'the next one');
    expect(got.map((m) => m.body)).toEqual(['real', 'after']);
    expect(got.map((m) => m.seq)).toEqual([real.message.seq, after.message.seq]);
  });

  it('a send made while the hub is down is retried with its clientId and stored once', async () => {
    const a = await agent('ann');
    const b = await agent('bob');
    await hub!.stop();
    hub = undefined;
    // Without the retries this would fail at once (`unavailable`: no hub answers).
    const sending = a.messages.send(b.agentId, 'sent while the hub was down', { clientId: 'down-1' });
    hub = await startTestHub(nats.url, prefix);
    const r = await sending;
    expect(r.message.body).toBe('sent while the hub was down');
    const inbox = await b.messages.inbox();
    expect(inbox.messages.filter((m) => m.body === 'sent while the hub was down')).toHaveLength(1);
  });
});

/** A TCP proxy to the nats-server whose connections the test can cut (and refuse) and allow again. */
async function tcpProxy(
  port: number,
): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
  const open = new Set<Socket>();
  let accepting = true;
  const server: Server = createServer((downstream) => {
    if (!accepting) {
      downstream.destroy();
      return;
    }
    const upstream = tcpConnect(port, '127.0.0.1');
    open.add(downstream);
    open.add(upstream);
    const end = () => {
      downstream.destroy();
      upstream.destroy();
      open.delete(downstream);
      open.delete(upstream);
    };
    for (const sock of [downstream, upstream]) {
      sock.on('error', end);
      sock.on('close', end);
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  const cutAll = () => {
    for (const sock of open) sock.destroy();
    open.clear();
  };
  return {
    url: `nats://127.0.0.1:${address.port}`,
    cut() {
      accepting = false;
      cutAll();
    },
    restore() {
      accepting = true;
    },
    close: async () => {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
