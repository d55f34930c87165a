/**
 * Agent isolation, enforced by a real nats-server running the generated config: agent A cannot
 * read B's assignments, publish as B, reach admin subjects (API, stream management, KV), or submit
 * tasks unless its credentials allow it. Each denial is paired with a control showing the same
 * kind of operation works where it is allowed, so a test cannot pass because nothing works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/connection.js';
import { openKv } from '../../src/bus/kv.js';
import {
  agentInboxConsumerSpec,
  defaultTopology,
  ensureConsumer,
  provision,
} from '../../src/bus/provision.js';
import { request } from '../../src/bus/service.js';
import { TaskReplySchema } from '../../src/protocol/api.js';
import { AgentRegistrationSchema } from '../../src/protocol/registration.js';
import { API_ENDPOINTS, type Names, names } from '../../src/protocol/subjects.js';
import { waitUntil } from '../support/eventually.js';
import { type AuthFixture, denial, PERMISSION_VIOLATION, startAuthFixture } from './fixture.js';

const json = (v: unknown) => JSON.stringify(v);
const heartbeat = () => json({ v: 1, at: Date.now() });

/**
 * Subscribes and round-trips a PING: the server answers a refused SUB with -ERR before the PONG,
 * so after the flush a refused subscription is already closed. Returns the refusal ('' if none).
 */
async function subscriptionRefusal(bus: Bus, subject: string): Promise<string> {
  const sub = bus.nc.subscribe(subject);
  await bus.nc.flush();
  if (!sub.isClosed()) {
    sub.unsubscribe();
    return '';
  }
  return (await sub.closed)?.message ?? '';
}

