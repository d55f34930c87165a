import { describe, expect, it } from 'vitest';
import { type Actor, createActor } from 'xstate';
import { getAdjacencyMap, getShortestPaths } from 'xstate/graph';
import {
  type AgentEmitted,
  type AgentEvent,
  agentMachine,
  aggregate,
  busy,
  type TaskSlot,
} from '../../machines/agent.js';
import type { AgentId, Capability, QueueName, TaskId } from '../../src/protocol/ids.js';

const ID = 'agent-1' as AgentId;
const t1 = 't1' as TaskId;
const t2 = 't2' as TaskId;
const t3 = 't3' as TaskId;

function connect(slots = 1, at = 0): AgentEvent {
  return {
    type: 'CONNECT',
    capabilities: ['ts'] as Capability[],
    queues: ['default'] as QueueName[],
    slots,
    at,
  };
}
function ev<T extends Exclude<AgentEvent, { type: 'CONNECT' | 'DISCONNECT' | 'SYNC' }>['type']>(
  type: T,
  taskId: TaskId,
  generation = 1,
  at = 0,
): AgentEvent {
  return { type, taskId, generation, at } as AgentEvent;
}

function start(slots = 1) {
  const emitted: AgentEmitted[] = [];
  const actor = createActor(agentMachine, { input: { agentId: ID } });
  actor.on('*', (e) => emitted.push(e));
  actor.start();
  actor.send(connect(slots));
  return { actor, emitted };
}
const value = (a: Actor<typeof agentMachine>) => a.getSnapshot().value;

describe('agent FSM transitions', () => {
  it('offline -> idle -> assigned -> working -> done -> idle', () => {
    const actor = createActor(agentMachine, { input: { agentId: ID } }).start();
    expect(value(actor)).toBe('offline');
    actor.send(connect(1, 5));
    expect(value(actor)).toBe('idle');
    expect(actor.getSnapshot().context).toMatchObject({ slots: 1, connectedAt: 5, capabilities: ['ts'] });
    actor.send(ev('ASSIGN', t1, 1, 10));
    expect(value(actor)).toBe('assigned');
    actor.send(ev('ACCEPTED', t1, 1, 11));
    expect(value(actor)).toBe('working');
    actor.send({ type: 'COMPLETED', taskId: t1, generation: 1, at: 20, tokensUsed: 42 });
    expect(value(actor)).toBe('idle');
    expect(actor.getSnapshot().context).toMatchObject({
      completed: 1,
      tokensUsed: 42,
      lastOutcome: { taskId: t1, outcome: 'done', at: 20 },
      tasks: {},
    });
  });

  it('working -> failed -> idle', () => {
    const { actor } = start();
    actor.send(ev('ASSIGN', t1));
    actor.send(ev('ACCEPTED', t1));
    actor.send(ev('FAILED', t1));
    expect(value(actor)).toBe('idle');
    expect(actor.getSnapshot().context).toMatchObject({ failed: 1, lastOutcome: { outcome: 'failed' } });
  });

  it('working -> blocked -> working', () => {
    const { actor } = start();
    actor.send(ev('ASSIGN', t1));
    actor.send(ev('ACCEPTED', t1));
    actor.send(ev('BLOCKED', t1, 1, 50));
    expect(value(actor)).toBe('blocked');
    expect(actor.getSnapshot().context.tasks[t1]).toMatchObject({ phase: 'blocked', blockedAt: 50 });
    actor.send(ev('UNBLOCKED', t1, 1, 60));
    expect(value(actor)).toBe('working');
  });

  it('rejected -> idle, and the agent is flagged', () => {
    const { actor, emitted } = start();
    actor.send(ev('ASSIGN', t1));
    actor.send(ev('REJECTED', t1, 1, 7));
    expect(value(actor)).toBe('idle');
    expect(actor.getSnapshot().context).toMatchObject({ rejected: 1, flags: 1 });
    expect(emitted).toEqual([{ type: 'flagged', agentId: ID, taskId: t1, reason: 'rejected' }]);
  });

  it('RECLAIMED takes the task away', () => {
    const { actor } = start();
    actor.send(ev('ASSIGN', t1));
    actor.send(ev('RECLAIMED', t1));
    expect(value(actor)).toBe('idle');
  });

  it('DISCONNECT -> offline; the mirror lets go of every held task and decides nothing', () => {
    const { actor, emitted } = start(2);
    actor.send(ev('ASSIGN', t1, 3));
    actor.send(ev('ASSIGN', t2, 1));
    actor.send({ type: 'DISCONNECT', at: 9 });
    expect(value(actor)).toBe('offline');
    expect(actor.getSnapshot().context.tasks).toEqual({});
    // The scheduler's lifeline reclaims; the FSM emits no reclaim of its own.
    expect(emitted).toEqual([]);
    actor.send(ev('ASSIGN', t3));
    expect(value(actor)).toBe('offline');
  });
});

