/**
 * Messaging against a real hub on a test nats-server, through its API: what every kind of bad,
 * duplicate, stale or hostile request gets (and that it stores nothing); threads reassembled in
 * order from any of their messages; mailboxes with their cursors and a long poll; and history
 * paging checked against a reference by a fast-check property (every page, followed by `next`,
 * gives exactly the stored messages that match the filter, in order, as the viewer may see them).
 * Agents here are SDK clients in this process (registered with a hello); test/security/
 * messaging-auth.test.ts runs them under the generated permissions.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { MessagingClient } from '../../src/bus/messaging-client.js';
import { request } from '../../src/bus/service.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import {
  type Message,
  type MessageKind,
  MsgHistoryReplySchema,
  type MsgHistoryRequest,
  MsgSendReplySchema,
} from '../../src/protocol/message.js';
import { messagePushSubject } from '../../src/protocol/permissions.js';
import { useCliHub } from '../support/cli-hub.js';
import { waitUntil } from '../support/eventually.js';

const h = useCliHub('msg');
const m = () => new MessagingClient(h.client.bus, { timeoutMs: 15_000 });
const agents: AgentClient[] = [];
const IDS = ['m1', 'm2', 'm3'] as const;

beforeAll(async () => {
  for (const agentId of IDS)
    agents.push(
      await AgentClient.connect({
        connection: { servers: h.url, prefix: h.prefix },
        agentId,
        hello: { queues: ['default'] },
        logger: pino({ level: 'silent' }),
        helloTimeoutMs: 10_000,
      }),
    );
}, 60_000);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop().catch(() => {})));
});

async function refusal(p: Promise<unknown>): Promise<AgentComError> {
  const err = await p.then(
    () => new Error('expected a refusal'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentComError);
  return err as AgentComError;
}

/** What was sent (presence messages aside: agents' joins land when Presence sees them). */
const sent = async () => (await everything()).filter((x) => x.kind !== 'presence');

/** Everything stored, oldest first (the trusted, unfiltered history, followed to its end). */
async function everything(): Promise<Message[]> {
  const out: Message[] = [];
  let after: number | undefined;
  for (;;) {
    const page = await m().history({ limit: 1_000, ...(after !== undefined ? { after } : {}) });
    out.push(...page.messages);
    if (page.next === null) return out;
    after = page.next;
  }
}

