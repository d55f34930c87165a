/**
 * A hub behind on its own reports does not judge accept timeouts on them (actors/scheduler/lifeline.ts,
 * `heardAt`). The scheduler runs with a bus on a real server against a stand-in TaskQueue whose
 * one task was assigned long ago; an agent report waits unread in REPORTS, on hub-reports. While it
 * waits the scheduler reclaims nothing, and says how far behind it is; once the report is acked
 * (the hub has applied it, and it was not the accept), the accept timeout is judged.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SchedulerProcess, type SchedulerStatsReply } from '../../../actors/scheduler/index.js';
import { type Bus, defaultTopology, provision } from '../../../src/bus/index.js';
import type { TaskRecord } from '../../../src/protocol/task.js';
import { call, exit, type Pid, Registry, type Server, startServer } from '../../../src/runtime/index.js';
import { testBus } from '../../bus/support.js';
import { eventually } from '../../support/eventually.js';
import { useNatsServer } from '../../support/nats-server.js';
import { A, assignedTo } from '../task-queue/helpers.js';

type StandIn = Server<{ type: string; reply?: (r: unknown) => void; reason?: string }>;

describe('scheduler: accept timeouts wait for the hub to read its reports', () => {
  const nats = useNatsServer();
  const pids: Pid[] = [];
  let bus: Bus | undefined;
  afterEach(async () => {
    for (const p of pids.splice(0)) exit(p, 'shutdown');
    await bus?.drain();
  });

  it('reclaims nothing while a report waits unread, and reclaims once it is read', async () => {
    bus = await testBus(nats.url);
    const n = bus.names;
    await provision(bus, defaultTopology(n, { storage: 'memory' }));
    // An agent's report, stored before the sweep starts and read by nobody yet.
    await bus.js.publish(n.subjects.agentReport(A), '{}');

    // Assigned now, never accepted: its accept timeout (100 ms) runs out on the clock at once.
    const task: TaskRecord = { ...assignedTo(A), assignedAt: Date.now() };
    const reclaims: string[] = [];
    const taskQueue: StandIn = {
      handle(msg) {
        if (msg.type === 'snapshot') msg.reply?.([task]);
        if (msg.type === 'reclaim') reclaims.push(msg.reason ?? '');
      },
    };
    const registry = new Registry();
    const tq = await startServer(() => taskQueue, undefined);
    if (tq.kind !== 'ok') throw new Error('task queue stand-in did not start');
    pids.push(tq.pid);
    registry.register('tq', tq.pid);
    const started = await startServer(SchedulerProcess.start, {
      registry,
      log: pino({ level: 'silent' }),
      taskQueue: 'tq',
      bus,
      timeouts: { acceptTimeoutMs: 100, progressTimeoutMs: 60_000, blockedTimeoutMs: 60_000 },
      sweepIntervalMs: 20,
    });
    if (started.kind !== 'ok') throw new Error('scheduler did not start');
    pids.push(started.pid);
    const scheduler = started.pid;
    const stats = async () => {
      const r = await call<SchedulerStatsReply>(scheduler, { type: 'stats' });
      if (!r.ok) throw new Error(`stats: ${r.error.kind}`);
      return r.value;
    };

    // Ten sweeps (20 ms apart) have run, the last ones after the accept timeout (100 ms) had
    // passed on the clock; the report is still unread, so none reclaimed it.
    await eventually(async () => expect((await stats()).sweeps).toBeGreaterThanOrEqual(10));
    expect(Date.now() - task.assignedAt!).toBeGreaterThan(100);
    expect(reclaims).toEqual([]);
    expect((await stats()).reportsLagMs).toBeGreaterThan(100);

    // The hub reads the report (as the TaskQueue would, after applying it).
    const consumer = await bus.js.consumers.get(n.streams.reports, n.consumers.hubReports);
    const batch = await consumer.fetch({ max_messages: 1, expires: 2_000 });
    for await (const m of batch) {
      await m.ackAck();
      break;
    }
    await eventually(() => expect(reclaims).toEqual(['accept_timeout']));
    await eventually(async () => expect((await stats()).reportsLagMs).toBeLessThan(1_000));
  });
});