describe('mirror of the records', () => {
  it('a reclaim for an accept timeout or stuck flags the agent; other reclaims do not', () => {
    const { actor, emitted } = start(2);
    actor.send(ev('ASSIGN', t1, 2, 100));
    actor.send(ev('ASSIGN', t2, 1, 100));
    actor.send({ type: 'RECLAIMED', taskId: t1, generation: 2, at: 1100, reason: 'accept_timeout' });
    actor.send({ type: 'RECLAIMED', taskId: t2, generation: 1, at: 1200, reason: 'agent_offline' });
    expect(value(actor)).toBe('idle');
    expect(emitted).toEqual([{ type: 'flagged', agentId: ID, taskId: t1, reason: 'accept_timeout' }]);
    expect(actor.getSnapshot().context.recentFlags).toEqual([
      { at: 1100, taskId: t1, reason: 'accept_timeout' },
    ]);
  });

  it('SYNC replaces the held tasks with what the records say (a stale view converges)', () => {
    const { actor } = start(2);
    actor.send(ev('ASSIGN', t1, 1, 100));
    actor.send(ev('ACCEPTED', t1, 1, 110));
    expect(value(actor)).toBe('working');
    const slot: TaskSlot = {
      generation: 4,
      phase: 'blocked',
      assignedAt: 200,
      acceptedAt: 210,
      lastProgressAt: 220,
      blockedAt: 230,
    };
    actor.send({ type: 'SYNC', tasks: { [t2]: slot }, at: 300 });
    expect(value(actor)).toBe('blocked');
    expect(actor.getSnapshot().context.tasks).toEqual({ [t2]: slot });
    actor.send({ type: 'SYNC', tasks: {}, at: 400 });
    expect(value(actor)).toBe('idle');
  });

  it('an offline agent ignores SYNC (it holds nothing once the hub has reclaimed)', () => {
    const actor = createActor(agentMachine, { input: { agentId: ID } }).start();
    actor.send({
      type: 'SYNC',
      tasks: {
        [t1]: {
          generation: 1,
          phase: 'working',
          assignedAt: 0,
          acceptedAt: 0,
          lastProgressAt: 0,
          blockedAt: null,
        },
      },
      at: 1,
    });
    expect(value(actor)).toBe('offline');
    expect(actor.getSnapshot().context.tasks).toEqual({});
  });
});

