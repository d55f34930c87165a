import { describe, expect, it } from 'vitest';
import { type AgentSummary, Scheduler, type TaskSummary } from '../../../actors/scheduler/state.js';
import type { AgentId, Capability, QueueName, TaskId } from '../../../src/protocol/ids.js';
import type { Priority } from '../../../src/protocol/task.js';

const q = (s: string) => s as QueueName;
function task(id: string, over: Partial<TaskSummary> = {}): TaskSummary {
  return {
    id: id as TaskId,
    priority: 'normal',
    queue: q('default'),
    capabilities: [],
    enqueuedAt: 0,
    ...over,
  };
}
function agent(id: string, over: Partial<AgentSummary> = {}): AgentSummary {
  return { id: id as AgentId, capabilities: [], queues: [q('default')], slots: 1, busy: 0, ...over };
}
function ids(s: Scheduler, now = 0, limit?: number) {
  return s.nextAssignments(now, limit).map((a) => `${a.taskId}->${a.agentId}`);
}

describe('task order', () => {
  it('priority lanes first, FIFO within a lane', () => {
    const s = new Scheduler();
    const prios: Priority[] = ['low', 'normal', 'urgent', 'high', 'normal', 'urgent'];
    prios.forEach((p, i) => {
      s.addTask(task(`t${i}`, { priority: p, enqueuedAt: i }));
    });
    s.upsertAgent(agent('a', { slots: 10 }));
    expect(s.nextAssignments(0).map((a) => a.taskId)).toEqual(['t2', 't5', 't3', 't1', 't4', 't0']);
  });

  it('without aging a low task waits behind newer urgent work; with aging it rises', () => {
    for (const [agingMs, first] of [
      [0, 'urgent'],
      [1000, 'old-low'],
    ] as const) {
      const s = new Scheduler({ agingMs });
      s.addTask(task('old-low', { priority: 'low', enqueuedAt: 0 }));
      s.addTask(task('urgent', { priority: 'urgent', enqueuedAt: 3001 }));
      s.upsertAgent(agent('a'));
      expect(s.nextAssignments(5000)[0]?.taskId).toBe(first);
    }
  });

  it('respects limit and keeps the rest queued', () => {
    const s = new Scheduler();
    for (let i = 0; i < 5; i++) s.addTask(task(`t${i}`, { enqueuedAt: i }));
    s.upsertAgent(agent('a', { slots: 5 }));
    expect(ids(s, 0, 2)).toEqual(['t0->a', 't1->a']);
    expect(s.stats()).toMatchObject({ ready: 3, agents: 1 });
    expect(ids(s, 0)).toEqual(['t2->a', 't3->a', 't4->a']);
  });
});

describe('routing', () => {
  it('needs every capability and a served queue', () => {
    const s = new Scheduler();
    s.addTask(task('gpu', { capabilities: ['gpu' as Capability] }));
    s.addTask(task('both', { capabilities: ['gpu', 'ts'] as Capability[] }));
    s.addTask(task('cog', { queue: q('cognition') }));
    s.upsertAgent(agent('plain', { slots: 5 }));
    expect(ids(s)).toEqual([]);
    s.upsertAgent(agent('gpu-agent', { capabilities: ['gpu'] as Capability[], slots: 5 }));
    expect(ids(s)).toEqual(['gpu->gpu-agent']);
    s.upsertAgent(
      agent('thinker', { queues: [q('cognition')], capabilities: ['gpu', 'ts'] as Capability[] }),
    );
    expect(ids(s)).toEqual(['cog->thinker']);
    s.upsertAgent(agent('full', { capabilities: ['ts', 'gpu', 'x'] as Capability[] }));
    expect(ids(s)).toEqual(['both->full']);
  });

  it('an agent re-declaring its capabilities is re-indexed', () => {
    const s = new Scheduler();
    s.addTask(task('t', { capabilities: ['git' as Capability] }));
    s.upsertAgent(agent('a'));
    expect(ids(s)).toEqual([]);
    s.upsertAgent(agent('a', { capabilities: ['git' as Capability] }));
    expect(ids(s)).toEqual(['t->a']);
  });

  it('a removed agent gets nothing', () => {
    const s = new Scheduler();
    s.upsertAgent(agent('a'));
    s.upsertAgent(agent('b'));
    s.addTask(task('t'));
    expect(s.removeAgent('a' as AgentId)).toBe(true);
    expect(ids(s)).toEqual(['t->b']);
  });
});

describe('slots', () => {
  it('never exceeds slots; release frees one', () => {
    const s = new Scheduler();
    for (let i = 0; i < 5; i++) s.addTask(task(`t${i}`, { enqueuedAt: i }));
    s.upsertAgent(agent('a', { slots: 2 }));
    expect(ids(s)).toEqual(['t0->a', 't1->a']);
    expect(ids(s)).toEqual([]);
    s.release('a' as AgentId);
    expect(ids(s)).toEqual(['t2->a']);
    expect(s.agent('a' as AgentId)?.busy).toBe(2);
    s.setBusy('a' as AgentId, 0);
    expect(ids(s)).toEqual(['t3->a', 't4->a']);
  });

  it('an agent registered busy only gets its free slots', () => {
    const s = new Scheduler();
    for (let i = 0; i < 3; i++) s.addTask(task(`t${i}`, { enqueuedAt: i }));
    s.upsertAgent(agent('a', { slots: 3, busy: 2 }));
    expect(ids(s)).toEqual(['t0->a']);
  });
});

