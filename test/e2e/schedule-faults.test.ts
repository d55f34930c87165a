/**
 * A schedule firing every second while hubs are SIGKILLed: the leader of two (the standby takes
 * over), then the last hub (none runs for a while, then one starts again). Every slot from the
 * first to the last must have exactly one task, and the schedule's count must match the tasks.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LEASE_KEY } from '../../actors/leader/index.js';
import { HubClient } from '../../src/bus/hub-client.js';
import { openKv } from '../../src/bus/kv.js';
import { LeaseSchema } from '../../src/protocol/registration.js';
import type { TaskRecord } from '../../src/protocol/task.js';
import { eventually } from '../support/eventually.js';
import { type TestClient, testClient } from '../support/hub.js';
import { type HubProcess, hubProcess } from '../support/hub-process.js';
import { uniqueName } from '../support/names.js';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.js';

describe('schedules under hub faults', { timeout: 120_000 }, () => {
  let nats: TestNatsServer;
  let hubs: HubProcess[] = [];
  let client: TestClient | undefined;
  let prefix: string;

  beforeEach(async () => {
    nats = await startNatsServer();
    prefix = uniqueName('sf').replace(/_/g, '-').toLowerCase();
  });
  afterEach(async () => {
    await Promise.all(hubs.map((h) => h.kill()));
    await client?.close().catch(() => {});
    await nats.dispose();
    hubs = [];
    client = undefined;
  });

  const slotsOf = async (): Promise<number[]> => {
    const all = await client!.tasks.entries();
    const tasks = [...all.values()].map((e) => e.value as TaskRecord);
    return tasks
      .filter((t) => t.metadata?.schedule === 'pulse')
      .map((t) => Date.parse(String(t.metadata?.slot)));
  };
  /** Resolves once a task exists for a slot at or after `at`. */
  const firedPast = (at: number) =>
    eventually(
      async () => {
        if (!(await slotsOf()).some((s) => s >= at)) throw new Error(`no slot at or after ${at} yet`);
      },
      { timeout: 30_000 },
    );

  it('one task per slot, none missing, across a failover and a restart after no hub ran', async () => {
    const a = hubProcess(nats.url, prefix, 'hub-a');
    const b = hubProcess(nats.url, prefix, 'hub-b');
    hubs = [a, b];
    await a.start();
    await b.start();
    client = await testClient(nats.url, prefix);
    const api = new HubClient(client.bus, 10_000);
    await eventually(() => api.stats(), { timeout: 15_000 });
    await api.scheduleCreate({
      name: 'pulse',
      every: '1s',
      overlap: 'allow',
      catchup: 'all',
      action: { type: 'task', task: { title: 'pulse', queue: 'nobody' as never } },
    });
    await firedPast(Date.now() + 2_000);

    const leases = await openKv(client.bus, client.bus.names.buckets.leases, LeaseSchema);
    const leader = (await leases.get(LEASE_KEY))!.value.holder;
    const [dead, survivor] = leader === 'hub-a' ? [a, b] : [b, a];
    await dead.kill();
    await firedPast(Date.now() + 3_000);

    // No hub at all for a while; the one that starts catches the missed slots up.
    await survivor.kill();
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, 2_500)); // the outage being simulated, not a wait for an event
    await survivor.start();
    await firedPast(Date.now() + 2_000);
    await api.schedule('pause', 'pulse');

    const slots = (await slotsOf()).sort((x, y) => x - y);
    expect(new Set(slots).size).toBe(slots.length);
    const expected = Array.from(
      { length: (slots.at(-1)! - slots[0]!) / 1000 + 1 },
      (_, i) => slots[0]! + i * 1000,
    );
    expect(slots).toEqual(expected);
    expect(slots.filter((s) => s > downAt && s < downAt + 2_500).length).toBeGreaterThanOrEqual(2);
    const state = await eventually(async () => {
      const s = (await api.schedule('get', 'pulse')).state!;
      if (s.fired !== (await slotsOf()).length) throw new Error(`fired ${s.fired}: a slot in flight`);
      return s;
    });
    expect(state.skipped).toBe(0);
  });
});
