/**
 * The scheduler process against a stand-in TaskQueue that refuses every assignment at once,
 * without any I/O (as the real one does while its hub may not write: a lease that ran out during
 * a stall). The refused task must wait before it is picked again: picking it again in the same run
 * of microtasks starved the event loop, so no timer could fire and the hub hung for good.
 * And against one that holds its answers: a burst is asked a window at a time. And a task whose
 * change is cast to the scheduler's name while it starts is scheduled (src/runtime/server.ts holds it).
 * And a new scheduler's start over a backlog: it assigns before it has read all of it, best task
 * first, and never to an agent whose slot a task it holds already fills.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AgentUp,
  type SchedulerMessage,
  SchedulerProcess,
  type SchedulerStatsReply,
} from '../../../actors/scheduler/index.js';
import type { AgentId, QueueName, TaskId } from '../../../src/protocol/ids.js';
import type { TaskRecord } from '../../../src/protocol/task.js';
import {
  call,
  cast,
  exit,
  type Pid,
  Registry,
  type Server,
  serverChild,
  startServer,
  startSupervisor,
} from '../../../src/runtime/index.js';
import { eventually } from '../../support/eventually.js';
import { assignedTo, submitted } from '../task-queue/helpers.js';

type StandIn = Server<{
  type: string;
  reply?: (r: unknown) => void;
  picks?: { taskId: string; agentId: string }[];
}>;

const agentUp = (id: string): AgentUp => ({
  type: 'agent_up',
  agentId: id as AgentId,
  capabilities: [],
  queues: ['default' as QueueName],
  slots: 1,
  at: Date.now(),
});

const schedulerInput = (registry: Registry) => ({
  registry,
  log: pino({ level: 'silent' }),
  taskQueue: 'tq',
  timeouts: { acceptTimeoutMs: 60_000, progressTimeoutMs: 60_000, blockedTimeoutMs: 60_000 },
  sweepIntervalMs: 60_000,
});

function unwrapOk<T>(r: { ok: true; value: T } | { ok: false; error: unknown }): T {
  if (!r.ok) throw new Error(`did not start: ${JSON.stringify(r.error)}`);
  return r.value;
}

describe('scheduler process', () => {
  const pids: Pid[] = [];
  afterEach(async () => {
    for (const p of pids.splice(0)) exit(p, 'shutdown');
  });

  /** The stand-in registered as `tq`, then a scheduler on it; returns the scheduler's pid. */
  async function schedulerOn(taskQueue: StandIn, over: { batch?: number; maxInFlight?: number } = {}) {
    const registry = new Registry();
    const tq = await startServer(() => taskQueue, undefined);
    if (tq.kind !== 'ok') throw new Error('task queue stand-in did not start');
    pids.push(tq.pid);
    registry.register('tq', tq.pid);
    const said: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => said.push(JSON.parse(line).msg) });
    const started = await startServer(SchedulerProcess.start, { ...schedulerInput(registry), log, ...over });
    if (started.kind !== 'ok') throw new Error('scheduler did not start');
    pids.push(started.pid);
    // The backlog is read after the start returns: these tests begin with all of it indexed.
    await eventually(() => expect(said).toContain('scheduler read the backlog'));
    return started.pid;
  }

  /**
   * Stand-ins registered as `tq` and `presence`, then a scheduler reading its backlog a task per
   * slice (3,000 tasks: 3,000 turns of the event loop); its log messages go to `events`.
   */
  async function schedulerBeside(taskQueue: StandIn, presence: StandIn, events: string[]) {
    const registry = new Registry();
    for (const [name, server] of [
      ['tq', taskQueue],
      ['presence', presence],
    ] as const) {
      const r = await startServer(() => server, undefined);
      if (r.kind !== 'ok') throw new Error(`${name} stand-in did not start`);
      pids.push(r.pid);
      registry.register(name, r.pid);
    }
    const started = await startServer(SchedulerProcess.start, {
      ...schedulerInput(registry),
      log: pino({ level: 'info' }, { write: (line: string) => events.push(JSON.parse(line).msg) }),
      presence: 'presence',
      startSliceMs: 0,
    });
    if (started.kind !== 'ok') throw new Error('scheduler did not start');
    pids.push(started.pid);
    return started.pid;
  }

  it('a task whose assignment is refused without I/O waits before it is picked again', async () => {
    const queued: TaskRecord = { ...submitted(), status: 'queued' };
    let assignCalls = 0;
    // Stops refusing after 1,000 calls, so that the old behaviour (an endless microtask loop)
    // ends and shows up as a count instead of a hung test.
    const taskQueue: StandIn = {
      handle(msg) {
        if (msg.type === 'snapshot') msg.reply?.([queued]);
        else if (msg.type === 'assign') {
          assignCalls++;
          const ok = assignCalls > 1_000;
          msg.reply?.(
            (msg.picks ?? []).map(() =>
              ok
                ? { ok: true, task: assignedTo('a1' as AgentId) }
                : { ok: false, error: { code: 'unavailable', message: 'this hub may not write now' } },
            ),
          );
        }
      },
    };
    const scheduler = await schedulerOn(taskQueue);
    scheduler.send(agentUp('a1'));
    // The refused task is retried (timers run: the loop is not starved), a few times a second,
    // not a thousand times in a row.
    await eventually(() => expect(assignCalls).toBeGreaterThanOrEqual(2));
    expect(assignCalls).toBeLessThan(20);
  });

  it('a hub that may not write gets one window of picks, not the whole index in one run of microtasks', async () => {
    // 2,000 queued tasks and 10 idle agents; every assignment is refused without I/O. A refusal
    // frees its agent at once: pumping again at once walked the index 10 tasks at a time, 200 calls
    // before any timer (at 100,000 tasks: seconds, and the lease renewal with them).
    const tasks: TaskRecord[] = Array.from({ length: 2_000 }, (_, i) => ({
      ...submitted(),
      id: `t${String(i).padStart(5, '0')}` as TaskId,
      status: 'queued',
    }));
    const calls: string[][] = [];
    const taskQueue: StandIn = {
      handle(msg) {
        if (msg.type === 'snapshot') msg.reply?.(tasks);
        else if (msg.type === 'assign') {
          calls.push((msg.picks ?? []).map((p) => p.taskId));
          msg.reply?.(
            (msg.picks ?? []).map(() => ({
              ok: false,
              error: { code: 'unavailable', message: 'this hub does not hold a live lease; not writing' },
            })),
          );
        }
      },
    };
    const scheduler = await schedulerOn(taskQueue);
    for (let i = 0; i < 10; i++) scheduler.send(agentUp(`a${i}`));
    await eventually(() => expect(calls.length).toBeGreaterThanOrEqual(2));
    // The second call is the retry of the first window's tasks, not the next tasks of the index.
    expect(new Set(calls[1])).toEqual(new Set(calls[0]));
    const offered = new Set(calls.flat());
    expect(offered.size).toBeLessThanOrEqual(10);
  });

  it('a task cast to its name while it starts is not lost (the name is registered before init)', async () => {
    const late: TaskRecord = { ...submitted(), id: 'late' as TaskId, status: 'queued' };
    const assigned: string[] = [];
    const registry = new Registry();
    let castDuringStart: boolean | undefined;
    const taskQueue: StandIn = {
      handle(msg) {
        if (msg.type === 'snapshot') {
          // The snapshot is taken before `late` existed; its change is cast while the scheduler
          // is still in its start.
          msg.reply?.([]);
          castDuringStart = cast('scheduler', { type: 'tasks_changed', tasks: [late] }, registry);
        } else if (msg.type === 'assign') {
          assigned.push(...(msg.picks ?? []).map((p) => p.taskId));
          msg.reply?.((msg.picks ?? []).map(() => ({ ok: true, task: assignedTo('a1' as AgentId) })));
        }
      },
    };
    const sup = unwrapOk(
      await startSupervisor(
        [
          serverChild('tq', () => taskQueue, undefined, { name: 'tq' }),
          serverChild('scheduler', SchedulerProcess.start, schedulerInput(registry), { name: 'scheduler' }),
        ],
        {},
        { registry },
      ),
    );
    pids.push(sup);
    expect(castDuringStart).toBe(true);
    cast('scheduler', agentUp('a1'), registry);
    await eventually(() => expect(assigned).toEqual(['late']));
  });

  it('a start over a backlog assigns from its first slice, the best task first, never to an agent whose slot is taken', async () => {
    // 3,000 queued tasks of normal priority, an urgent one after them, and last a task assigned to
    // a1 (1 slot). a1 and a2 are online. Read in the snapshot's order and assigning early, a1
    // would get a task it has no slot for, and a2 a normal one before the urgent.
    const backlog: TaskRecord[] = Array.from({ length: 3_000 }, (_, i) => ({
      ...submitted(),
      id: `t${String(i).padStart(5, '0')}` as TaskId,
      createdAt: 1_000 + i,
    }));
    const urgent: TaskRecord = {
      ...submitted({ priority: 'urgent' }),
      id: 'urgent' as TaskId,
      createdAt: 9_000,
    };
    const held: TaskRecord = { ...assignedTo('a1' as AgentId), id: 'held' as TaskId };
    const events: string[] = [];
    const picked: { taskId: string; agentId: string }[] = [];
    const taskQueue: StandIn = {
      handle(msg) {
        if (msg.type === 'snapshot') msg.reply?.([...backlog, urgent, held]);
        else if (msg.type === 'assign') {
          // Held unanswered: a2 stays busy with what it was given.
          events.push('assign');
          picked.push(...(msg.picks ?? []));
        }
      },
    };
    const presence: StandIn = {
      handle(msg) {
        if (msg.type === 'online') msg.reply?.([agentUp('a1'), agentUp('a2')]);
      },
    };
    await schedulerBeside(taskQueue, presence, events);
    await eventually(() => expect(events).toContain('scheduler read the backlog'));
    expect(picked).toEqual([{ taskId: 'urgent', agentId: 'a2' }]);
    expect(events.filter((e) => e.startsWith('scheduler') || e === 'assign')).toEqual([
      'scheduler started',
      'assign',
      'scheduler read the backlog',
    ]);
  });

  it('handles task changes while it reads the backlog: a freed agent gets the best task, a cancelled one is not indexed', async () => {
    // a1 (1 slot) holds `held`; 3,000 queued tasks are read a task per slice. While they are read,
    // `held` is done (a1 is free at once), `t02999` is cancelled before the read reaches it, and
    // `late` (urgent, never seen) is submitted: it ranks before every task not read yet, so it is
    // indexed as soon as the read passes it, and a1 gets it, as a whole index would give it.
    const backlog: TaskRecord[] = Array.from({ length: 3_000 }, (_, i) => ({
      ...submitted(),
      id: `t${String(i).padStart(5, '0')}` as TaskId,
      createdAt: 1_000 + i,
    }));
    const held: TaskRecord = { ...assignedTo('a1' as AgentId), id: 'held' as TaskId };
    const events: string[] = [];
    const picked: string[] = [];
    const answers: { picks: { taskId: string; agentId: string }[]; reply: (r: unknown) => void }[] = [];
    const taskQueue: StandIn = {
      handle(msg) {
        if (msg.type === 'snapshot') msg.reply?.([...backlog, held]);
        else if (msg.type === 'assign' && msg.picks && msg.reply) {
          events.push('assign');
          picked.push(...msg.picks.map((p) => p.taskId));
          answers.push({ picks: msg.picks, reply: msg.reply });
        }
      },
    };
    const presence: StandIn = {
      handle(msg) {
        if (msg.type === 'online') msg.reply?.([agentUp('a1')]);
      },
    };
    const scheduler = await schedulerBeside(taskQueue, presence, events);
    const late: TaskRecord = { ...submitted({ priority: 'urgent' }), id: 'late' as TaskId, createdAt: 9_000 };
    const cancelled: TaskRecord = { ...backlog[2_999]!, status: 'cancelled', completedAt: 2_000 };
    const done: TaskRecord = { ...held, status: 'done', completedAt: 2_000 };
    const changed: SchedulerMessage = { type: 'tasks_changed', tasks: [late, cancelled, done] };
    scheduler.send(changed);
    await eventually(() => expect(events).toContain('scheduler read the backlog'));
    // a1 got `late` before the read ended.
    expect(picked).toEqual(['late']);
    expect(events.indexOf('assign')).toBeLessThan(events.indexOf('scheduler read the backlog'));
    const stats = await call<SchedulerStatsReply>(scheduler, { type: 'stats' });
    if (!stats.ok) throw new Error('no stats');
    // 3,000 read but t02999 (cancelled), and `late`, given to a1.
    expect(stats.value.ready).toBe(3_000 - 1);
    // The answer frees a1 here (no record says it holds `late`): the head of the backlog is next.
    answers[0]!.reply([{ ok: true, task: assignedTo('a1' as AgentId) }]);
    await eventually(() => expect(picked).toEqual(['late', 't00000']));
  });

  it('keeps at most maxInFlight assignments unanswered: a burst for 50 idle agents goes 8 at a time', async () => {
    const tasks: TaskRecord[] = Array.from({ length: 60 }, (_, i) => ({
      ...submitted(),
      id: `t${i}` as TaskId,
      status: 'queued',
    }));
    const held: { picks: { taskId: string; agentId: string }[]; reply: (r: unknown) => void }[] = [];
    let asked = 0;
    let answered = 0;
    let most = 0;
    const taskQueue: StandIn = {
      handle(msg) {
        if (msg.type === 'snapshot') msg.reply?.(tasks);
        else if (msg.type === 'assign' && msg.picks && msg.reply) {
          asked += msg.picks.length;
          most = Math.max(most, asked - answered);
          held.push({ picks: msg.picks, reply: msg.reply });
        }
      },
    };
    const scheduler = await schedulerOn(taskQueue, { batch: 4, maxInFlight: 8 });
    for (let i = 0; i < 50; i++) scheduler.send(agentUp(`a${i}`));
    // Answer one call at a time, as each arrives; the window refills as answers come back (an
    // answered agent is free again here: no record change follows, so all 60 tasks go out).
    while (answered < 60) {
      await eventually(() => expect(held.length).toBeGreaterThan(0));
      const call = held.shift()!;
      expect(asked - answered).toBeLessThanOrEqual(8);
      answered += call.picks.length;
      call.reply(call.picks.map((p) => ({ ok: true, task: assignedTo(p.agentId as AgentId) })));
    }
    expect(answered).toBe(60);
    expect(most).toBe(8);
  });
});
