/**
 * The Agents actor against a real server: its start does not wait for the FSMs' restore (the
 * scheduler, started after it, would wait with it), and what it is sent while restoring is applied
 * after the restore, in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type AgentsMessage, AgentsProcess } from '../../../actors/agents/index.js';
import type { AgentUp } from '../../../actors/scheduler/index.js';
import { type Bus, defaultTopology, provision } from '../../../src/bus/index.js';
import type { QueueName, TaskId } from '../../../src/protocol/ids.js';
import type { TaskRecord } from '../../../src/protocol/task.js';
import {
  call,
  cast,
  exit,
  type Pid,
  Registry,
  startDynamicSupervisor,
  startServer,
} from '../../../src/runtime/index.js';
import { deferred, silent, testBus } from '../../bus/support.js';
import { eventually } from '../../support/eventually.js';
import { useNatsServer } from '../../support/nats-server.js';
import { A, assignedTo } from '../task-queue/helpers.js';

describe('agents actor', () => {
  const nats = useNatsServer();
  const pids: Pid[] = [];
  let bus: Bus | undefined;
  afterEach(async () => {
    for (const p of pids.splice(0).reverse()) exit(p, 'shutdown');
    await bus?.drain();
  });

  it('starts before its restore has the task records, and applies what came meanwhile after it, in order', async () => {
    bus = await testBus(nats.url);
    await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
    const registry = new Registry();
    const fsms = await startDynamicSupervisor({ name: 'fsms', registry });
    if (!fsms.ok) throw new Error('fsm supervisor did not start');
    pids.push(fsms.value);
    // A TaskQueue that answers the restore's snapshot request only when the test says so.
    const snapshotAsked = deferred();
    const release = deferred();
    const working = { ...assignedTo(A, true), id: 't-old' as TaskId };
    const queue = await startServer(
      async () => ({
        handle(msg: { type: string; reply?: (v: TaskRecord[]) => void }) {
          if (msg.type !== 'snapshot') return;
          snapshotAsked.resolve();
          void release.promise.then(() => msg.reply?.([working]));
        },
      }),
      undefined,
    );
    if (queue.kind !== 'ok') throw new Error('task queue stand-in did not start');
    pids.push(queue.pid);
    registry.register('task-queue', queue.pid);

    const started = await startServer(AgentsProcess.start, {
      bus,
      registry,
      log: silent,
      fsmSupervisor: 'fsms',
      taskQueue: 'task-queue',
      tickMs: 60_000,
    });
    if (started.kind !== 'ok') throw new Error('agents actor did not start');
    pids.push(started.pid);
    // Started, and its restore still waits for the records (before, the start waited for them).
    await snapshotAsked.promise;

    // Sent while it restores: the agent comes up, then a second task is assigned to it.
    const up: AgentUp = {
      type: 'agent_up',
      agentId: A,
      capabilities: [],
      queues: ['default' as QueueName],
      slots: 2,
      at: Date.now(),
    };
    cast(started.pid, up satisfies AgentsMessage);
    const second = { ...assignedTo(A), id: 't-new' as TaskId };
    cast(started.pid, { type: 'tasks_changed', tasks: [second] } satisfies AgentsMessage);
    release.resolve();

    const state = async () => {
      const r = await call<{ value: string; context: { tasks: Record<string, { phase: string }> } } | null>(
        started.pid,
        { type: 'state', agentId: A },
      );
      if (!r.ok) throw new Error(`state: ${r.error.kind}`);
      return r.value;
    };
    await eventually(async () => {
      const s = await state();
      expect(s?.value).toBe('working');
      // The restore's record and the held change, both applied.
      expect(Object.fromEntries(Object.entries(s!.context.tasks).map(([id, t]) => [id, t.phase]))).toEqual({
        't-old': 'working',
        't-new': 'assigned',
      });
    });
  });
});