describe('agent isolation (generated nats-server config)', () => {
  let fx: AuthFixture;
  let n: Names;
  let hub: Bus;
  let a: Bus;
  let b: Bus;

  beforeAll(async () => {
    fx = await startAuthFixture([{ id: 'a' }, { id: 'b' }, { id: 'c', canSubmit: true }], 'iso');
    n = names(fx.prefix);
    hub = await fx.connectAs('hub');
    await provision(hub, defaultTopology(n));
    // What the hub does at each agent's hello.
    for (const id of ['a', 'b', 'c']) await ensureConsumer(hub, agentInboxConsumerSpec(n, id));
    a = await fx.connectAgent('a');
    b = await fx.connectAgent('b');
  });
  afterAll(async () => {
    await fx?.dispose();
  });

  it("cannot subscribe to B's inbox, anyone's reports, B's replies or everything", async () => {
    for (const subject of [
      n.subjects.agentInbox('b'),
      n.subjects.agentAll('report'),
      '_INBOX.b.>',
      '_INBOX.>',
      '>',
    ])
      expect(await subscriptionRefusal(a, subject), subject).toMatch(
        /Permissions Violation for Subscription/,
      );
    // Control: its own reply inbox works.
    const own = a.nc.subscribe('_INBOX.a.control', { max: 1 });
    await a.nc.flush();
    hub.nc.publish('_INBOX.a.control', 'hi');
    for await (const m of own) expect(m.string()).toBe('hi');
  });

  it("cannot pull B's durable, read its info or create a consumer on the inbox stream; B still gets its assignment", async () => {
    const stream = n.streams.inbox;
    const assignment = json({ v: 1, type: 'cancel', taskId: 't1', generation: 1, reason: 'probe' });
    await hub.js.publish(n.subjects.agentInbox('b'), assignment);

    const pull = await denial(
      a.nc.request(`$JS.API.CONSUMER.MSG.NEXT.${stream}.inbox-b`, json({ batch: 1, expires: 1e9 })),
    );
    expect(pull.message).toMatch(PERMISSION_VIOLATION);
    expect((await denial(a.js.consumers.get(stream, 'inbox-b'))).message).toMatch(PERMISSION_VIOLATION);
    const create = await denial(
      a.jsm.consumers.add(stream, {
        durable_name: 'steal',
        filter_subject: n.subjects.agentInbox('b'),
        ack_policy: 'explicit' as never,
      }),
    );
    expect(create.message).toMatch(PERMISSION_VIOLATION);
    expect((await denial(a.jsm.consumers.delete(stream, 'inbox-b'))).message).toMatch(PERMISSION_VIOLATION);

    // Control: B pulls its own assignment, which is still there.
    const m = await (await b.js.consumers.get(stream, 'inbox-b')).next({ expires: 5_000 });
    expect(m?.string()).toBe(assignment);
    m?.ack();
    // And A may read its own durable.
    expect((await (await a.js.consumers.get(stream, 'inbox-a')).info()).name).toBe('inbox-a');
  });

  it("cannot publish B's heartbeat, report, hello or goodbye: none reaches a hub subscriber or the stream", async () => {
    const seen: { subject: string }[] = [];
    const observer = hub.nc.subscribe(`${n.prefix}.agent.*.>`, {
      callback: (_e, m) => {
        seen.push({ subject: m.subject });
      },
    });
    await hub.nc.flush();

    a.nc.publish(n.subjects.agentHeartbeat('b'), heartbeat());
    a.nc.publish(n.subjects.agentHello('b'), json({ v: 1 }));
    a.nc.publish(n.subjects.agentGoodbye('b'), json({ v: 1 }));
    const report = json({
      v: 1,
      type: 'completed',
      taskId: 't1',
      generation: 1,
      at: Date.now(),
      result: 'x',
    });
    expect((await denial(a.js.publish(n.subjects.agentReport('b'), report))).message).toMatch(
      PERMISSION_VIOLATION,
    );
    // The same connection then publishes on its own subject: messages of one connection reach a
    // subscriber in order, so once this arrives, anything of the above that got through would have.
    a.nc.publish(n.subjects.agentHeartbeat('a'), heartbeat());
    await waitUntil(
      () => seen.some((m) => m.subject === n.subjects.agentHeartbeat('a')),
      "A's own heartbeat",
    );
    observer.unsubscribe();
    expect(seen.map((m) => m.subject)).toEqual([n.subjects.agentHeartbeat('a')]);
    expect(
      await hub.jsm.streams.getMessage(n.streams.reports, { last_by_subj: n.subjects.agentReport('b') }),
    ).toBeNull();

    // Control: A's own report is stored.
    const ack = await a.js.publish(n.subjects.agentReport('a'), report);
    expect(ack.stream).toBe(n.streams.reports);
  });

  it('cannot reach admin subjects: the API, service discovery, stream management, KV', async () => {
    for (const endpoint of API_ENDPOINTS.filter((e) => e !== 'task.submit')) {
      const err = await denial(a.nc.request(n.subjects.api[endpoint], json({ v: 1 }), { timeout: 2_000 }));
      expect(err.message, endpoint).toMatch(PERMISSION_VIOLATION);
    }
    for (const subject of ['$SRV.PING', `$SRV.INFO.${n.service.name}`]) {
      const err = await denial(a.nc.request(subject, '', { timeout: 2_000 }));
      expect(err.message, subject).toMatch(PERMISSION_VIOLATION);
    }
    const js = [
      () => a.jsm.getAccountInfo(),
      () => a.jsm.streams.info(n.streams.reports),
      () => a.jsm.streams.purge(n.streams.inbox),
      () => a.jsm.streams.delete(n.streams.submit),
      () => a.jsm.streams.add({ name: 'EVIL', subjects: ['evil.>'] }),
      () => a.jsm.streams.getMessage(n.streams.reports, { last_by_subj: n.subjects.agentReport('b') }),
    ];
    for (const op of js) expect((await denial(op())).message).toMatch(PERMISSION_VIOLATION);

    const bucket = n.buckets.agents;
    const put = await denial(a.js.publish(`$KV.${bucket}.b`, json({ v: 1, id: 'b', removed: true })));
    expect(put.message).toMatch(PERMISSION_VIOLATION);
    const get = await denial(openKv(a, bucket, AgentRegistrationSchema).then((kv) => kv.get('b')));
    expect(get.message).toMatch(PERMISSION_VIOLATION);
    const direct = await denial(
      a.nc.request(`$JS.API.DIRECT.GET.KV_${bucket}`, json({ last_by_subj: `$KV.${bucket}.b` })),
    );
    expect(direct.message).toMatch(PERMISSION_VIOLATION);
    expect(await subscriptionRefusal(a, '$KV.>')).toMatch(/Permissions Violation for Subscription/);

    // Control: the admin may do all of it.
    const admin = await fx.connectAs('admin');
    expect((await admin.jsm.streams.info(n.streams.reports)).config.name).toBe(n.streams.reports);
  });

  it('cannot submit tasks unless its credentials allow it', async () => {
    const task = json({ v: 1, title: 'probe', description: 'submitted by an agent' });
    const js = await denial(a.js.publish(n.subjects.taskSubmit, task));
    expect(js.message).toMatch(PERMISSION_VIOLATION);
    const api = await denial(a.nc.request(n.subjects.api['task.submit'], task, { timeout: 2_000 }));
    expect(api.message).toMatch(PERMISSION_VIOLATION);
    // Through the typed API client, the refusal is a structured `forbidden` (the CLI's exit 5).
    const typed = await denial(
      request(a, 'task.submit', { v: 1, title: 'probe' }, TaskReplySchema, { timeoutMs: 2_000 }),
    );
    expect(typed).toMatchObject({ code: 'forbidden' });

    // C was added with canSubmit: on its own subjects (not the shared ones, nor another agent's)
    // the stream takes its submission, and the API request is let through (no hub runs in this
    // file, so nobody answers it: no responders, not a violation).
    const c = await fx.connectAgent('c');
    for (const subject of [n.subjects.taskSubmit, n.subjects.taskSubmitAs('a')])
      expect((await denial(c.js.publish(subject, task))).message).toMatch(PERMISSION_VIOLATION);
    const ack = await c.js.publish(n.subjects.taskSubmitAs('c'), task, { msgID: 'c-probe' });
    expect(ack.stream).toBe(n.streams.submit);
    const shared = await denial(c.nc.request(n.subjects.api['task.submit'], task, { timeout: 2_000 }));
    expect(shared.message).toMatch(PERMISSION_VIOLATION);
    const noHub = await denial(c.nc.request(n.subjects.apiTaskSubmitAs('c'), task, { timeout: 2_000 }));
    expect(noHub.message).not.toMatch(PERMISSION_VIOLATION);
    expect(noHub.message).toMatch(/no responders|503/i);
  });
});
