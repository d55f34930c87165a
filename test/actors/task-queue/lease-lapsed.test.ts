/**
 * The TaskQueue of a hub whose lease has lapsed by its own clock (`writable` false: stalled, or
 * cut off from the lease bucket): it writes nothing. A batch of assignments is refused as a whole
 * with `unavailable`; a submission waits in the stream (retried, never dead-lettered or lost) and is
 * applied once the hub may write again.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type AssignReply, TaskQueue } from '../../../actors/task-queue/index.js';
import { submitTask } from '../../../src/agent/submit.js';
import type { Bus } from '../../../src/bus/connection.js';
import { defaultTopology, provision } from '../../../src/bus/provision.js';
import type { AgentId, TaskId } from '../../../src/protocol/ids.js';
import type { TaskRecord } from '../../../src/protocol/task.js';
import { call, exit, type Pid, Registry } from '../../../src/runtime/index.js';
import { startServer } from '../../../src/runtime/server.js';
import { testBus } from '../../bus/support.js';
import { eventually } from '../../support/eventually.js';
import { useNatsServer } from '../../support/nats-server.js';

const nats = useNatsServer();

describe('TaskQueue while its hub may not write', () => {
  let bus: Bus;
  let pid: Pid | undefined;
  const registry = new Registry();
  let writable = false;

  beforeEach(async () => {
    bus = await testBus(nats.url);
    await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
    const started = await startServer(TaskQueue.start, {
      bus,
      registry,
      log: pino({ level: 'silent' }),
      subscribers: [],
      writable: () => writable,
    });
    if (started.kind !== 'ok') throw new Error('task queue did not start');
    pid = started.pid;
    registry.register('tq', started.pid);
  });

  afterEach(async () => {
    if (pid) exit(pid, 'shutdown');
    registry.unregister('tq');
    await bus.drain();
  });

  const get = async (taskId: TaskId) => {
    const r = await call<TaskRecord | null>('tq', { type: 'get', taskId }, { registry });
    return r.ok ? r.value : null;
  };

  it('writes nothing, then applies what waited once it may write', async () => {
    writable = false;
    const { taskId } = await submitTask(bus, { title: 'waits for the lease' });
    // Refused as a batch: every pick gets `unavailable`, nothing is written.
    const picks = [
      { taskId, agentId: 'a1' as AgentId },
      { taskId: 'other' as TaskId, agentId: 'a2' as AgentId },
    ];
    const r = await call<AssignReply[]>('tq', { type: 'assign', picks }, { registry });
    expect(r.ok && r.value.map((x) => (x.ok ? 'ok' : x.error.code))).toEqual(['unavailable', 'unavailable']);
    // The submission was delivered and put back (not applied, not dead-lettered): no record.
    await eventually(async () => {
      const info = await bus.jsm.consumers.info(bus.names.streams.submit, bus.names.consumers.hubIntake);
      expect(info.delivered.consumer_seq).toBeGreaterThanOrEqual(1);
    });
    expect(await get(taskId)).toBeNull();
    expect((await bus.jsm.streams.info(bus.names.streams.dlq)).state.messages).toBe(0);

    writable = true;
    await eventually(async () => expect((await get(taskId))?.status).toBe('queued'));
    const assigned = await call<AssignReply[]>(
      'tq',
      { type: 'assign', picks: [{ taskId, agentId: 'a1' as AgentId }] },
      { registry },
    );
    expect(assigned.ok && assigned.value[0]?.ok).toBe(true);
    expect((await get(taskId))?.assignee).toBe('a1');
  });
});
