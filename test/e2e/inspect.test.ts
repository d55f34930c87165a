/**
 * Live inspection against a real hub (docs/protocol.md §11e): with a listen on `agent.<id>` an
 * agent's FSM is published going idle -> assigned -> working -> idle as it runs a task (the
 * actor with its current state first); nothing is published for it before the listen or after the
 * listen expires; and with `hub.*` the hub's supervision tree arrives, supervisors and children,
 * with their reports.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { HubClient } from '../../src/bus/hub-client.js';
import type { HubHandle } from '../../src/hub/main.js';
import { type InspectListen, inspectId } from '../../src/protocol/inspect.js';
import { errorReason, exit } from '../../src/runtime/index.js';
import { eventually } from '../support/eventually.js';
import { startTestHub, type TestClient, testClient } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

interface Got {
  subject: string;
  at: number;
  e: {
    type: string;
    sessionId: string;
    rootId?: string;
    parentId?: string;
    name?: string;
    snapshot?: { value?: unknown; context?: Record<string, unknown> };
    event?: { type: string; childId?: string };
  };
}

describe('inspection on a live hub', () => {
  const nats = useNatsServer();
  const open: (() => Promise<unknown> | unknown)[] = [];
  afterEach(async () => {
    for (const f of open.splice(0).reverse()) await f();
  });

  async function setup() {
    const prefix = uniqueName('inspect').replace(/_/g, '-').toLowerCase();
    const hub: HubHandle = await startTestHub(nats.url, prefix);
    open.push(() => hub.stop());
    const client: TestClient = await testClient(nats.url, prefix);
    open.push(() => client.close());
    const api = new HubClient(client.bus, 10_000);
    await eventually(() => api.stats(), { timeout: 15_000, interval: 50 });
    // The watcher: its own connection, everything under <p>.inspect.>.
    const watcher: Bus = await connectBus({ servers: nats.url, prefix, logger: pino({ level: 'silent' }) });
    open.push(() => watcher.drain());
    const got: Got[] = [];
    const dec = new TextDecoder();
    watcher.nc.subscribe(watcher.names.subjects.inspectAll, {
      callback: (_err, m) => {
        got.push({ subject: m.subject, at: Date.now(), e: JSON.parse(dec.decode(m.data)) });
      },
    });
    await watcher.nc.flush();
    let timer: NodeJS.Timeout | undefined;
    let lastListenAt = 0;
    const listen = (targets: string[], ttlMs: number) => {
      const l: InspectListen = { v: 1, listener: 'e2e', targets, ttlMs };
      const say = () => {
        lastListenAt = Date.now();
        watcher.nc.publish(watcher.names.subjects.inspecting, JSON.stringify(l));
      };
      say();
      timer = setInterval(say, Math.floor(ttlMs / 3));
    };
    const stopListening = () => {
      clearInterval(timer);
      return lastListenAt;
    };
    open.push(() => clearInterval(timer));
    return { prefix, hub, client, api, watcher, got, listen, stopListening };
  }

  it('publishes an agent FSM only while listened to, and the hub tree for hub.*', async () => {
    const { prefix, hub, client, api, watcher, got, listen, stopListening } = await setup();
    // An agent whose handler holds each task until the test lets it go.
    let release: () => void = () => {};
    const agent = await AgentClient.connect({
      connection: { servers: nats.url, prefix },
      agentId: 'a1',
      hello: { slots: 1 },
      logger: pino({ level: 'silent' }),
    });
    open.push(() => agent.stop({ goodbye: true }));
    await agent.start(
      () =>
        new Promise((resolve) => {
          release = () => resolve({ type: 'completed', result: { ok: true } });
        }),
    );
    await eventually(
      async () => {
        const a = (await api.agents()).agents.find((x) => x.id === 'a1');
        expect(a?.state).toBe('idle');
      },
      { timeout: 10_000, interval: 50 },
    );
    // The FSM exists and has changed state (offline -> idle), yet nobody listens: nothing for it.
    await watcher.nc.flush();
    expect(got.filter((g) => g.subject.endsWith('.inspect.agent.a1'))).toEqual([]);

    const ttlMs = 1_500;
    listen(['agent.a1', 'hub.*'], ttlMs);
    const ofAgent = () => got.filter((g) => g.subject === `${prefix}.inspect.agent.a1`).map((g) => g.e);
    // First the FSM as it is now.
    await eventually(() => expect(ofAgent().length).toBeGreaterThan(0), { timeout: 10_000 });
    const first = ofAgent()[0]!;
    expect(first).toMatchObject({ type: '@xstate.actor', name: 'agent', snapshot: { value: 'idle' } });
    expect(first.sessionId).toMatch(/^agent:a1:x:\d+$/);
    expect(first.rootId).toBe(first.sessionId);

    const values = () =>
      ofAgent()
        .filter((e) => e.type === '@xstate.snapshot')
        .map((e) => e.snapshot?.value);
    const taskId = await client.submit({ title: 'inspected' });
    await eventually(() => expect(values()).toContain('working'), { timeout: 15_000 });
    release();
    await client.settle([taskId]);
    await eventually(() => expect(values().slice(values().indexOf('working'))).toContain('idle'), {
      timeout: 10_000,
    });
    // In order: idle (announced) -> assigned -> working -> idle.
    const seq = values();
    const w = seq.indexOf('working');
    expect(seq.slice(0, w)).toContain('assigned');
    expect(seq.slice(w)).toContain('idle');
    const events = ofAgent()
      .filter((e) => e.type === '@xstate.event')
      .map((e) => e.event?.type);
    expect(events).toEqual(expect.arrayContaining(['ASSIGN', 'ACCEPTED', 'COMPLETED']));
    expect(ofAgent().every((e) => e.sessionId === first.sessionId)).toBe(true);

    // The hub's tree: the root supervisor, nested supervisors and their children, as actors.
    const treeSubject = `${prefix}.inspect.hub.${inspectId(hub.hubId)}`;
    const tree = () => got.filter((g) => g.subject === treeSubject).map((g) => g.e);
    await eventually(
      () => {
        const names = tree()
          .filter((e) => e.type === '@xstate.actor')
          .map((e) => e.name);
        expect(names).toEqual(
          expect.arrayContaining(['hub', 'services', 'work', 'task-queue', 'agent-fsms']),
        );
      },
      { timeout: 10_000 },
    );
    const actors = tree().filter((e) => e.type === '@xstate.actor');
    const root = actors.find((e) => e.name === 'hub')!;
    expect(root.sessionId).toMatch(new RegExp(`^hub:${inspectId(hub.hubId)}:p\\d+$`));
    expect(root.snapshot).toMatchObject({ value: 'running', context: { kind: 'supervisor' } });
    const services = actors.find((e) => e.name === 'services')!;
    expect(services.parentId).toBe(root.sessionId);
    expect(services.rootId).toBe(root.sessionId);
    const taskQueue = actors.find((e) => e.name === 'task-queue')!;
    expect(taskQueue.snapshot).toMatchObject({ value: 'running', context: { childId: 'task-queue' } });
    // The agent's FSM is a child of agent-fsms, named by its registered name.
    const fsms = actors.find((e) => e.name === 'agent-fsms')!;
    expect(actors.find((e) => e.name === 'agent:a1')?.parentId).toBe(fsms.sessionId);

    // A report arrives as an event on its supervisor: a crash of the scheduler is restarted.
    const before = tree().length;
    exit(hub.registry.whereis('scheduler')!, errorReason(new Error('inspected crash')));
    await eventually(
      () => {
        const reports = tree()
          .slice(before)
          .filter((e) => e.type === '@xstate.event')
          .map((e) => e.event);
        expect(reports).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ type: 'child_terminated', childId: 'scheduler' }),
            expect.objectContaining({ type: 'restarted', childId: 'scheduler' }),
          ]),
        );
      },
      { timeout: 10_000 },
    );

    // The listen is no longer repeated: once it has run out, nothing more is published for a1.
    const last = stopListening();
    // The protocol's own clock: a listen holds ttlMs after it was sent, and no longer.
    await eventually(() => expect(Date.now()).toBeGreaterThan(last + ttlMs + 500), {
      timeout: ttlMs + 5_000,
      interval: 100,
    });
    await watcher.nc.flush();
    const count = ofAgent().length;
    const second = await client.submit({ title: 'not inspected' });
    await eventually(
      async () => {
        const a = (await api.agents()).agents.find((x) => x.id === 'a1');
        expect(a?.state).toBe('working');
      },
      { timeout: 15_000, interval: 50 },
    );
    release();
    await client.settle([second]);
    await watcher.nc.flush();
    expect(ofAgent().length).toBe(count);
  }, 90_000);
});
