/**
 * Liveness after faults the hub can see: no work waits for a long timeout. Each test gives the
 * timeouts that used to be the only way out (presence window, progress timeout, accept timeout,
 * inbox ack_wait, lease lifetime) values far longer than the test's own deadline, so it fails
 * unless the prompt recovery path works. Agents are separate processes killed with SIGKILL.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { FsmSnapshotSchema } from '../../actors/agents/process.js';
import { LEASE_KEY } from '../../actors/leader/index.js';
import { agentMachine } from '../../machines/agent.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { openKv } from '../../src/bus/kv.js';
import { agentInboxConsumerSpec, defaultTopology, provision } from '../../src/bus/provision.js';
import { publish } from '../../src/bus/publish.js';
import { request } from '../../src/bus/service.js';
import { requestTyped } from '../../src/bus/subscribe.js';
import { AgentHelloSchema, InboxMessageSchema } from '../../src/protocol/agent.js';
import { AgentListReplySchema, TaskReplySchema } from '../../src/protocol/api.js';
import { agentInboxPrefix } from '../../src/protocol/permissions.js';
import { HelloReplySchema, LeaseSchema } from '../../src/protocol/registration.js';
import type { TaskRecord } from '../../src/protocol/task.js';
import { eventually } from '../support/eventually.js';
import { type TestClient, testClient, timesEntered, useHubHarness } from '../support/hub.js';
import { type HubProcess, hubProcessWith } from '../support/hub-process.js';
import { uniqueName } from '../support/names.js';
import { startNatsServer } from '../support/nats-server.js';
import { spawnSimAgent } from '../support/sim-agents.js';

/** Presence, progress and accept timeouts far beyond every deadline below. */
const SLOW_NETS = {
  heartbeatIntervalMs: 500,
  missedBeats: 120,
  progressTimeoutMs: 600_000,
  acceptTimeoutMs: 600_000,
} as const;

