/**
 * Messaging under the generated permissions: a real nats-server running the config the auth
 * directory generates, a real hub, and agents A, B and C with their own credentials.
 * - A cannot read B's mailbox, move B's cursor, or receive B's live copies: the server refuses the
 *   subjects (and the trusted endpoints, where `as` would name B), so nothing of B's reaches A;
 * - A cannot post as B: on its own subject `as` and `sender` are refused by the hub, and every
 *   message it sends carries `from: A`;
 * - A cannot write the messages stream or read it past the API (no JetStream API at all);
 * - channels: a channel A is not in is refused for posting and for history, an invite-only one is
 *   invisible to it, and its posts never reach A's mailbox.
 * Every refusal is paired with a control showing the same operation works where it is allowed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentClient } from '../../src/agent/client.js';
import type { Bus } from '../../src/bus/connection.js';
import { MessagingClient } from '../../src/bus/messaging-client.js';
import { request } from '../../src/bus/service.js';
import type { HubHandle } from '../../src/hub/main.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import { type Message, MsgInboxReplySchema, MsgSendReplySchema } from '../../src/protocol/message.js';
import { messagePushSubject } from '../../src/protocol/permissions.js';
import { eventually, waitUntil } from '../support/eventually.js';
import { startTestHub } from '../support/hub.js';
import {
  type AuthFixture,
  connectAgentClient,
  denial,
  expectHubRefusal,
  expectServerRefusal,
  PERMISSION_VIOLATION,
  startAuthFixture,
} from './fixture.js';

/** Waits for the server's -ERR naming `subject` after `act` (a refused publish or subscription). */
async function serverError(bus: Bus, subject: string, act: () => void): Promise<string> {
  let refusal = '';
  const off = bus.onStatus((e) => {
    if (e.type === 'error' && e.message.includes(`"${subject}"`)) refusal = e.message;
  });
  try {
    act();
    await waitUntil(() => refusal !== '', `the server's refusal naming ${subject}`);
  } finally {
    off();
  }
  return refusal;
}