describe('avoided agents (rejected, failed or timed out on the task)', () => {
  it('another eligible agent with a free slot gets the task, even a busier one', () => {
    const s = new Scheduler();
    s.upsertAgent(agent('a', { slots: 2 }));
    s.upsertAgent(agent('b', { slots: 2, busy: 1 }));
    s.addTask(task('t', { avoid: ['a' as AgentId] }));
    expect(ids(s)).toEqual(['t->b']);
  });

  it('the avoided agent still gets it when no other eligible agent has a free slot', () => {
    const s = new Scheduler();
    s.upsertAgent(agent('a'));
    s.upsertAgent(agent('b', { busy: 1 }));
    s.addTask(task('t', { avoid: ['a' as AgentId] }));
    expect(ids(s)).toEqual(['t->a']);
  });

  it('passes over several avoided agents, and other tasks of the bucket are unaffected', () => {
    const s = new Scheduler();
    for (const id of ['a', 'b', 'c']) s.upsertAgent(agent(id));
    s.addTask(task('t1', { enqueuedAt: 1, avoid: ['a' as AgentId, 'b' as AgentId] }));
    s.addTask(task('t2', { enqueuedAt: 2 }));
    expect(ids(s)).toEqual(['t1->c', 't2->a']);
  });
});

describe('delayed tasks', () => {
  it('become eligible only when due; nextWakeAt reports the earliest', () => {
    const s = new Scheduler();
    s.upsertAgent(agent('a', { slots: 5 }));
    s.addTask(task('later', { notBefore: 2000 }));
    s.addTask(task('soon', { notBefore: 1000 }));
    expect(s.nextWakeAt()).toBe(1000);
    expect(ids(s, 999)).toEqual([]);
    expect(ids(s, 1000)).toEqual(['soon->a']);
    expect(s.nextWakeAt()).toBe(2000);
    expect(ids(s, 5000)).toEqual(['later->a']);
    expect(s.nextWakeAt()).toBeNull();
  });

  it('removeTask works for ready and delayed tasks', () => {
    const s = new Scheduler();
    s.addTask(task('r'));
    s.addTask(task('d', { notBefore: 10 }));
    expect(s.removeTask('r' as TaskId)).toBe(true);
    expect(s.removeTask('d' as TaskId)).toBe(true);
    expect(s.removeTask('d' as TaskId)).toBe(false);
    expect(s.nextWakeAt()).toBeNull();
    s.upsertAgent(agent('a'));
    expect(ids(s, 100)).toEqual([]);
    expect(s.stats()).toEqual({ ready: 0, delayed: 0, agents: 1, buckets: 0 });
  });

  it('re-adding a task replaces it', () => {
    const s = new Scheduler();
    s.addTask(task('t', { notBefore: 500 }));
    s.addTask(task('t'));
    s.upsertAgent(agent('a'));
    expect(ids(s, 0)).toEqual(['t->a']);
    expect(s.nextWakeAt()).toBeNull();
  });
});

describe('fairness (seed 002 test plan)', () => {
  /** Agents of equal speed: every round each agent finishes what it holds, then the scheduler runs. */
  function equalSpeed(agents: number, tasks: number, slots = 1) {
    const s = new Scheduler();
    for (let i = 0; i < tasks; i++) s.addTask(task(`t${i}`, { enqueuedAt: i }));
    const counts = new Map<string, number>();
    for (let i = 0; i < agents; i++) {
      s.upsertAgent(agent(`a${i}`, { slots }));
      counts.set(`a${i}`, 0);
    }
    let assigned = 0;
    for (let round = 0; round < tasks && assigned < tasks; round++) {
      const batch = s.nextAssignments(round);
      for (const a of batch) counts.set(a.agentId, (counts.get(a.agentId) ?? 0) + 1);
      for (const a of batch) s.release(a.agentId);
      assigned += batch.length;
    }
    return { assigned, counts: [...counts.values()] };
  }

  it('scale: 4 equal agents, 20 tasks -> 5 +/- 2 each, none zero', () => {
    for (const slots of [1, 2, 5]) {
      const { assigned, counts } = equalSpeed(4, 20, slots);
      expect(assigned).toBe(20);
      for (const c of counts) expect(Math.abs(c - 5)).toBeLessThanOrEqual(2);
      expect(Math.min(...counts)).toBeGreaterThan(0);
    }
  });

  it('smoke: 2 agents, 10 tasks -> all assigned, 5 each', () => {
    const { assigned, counts } = equalSpeed(2, 10);
    expect(assigned).toBe(10);
    expect(counts).toEqual([5, 5]);
  });

  it('spreads a burst by load ratio across agents of different sizes', () => {
    const s = new Scheduler();
    for (let i = 0; i < 6; i++) s.addTask(task(`t${i}`, { enqueuedAt: i }));
    s.upsertAgent(agent('big', { slots: 4 }));
    s.upsertAgent(agent('small', { slots: 2 }));
    const per = new Map<string, number>();
    for (const a of s.nextAssignments(0)) per.set(a.agentId, (per.get(a.agentId) ?? 0) + 1);
    expect(Object.fromEntries(per)).toEqual({ big: 4, small: 2 });
  });
});