describe('bad input gets its documented outcome and stores nothing', () => {
  it('refuses each malformed, oversized, misaddressed and hostile send', async () => {
    const before = (await sent()).length;
    // Thunks, so that each runs (and is refused) only when its turn comes.
    const cases: [string, () => Promise<unknown>, string, (string | number)[]?][] = [
      ['no recipient', () => m().send({ body: 'x' }), ERROR_CODES.INVALID_PAYLOAD],
      [
        'two recipients',
        () => m().send({ to: 'm1', channel: 'room', body: 'x' }),
        ERROR_CODES.INVALID_PAYLOAD,
      ],
      ['an unknown agent', () => m().send({ to: 'nobody', body: 'x' }), ERROR_CODES.NOT_FOUND, ['to']],
      [
        'an unknown channel',
        () => m().send({ channel: 'nowhere', body: 'x' }),
        ERROR_CODES.NOT_FOUND,
        ['channel'],
      ],
      [
        'a reply to nothing',
        () => m().send({ replyTo: 999_999, body: 'x' }),
        ERROR_CODES.NOT_FOUND,
        ['replyTo'],
      ],
      ['an empty message', () => m().send({ to: 'm1', body: '' }), ERROR_CODES.INVALID_PAYLOAD, ['body']],
      [
        'too large',
        () => m().send({ to: 'm1', body: 'x'.repeat(33 * 1024) }),
        ERROR_CODES.INVALID_PAYLOAD,
        ['body'],
      ],
      [
        'too large together',
        () => m().send({ to: 'm1', body: 'x'.repeat(20_000), data: { y: 'y'.repeat(20_000) } }),
        ERROR_CODES.PAYLOAD_TOO_LARGE,
      ],
      [
        'a bad channel name',
        () => m().send({ channel: 'Bad Name', body: 'x' }),
        ERROR_CODES.INVALID_PAYLOAD,
        ['channel'],
      ],
      [
        'an unknown field',
        () => m().send({ to: 'm1', body: 'x', from: 'm2' } as never),
        ERROR_CODES.INVALID_PAYLOAD,
      ],
      [
        'as on an agent subject',
        () =>
          request(h.client.bus, 'msg.send.m1', { v: 1, to: 'm2', body: 'x', as: 'm3' }, MsgSendReplySchema),
        ERROR_CODES.FORBIDDEN,
        ['as'],
      ],
      [
        'sender on an agent subject',
        () =>
          request(
            h.client.bus,
            'msg.send.m1',
            { v: 1, to: 'm2', body: 'x', sender: 'boss' },
            MsgSendReplySchema,
          ),
        ERROR_CODES.FORBIDDEN,
        ['sender'],
      ],
      [
        'an agent subject with two tokens',
        () => request(h.client.bus, 'msg.send.m1.m2', { v: 1, to: 'm2', body: 'x' }, MsgSendReplySchema),
        ERROR_CODES.INVALID_PAYLOAD,
      ],
      [
        'a non-member posting',
        () => request(h.client.bus, 'msg.send.m1', { v: 1, channel: 'room', body: 'x' }, MsgSendReplySchema),
        ERROR_CODES.FORBIDDEN,
        ['channel'],
      ],
      [
        'a wrong version',
        () => request(h.client.bus, 'msg.send', { v: 2, to: 'm1', body: 'x' }, MsgSendReplySchema),
        ERROR_CODES.UNSUPPORTED_VERSION,
      ],
    ];
    for (const [what, p, code, path] of cases) {
      const err = await refusal(p());
      expect(err.code, what).toBe(code);
      if (path) expect(err.path, what).toEqual(path);
    }
    // Not JSON, and nested deeper than the stack: structured refusals, the hub carries on.
    const raw = await h.client.bus.nc.request(`${h.prefix}.api.msg.send`, 'not json', { timeout: 10_000 });
    expect(JSON.parse(new TextDecoder().decode(raw.data)).code).toBe(ERROR_CODES.INVALID_PAYLOAD);
    const deep = `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`;
    const deepReply = await h.client.bus.nc.request(
      `${h.prefix}.api.msg.send`,
      `{"v":1,"to":"m1","body":"x","data":${deep}}`,
      { timeout: 10_000 },
    );
    expect(JSON.parse(new TextDecoder().decode(deepReply.data)).code).toBe(ERROR_CODES.INVALID_PAYLOAD);
    expect((await sent()).length).toBe(before);
    // The control: a good send is stored.
    await m().send({ to: 'm1', body: 'fine' });
    expect((await sent()).length).toBe(before + 1);
  });

  it('stores a send repeated with its clientId once, and a reply must stay in its conversation', async () => {
    const first = await m().send({ to: 'm2', body: 'once', clientId: 'k-1', sender: 'alice' });
    const again = await m().send({ to: 'm2', body: 'once', clientId: 'k-1', sender: 'alice' });
    expect(again).toMatchObject({ duplicate: true, message: first.message });
    // The same key from another sender is its own message.
    const bob = await m().send({ to: 'm2', body: 'once', clientId: 'k-1', sender: 'bob' });
    expect(bob.duplicate).toBe(false);
    expect(bob.message.seq).not.toBe(first.message.seq);
    const all = await everything();
    expect(all.filter((x) => x.body === 'once' && x.from === 'alice')).toHaveLength(1);
    const err = await refusal(
      m().send({ replyTo: first.message.seq, to: 'm3', body: 'elsewhere', as: 'm2' }),
    );
    expect(err.code).toBe(ERROR_CODES.INVALID_PAYLOAD);
    expect(err.path).toEqual(['replyTo']);
  });

  it('an ack is idempotent, never goes back, and never passes what is stored', async () => {
    const s1 = (await m().send({ to: 'm3', body: 'one' })).message.seq;
    const s2 = (await m().send({ to: 'm3', body: 'two' })).message.seq;
    expect(await m().ack(s1, { as: 'm3' })).toBe(s1);
    expect(await m().ack(s1, { as: 'm3' })).toBe(s1);
    // Out of order: a late, lower ack changes nothing.
    expect(await m().ack(s2, { as: 'm3' })).toBe(s2);
    expect(await m().ack(s1, { as: 'm3' })).toBe(s2);
    // From the future: held at the last stored message, so mail stored later is not skipped.
    const capped = await m().ack(s2 + 1_000_000, { as: 'm3' });
    expect(capped).toBeLessThan(s2 + 1_000_000);
    const s3 = (await m().send({ to: 'm3', body: 'three' })).message.seq;
    expect(s3).toBeGreaterThan(capped);
    const page = await m().inbox({ as: 'm3' });
    expect(page.messages.map((x) => x.body)).toEqual(['three']);
    // A trusted client reading a mailbox must say whose.
    expect((await refusal(m().inbox())).path).toEqual(['as']);
  });
});

