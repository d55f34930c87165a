/**
 * The hub with an auth directory: its embedded nats-server runs the generated config (anonymous
 * clients refused, every user in its lane), and a real hub, against agents that each hold their
 * own credentials, refuses a completion forged by an agent that does not hold the task, even with
 * the right generation; only agents allowed to submit can submit.
 */

import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentClient, TaskContext } from '../../src/agent/client.js';
import { submitTask } from '../../src/agent/submit.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { HubClient } from '../../src/bus/hub-client.js';
import { freePort } from '../../src/bus/nats-server.js';
import { readSeedFile } from '../../src/bus/nkeys.js';
import { request } from '../../src/bus/service.js';
import { authDirPaths } from '../../src/hub/auth/auth-dir.js';
import { loadHubConfig } from '../../src/hub/config.js';
import { type HubHandle, startHub } from '../../src/hub/main.js';
import type { AgentHelloInput } from '../../src/protocol/agent.js';
import { TaskReplySchema } from '../../src/protocol/api.js';
import { AgentComError } from '../../src/protocol/errors.js';
import { taskIdForSubmit } from '../../src/protocol/task-id.js';
import { eventually } from '../support/eventually.js';
import { startTestHub, TEST_HUB_SETTINGS } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import {
  type AuthFixture,
  connectAgentClient,
  denial,
  PERMISSION_VIOLATION,
  startAuthFixture,
} from './fixture.js';

const silent = pino({ level: 'silent' });

