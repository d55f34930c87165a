/**
 * Pausing and resuming the hub, and changing its timeouts at runtime, end to end against a real
 * hub, nats-server and simulated agents (separate processes): paused intake keeps bus submissions
 * in their stream untouched and refuses API submissions with `unavailable` (503); resuming takes
 * them all in at once, each exactly once. Paused assignment leaves an idle agent idle while tasks
 * queue; resuming assigns them at once, event driven (the sweep is a minute apart here). A runtime
 * accept timeout reclaims from an agent that never accepts long before the hub's configured one,
 * and an invalid change is refused with the offending path, changing nothing.
 */
import { describe, expect, it } from 'vitest';
import { HubClient } from '../../src/bus/hub-client.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { HEADERS } from '../../src/protocol/headers.js';
import { eventually } from '../support/eventually.js';
import { type TestClient, timesEntered, useHubHarness } from '../support/hub.js';

describe('hub pause and resume', () => {
  const h = useHubHarness('ctl');

  /** The API client, once the leading hub's API answers. */
  async function apiOf(c: TestClient): Promise<HubClient> {
    const api = new HubClient(c.bus, 10_000);
    await eventually(() => api.control(), { timeout: 15_000, interval: 50 });
    return api;
  }

  /**
   * A task submitted inside the hub (a schedule's trigger, which the intake pause does not stop)
   * and done by an agent: everything published before it has had time to be pulled by a running
   * intake, so what is still pending afterwards was held back.
   */
  async function roundTrip(c: TestClient, api: HubClient, queue: string): Promise<void> {
    await api.scheduleCreate({
      name: `probe-${queue}`,
      every: '1d',
      action: { type: 'task', task: { title: 'probe', queue: queue as never } },
    });
    const id = await api.scheduleTrigger(`probe-${queue}`);
    await c.settle([id]);
  }

  it('paused intake: bus submissions wait untouched, API submits are refused 503; resume takes each in once', async () => {
    const c = await h.setup([{ agentId: 'w1', queues: ['default', 'probe'] }]);
    const api = await apiOf(c);
    const n = c.bus.names;

    const paused = await api.pause({ intake: true, reason: 'maintenance', by: 'test' });
    expect(paused).toMatchObject({
      intake: 'paused',
      assignment: 'running',
      reason: 'maintenance',
      by: 'test',
    });
    expect(await api.control()).toEqual(paused);
    // A second pause is no new pause: its time and reason stay.
    expect(await api.pause({ intake: true, reason: 'again' })).toEqual(paused);

    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await c.submit({ title: `while paused ${i}` }));

    // The API refuses, with the service status of `unavailable` and a message that says why.
    const raw = await c.bus.nc.request(
      n.subjects.api['task.submit'],
      JSON.stringify({ v: 1, title: 'api' }),
      {
        timeout: 10_000,
      },
    );
    expect(raw.headers?.get(HEADERS.SERVICE_ERROR_CODE)).toBe('503');
    expect(JSON.parse(new TextDecoder().decode(raw.data))).toMatchObject({
      code: ERROR_CODES.UNAVAILABLE,
      message: expect.stringMatching(/intake is paused/),
    });
    await expect(api.submit({ title: 'api' })).rejects.toMatchObject({ code: ERROR_CODES.UNAVAILABLE });
    const asAgent = new HubClient(c.bus, 10_000, 'w1');
    await expect(asAgent.submit({ title: 'agent api' })).rejects.toMatchObject({
      code: ERROR_CODES.UNAVAILABLE,
    });

    // The hub goes on working (reports applied, internal submissions assigned)...
    await roundTrip(c, api, 'probe');
    // ...while the submissions wait in the stream, never delivered, none dead-lettered.
    const held = await c.bus.jsm.consumers.info(n.streams.submit, n.consumers.hubIntake);
    expect(held.num_pending).toBe(20);
    expect(held.num_ack_pending).toBe(0);
    expect(held.num_redelivered).toBe(0);
    expect((await c.bus.jsm.streams.info(n.streams.submit)).state.messages).toBe(20);
    for (const id of ids) expect(await c.task(id)).toBeNull();
    expect((await api.dlqList()).items).toEqual([]);

    const resumed = await api.resume({ intake: true });
    expect(resumed).toMatchObject({ intake: 'running', assignment: 'running' });
    const done = await c.settle(ids, ['done'], 20_000);
    for (const t of done) {
      expect(t.history.filter((e) => e.from === null)).toHaveLength(1);
      expect(timesEntered(t, 'done')).toBe(1);
    }
    const completed = h.agents[0]!.completed().filter((id) => ids.includes(id));
    expect([...completed].sort()).toEqual([...ids].sort());
    const after = await c.bus.jsm.consumers.info(n.streams.submit, n.consumers.hubIntake);
    expect(after.num_pending).toBe(0);
    expect(after.num_redelivered).toBe(0);
    expect((await api.dlqList()).items).toEqual([]);
    // And the API takes submissions again.
    expect((await api.submit({ title: 'after resume' })).status).toMatch(/queued|assigned/);
  });

  it('paused assignment: an idle agent gets nothing while tasks queue; resume assigns them at once', async () => {
    // The sweep a minute apart: only the resume itself can hand the tasks out within the deadline.
    const c = await h.setup([{ agentId: 'idle', slots: 5 }], { sweepIntervalMs: 60_000 });
    const api = await apiOf(c);
    const paused = await api.pause({ assignment: true, reason: 'agents upgrading' });
    expect(paused).toMatchObject({ intake: 'running', assignment: 'paused' });

    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await c.submit({ title: `queued ${i}` }));
    await c.settle(ids, ['queued']);
    // The scheduler holds all five, with the agent free: a running pump would have picked them
    // before it answered this (each change pumps before the next message is handled).
    await eventually(async () => {
      const s = (await api.stats()).scheduler;
      expect(s).toMatchObject({ ready: 5, agents: 1 });
    });
    for (const t of await c.settle(ids, ['queued'])) expect(t.generation).toBe(0);
    expect(h.agents[0]!.events.filter((e) => e.event === 'accepted')).toEqual([]);

    const started = Date.now();
    await api.resume({ assignment: true });
    await c.settle(ids, ['done'], 15_000);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await api.control()).toMatchObject({ intake: 'running', assignment: 'running' });
  });
});