describe('threads and mailboxes', () => {
  it('reassembles a direct thread and a channel thread in order, from any of their messages', async () => {
    const root = (await m().send({ to: 'm2', body: 'q0', as: 'm1' })).message;
    const chain = [root];
    for (let i = 1; i <= 6; i++) {
      // Alternating sides, each answering the last: the reply finds the other party by itself.
      const by = i % 2 === 1 ? 'm2' : 'm1';
      chain.push((await m().send({ replyTo: chain.at(-1)!.seq, body: `q${i}`, as: by })).message);
    }
    expect(chain.slice(1).map((x) => x.to)).toEqual(['m1', 'm2', 'm1', 'm2', 'm1', 'm2']);
    for (const from of [root, chain[3]!, chain.at(-1)!]) {
      const t = await m().thread(from.seq);
      expect(t.root.seq).toBe(root.seq);
      expect(t.replies.map((x) => x.body)).toEqual(['q1', 'q2', 'q3', 'q4', 'q5', 'q6']);
      expect(t.replies.every((x) => x.threadId === root.seq)).toBe(true);
    }
    // Either party sees the whole thread; a third agent does not see it at all.
    expect((await m().thread(root.seq, { as: 'm2' })).replies).toHaveLength(6);
    expect((await refusal(m().thread(root.seq, { as: 'm3' }))).code).toBe(ERROR_CODES.NOT_FOUND);

    await m().channelCreate({ name: 'design', as: 'm1' });
    await m().channelJoin('design', { as: 'm3' });
    const topic = (await m().send({ channel: 'design', body: 'topic', as: 'm1' })).message;
    await m().send({ channel: 'design', body: 'unrelated', as: 'm3' });
    const r1 = (await m().send({ replyTo: topic.seq, body: 'r1', as: 'm3' })).message;
    await m().send({ replyTo: r1.seq, body: 'r2', sender: 'carol' });
    const t = await m().thread(r1.seq, { as: 'm3' });
    expect([t.root.body, ...t.replies.map((x) => x.body)]).toEqual(['topic', 'r1', 'r2']);
    expect(t.replies.map((x) => x.channel)).toEqual(['design', 'design']);
  });

  it('a mailbox holds what is for it, in order, from its cursor; a long poll wakes for a message', async () => {
    await m().channelCreate({ name: 'news' });
    const before = (await m().send({ channel: 'news', body: 'before joining' })).message;
    await m().channelJoin('news', { as: 'm2' });
    const start = await m().inbox({ as: 'm2', limit: 1_000 });
    await m().ack(start.messages.at(-1)?.seq ?? start.cursor, { as: 'm2' });
    const pushes: Message[] = [];
    const sub = h.client.bus.nc.subscribe(messagePushSubject('m2'), {
      callback: (_e, msg) => {
        pushes.push(msg.json<{ message: Message }>().message);
      },
    });
    try {
      const bodies = [] as string[];
      bodies.push((await m().send({ channel: 'news', body: 'n1', sender: 'dave' })).message.body);
      bodies.push((await m().send({ broadcast: true, body: 'b1', as: 'm1' })).message.body);
      bodies.push((await m().send({ to: 'm2', body: 'd1', as: 'm3' })).message.body);
      // Its own broadcast and post are not its mail.
      await m().send({ broadcast: true, body: 'own', as: 'm2' });
      await m().send({ channel: 'news', body: 'own post', as: 'm2' });
      const page = await m().inbox({ as: 'm2' });
      expect(page.messages.map((x) => x.body)).toEqual(bodies);
      expect(page.messages.map((x) => x.seq)).toEqual(
        [...page.messages.map((x) => x.seq)].sort((a, b) => a - b),
      );
      expect(page.messages.some((x) => x.seq === before.seq)).toBe(false);
      // Paging: limit 1 with `after` walks the same messages.
      const walked: string[] = [];
      let after = page.cursor;
      for (;;) {
        const p = await m().inbox({ as: 'm2', after, limit: 1 });
        walked.push(...p.messages.map((x) => x.body));
        if (!p.more) break;
        after = p.messages.at(-1)!.seq;
      }
      expect(walked).toEqual(bodies);
      await waitUntil(() => pushes.length >= 3, 'the pushes to m2');
      expect(pushes.map((x) => x.body)).toEqual(bodies);
      await m().ack(page.messages.at(-1)!.seq, { as: 'm2' });
      // Nothing new: a long poll waits, and a message sent meanwhile ends it.
      const waiting = m().inbox({ as: 'm2', waitMs: 20_000 });
      const woke = (await m().send({ to: 'm2', body: 'wake up', as: 'm1' })).message;
      const got = await waiting;
      expect(got.messages.map((x) => x.seq)).toEqual([woke.seq]);
    } finally {
      sub.unsubscribe();
    }
  });
});

