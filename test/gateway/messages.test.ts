/**
 * Messaging over HTTP (docs/gateway.md, "Messaging"), over real sockets against a real hub: an
 * HTTP-only agent sends, long-polls its mailbox (woken by a message) and acks it, and acts as its
 * own agent only; an admin reads history and threads and sends as a human; a channel's lifecycle
 * with membership enforced; each bad input gets its structured error and status.
 */
import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_POLLS } from '../../src/gateway/routes/messages.js';
import { type GatewayHarness, useGateway } from '../support/gateway.js';

const gw = useGateway('gwmsg');

/** An agent known to the hub, speaking HTTP only: its token and requests made with it. */
async function httpAgent(g: GatewayHarness, agentId: string) {
  const { token } = await g.token('agent', { agentId });
  const hello = await g.http('POST', `/api/agents/${agentId}/hello`, {
    token,
    body: { capabilities: ['http'] },
  });
  expect(hello.status).toBe(200);
  return {
    token,
    http: (method: string, path: string, body?: unknown) =>
      g.http(method, path, { token, ...(body !== undefined ? { body } : {}) }),
  };
}

/** Resolves with the first `n` requests seen on `subject` (the gateway's calls to the hub), or throws at the deadline. */
function seen(g: GatewayHarness, subject: string, n: number, timeoutMs = 10_000) {
  const sub = g.bus.nc.subscribe(subject, { max: n });
  const done = (async () => {
    let count = 0;
    for await (const _m of sub) if (++count >= n) return;
    throw new Error(`only ${count} requests on ${subject}`);
  })();
  const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
  return {
    ready: () => g.bus.nc.flush(),
    done: done.finally(() => clearTimeout(timer)),
  };
}

