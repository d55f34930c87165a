/**
 * A supervision tree as inspection events (src/hub/inspect-tree.ts), on a small tree and a real
 * nats-server: every supervisor and child announced with its state and parent when a listen
 * arrives, reports as events on their supervisor, children started later (nested supervisors and
 * dynamic children included) announced as they start, exits as snapshots, and nothing after detach;
 * a listener that joins later gets the tree announced again without it being followed afresh (a
 * restart still to come names the incarnation that exited before).
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { fromCallback } from 'xstate';
import { connectBus } from '../../src/bus/connection.js';
import { startHubInspection } from '../../src/hub/inspect-tree.js';
import {
  actorChild,
  type DynamicSupervisor,
  dynamicSupervisorChild,
  errorReason,
  exit,
  Registry,
  startSupervisor,
  supervisorChild,
} from '../../src/runtime/index.js';
import { eventually } from '../support/eventually.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

const idle = fromCallback(() => () => {});
/** Fails to start while `failing.now` (an error in its initial state is a failed start). */
const failing = { now: false };
const flaky = fromCallback(() => {
  if (failing.now) throw new Error('cannot start');
  return () => {};
});

interface Ev {
  type: string;
  sessionId: string;
  rootId?: string;
  parentId?: string;
  name?: string;
  snapshot?: { value?: unknown; status?: string; context?: Record<string, unknown> };
  event?: Record<string, unknown> & { type: string };
  sourceId?: string;
}