describe('runtime timeouts', () => {
  const h = useHubHarness('cfg');

  it('a shorter accept timeout set at runtime reclaims from an agent that never accepts; bad values change nothing', async () => {
    // The hub's own accept timeout is a minute: the reclaim below can only come from the change.
    const c = await h.setup([{ agentId: 'quiet', capabilities: ['x'], mode: 'silent' }], {
      acceptTimeoutMs: 60_000,
    });
    const api = new HubClient(c.bus, 10_000);
    const before = await eventually(() => api.config(), { timeout: 15_000, interval: 50 });
    expect(before.timeouts.acceptTimeoutMs).toEqual({ ms: 60_000, source: 'hub', hubMs: 60_000 });
    expect(before.stored).toBeNull();
    expect(before.control).toMatchObject({ intake: 'running', assignment: 'running' });
    expect(before.limits).toMatchObject({ v: 1 });

    const id = await c.submit({ title: 'never accepted', capabilities: ['x'], maxRetries: 20 });
    const [assigned] = await c.settle([id], ['assigned']);
    expect(assigned!.assignee).toBe('quiet');

    const set = await api.setConfig({ timeouts: { acceptTimeoutMs: '1s' }, by: 'test' });
    expect(set.timeouts.acceptTimeoutMs).toEqual({ ms: 1_000, source: 'runtime', hubMs: 60_000 });
    expect(set.stored).toMatchObject({ acceptTimeoutMs: 1_000, by: 'test' });
    const reclaimed = await eventually(
      async () => {
        const t = (await c.task(id))!;
        if (!t.history.some((e) => e.to === 'queued' && e.reason?.includes('accept_timeout')))
          throw new Error(`not reclaimed yet (${t.status}, generation ${t.generation})`);
        return t;
      },
      { timeout: 15_000 },
    );
    expect(reclaimed.generation).toBeGreaterThanOrEqual(2);

    // Invalid changes: refused with the offending path, and nothing stored.
    for (const [timeouts, path] of [
      [{ acceptTimeoutMs: 0 }, ['timeouts', 'acceptTimeoutMs']],
      [{ acceptTimeoutMs: '5s', progressTimeoutMs: '8d' }, ['timeouts', 'progressTimeoutMs']],
      [{ acceptTimeoutMs: 'soon' }, ['timeouts', 'acceptTimeoutMs']],
      [{ acceptTimeout: '5s' }, ['timeouts']],
    ] as const) {
      await expect(api.setConfig({ timeouts: timeouts as never })).rejects.toMatchObject({
        code: ERROR_CODES.INVALID_PAYLOAD,
        path: expect.arrayContaining([...path]),
      });
    }
    const unchanged = await api.config();
    expect(unchanged.stored).toEqual(set.stored);
    expect(unchanged.timeouts).toEqual(set.timeouts);

    // null: back to the hub's own value.
    const reset = await api.setConfig({ timeouts: { acceptTimeoutMs: null } });
    expect(reset.timeouts.acceptTimeoutMs).toEqual({ ms: 60_000, source: 'hub', hubMs: 60_000 });
  });
});