describe('slots and fencing', () => {
  it('holds at most `slots` tasks; the aggregate prefers working, then assigned, then blocked', () => {
    const { actor } = start(2);
    actor.send(ev('ASSIGN', t1));
    actor.send(ev('ASSIGN', t2));
    actor.send(ev('ASSIGN', t3));
    expect(Object.keys(actor.getSnapshot().context.tasks)).toEqual([t1, t2]);
    actor.send(ev('ACCEPTED', t1));
    expect(value(actor)).toBe('working');
    actor.send(ev('BLOCKED', t1));
    expect(value(actor)).toBe('assigned');
    actor.send(ev('ACCEPTED', t2));
    actor.send(ev('BLOCKED', t2));
    expect(value(actor)).toBe('blocked');
    actor.send(ev('COMPLETED', t1));
    expect(value(actor)).toBe('blocked');
    actor.send(ev('ASSIGN', t3));
    expect(value(actor)).toBe('assigned');
  });

  it('ignores stale generations and redelivered assigns; a newer assign replaces', () => {
    const { actor } = start();
    actor.send(ev('ASSIGN', t1, 2, 0));
    actor.send(ev('COMPLETED', t1, 1));
    expect(value(actor)).toBe('assigned');
    actor.send(ev('ASSIGN', t1, 2, 500));
    expect(actor.getSnapshot().context.tasks[t1]?.assignedAt).toBe(0);
    actor.send(ev('ASSIGN', t1, 3, 600));
    expect(actor.getSnapshot().context.tasks[t1]).toMatchObject({ generation: 3, assignedAt: 600 });
  });

  it('adopts a task it does not know when the task queue vouches for it (free slot only)', () => {
    const { actor } = start(1);
    actor.send(ev('PROGRESS', t1, 4, 10));
    expect(value(actor)).toBe('working');
    expect(actor.getSnapshot().context.tasks[t1]).toMatchObject({ generation: 4, phase: 'working' });
    actor.send(ev('PROGRESS', t2, 1, 10));
    expect(Object.keys(actor.getSnapshot().context.tasks)).toEqual([t1]);
    actor.send(ev('COMPLETED', t2));
    expect(actor.getSnapshot().context.completed).toBe(0);
  });

  it('a re-CONNECT while online updates the declaration and keeps the work', () => {
    const { actor } = start(1);
    actor.send(ev('ASSIGN', t1));
    actor.send({
      type: 'CONNECT',
      capabilities: ['ts', 'gpu'] as Capability[],
      queues: ['default'] as QueueName[],
      slots: 3,
      at: 99,
    });
    expect(value(actor)).toBe('assigned');
    expect(actor.getSnapshot().context).toMatchObject({
      slots: 3,
      connectedAt: 0,
      capabilities: ['ts', 'gpu'],
    });
  });
});

describe('persistence', () => {
  it('survives getPersistedSnapshot -> JSON -> restore', () => {
    const { actor } = start(2);
    actor.send(ev('ASSIGN', t1, 1, 100));
    actor.send(ev('ASSIGN', t2, 1, 100));
    actor.send(ev('ACCEPTED', t2, 1, 150));
    const json = JSON.stringify(actor.getPersistedSnapshot());
    actor.stop();

    const emitted: AgentEmitted[] = [];
    const restored = createActor(agentMachine, {
      input: { agentId: ID },
      snapshot: JSON.parse(json),
    });
    restored.on('*', (e) => emitted.push(e));
    restored.start();
    expect(restored.getSnapshot().value).toBe('working');
    expect(restored.getSnapshot().context).toEqual(JSON.parse(json).context);
    expect(emitted).toEqual([]);
    restored.send(ev('COMPLETED', t2, 1, 1200));
    expect(restored.getSnapshot().value).toBe('assigned');
    expect(JSON.parse(JSON.stringify(restored.getPersistedSnapshot())).context.completed).toBe(1);
  });
});

