/**
 * The Agents actor against a real server: its start does not wait for the FSMs' restore (the
 * scheduler, started after it, would wait with it), and what it is sent while restoring is applied
 * after the restore, in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { type AgentsMessage, AgentsProcess } from '../../../actors/agents/index.js';
import { FsmSnapshotSchema } from '../../../actors/agents/process.js';
import type { AgentUp } from '../../../actors/scheduler/index.js';
import { agentMachine } from '../../../machines/agent.js';
import { type Bus, defaultTopology, openKv, provision } from '../../../src/bus/index.js';
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
import { A, assignedTo, drive } from '../task-queue/helpers.js';

describe('agents actor', () => {
  const nats = useNatsServer();
  const pids: Pid[] = [];
  let bus: Bus | undefined;
  afterEach(async () => {
    for (const p of pids.splice(0).reverse()) exit(p, 'shutdown');
    await bus?.drain();
  });

  /**
   * The actor's surroundings: its bus, a registry, the FSMs' supervisor and a TaskQueue stand-in
   * whose answer to the restore's snapshot request is `records`, given once `answer` resolves.
   */
  async function startAgents(opts: {
    records: TaskRecord[];
    answer?: Promise<void>;
    /** An FSM snapshot of agent A, connected, is in the bucket. */
    connected?: boolean;
    busOptions?: Parameters<typeof testBus>[1];
  }) {
    bus = await testBus(nats.url, opts.busOptions);
    await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
    if (opts.connected) {
      // As a hub before this one left it: the agent's FSM connected, holding nothing.
      const fsm = createActor(agentMachine, { input: { agentId: A } }).start();
      fsm.send({ ...up, type: 'CONNECT', capabilities: [], queues: [...up.queues] });
      const kv = await openKv(bus, bus.names.buckets.agents, FsmSnapshotSchema);
      await kv.put(`${A}.fsm`, { v: 1, snapshot: fsm.getPersistedSnapshot() });
      fsm.stop();
    }
    const registry = new Registry();
    const fsms = await startDynamicSupervisor({ name: 'fsms', registry });
    if (!fsms.ok) throw new Error('fsm supervisor did not start');
    pids.push(fsms.value);
    const snapshotAsked = deferred();
    const queue = await startServer(
      async () => ({
        handle(msg: { type: string; reply?: (v: TaskRecord[]) => void }) {
          if (msg.type !== 'snapshot') return;
          snapshotAsked.resolve();
          void (opts.answer ?? Promise.resolve()).then(() => msg.reply?.(opts.records));
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
      flushMs: 60_000,
    });
    if (started.kind !== 'ok') throw new Error('agents actor did not start');
    pids.push(started.pid);
    const state = async () => {
      const r = await call<{
        value: string;
        context: { tasks: Record<string, { phase: string }>; completed: number };
      } | null>(started.pid, { type: 'state', agentId: A });
      if (!r.ok) throw new Error(`state: ${r.error.kind}`);
      return r.value;
    };
    return { agents: started.pid, snapshotAsked: snapshotAsked.promise, state };
  }

  const up: AgentUp = {
    type: 'agent_up',
    agentId: A,
    capabilities: [],
    queues: ['default' as QueueName],
    slots: 2,
    at: Date.now(),
  };

  it('starts before its restore has the task records, and applies what came meanwhile after it, in order', async () => {
    const release = deferred();
    const working = { ...assignedTo(A, true), id: 't-old' as TaskId };
    const { agents, snapshotAsked, state } = await startAgents({
      records: [working],
      answer: release.promise,
      connected: true,
    });
    // Started, and its restore still waits for the records (before, the start waited for them).
    await snapshotAsked;
    // Answered while it restores: restored from its snapshot, not yet told about the records.
    expect((await state())?.value).toBe('idle');

    // Sent while it restores: the agent comes up, the task the records hold is done, and a second
    // one is assigned, then done. Applied before the records, the first completion would find
    // nothing held (and the records would then hand the task back); applied out of order, the
    // second task would stay held. The periodic sync cannot repair either: it fixes the tasks
    // held, not the completions counted.
    cast(agents, up satisfies AgentsMessage);
    const done = (t: TaskRecord) =>
      drive(t, [{ type: 'complete', agentId: A, generation: t.generation, result: null }]);
    const second = { ...assignedTo(A, true), id: 't-new' as TaskId };
    cast(agents, { type: 'tasks_changed', tasks: [done(working)] } satisfies AgentsMessage);
    cast(agents, { type: 'tasks_changed', tasks: [second] } satisfies AgentsMessage);
    cast(agents, { type: 'tasks_changed', tasks: [done(second)] } satisfies AgentsMessage);
    release.resolve();

    await eventually(async () => {
      const s = await state();
      expect(s?.value).toBe('idle');
      expect(s?.context.tasks).toEqual({});
      expect(s?.context.completed).toBe(2);
    });
  });

  it('stops within its shutdown timeout when the snapshots cannot be written', async () => {
    // Every request waits 30 s for its answer: the final flush would wait that long.
    const { agents, state } = await startAgents({ records: [], busOptions: { apiTimeoutMs: 30_000 } });
    cast(agents, up satisfies AgentsMessage);
    await eventually(async () => expect((await state())?.value).toBe('idle'));
    // The FSM changed (flushMs is a minute: its snapshot is unwritten) and the server stops answering.
    const serverPid = nats.pid;
    if (serverPid === undefined) throw new Error('no server pid');
    process.kill(serverPid, 'SIGSTOP');
    try {
      exit(agents, 'shutdown');
      const deadline = new Promise<'deadline'>((resolve) =>
        setTimeout(() => resolve('deadline'), 4_000).unref(),
      );
      // 4 s: below the 5 s a supervisor waits for a worker before killing it.
      expect(await Promise.race([agents.exited, deadline])).toBe('shutdown');
    } finally {
      process.kill(serverPid, 'SIGCONT');
    }
  });
});