describe('history paging against a reference', () => {
  const kinds: MessageKind[] = ['direct', 'broadcast', 'channel', 'presence'];

  /** Who may read what, written out again here: the reference the hub is checked against. */
  function visible(x: Message, viewer: string | undefined, channels: Map<string, Set<string>>): boolean {
    if (viewer === undefined) return true;
    if (x.kind === 'direct') return x.to === viewer || (x.fromKind === 'agent' && x.from === viewer);
    if (x.kind === 'channel') return channels.get(x.channel!)?.has(viewer) ?? false;
    return true;
  }

  it('every filter, paged at any size and followed by `next`, gives exactly the matching messages in order', async () => {
    // A history of its own: two channels with different members, direct messages, broadcasts, replies.
    await m().channelCreate({ name: 'ph-a', as: 'm1' });
    await m().channelCreate({ name: 'ph-b', as: 'm2' });
    await m().channelJoin('ph-a', { as: 'm3' });
    const sends = fc.sample(
      fc.record({
        kind: fc.constantFrom('direct', 'broadcast', 'ph-a', 'ph-b'),
        by: fc.constantFrom('m1', 'm2', 'm3', 'human'),
        to: fc.constantFrom(...IDS),
        reply: fc.boolean(),
      }),
      { numRuns: 60, seed: 14 },
    );
    const mine: Message[] = [];
    const members = new Map([
      ['ph-a', new Set(['m1', 'm3'])],
      ['ph-b', new Set(['m2'])],
    ]);
    for (const [i, s] of sends.entries()) {
      const caller = s.by === 'human' ? { sender: 'erin' } : { as: s.by };
      const channel = s.kind.startsWith('ph-') ? s.kind : undefined;
      // Agents post only where they are members; humans anywhere.
      if (channel && s.by !== 'human' && !members.get(channel)!.has(s.by)) continue;
      const parent = s.reply
        ? mine.filter((x) => visible(x, s.by === 'human' ? undefined : s.by, members)).at(-1)
        : undefined;
      const target = parent
        ? { replyTo: parent.seq }
        : channel
          ? { channel }
          : s.kind === 'broadcast'
            ? { broadcast: true as const }
            : { to: s.to };
      const r = await m()
        .send({ ...target, body: `h${i}`, ...caller })
        .catch((e: unknown) => e);
      // A reply to a human's direct message has no one to go to: refused, and skipped here.
      if (r instanceof AgentComError) {
        expect(r.code).toBe(ERROR_CODES.INVALID_PAYLOAD);
        continue;
      }
      mine.push((r as { message: Message }).message);
    }
    const all = await everything();
    // The full read holds every message sent here, unchanged, in order.
    const bySeq = new Map(all.map((x) => [x.seq, x]));
    for (const x of mine) expect(bySeq.get(x.seq)).toEqual(x);
    expect(all.map((x) => x.seq)).toEqual([...all.map((x) => x.seq)].sort((a, b) => a - b));
    const threads = [...new Set(mine.map((x) => x.threadId).filter((t): t is number => t !== undefined))];
    const times = all.map((x) => x.at);

    const filter = fc.record(
      {
        kind: fc.constantFrom(...kinds),
        channel: fc.constantFrom('ph-a', 'ph-b', 'room'),
        to: fc.constantFrom(...IDS),
        from: fc.constantFrom('m1', 'm2', 'm3', 'erin', 'hub'),
        thread: fc.constantFrom(...(threads.length ? threads : [1])),
        since: fc.constantFrom(...times),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(
        filter,
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(undefined, ...IDS),
        async (f, limit, viewer) => {
          const q = f as Partial<MsgHistoryRequest>;
          const expected = all.filter(
            (x) =>
              (q.kind === undefined || x.kind === q.kind) &&
              (q.channel === undefined || x.channel === q.channel) &&
              (q.to === undefined || x.to === q.to) &&
              (q.from === undefined || x.from === q.from) &&
              (q.thread === undefined || x.seq === q.thread || x.threadId === q.thread) &&
              (q.since === undefined || x.at >= q.since) &&
              visible(x, viewer, members),
          );
          const forbidden =
            viewer !== undefined && q.channel !== undefined && !members.get(q.channel)?.has(viewer);
          const got: Message[] = [];
          let after: number | undefined;
          for (let pages = 0; ; pages++) {
            expect(pages).toBeLessThan(all.length + 2);
            const page = await m()
              .history({
                ...q,
                limit,
                ...(after !== undefined ? { after } : {}),
                ...(viewer ? { as: viewer } : {}),
              })
              .catch((e: unknown) => e);
            if (forbidden) {
              // `room`'s history is for its members, like any channel's.
              expect(page).toBeInstanceOf(AgentComError);
              expect((page as AgentComError).code).toBe(ERROR_CODES.FORBIDDEN);
              return;
            }
            if (page instanceof Error) throw page;
            const p = MsgHistoryReplySchema.parse({ v: 1, ...(page as object) });
            expect(p.messages.length).toBeLessThanOrEqual(limit);
            got.push(...p.messages);
            if (p.next === null) break;
            after = p.next;
          }
          expect(got.map((x) => x.seq)).toEqual(expected.map((x) => x.seq));
        },
      ),
      { numRuns: 40, seed: 1414 },
    );
  }, 180_000);
});

describe('under concurrency and from hostile callers', () => {
  const connect = async (agentId: string) => {
    const a = await AgentClient.connect({
      connection: { servers: h.url, prefix: h.prefix },
      agentId,
      hello: { queues: ['default'] },
      logger: pino({ level: 'silent' }),
      helloTimeoutMs: 10_000,
    });
    agents.push(a);
    return a;
  };

  it('a reader following its mailbox while many send to it reads every message once, in order', async () => {
    await connect('race-r');
    // Many sources (its direct messages, the broadcasts, six channels), each read at its own moment.
    const channels = Array.from({ length: 6 }, (_, i) => `race-${i}`);
    for (const c of channels) {
      await m().channelCreate({ name: c });
      await m().channelJoin(c, { as: 'race-r' });
    }
    const start = (await m().inbox({ as: 'race-r', limit: 1_000 })).messages.at(-1)?.seq ?? 0;
    const sent: number[] = [];
    const senders = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 100; i++) {
        const k = (i + w) % 8;
        const target =
          k === 0 ? { to: 'race-r' } : k === 1 ? { broadcast: true as const } : { channel: channels[k - 2]! };
        sent.push((await m().send({ ...target, body: `w${w}-${i}`, sender: `w${w}` })).message.seq);
      }
    });
    const read: number[] = [];
    let after = start;
    let done = false;
    const reading = (async () => {
      while (!done || read.length < sent.length) {
        const page = await m().inbox({ as: 'race-r', after, limit: 7 });
        for (const x of page.messages) read.push(x.seq);
        if (page.messages.length) after = page.messages.at(-1)!.seq;
        if (done && !page.more && page.messages.length === 0) break;
      }
    })();
    await Promise.all(senders);
    done = true;
    await reading;
    expect(read).toEqual([...sent].sort((a, b) => a - b));
  }, 120_000);

  it('a channel made again under a removed one’s name shows its members nothing of the old one', async () => {
    await m().channelCreate({ name: 'reused', visibility: 'invite', as: 'm1' });
    await m().send({ channel: 'reused', body: 'the password is hunter2', as: 'm1' });
    await m().channelRemove('reused', { as: 'm1' });
    await m().channelCreate({ name: 'reused', as: 'm3' });
    const fresh = (await m().send({ channel: 'reused', body: 'hello again', as: 'm3' })).message;
    expect((await m().history({ channel: 'reused', as: 'm3' })).messages.map((x) => x.body)).toEqual([
      'hello again',
    ]);
    const err = await refusal(m().send({ replyTo: fresh.seq - 1, body: 'x', as: 'm3' }));
    expect(err.code).toBe(ERROR_CODES.NOT_FOUND);
    // Operators still see the whole stream.
    expect((await m().history({ channel: 'reused' })).messages.map((x) => x.body)).toEqual([
      'the password is hunter2',
      'hello again',
    ]);
  });

  it('an agent named like a human has no creator rights over the human’s channels', async () => {
    await connect('operator');
    await m().channelCreate({ name: 'ops-only', visibility: 'invite' });
    expect((await refusal(m().channelJoin('ops-only', { as: 'operator' }))).code).toBe(ERROR_CODES.NOT_FOUND);
    expect((await refusal(m().channelRemove('ops-only', { as: 'operator' }))).code).toBe(
      ERROR_CODES.NOT_FOUND,
    );
    // Public, for the control: visible, yet not its to remove.
    await m().channelCreate({ name: 'ops-public' });
    expect((await refusal(m().channelRemove('ops-public', { as: 'operator' }))).code).toBe(
      ERROR_CODES.FORBIDDEN,
    );
  });

  it('concurrent invitations are all kept; invitations to public channels and unknown agents are refused', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `inv-${i}`);
    for (const id of ids) await connect(id);
    await m().channelCreate({ name: 'crowd', visibility: 'invite', as: 'm1' });
    await Promise.all(ids.map((id) => m().channelInvite('crowd', id, { as: 'm1' })));
    const members = await m().channelMembers('crowd');
    expect([...(members.channel.invited ?? [])].sort()).toEqual([...ids].sort());
    expect((await refusal(m().channelInvite('crowd', 'nobody-at-all', { as: 'm1' }))).code).toBe(
      ERROR_CODES.NOT_FOUND,
    );
    await m().channelCreate({ name: 'open-door', as: 'm1' });
    expect((await refusal(m().channelInvite('open-door', 'm2', { as: 'm1' }))).code).toBe(
      ERROR_CODES.INVALID_STATE,
    );
  }, 60_000);

  it('a removed agent gets no more messages; waiting reads per agent are capped', async () => {
    await connect('leaver');
    await m().send({ to: 'leaver', body: 'before' });
    await h.api.removeAgent('leaver');
    expect((await refusal(m().send({ to: 'leaver', body: 'after' }))).code).toBe(ERROR_CODES.NOT_FOUND);
    const polls = Array.from({ length: 4 }, () => m().inbox({ as: 'm3', after: 1e12, waitMs: 3_000 }));
    await waitUntil(async () => {
      const err = await m()
        .inbox({ as: 'm3', after: 1e12, waitMs: 3_000 })
        .then(
          () => null,
          (e: unknown) => e as AgentComError,
        );
      return err?.code === ERROR_CODES.RATE_LIMITED;
    }, 'a fifth waiting read refused');
    for (const p of await Promise.all(polls)) expect(p.messages).toEqual([]);
  }, 60_000);

  it('a channel list too large for one reply comes in pages', async () => {
    const names = Array.from({ length: 1_000 }, (_, i) => `page-${String(i).padStart(4, '0')}`);
    for (const name of names) await m().channelCreate({ name, description: 'd'.repeat(500) });
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const r = await m().bus.nc.request(
        `${h.prefix}.api.channel.list`,
        JSON.stringify({ v: 1, ...(after ? { after } : {}) }),
        { timeout: 15_000 },
      );
      const page = r.json<{ channels: { name: string; invited?: unknown }[]; more: boolean }>();
      seen.push(...page.channels.map((c) => c.name));
      expect(page.channels.every((c) => c.invited === undefined)).toBe(true);
      if (!page.more) break;
      after = page.channels.at(-1)!.name;
    }
    expect(seen.filter((x) => x.startsWith('page-'))).toEqual(names);
    expect(seen.length).toBe(new Set(seen).size);
  }, 120_000);
});