describe('path coverage (xstate/graph)', () => {
  const at = 0;
  const events: AgentEvent[] = [
    connect(2),
    { type: 'DISCONNECT', at },
    ...[t1, t2].flatMap((id) =>
      (
        [
          'ASSIGN',
          'ACCEPTED',
          'REJECTED',
          'PROGRESS',
          'BLOCKED',
          'UNBLOCKED',
          'COMPLETED',
          'FAILED',
          'RECLAIMED',
        ] as const
      ).map((type) => ev(type, id, 1, at)),
    ),
    { type: 'SYNC', tasks: {}, at },
  ];
  // only what guards and routing depend on: the state and each task's phase (counters would make it infinite)
  const serializeState = (s: {
    value: unknown;
    context: { tasks: Record<string, { phase: string }>; slots: number };
  }) =>
    JSON.stringify({
      v: s.value,
      slots: s.context.slots,
      t: Object.entries(s.context.tasks)
        .map(([id, x]) => `${id}:${x.phase}`)
        .sort(),
    });
  const opts = { events, serializeState, input: { agentId: ID } } as const;

  function replay(steps: Array<{ event: AgentEvent | { type: string } }>) {
    const emitted: AgentEmitted[] = [];
    const actor = createActor(agentMachine, { input: { agentId: ID } });
    actor.on('*', (e) => emitted.push(e));
    actor.start();
    for (const s of steps) if (s.event.type !== 'xstate.init') actor.send(s.event as AgentEvent);
    return { actor, emitted };
  }

  function checkInvariants(actor: Actor<typeof agentMachine>) {
    const snap = actor.getSnapshot();
    const ctx = snap.context;
    expect(busy(ctx)).toBeLessThanOrEqual(Math.max(ctx.slots, 0));
    if (snap.value === 'offline') expect(busy(ctx)).toBe(0);
    else expect(snap.value).toBe(aggregate(ctx));
  }

  it('reaches every state; every shortest path replays on a live actor', () => {
    const paths = getShortestPaths(agentMachine, opts);
    const reached = new Set(paths.map((p) => p.state.value as string));
    expect([...reached].sort()).toEqual(['assigned', 'blocked', 'idle', 'offline', 'working']);
    for (const p of paths) {
      const { actor } = replay(p.steps);
      expect(serializeState(actor.getSnapshot())).toBe(serializeState(p.state));
      checkInvariants(actor);
    }
  });

  it('walks every (state, event) transition with invariants holding after each', () => {
    // getAdjacencyMap's generic signature does not infer machine snapshots; the shape is documented
    const adj = getAdjacencyMap(agentMachine as never, opts as never) as unknown as Record<
      string,
      { transitions: Record<string, { event: AgentEvent; state: Parameters<typeof serializeState>[0] }> }
    >;
    const paths = new Map(getShortestPaths(agentMachine, opts).map((p) => [serializeState(p.state), p]));
    const seen = new Set<string>();
    let changes = 0;
    for (const [key, { transitions }] of Object.entries(adj)) {
      const path = paths.get(key);
      expect(path).toBeDefined();
      for (const { event, state: expected } of Object.values(transitions)) {
        const { actor } = replay([...path!.steps, { event }]);
        expect(serializeState(actor.getSnapshot())).toBe(serializeState(expected));
        checkInvariants(actor);
        if (serializeState(expected) !== key) {
          changes++;
          seen.add(event.type);
        }
      }
    }
    // every event type changes the state somewhere (PROGRESS by adoption into a free slot)
    expect([...seen].sort()).toEqual(
      [
        'ACCEPTED',
        'ASSIGN',
        'BLOCKED',
        'COMPLETED',
        'CONNECT',
        'DISCONNECT',
        'FAILED',
        'PROGRESS',
        'RECLAIMED',
        'REJECTED',
        'SYNC',
        'UNBLOCKED',
      ].sort(),
    );
    expect(changes).toBeGreaterThan(50);
  });

  it('done and failed are passed through (seen via lastOutcome); only a rejection emits (a flag)', () => {
    const { actor, emitted } = replay([
      { event: connect(2) },
      { event: ev('ASSIGN', t1) },
      { event: ev('ASSIGN', t2) },
      { event: ev('COMPLETED', t1) },
      { event: ev('REJECTED', t2) },
    ]);
    expect(actor.getSnapshot().context.lastOutcome).toMatchObject({ taskId: t1, outcome: 'done' });
    expect(emitted).toEqual([{ type: 'flagged', agentId: ID, taskId: t2, reason: 'rejected' }]);
  });
});