describe('messaging over HTTP', () => {
  it('an HTTP agent sends, long-polls its mailbox (woken by a message), acks, and acts as itself only', async () => {
    const g = await gw.setup();
    const a = await httpAgent(g, 'web-a');
    const b = await httpAgent(g, 'web-b');

    // A long poll of b's mailbox, seen going to the hub on b's own subject before anything is sent.
    const polled = seen(g, `${g.prefix}.api.msg.inbox.web-b`, 1);
    await polled.ready();
    const started = Date.now();
    const poll = b.http('GET', '/api/messages/inbox?wait=20000');
    await polled.done;
    const sent = await a.http('POST', '/api/messages', { to: 'web-b', body: 'hello b', clientId: 'c1' });
    expect(sent.status).toBe(201);
    expect(sent.body).toMatchObject({
      duplicate: false,
      message: { kind: 'direct', from: 'web-a', fromKind: 'agent', to: 'web-b', body: 'hello b' },
    });
    const seq: number = sent.body.message.seq;
    const woken = await poll;
    expect(woken.status).toBe(200);
    expect(woken.body.messages.map((m: { seq: number }) => m.seq)).toEqual([seq]);
    // Woken by the message, long before the wait was over.
    expect(Date.now() - started).toBeLessThan(10_000);

    // A retried send (same clientId) is the first message, not a copy.
    const again = await a.http('POST', '/api/messages', { to: 'web-b', body: 'hello b', clientId: 'c1' });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ duplicate: true, message: { seq } });

    // Until acked, a read from the cursor returns it again; after, the mailbox is empty.
    expect((await b.http('GET', '/api/messages/inbox')).body).toMatchObject({ cursor: 0, more: false });
    const acked = await b.http('POST', '/api/messages/inbox/ack', { upTo: seq });
    expect(acked.status).toBe(200);
    expect(acked.body.cursor).toBe(seq);
    expect((await b.http('POST', '/api/messages/inbox/ack', { upTo: 1 })).body.cursor).toBe(seq);
    expect((await b.http('GET', '/api/messages/inbox')).body).toMatchObject({ messages: [], cursor: seq });
    // `after` reads from elsewhere without moving the cursor.
    expect((await b.http('GET', '/api/messages/inbox?after=0')).body.messages).toHaveLength(1);

    // Another agent's mailbox: refused by parameter, and no other parameter names it.
    const secret = await g.http('POST', '/api/messages', { body: { to: 'web-a', body: 'for a only' } });
    expect(secret.status).toBe(201);
    expect(secret.body.message).toMatchObject({ from: 'admin', fromKind: 'human' });
    const other = await b.http('GET', '/api/messages/inbox?agent=web-a');
    expect(other.status).toBe(403);
    expect(other.body.code).toBe('forbidden');
    for (const q of ['as=web-a', 'agentId=web-a', 'after=0&as=web-a']) {
      const r = await b.http('GET', `/api/messages/inbox?${q}`);
      expect(r.status, q).toBe(200);
      expect(JSON.stringify(r.body), q).not.toContain('for a only');
    }
    expect((await b.http('POST', '/api/messages/inbox/ack', { upTo: 1, agent: 'web-a' })).status).toBe(403);
    // Its history shows the DM it was sent, never a's.
    const hist = await b.http('GET', '/api/messages?as=web-a');
    expect(hist.status).toBe(403);
    const mine = await b.http('GET', '/api/messages?kind=direct');
    expect(mine.body.messages.map((m: { body: string }) => m.body)).toEqual(['hello b']);
    // The admin reads a's mailbox by name; a read token reads no mailbox.
    const aBox = await g.http('GET', '/api/messages/inbox?agent=web-a');
    expect(aBox.body.messages.map((m: { body: string }) => m.body)).toEqual(['for a only']);
    expect((await g.http('GET', '/api/messages/inbox')).status).toBe(400);
    expect((await g.http('GET', '/api/messages/inbox?agent=web-a', { token: g.tokens.read })).status).toBe(
      403,
    );

    // It cannot post as another: `as` is 403, `sender` is not a field, the sender is the token's agent.
    const asOther = await b.http('POST', '/api/messages', { to: 'web-a', body: 'x', as: 'web-a' });
    expect(asOther.status).toBe(403);
    expect(asOther.body).toMatchObject({ code: 'forbidden', path: ['body', 'as'] });
    const sender = await b.http('POST', '/api/messages', { to: 'web-a', body: 'x', sender: 'web-a' });
    expect(sender.status).toBe(400);
    expect(sender.body.code).toBe('invalid_payload');
    const status = await b.http('POST', '/api/agents/web-a/status', { status: 'pretending' });
    expect(status.status).toBe(403);
    const own = await b.http('POST', '/api/agents/web-b/status', { status: 'reviewing' });
    expect(own.status).toBe(201);
    expect(own.body.message).toMatchObject({
      kind: 'presence',
      from: 'web-b',
      fromKind: 'agent',
      presence: { event: 'status', status: 'reviewing' },
    });
    // What a's mailbox got from b is b's, and only the admin's DM besides.
    const fromB = await g.http('GET', '/api/messages?to=web-a');
    expect(fromB.body.messages.map((m: { from: string }) => m.from)).toEqual(['admin']);
  });

  it('holds at most a few long polls per agent (429 with Retry-After); a message wakes them all', async () => {
    const g = await gw.setup();
    const a = await httpAgent(g, 'poller');
    const polled = seen(g, `${g.prefix}.api.msg.inbox.poller`, MAX_MESSAGE_POLLS);
    await polled.ready();
    const polls = Array.from({ length: MAX_MESSAGE_POLLS }, () =>
      a.http('GET', '/api/messages/inbox?wait=20000'),
    );
    await polled.done;
    const over = await a.http('GET', '/api/messages/inbox?wait=20000');
    expect(over.status).toBe(429);
    expect(over.body.code).toBe('rate_limited');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // A read that does not wait is not a poll: it is answered at once.
    expect((await a.http('GET', '/api/messages/inbox')).status).toBe(200);
    const b = await g.http('POST', '/api/messages', { body: { broadcast: true, body: 'all hands' } });
    expect(b.status).toBe(201);
    for (const r of await Promise.all(polls)) {
      expect(r.status).toBe(200);
      expect(r.body.messages.map((m: { body: string }) => m.body)).toEqual(['all hands']);
    }
    // The slots are free again.
    expect((await a.http('GET', '/api/messages/inbox?wait=1')).status).toBe(200);
  });

  it('the admin reads history and whole threads; humans send as their token', async () => {
    const g = await gw.setup();
    const a = await httpAgent(g, 'alice');
    const b = await httpAgent(g, 'bob');
    const root = await a.http('POST', '/api/messages', { to: 'bob', title: 'plan', body: 'shall we?' });
    expect(root.status).toBe(201);
    const rootSeq: number = root.body.message.seq;
    const r1 = await b.http('POST', '/api/messages', { replyTo: rootSeq, body: 'yes' });
    expect(r1.body.message).toMatchObject({
      kind: 'direct',
      to: 'alice',
      replyTo: rootSeq,
      threadId: rootSeq,
    });
    const r2 = await a.http('POST', '/api/messages', { replyTo: r1.body.message.seq, body: 'then go' });
    expect(r2.body.message).toMatchObject({ to: 'bob', threadId: rootSeq });
    const noise = await b.http('POST', '/api/messages', { broadcast: true, body: 'unrelated' });
    expect(noise.status).toBe(201);
    // A submitter sends as a human named after its token; a token whose name is no sender name
    // sends as http-<token id>.
    const sub = await g.http('POST', '/api/messages', {
      token: g.tokens.submitter,
      body: { to: 'alice', body: 'from the submitter' },
    });
    expect(sub.body.message).toMatchObject({ from: 'submitter', fromKind: 'human' });
    const odd = await g.token('submitter', { name: 'ops team (night)' });
    const byOdd = await g.http('POST', '/api/messages', {
      token: odd.token,
      body: { broadcast: true, body: 'hi' },
    });
    expect(byOdd.body.message).toMatchObject({ from: `http-${odd.id}`, fromKind: 'human' });
    // Only an admin acts as an agent.
    const subAs = await g.http('POST', '/api/messages', {
      token: g.tokens.submitter,
      body: { to: 'alice', body: 'x', as: 'bob' },
    });
    expect(subAs.status).toBe(403);
    const adminAs = await g.http('POST', '/api/messages', {
      body: { to: 'alice', body: 'as bob', as: 'bob' },
    });
    expect(adminAs.body.message).toMatchObject({ from: 'bob', fromKind: 'agent' });
    // A read token reads but does not send.
    expect(
      (await g.http('POST', '/api/messages', { token: g.tokens.read, body: { to: 'bob', body: 'x' } }))
        .status,
    ).toBe(403);

    for (const id of [rootSeq, r2.body.message.seq]) {
      const t = await g.http('GET', `/api/messages/${id}/thread`, { token: g.tokens.read });
      expect(t.status).toBe(200);
      expect(t.body.root.seq).toBe(rootSeq);
      expect(t.body.replies.map((m: { body: string }) => m.body)).toEqual(['yes', 'then go']);
      expect(t.body.more).toBe(false);
    }
    // Bob reads the thread as a participant; an agent outside it does not see it.
    expect((await b.http('GET', `/api/messages/${rootSeq}/thread`)).body.replies).toHaveLength(2);
    const carol = await httpAgent(g, 'carol');
    const hidden = await carol.http('GET', `/api/messages/${rootSeq}/thread`);
    expect(hidden.status).toBe(404);
    expect(hidden.body.code).toBe('not_found');
    expect((await g.http('GET', '/api/messages/999999/thread')).status).toBe(404);

    // History by sender, paged one at a time with `after`/`next`.
    const bodies: string[] = [];
    let after = 0;
    for (let i = 0; i < 10; i++) {
      const page = await g.http('GET', `/api/messages?from=alice&limit=1&after=${after}`, {
        token: g.tokens.read,
      });
      expect(page.status).toBe(200);
      bodies.push(...page.body.messages.map((m: { body: string }) => m.body));
      if (page.body.next === null) break;
      after = page.body.next;
    }
    expect(bodies).toEqual(['shall we?', 'then go']);
    expect(
      (await g.http('GET', `/api/messages?thread=${rootSeq}`)).body.messages.map(
        (m: { seq: number }) => m.seq,
      ),
    ).toEqual([rootSeq, r1.body.message.seq, r2.body.message.seq]);
    const bcast = await g.http('GET', '/api/messages?kind=broadcast', { token: g.tokens.submitter });
    expect(bcast.body.messages.map((m: { body: string }) => m.body)).toEqual(['unrelated', 'hi']);
    // Carol's view: the broadcasts, none of the others' direct messages.
    const carolView = await carol.http('GET', '/api/messages?kind=direct');
    expect(carolView.body.messages).toEqual([]);
    // The admin sees as an agent sees with `as`.
    const asCarol = await g.http('GET', '/api/messages?kind=direct&as=carol');
    expect(asCarol.body.messages).toEqual([]);
    expect((await g.http('GET', '/api/messages?as=carol', { token: g.tokens.read })).status).toBe(403);
  });

  it('channels: create, list, invite, join, post, history, leave, remove; a non-member may not post', async () => {
    const g = await gw.setup();
    const a = await httpAgent(g, 'chan-a');
    const b = await httpAgent(g, 'chan-b');
    const created = await a.http('POST', '/api/channels', { name: 'reviews', visibility: 'invite' });
    expect(created.status).toBe(201);
    expect(created.body.channel).toMatchObject({
      name: 'reviews',
      createdBy: 'chan-a',
      members: 1,
      joined: true,
    });
    expect((await a.http('POST', '/api/channels', { name: 'reviews' })).status).toBe(409);
    // Invite-only: invisible to b until invited, and b cannot join.
    const bList = await b.http('GET', '/api/channels');
    expect(bList.body.channels.map((c: { name: string }) => c.name)).not.toContain('reviews');
    expect((await b.http('POST', '/api/channels/reviews/join')).status).toBe(404);
    // A non-member may not post or read it.
    const notMember = await b.http('POST', '/api/channels/reviews/messages', { body: 'let me in' });
    expect(notMember.status).toBe(404);
    const invited = await a.http('POST', '/api/channels/reviews/invite', { agent: 'chan-b' });
    expect(invited.status).toBe(200);
    expect(invited.body.channel.invited).toEqual(['chan-b']);
    const beforeJoin = await b.http('POST', '/api/channels/reviews/messages', { body: 'let me in' });
    expect(beforeJoin.status).toBe(403);
    expect(beforeJoin.body).toMatchObject({ code: 'forbidden', path: ['channel'] });
    expect((await b.http('GET', '/api/channels/reviews/messages')).status).toBe(403);
    const joined = await b.http('POST', '/api/channels/reviews/join', {});
    expect(joined.status).toBe(200);
    expect(joined.body.channel).toMatchObject({ members: 2, joined: true });
    const members = await g.http('GET', '/api/channels/reviews', { token: g.tokens.read });
    expect(members.body.members.map((m: { agent: string }) => m.agent).sort()).toEqual(['chan-a', 'chan-b']);

    const post = await b.http('POST', '/api/channels/reviews/messages', {
      title: 'PR 7',
      body: 'please look',
    });
    expect(post.status).toBe(201);
    expect(post.body.message).toMatchObject({ kind: 'channel', channel: 'reviews', from: 'chan-b' });
    const reply = await a.http('POST', '/api/channels/reviews/messages', {
      replyTo: post.body.message.seq,
      body: 'on it',
    });
    expect(reply.body.message).toMatchObject({ channel: 'reviews', threadId: post.body.message.seq });
    // A human posts too (members need not include it).
    const human = await g.http('POST', '/api/channels/reviews/messages', {
      token: g.tokens.submitter,
      body: { body: 'thanks both' },
    });
    expect(human.body.message).toMatchObject({ from: 'submitter', fromKind: 'human' });
    const aBox = await a.http('GET', '/api/messages/inbox');
    expect(aBox.body.messages.map((m: { body: string }) => m.body)).toEqual(['please look', 'thanks both']);
    const hist = await b.http('GET', '/api/channels/reviews/messages');
    expect(hist.body.messages.map((m: { body: string }) => m.body)).toEqual([
      'please look',
      'on it',
      'thanks both',
    ]);
    expect(
      (await g.http('GET', '/api/channels/reviews/messages?limit=1', { token: g.tokens.read })).body.next,
    ).toBe(post.body.message.seq);

    // Leave (idempotent); then posting is refused again.
    expect((await b.http('POST', '/api/channels/reviews/leave')).body.left).toBe(true);
    expect((await b.http('POST', '/api/channels/reviews/leave')).body.left).toBe(false);
    expect((await b.http('POST', '/api/channels/reviews/messages', { body: 'still here?' })).status).toBe(
      403,
    );
    // Only its creator (or an admin) removes it; then it is gone.
    const notCreator = await b.http('DELETE', '/api/channels/reviews');
    expect(notCreator.status).toBe(403);
    expect((await a.http('DELETE', '/api/channels/reviews')).status).toBe(200);
    expect((await g.http('GET', '/api/channels/reviews')).status).toBe(404);
    expect((await a.http('POST', '/api/channels/reviews/messages', { body: 'gone?' })).status).toBe(404);

    // An admin creates a public channel and joins an agent to it by name; `room` stays.
    const ops = await g.http('POST', '/api/channels', { body: { name: 'ops', description: 'operations' } });
    expect(ops.status).toBe(201);
    expect(ops.body.channel).toMatchObject({ members: 0, visibility: 'public' });
    const noAgent = await g.http('POST', '/api/channels/ops/join');
    expect(noAgent.status).toBe(400);
    expect(noAgent.body.path).toEqual(['body', 'as']);
    expect(
      (await g.http('POST', '/api/channels/ops/join', { body: { as: 'chan-b' } })).body.channel.members,
    ).toBe(1);
    expect((await b.http('POST', '/api/channels/ops/join', { as: 'chan-a' })).status).toBe(403);
    expect(
      (await g.http('POST', '/api/channels', { token: g.tokens.submitter, body: { name: 'x' } })).status,
    ).toBe(403);
    const room = await g.http('DELETE', '/api/channels/room');
    expect(room.status).toBe(403);
    const all = await g.http('GET', '/api/channels', { token: g.tokens.read });
    expect(all.body.channels.map((c: { name: string }) => c.name).sort()).toEqual(['ops', 'room']);
  });

  it('bad input: unknown agent or channel 404, oversized 413, malformed 400, each structured', async () => {
    const g = await gw.setup();
    const a = await httpAgent(g, 'bad-a');
    const unknown = await a.http('POST', '/api/messages', { to: 'nobody', body: 'hello?' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'not_found', path: ['to'] });
    const noChannel = await a.http('POST', '/api/messages', { channel: 'nowhere', body: 'hello?' });
    expect(noChannel.status).toBe(404);
    expect((await a.http('GET', '/api/channels/nowhere')).status).toBe(404);
    expect((await a.http('POST', '/api/channels/nowhere/join')).status).toBe(404);
    expect((await a.http('POST', '/api/messages', { replyTo: 999_999, body: 'to what?' })).status).toBe(404);

    // Title, body and data over 32 KiB together: the hub's payload_too_large.
    const big = await a.http('POST', '/api/messages', {
      broadcast: true,
      body: 'x'.repeat(30_000),
      data: { more: 'y'.repeat(5_000) },
    });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('payload_too_large');
    // A request body over the gateway's limit: refused before it is read.
    const huge = await g.http('POST', '/api/messages', {
      raw: JSON.stringify({ broadcast: true, body: 'z'.repeat(1_100_000) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(huge.status).toBe(413);
    expect(huge.body.code).toBe('payload_too_large');

    const malformed = await a.http('POST', '/api/messages', undefined);
    expect(malformed.status).toBe(400);
    const broken = await g.http('POST', '/api/messages', {
      raw: '{"to": "bad-a", "body": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(broken.status).toBe(400);
    expect(broken.body.code).toBe('invalid_payload');
    const two = await a.http('POST', '/api/messages', { to: 'bad-a', broadcast: true, body: 'both' });
    expect(two.status).toBe(400);
    const extra = await a.http('POST', '/api/messages', { to: 'bad-a', body: 'x', colour: 'red' });
    expect(extra.status).toBe(400);
    expect(extra.body.code).toBe('invalid_payload');
    const badWait = await a.http('GET', '/api/messages/inbox?wait=30001');
    expect(badWait.status).toBe(400);
    expect(badWait.body.path).toEqual(['query', 'wait']);
    const badName = await a.http('POST', '/api/channels', { name: 'Not A Name' });
    expect(badName.status).toBe(400);
    expect(badName.body.path).toEqual(['body', 'name']);
    expect((await a.http('GET', '/api/messages/0/thread')).status).toBe(400);
    // Nothing of that was stored.
    const stored = await g.http('GET', '/api/messages?from=bad-a');
    expect(stored.body.messages).toEqual([]);
  });
});