describe('messaging under the generated permissions', () => {
  let fx: AuthFixture;
  let hub: HubHandle;
  let admin: MessagingClient;
  const agents: AgentClient[] = [];
  let a: AgentClient;
  let b: AgentClient;
  let c: AgentClient;
  const as = (x: AgentClient) => new MessagingClient(x.bus, { agentId: x.agentId, timeoutMs: 15_000 });

  beforeAll(async () => {
    fx = await startAuthFixture([{ id: 'a' }, { id: 'b' }, { id: 'c' }], 'msgsec');
    hub = await startTestHub(fx.url, fx.prefix, { authDir: fx.dir });
    admin = new MessagingClient(await fx.connectAs('admin'), { timeoutMs: 15_000 });
    await eventually(() => admin.channelList(), { timeout: 15_000, interval: 100 });
    for (const id of ['a', 'b', 'c']) agents.push(await connectAgentClient(fx, id, { capabilities: [] }));
    [a, b, c] = agents as [AgentClient, AgentClient, AgentClient];
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((x) => x.stop().catch(() => undefined)));
    await hub?.stop();
    await fx?.dispose();
  });

  it('A cannot read, ack or receive what is B’s; B can', async () => {
    const sent = await as(c).send({ to: 'b', body: 'for b only' });
    expect(sent.message).toMatchObject({ from: 'c', fromKind: 'agent', to: 'b' });
    // The server refuses B's subjects to A, and the trusted ones where `as` would name B.
    expectServerRefusal(
      await denial(request(a.bus, 'msg.inbox.b', { v: 1 }, MsgInboxReplySchema)),
      'A reading B’s mailbox',
    );
    expectServerRefusal(
      await denial(request(a.bus, 'msg.inbox', { v: 1, as: 'b' }, MsgInboxReplySchema)),
      'A reading B’s mailbox as a trusted client',
    );
    expectServerRefusal(
      await denial(request(a.bus, 'msg.ack.b', { v: 1, upTo: sent.message.seq }, MsgInboxReplySchema)),
      'A acking B’s mailbox',
    );
    // A subscription to B's live copies is refused by the server, and nothing arrives on it.
    const seen: unknown[] = [];
    const refusal = await serverError(a.bus, messagePushSubject('b'), () => {
      // nats.js hands the refusal to the callback as an error: only messages count.
      a.bus.nc.subscribe(messagePushSubject('b'), {
        callback: (e, m) => {
          if (!e) seen.push(m);
        },
      });
    });
    expect(refusal).toMatch(PERMISSION_VIOLATION);
    // A copy pushed to B now reaches a subscriber allowed to see it (the admin), and not A.
    const adminSeen: string[] = [];
    const watch = admin.bus.nc.subscribe(messagePushSubject('b'), {
      callback: (e, m) => {
        if (!e) adminSeen.push(m.json<{ message: Message }>().message.body);
      },
    });
    await admin.bus.nc.flush();
    await as(c).send({ to: 'b', body: 'pushed to b' });
    await waitUntil(() => adminSeen.includes('pushed to b'), 'the push to b');
    await a.bus.nc.flush();
    watch.unsubscribe();
    // Control: B reads it, from a cursor A did not move.
    const inbox = await as(b).inbox();
    expect(inbox.cursor).toBe(0);
    expect(inbox.messages.map((m) => m.body)).toEqual(['for b only', 'pushed to b']);
    expect(seen).toEqual([]);
    // And A's own mailbox does not hold it.
    expect((await as(a).inbox()).messages.some((m) => m.seq === sent.message.seq)).toBe(false);
  });

  it('A cannot post as B: the hub refuses `as` and `sender` on its subject, and names it the sender', async () => {
    for (const forged of [{ as: 'b' }, { sender: 'b' }]) {
      const err = await denial(
        request(a.bus, 'msg.send.a', { v: 1, to: 'c', body: 'x', ...forged }, MsgSendReplySchema),
      );
      expectHubRefusal(err, ERROR_CODES.FORBIDDEN, `send with ${JSON.stringify(forged)}`);
    }
    // Another agent's send subject is the server's to refuse.
    expectServerRefusal(
      await denial(request(a.bus, 'msg.send.b', { v: 1, to: 'c', body: 'x' }, MsgSendReplySchema)),
      'A on B’s send subject',
    );
    const own = await as(a).send({ to: 'c', body: 'signed' });
    expect(own.message).toMatchObject({ from: 'a', fromKind: 'agent' });
    const cInbox = await as(c).inbox();
    const fromA = cInbox.messages.filter((m: Message) => m.body === 'signed' || m.body === 'x');
    expect(fromA.map((m) => [m.from, m.body])).toEqual([['a', 'signed']]);
  });

  it('A cannot write the messages stream nor read it past the API', async () => {
    const n = a.bus.names;
    const stored = await serverError(a.bus, n.subjects.msgDirect('b'), () =>
      a.bus.nc.publish(
        n.subjects.msgDirect('b'),
        JSON.stringify({ v: 1, kind: 'direct', from: 'c', body: 'forged' }),
      ),
    );
    expect(stored).toMatch(PERMISSION_VIOLATION);
    expectServerRefusal(
      await denial(
        a.bus.jsm.consumers
          .add(n.streams.messages, { filter_subject: n.subjects.msgDirect('b') })
          .catch((e) => {
            throw new AgentComError(ERROR_CODES.FORBIDDEN, String(e));
          }),
      ),
      'A making a consumer on the messages stream',
    );
    // Control: nothing forged reached B.
    const history = await admin.history({ to: 'b' });
    expect(history.messages.some((m) => m.body === 'forged')).toBe(false);
  });

  it('a channel A is not in refuses its posts and history, an invite-only one is invisible, and neither reaches its mailbox', async () => {
    await as(b).channelCreate({ name: 'pub' });
    await as(b).channelCreate({ name: 'secret', visibility: 'invite' });
    await as(b).channelInvite('secret', 'c');
    await as(c).channelJoin('secret');
    expectHubRefusal(
      await denial(as(a).send({ channel: 'pub', body: 'x' })),
      ERROR_CODES.FORBIDDEN,
      'A posting to #pub',
    );
    expectHubRefusal(
      await denial(as(a).history({ channel: 'pub' })),
      ERROR_CODES.FORBIDDEN,
      'A reading #pub',
    );
    expectHubRefusal(await denial(as(a).channelJoin('secret')), ERROR_CODES.NOT_FOUND, 'A joining #secret');
    expectHubRefusal(
      await denial(as(a).send({ channel: 'secret', body: 'x' })),
      ERROR_CODES.NOT_FOUND,
      'A posting to #secret',
    );
    expect((await as(a).channelList()).map((ch) => ch.name)).not.toContain('secret');
    const hidden = await as(c).send({ channel: 'secret', body: 'hush' });
    await as(b).send({ channel: 'pub', body: 'before A joined' });
    // Control: A joins the public channel and gets what is posted after.
    await as(a).channelJoin('pub');
    const after = await as(b).send({ channel: 'pub', body: 'after A joined' });
    const mine = (await as(a).inbox({ limit: 1_000 })).messages;
    expect(mine.map((m) => m.body)).toContain('after A joined');
    expect(mine.some((m) => m.body === 'before A joined' || m.seq === hidden.message.seq)).toBe(false);
    expect(mine.find((m) => m.seq === after.message.seq)?.channel).toBe('pub');
    // As a member it reads the channel's whole history, and C (in #secret) reads that one.
    expect((await as(a).history({ channel: 'pub' })).messages.map((m) => m.body)).toEqual([
      'before A joined',
      'after A joined',
    ]);
    expect((await as(c).history({ channel: 'secret' })).messages.map((m) => m.body)).toEqual(['hush']);
  });
});