describe('supervision tree inspection', () => {
  const nats = useNatsServer();
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('announces the tree, follows its reports and new children, and stops at detach', async () => {
    const prefix = uniqueName('tree').replace(/_/g, '-').toLowerCase();
    const log = pino({ level: 'silent' });
    const bus = await connectBus({ servers: nats.url, prefix, logger: log });
    cleanup.push(() => bus.drain());
    const registry = new Registry();
    const started = await startSupervisor(
      [
        actorChild('alpha', idle, { name: 'alpha' }),
        supervisorChild('inner', [actorChild('beta', idle)], { strategy: 'one_for_all' }),
        dynamicSupervisorChild('pool', {}, { name: 'pool' }),
      ],
      { strategy: 'one_for_one', intensity: 10, period: 10_000 },
      { registry, name: 'root', logger: log },
    );
    if (!started.ok) throw new Error('tree did not start');
    const root = started.value;
    cleanup.push(() => root.stop());
    const server = startHubInspection({ bus, registry, log, hubId: 'h.1', roots: ['root'] });
    cleanup.push(() => server.terminate?.('shutdown'));

    const got: Ev[] = [];
    const dec = new TextDecoder();
    bus.nc.subscribe(bus.names.subjects.inspect('hub', 'h_1'), {
      callback: (_e, m) => {
        got.push(JSON.parse(dec.decode(m.data)));
      },
    });
    await bus.nc.flush();
    const actors = () => got.filter((e) => e.type === '@xstate.actor');
    const byName = (name: string) => actors().find((e) => e.name === name);
    // Nothing before a listen.
    await bus.nc.flush();
    expect(got).toEqual([]);

    const say = (ttlMs: number) =>
      bus.nc.publish(
        bus.names.subjects.inspecting,
        JSON.stringify({ v: 1, listener: 't', targets: ['hub.h_1'], ttlMs }),
      );
    say(1_000);
    await eventually(() => {
      for (const n of ['root', 'alpha', 'inner', 'beta', 'pool']) expect(byName(n), n).toBeDefined();
    });
    const r = byName('root')!;
    expect(r.sessionId).toMatch(/^hub:h_1:p\d+$/);
    expect(r.rootId).toBe(r.sessionId);
    expect(r.parentId).toBeUndefined();
    expect(r.snapshot).toMatchObject({
      value: 'running',
      context: { kind: 'supervisor', strategy: 'one_for_one', intensity: 10, period: 10_000, restarts: 0 },
    });
    expect(byName('alpha')).toMatchObject({
      parentId: r.sessionId,
      rootId: r.sessionId,
      snapshot: { value: 'running', context: { kind: 'actor', childId: 'alpha' } },
    });
    const inner = byName('inner')!;
    expect(inner.parentId).toBe(r.sessionId);
    expect(inner.snapshot?.context).toMatchObject({ strategy: 'one_for_all' });
    expect(byName('beta')!.parentId).toBe(inner.sessionId);
    expect(byName('pool')!.snapshot?.context).toMatchObject({ kind: 'dynamic_supervisor' });
    expect(JSON.parse((byName('root') as { definition?: string }).definition ?? '{}')).toMatchObject({
      id: 'root',
      initial: 'running',
    });

    // A crash: the report on the root, the old incarnation terminated, the new one announced.
    const alpha = byName('alpha')!;
    exit(registry.whereis('alpha')!, errorReason(new Error('boom')));
    await eventually(() => {
      const reports = got.filter((e) => e.type === '@xstate.event' && e.sessionId === r.sessionId);
      expect(reports.map((e) => e.event?.type)).toEqual(
        expect.arrayContaining(['child_terminated', 'progress', 'restarted']),
      );
      expect(reports.find((e) => e.event?.type === 'child_terminated')).toMatchObject({
        sourceId: alpha.sessionId,
        event: { childId: 'alpha', reason: 'boom' },
      });
      expect(
        got.find(
          (e) =>
            e.type === '@xstate.snapshot' &&
            e.sessionId === alpha.sessionId &&
            e.snapshot?.value === 'terminated',
        ),
      ).toBeDefined();
      const again = actors().filter((e) => e.name === 'alpha');
      expect(again).toHaveLength(2);
      expect(again[1]!.sessionId).not.toBe(alpha.sessionId);
      const rootSnap = got.filter((e) => e.type === '@xstate.snapshot' && e.sessionId === r.sessionId).at(-1);
      expect(rootSnap?.snapshot?.context).toMatchObject({ restarts: 1 });
    });

    // A dynamic child started later, named by its spec id (it has no registered name).
    const pool = registry.whereis('pool') as DynamicSupervisor;
    await pool.startChild(actorChild('worker-7', idle));
    await eventually(() => expect(byName('worker-7')?.parentId).toBe(byName('pool')!.sessionId));

    // The listen is not repeated: after it runs out, a crash publishes nothing.
    await eventually(
      async () => {
        const n = got.length;
        await bus.nc.flush();
        // Detached: the tree's new events stop coming, even for a crash.
        exit(registry.whereis('alpha')!, errorReason(new Error('unseen')));
        await eventually(() => expect(registry.whereis('alpha')?.alive).toBe(true));
        await bus.nc.flush();
        expect(got.length).toBe(n);
      },
      { timeout: 6_000, interval: 300 },
    );
  });
  it('announces the tree again for a new listener without starting over', async () => {
    const prefix = uniqueName('tree').replace(/_/g, '-').toLowerCase();
    const log = pino({ level: 'silent' });
    const bus = await connectBus({ servers: nats.url, prefix, logger: log });
    cleanup.push(() => bus.drain());
    const registry = new Registry();
    const started = await startSupervisor(
      [
        actorChild('steady', idle, { name: 'steady' }),
        actorChild('flaky', flaky, { name: 'flaky', backoff: { min: 300, max: 300, jitter: 0 } }),
      ],
      { strategy: 'one_for_one', intensity: 1_000, period: 10_000 },
      { registry, name: 'root', logger: log },
    );
    if (!started.ok) throw new Error('tree did not start');
    const root = started.value;
    cleanup.push(() => {
      failing.now = false;
      return root.stop();
    });
    const server = startHubInspection({ bus, registry, log, hubId: 'h2', roots: ['root'] });
    cleanup.push(() => server.terminate?.('shutdown'));

    const got: Ev[] = [];
    const dec = new TextDecoder();
    bus.nc.subscribe(bus.names.subjects.inspect('hub', 'h2'), {
      callback: (_e, m) => {
        got.push(JSON.parse(dec.decode(m.data)));
      },
    });
    await bus.nc.flush();
    const say = (listener: string) =>
      bus.nc.publish(
        bus.names.subjects.inspecting,
        JSON.stringify({ v: 1, listener, targets: ['hub.*'], ttlMs: 30_000 }),
      );
    const actorsNamed = (name: string) => got.filter((e) => e.type === '@xstate.actor' && e.name === name);
    const reports = (type: string, from = 0) =>
      got.slice(from).filter((e) => e.type === '@xstate.event' && e.event?.type === type);
    say('first');
    await eventually(() => {
      for (const n of ['root', 'steady', 'flaky']) expect(actorsNamed(n), n).toHaveLength(1);
    });
    const flakySession = actorsNamed('flaky')[0]!.sessionId;
    const steadySession = actorsNamed('steady')[0]!.sessionId;

    // flaky crashes and cannot start again: a restart is scheduled every 300 ms, each naming the
    // incarnation that exited (the new one is a new session, once it starts).
    failing.now = true;
    exit(registry.whereis('flaky')!, errorReason(new Error('boom')));
    await eventually(() => expect(reports('start_error').length).toBeGreaterThanOrEqual(1));
    expect(reports('restart_scheduled').every((e) => e.sourceId === flakySession)).toBe(true);

    // A second listener: the tree as it is now, sent again (flaky is down: not in it).
    say('second');
    await eventually(() => expect(actorsNamed('root')).toHaveLength(2), { timeout: 5_000 });
    const mark = got.length;
    expect(actorsNamed('steady')).toHaveLength(2);
    expect(actorsNamed('steady')[1]!.sessionId).toBe(steadySession);
    expect(actorsNamed('root')[1]!.snapshot?.context?.restarts).toBeGreaterThanOrEqual(1);
    expect(actorsNamed('flaky')).toHaveLength(1);
    // Still followed as before: the next restart scheduled still names the incarnation that exited.
    await eventually(() => expect(reports('restart_scheduled', mark).length).toBeGreaterThanOrEqual(1), {
      timeout: 5_000,
    });
    expect(reports('restart_scheduled', mark)[0]!.sourceId).toBe(flakySession);

    // It starts again at last: a new session.
    failing.now = false;
    await eventually(() => expect(actorsNamed('flaky')).toHaveLength(2), { timeout: 5_000 });
    expect(actorsNamed('flaky')[1]!.sessionId).not.toBe(flakySession);
  });
});
