/**
 * A TaskQueue starts its consumers after its own start (a new leader's scheduler need not wait
 * for them). One that cannot start crashes the actor and leaves nothing running: the intake
 * consumer it had started is stopped again (once, it went on applying submissions for a
 * TaskQueue that was not running).
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskQueue } from '../../../actors/task-queue/index.js';
import type { Bus } from '../../../src/bus/connection.js';
import { defaultTopology, provision } from '../../../src/bus/provision.js';
import { describeReason, type ExitReason, Registry } from '../../../src/runtime/index.js';
import { startServer } from '../../../src/runtime/server.js';
import { testBus } from '../../bus/support.js';
import { eventually } from '../../support/eventually.js';
import { useNatsServer } from '../../support/nats-server.js';

const nats = useNatsServer();

describe('TaskQueue start', () => {
  let bus: Bus | undefined;
  afterEach(async () => {
    await bus?.drain();
  });

  it('crashes, and stops the consumer it started, when the other cannot start', async () => {
    bus = await testBus(nats.url);
    await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
    const { streams, consumers } = bus.names;
    // The reports durable is gone: that runner cannot start; the intake's can.
    await bus.jsm.consumers.delete(streams.reports, consumers.hubReports);
    const started = await startServer(TaskQueue.start, {
      bus,
      registry: new Registry(),
      log: pino({ level: 'silent' }),
      subscribers: [],
    });
    if (started.kind !== 'ok') throw new Error('the TaskQueue did not start');
    const exited = new Promise<ExitReason>((resolve) =>
      started.pid.onExit((_pid, reason) => resolve(reason)),
    );
    // It crashes with the reports consumer's error.
    expect(describeReason(await exited)).toMatchObject({ kind: 'error', message: 'consumer not found' });
    // Nobody pulls from the intake durable any more.
    await eventually(async () => {
      const info = await bus!.jsm.consumers.info(streams.submit, consumers.hubIntake);
      expect(info.num_waiting).toBe(0);
    });
  });
});