describe('hub with --auth-dir and an embedded nats-server', () => {
  let root: string;
  let hub: HubHandle | undefined;
  const opened: Bus[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agentcom-hub-auth-'));
  });
  afterAll(async () => {
    await Promise.all(opened.map((b) => b.drain().catch(() => undefined)));
    await hub?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('creates the auth directory (0600 files), refuses clients without credentials and serves the admin', async () => {
    const authDir = join(root, 'auth');
    const port = await freePort();
    const prefix = uniqueName('ha').replace(/_/g, '-').toLowerCase();
    // No natsUrl: the hub spawns its own server (on a free port, never 4222).
    const config = loadHubConfig(
      { ...TEST_HUB_SETTINGS, prefix, natsPort: port, dataDir: join(root, 'data'), authDir },
      {},
    );
    hub = await startHub(config, { logger: silent });
    const url = `nats://127.0.0.1:${port}`;
    expect(hub.natsUrl).toBe(url);
    const paths = authDirPaths(authDir);
    for (const file of [paths.hubSeed, paths.adminSeed, paths.registry, paths.config])
      expect((await stat(file)).mode & 0o777, file).toBe(0o600);

    const anonymous = await denial(
      connectBus({
        servers: url,
        prefix,
        waitOnFirstConnect: false,
        maxReconnectAttempts: 0,
        logger: silent,
      }),
    );
    expect(anonymous.message).toMatch(/authorization violation/i);

    const admin = await connectBus({
      servers: url,
      prefix,
      nkeySeed: await readSeedFile(paths.adminSeed),
      logger: silent,
    });
    opened.push(admin);
    const stats = await eventually(() => new HubClient(admin).stats(), { timeout: 15_000, interval: 100 });
    expect(stats.v).toBe(1);
  });
});

describe('a hub whose agents each have their own credentials', () => {
  let fx: AuthFixture;
  let hub: HubHandle;
  let admin: Bus;
  const agents: AgentClient[] = [];
  /** Lets B's handler finish (also in afterAll, so a failed test never leaves it hanging). */
  let release: () => void = () => {};

  const connectAgent = async (id: string, hello: Omit<AgentHelloInput, 'v'>) => {
    const client = await connectAgentClient(fx, id, hello);
    agents.push(client);
    return client;
  };

  beforeAll(async () => {
    fx = await startAuthFixture(
      [
        { id: 'a' },
        { id: 'b' },
        { id: 'c', canSubmit: true },
        { id: 'd', canSubmit: true },
        { id: 'insight', submitQueues: ['action'] },
        { id: 'doer' },
      ],
      'hubsec',
    );
    hub = await startTestHub(fx.url, fx.prefix, { authDir: fx.dir });
    admin = await fx.connectAs('admin');
  });
  afterAll(async () => {
    release();
    await Promise.all(agents.map((c) => c.stop({ goodbye: false }).catch(() => undefined)));
    await hub?.stop();
    await fx?.dispose();
  });

  it.each([
    ['a message id of its own', () => 'forged-1'],
    // Report ids are predictable and the reports stream deduplicates across agents: A taking the id
    // first must not make the server drop B's real report as a duplicate.
    [
      "the message id B's own completion will carry",
      (taskId: string, gen: number) => `${taskId}:${gen}:completed`,
    ],
  ])(
    "refuses a completion from A for B's task with %s, even with B's generation; B's own completion counts",
    async (_, forgedId) => {
      const api = new HubClient(admin);
      let held: (ctx: TaskContext) => void = () => {};
      const holding = new Promise<TaskContext>((resolve) => {
        held = resolve;
      });
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const b = await connectAgent('b', { capabilities: ['b-only'] });
      await b.start(async (ctx) => {
        held(ctx);
        await released;
        return { type: 'completed', result: { by: 'b' } };
      });
      const a = await connectAgent('a', { capabilities: [] });
      await a.start(async () => ({ type: 'completed', result: { by: 'a (assigned)' } }));

      const submitted = await eventually(
        () => api.submit({ title: 'only b', description: 'held by b', capabilities: ['b-only'] }),
        { timeout: 15_000, interval: 100 },
      );
      const ctx = await holding;
      const working = await eventually(async () => {
        const t = await api.get(submitted.id);
        if (t.status !== 'working') throw new Error(`task is ${t.status}`);
        return t;
      });
      expect(working.assignee).toBe('b');
      expect(ctx.generation).toBe(working.generation);

      // A reports B's task as completed, with B's generation, on the only report subject it may use.
      const n = a.bus.names;
      const forged = JSON.stringify({
        v: 1,
        type: 'completed',
        taskId: submitted.id,
        generation: working.generation,
        at: Date.now(),
        result: { by: 'a (forged)' },
      });
      const ack = await a.bus.js.publish(n.subjects.agentReport('a'), forged, {
        msgID: forgedId(submitted.id, working.generation),
      });
      // Wait until the hub has handled it (acked: the reports durable's ack floor passes it).
      await eventually(async () => {
        const ci = await admin.jsm.consumers.info(n.streams.reports, n.consumers.hubReports);
        if (ci.ack_floor.stream_seq < ack.seq)
          throw new Error(`ack floor ${ci.ack_floor.stream_seq} < ${ack.seq}`);
      });
      const after = await api.get(submitted.id);
      expect(after.status).toBe('working');
      expect(after.assignee).toBe('b');
      expect(after.generation).toBe(working.generation);
      expect(after.result ?? null).toBeNull();

      release();
      const done = await eventually(async () => {
        const t = await api.get(submitted.id);
        if (t.status !== 'done') throw new Error(`task is ${t.status}`);
        return t;
      });
      expect(done.assignee).toBe('b');
      expect(done.result).toEqual({ by: 'b' });
      // The next case connects a and b again: these sessions must not take its assignment.
      await Promise.all([a.stop(), b.stop()]);
    },
  );

  it('lets only an agent added with --can-submit submit tasks', async () => {
    const a = await fx.connectAgent('a');
    const refused = await denial(new HubClient(a).submit({ title: 'from a', description: 'not allowed' }));
    expect(refused).toBeInstanceOf(AgentComError);
    expect(refused.message).toMatch(PERMISSION_VIOLATION);

    const c = await fx.connectAgent('c');
    // Not on the shared endpoint: its own (the hub reads the submitter from the subject).
    const shared = await denial(new HubClient(c).submit({ title: 'from c', description: 'shared' }));
    expect(shared.message).toMatch(PERMISSION_VIOLATION);
    const task = await new HubClient(c, 5_000, 'c').submit({ title: 'from c', description: 'allowed' });
    expect(task.title).toBe('from c');
    expect((await new HubClient(admin).get(task.id)).id).toBe(task.id);
  });

  it("never lets one submitter's idempotency key capture another's task, over the bus or the API", async () => {
    const n = admin.names;
    const api = new HubClient(admin);
    const key = 'nightly-report';
    const hostile = await fx.connectAgent('c');
    const honest = await fx.connectAgent('d');
    // C submits under the key first, and takes every message id D's submission could carry: the
    // key itself and the task id D's key maps to (the stream dedupes message ids across subjects).
    // The latter without a key: the message id C picks is then hashed with C's id, so taking the
    // id of D's keyed task, or a readable id a trusted client might use, names a task of C's own.
    const dTaskId = taskIdForSubmit({ idempotencyKey: key, submitter: 'd', now: 0 });
    const body = new TextEncoder().encode(JSON.stringify({ v: 1, title: 'from c', idempotencyKey: key }));
    await hostile.js.publish(n.subjects.taskSubmitAs('c'), body, { msgID: key });
    const keyless = new TextEncoder().encode(JSON.stringify({ v: 1, title: 'EVIL from c' }));
    for (const msgID of [dTaskId, 'deploy-42']) {
      await hostile.js.publish(n.subjects.taskSubmitAs('c'), keyless, { msgID });
      const cOwn = taskIdForSubmit({ msgId: msgID, submitter: 'c', now: 0 });
      expect(cOwn).not.toBe(msgID);
      await eventually(async () => expect((await api.get(cOwn)).title).toBe('EVIL from c'), {
        timeout: 10_000,
      });
    }
    const cTask = await new HubClient(hostile, 5_000, 'c').submit({
      title: 'from c (api)',
      idempotencyKey: key,
    });
    expect(cTask.title).toBe('from c');

    const submitted = await submitTask(honest, { title: 'from d', idempotencyKey: key }, { submitter: 'd' });
    expect(submitted.taskId).toBe(dTaskId);
    expect(submitted.taskId).not.toBe(cTask.id);
    const dTask = await eventually(() => api.get(dTaskId), { timeout: 10_000, interval: 50 });
    expect(dTask.title).toBe('from d');
    // D's own second submission with the key is D's first task (its key, its namespace), also via the API.
    const again = await new HubClient(honest, 5_000, 'd').submit({
      title: 'from d again',
      idempotencyKey: key,
    });
    expect(again).toMatchObject({ id: dTaskId, title: 'from d' });
    expect((await api.get(cTask.id)).title).toBe('from c');
    // A trusted client submitting with the message id deploy-42 later still gets its own task.
    expect(await denial(api.get('deploy-42'))).toMatchObject({ code: 'not_found' });
    // And C cannot submit as D: D's subjects are not in C's permissions.
    const asD = await denial(hostile.js.publish(n.subjects.taskSubmitAs('d'), body));
    expect(asD.message).toMatch(PERMISSION_VIOLATION);
  });

  it("triggers across queues: an agent allowed to submit to 'action' only enqueues work there from inside its task (seed 000's InsightAgent)", async () => {
    const api = new HubClient(admin);
    let refusedElsewhere: unknown;
    const followUps: string[] = [];
    const insight = await connectAgent('insight', { queues: ['cognition'] });
    await insight.start(async (ctx) => {
      // Its insight becomes work for the action queue, which another agent serves.
      const next = await insight.submit({ title: `act on ${ctx.task.title}`, queue: 'action' as never });
      followUps.push(next.taskId);
      // Any other queue is refused by the server itself.
      refusedElsewhere = await insight
        .submit({ title: 'not mine', queue: 'cognition' as never })
        .catch((e) => e);
      return { type: 'completed', result: { followUp: next.taskId } };
    });
    const doer = await connectAgent('doer', { queues: ['action'] });
    await doer.start(async () => ({ type: 'completed', result: { done: true } }));

    const idea = await api.submit({ title: 'an insight', queue: 'cognition' as never });
    const action = await eventually(
      async () => {
        expect((await api.get(idea.id)).status).toBe('done');
        expect(followUps).toHaveLength(1);
        const t = await api.get(followUps[0]!);
        expect(t.status).toBe('done');
        return t;
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(action).toMatchObject({ title: 'act on an insight', queue: 'action', assignee: 'doer' });
    expect(String((refusedElsewhere as Error).message)).toMatch(PERMISSION_VIOLATION);
    // On a subject its permissions allow, a payload naming another queue is refused by the hub.
    const sneaky = await denial(
      new HubClient(insight.bus, 5_000, 'insight').submit({ title: 'sneaky', queue: 'cognition' as never }),
    );
    expect(sneaky.message).toMatch(PERMISSION_VIOLATION);
    const viaApiSubject = await denial(
      request(
        insight.bus,
        'task.submit.insight.action',
        { v: 1, title: 'sneaky', queue: 'cognition' },
        TaskReplySchema,
        {
          timeoutMs: 5_000,
        },
      ),
    );
    expect(viaApiSubject).toMatchObject({ code: 'forbidden' });
  });
});