describe('liveness', { timeout: 90_000 }, () => {
  const h = useHubHarness('live');

  it('an agent SIGKILLed while working and back under the same id: its task is reclaimed at its hello, and completes', async () => {
    const client = await h.setup([{ agentId: 'a1', workMs: 600_000 }], SLOW_NETS);
    const id = await client.submit({ title: 'long' });
    await h.agents[0]!.waitFor('accepted', (ev) => ev.some((e) => e.event === 'accepted'));
    await client.settle([id], ['working']);
    await h.agents[0]!.kill();
    // Back within the presence window (60 s), with a handler that finishes at once.
    const back = await h.addAgent({ agentId: 'a1', workMs: 0 });
    const [done] = await client.settle([id], ['done'], 20_000);
    expect(timesEntered(done!, 'done')).toBe(1);
    expect(done!.history.some((e) => e.reason === 'not_held')).toBe(true);
    await back.waitFor('its completion', () => back.completed().includes(id));
    expect(back.completed()).toEqual([id]);
  });

  it('a restarted agent gets what its dead session pulled and never acked at once, not after ack_wait', async () => {
    const client = await h.setup([], SLOW_NETS);
    // Session 1: a bare client that says hello, pulls its assignment and dies without acking it.
    const bus = await agentBus(h.nats.url, h.prefix, 'a2');
    const hello = await eventually(() =>
      requestTyped(
        bus,
        bus.names.subjects.agentHello('a2'),
        AgentHelloSchema,
        { v: 1, capabilities: [], queues: ['default' as never], slots: 1, session: 'sess-dead' },
        HelloReplySchema,
      ),
    );
    expect(hello.ok).toBe(true);
    const id = await client.submit({ title: 'pulled then lost' });
    const spec = agentInboxConsumerSpec(bus.names, 'a2');
    const consumer = await bus.js.consumers.get(spec.stream, spec.durable);
    // One pull that waits: a loop of short ones can lose the race at a pull's expiry (the message
    // delivered to a request the client has just given up on, then held for ack_wait).
    const m = await consumer.next({ expires: 30_000 });
    if (!m) throw new Error('no assignment within 30 s');
    expect(InboxMessageSchema.parse(m.json())).toMatchObject({ type: 'assign', taskId: id });
    await bus.nc.close(); // gone, its delivery unacked (ack_wait 30 s)
    const agent = await h.addAgent({ agentId: 'a2', workMs: 0 });
    const [done] = await client.settle([id], ['done'], 15_000);
    expect(done!.generation).toBe(1); // the same assignment, redelivered: no reclaim was needed
    await agent.waitFor('its completion', () => agent.completed().includes(id));
    expect(agent.completed()).toEqual([id]);
  });

  it('an agent given an assignment it cannot count any more is told to stop, and its handler is aborted', async () => {
    const client = await h.setup([{ agentId: 'a3', workMs: 0 }], SLOW_NETS);
    const id = await client.submit({ title: 'done once' });
    const [done] = await client.settle([id]);
    await h.agents[0]!.kill();
    const again = await h.addAgent({ agentId: 'a3', workMs: 600_000 });
    // The assignment comes back, as when the inbox ack was lost near a server kill.
    await redeliverAssignment(client, 'a3', done!);
    await again.waitFor('aborted', (ev) => ev.some((e) => e.event === 'aborted' && e.taskId === id), 15_000);
    const after = await client.task(id);
    expect(after!.status).toBe('done');
    expect(timesEntered(after!, 'done')).toBe(1);
  });

  it("an assignment taken back while it waited in a dead agent's inbox is not started when the agent returns", async () => {
    const client = await h.setup([{ agentId: 'a5', workMs: 0 }], SLOW_NETS);
    await h.agents[0]!.kill();
    // Presence still counts a5 online (60 s window): the task goes to its inbox.
    const id = await client.submit({ title: 'waits in a dead inbox' });
    await client.settle([id], ['assigned']);
    await request(client.bus, 'task.cancel', { v: 1, id, reason: 'not needed any more' }, TaskReplySchema);
    const back = await h.addAgent({ agentId: 'a5', workMs: 0 });
    // Proof that the inbox has been read: a later task is done by it.
    const later = await client.submit({ title: 'after' });
    await client.settle([later]);
    await back.waitFor('the later task', () => back.completed().includes(later));
    expect(back.events.filter((e) => e.taskId === id && e.event === 'accepted')).toEqual([]);
  });

  it('the same agent process does not run an assignment it already finished', async () => {
    const client = await h.setup([{ agentId: 'a4', workMs: 0 }], SLOW_NETS);
    const id = await client.submit({ title: 'once' });
    const [done] = await client.settle([id]);
    await redeliverAssignment(client, 'a4', done!);
    // A second, later task proves the redelivered one has been consumed by then (one slot, FIFO).
    const next = await client.submit({ title: 'next' });
    await client.settle([next]);
    expect(h.agents[0]!.events.filter((e) => e.event === 'accepted' && e.taskId === id)).toHaveLength(1);
  });

  it('a task an agent failed goes to another agent with a free slot, even one that was assigned more lately', async () => {
    const client = await h.setup([{ agentId: 'b1', failTimes: 1 }], SLOW_NETS);
    const first = await client.submit({
      title: 'fails on b1 once',
      backoff: { baseMs: 15_000, maxMs: 15_000 },
    });
    await h.agents[0]!.waitFor('failed', (ev) => ev.some((e) => e.event === 'failed' && e.taskId === first));
    const b2 = await h.addAgent({ agentId: 'b2' });
    // b2 is now the agent assigned most lately, so fairness alone would pick b1 again.
    const second = await client.submit({ title: 'warms b2' });
    await client.settle([second]);
    expect((await client.task(second))!.assignee).toBe('b2');
    const [done] = await client.settle([first], ['done'], 30_000);
    expect(done!.assignee).toBe('b2');
    expect(done!.flaggedAgents).toEqual(['b1']);
    await b2.waitFor('its completion', () => b2.completed().includes(first));
  });

  it('the agent view converges at start: an FSM snapshot that still holds a finished task is synced', async () => {
    // A snapshot written by a hub that died before it saw the task finish.
    const now = Date.now();
    const stale = createActor(agentMachine, { input: { agentId: 'v1' as never } }).start();
    stale.send({ type: 'CONNECT', capabilities: [], queues: ['default' as never], slots: 1, at: now });
    stale.send({ type: 'ASSIGN', taskId: 'tgone' as never, generation: 1, at: now });
    stale.send({ type: 'ACCEPTED', taskId: 'tgone' as never, generation: 1, at: now });
    let bus: Bus | undefined;
    try {
      const client = await h.setup([{ agentId: 'v1' }], SLOW_NETS, async (prefix) => {
        bus = await connectBus({ servers: h.nats.url, prefix, logger: pino({ level: 'silent' }) });
        await provision(bus, defaultTopology(bus.names));
        const kv = await openKv(bus, bus.names.buckets.agents, FsmSnapshotSchema);
        const snapshot = stale.getPersistedSnapshot() as unknown as { context: Record<string, unknown> };
        // As an older hub wrote it, with the FSM deadlines it used to keep (far away here).
        snapshot.context.timeouts = { acceptMs: 600_000, progressMs: 600_000, blockedMs: 600_000 };
        await kv.put('v1.fsm', { v: 1, snapshot });
      });
      const view = async () => {
        const r = await request(client.bus, 'agent.list', { v: 1 }, AgentListReplySchema);
        return r.agents.find((a) => a.id === 'v1');
      };
      await eventually(
        async () => {
          const a = await view();
          if (a?.state !== 'idle' || a.tasks.length !== 0) throw new Error(`v1: ${JSON.stringify(a)}`);
        },
        { timeout: 15_000 },
      );
    } finally {
      await bus?.drain();
    }
  });
});

describe('failover', { timeout: 120_000 }, () => {
  let hubs: HubProcess[] = [];
  let client: TestClient | undefined;
  afterEach(async () => {
    await Promise.all(hubs.map((x) => x.kill()));
    await client?.close().catch(() => {});
    hubs = [];
    client = undefined;
  });

  it('a standby takes the lease as soon as the leader is SIGKILLed, long before the lease expires', async () => {
    const nats = await startNatsServer();
    try {
      const prefix = uniqueName('fo').replace(/_/g, '-').toLowerCase();
      const env = { AGENTCOM_LEASE_TTL_MS: '60000' };
      const flags = ['--nats-url', nats.url, '--prefix', prefix];
      const a = hubProcessWith(flags, 'hub-a', env);
      const b = hubProcessWith(flags, 'hub-b', env);
      hubs = [a, b];
      await a.start();
      await b.start();
      client = await testClient(nats.url, prefix);
      const leases = await openKv(client.bus, client.bus.names.buckets.leases, LeaseSchema);
      const leader = await eventually(async () => {
        const l = await leases.get(LEASE_KEY);
        if (!l) throw new Error('no lease yet');
        return l.value.holder;
      });
      const [dead, survivor] = leader === 'hub-a' ? [a, b] : [b, a];
      // Tasks written by the leader before it dies, queued (no agent yet): the survivor's mirror
      // has followed them, and its TaskQueue takes them from it.
      const before = await Promise.all(
        Array.from({ length: 20 }, (_, i) => client!.submit({ title: `before ${i}` })),
      );
      await client.settle(before, ['queued'], 20_000);
      await eventually(() =>
        expect(survivor.lines.some((l) => l.includes('task mirror following the bucket'))).toBe(true),
      );
      // Still the holder when it dies: nothing but the probe can hand the lease on within 60 s.
      expect((await leases.get(LEASE_KEY))?.value.holder).toBe(dead.hubId);
      await dead.kill();
      const killedAt = Date.now();
      await eventually(
        async () => {
          const l = await leases.get(LEASE_KEY);
          if (l?.value.holder !== survivor.hubId) throw new Error(`holder ${l?.value.holder}`);
        },
        { timeout: 20_000 },
      );
      expect(Date.now() - killedAt).toBeLessThan(20_000);
      // The log line may reach us a moment after the lease write.
      await eventually(() =>
        expect(
          survivor.lines.some((l) => l.includes('took the lease from a hub whose connection is gone')),
          survivor.lines.slice(-20).join('\n'),
        ).toBe(true),
      );
      await eventually(() =>
        expect(
          survivor.lines.some(
            (l) => l.includes('task queue started') && l.includes('"loaded_from":"mirror"'),
          ),
          survivor.lines.filter((l) => l.includes('task-mirror') || l.includes('task queue')).join('\n'),
        ).toBe(true),
      );
      // And it works: the new leader assigns, what was queued before included.
      const agent = await spawnSimAgent({ url: nats.url, prefix, agentId: 'fo-1' });
      try {
        const id = await client.submit({ title: 'after failover' });
        await client.settle([id, ...before], ['done'], 20_000);
      } finally {
        await agent.kill();
      }
    } finally {
      await Promise.all(hubs.map((x) => x.kill()));
      await nats.dispose();
    }
  });
});

/** Publishes the assignment of `task` (its current generation) to `agentId`'s inbox again. */
async function redeliverAssignment(client: TestClient, agentId: string, task: TaskRecord): Promise<void> {
  await publish(
    client.bus,
    client.bus.names.subjects.agentInbox(agentId),
    InboxMessageSchema,
    {
      v: 1,
      type: 'assign',
      taskId: task.id,
      generation: task.generation,
      task: { title: task.title, description: '', priority: 'normal', queue: task.queue, capabilities: [] },
    },
    { msgId: `redelivery-${task.id}` },
  );
}

async function agentBus(url: string, prefix: string, agentId: string): Promise<Bus> {
  return connectBus({
    servers: url,
    prefix,
    inboxPrefix: agentInboxPrefix(agentId),
    logger: pino({ level: 'silent' }),
  });
}
