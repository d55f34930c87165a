import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AgentSummary,
  eligible,
  inPickOrder,
  Scheduler,
  type TaskSummary,
} from '../../../actors/scheduler/state.js';
import type { AgentId, Capability, QueueName, TaskId } from '../../../src/protocol/ids.js';
import { PRIORITIES } from '../../../src/protocol/task.js';
import { IndexedHeap } from '../../../src/runtime/indexed-heap.js';
import { ReferenceScheduler } from './reference.js';

const CAPS = ['git', 'gpu', 'ts', 'py'] as Capability[];
const QUEUES = ['default', 'sensory', 'cognition'] as QueueName[];
const TASK_IDS = Array.from({ length: 40 }, (_, i) => `t${i}` as TaskId);
const AGENT_IDS = Array.from({ length: 6 }, (_, i) => `a${i}` as AgentId);

const taskArb = fc.record({
  id: fc.constantFrom(...TASK_IDS),
  priority: fc.constantFrom(...PRIORITIES),
  queue: fc.constantFrom(...QUEUES),
  capabilities: fc.subarray(CAPS, { maxLength: 2 }),
  enqueuedAt: fc.integer({ min: 0, max: 50 }),
  notBefore: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined, freq: 3 }),
  avoid: fc.option(fc.subarray(AGENT_IDS, { maxLength: 4 }), { nil: undefined, freq: 2 }),
});
const agentArb = fc.record({
  id: fc.constantFrom(...AGENT_IDS),
  capabilities: fc.oneof(fc.constant(CAPS), fc.subarray(CAPS)),
  queues: fc.oneof(fc.constant(QUEUES), fc.subarray(QUEUES, { minLength: 1 })),
  slots: fc.integer({ min: 0, max: 4 }),
  busy: fc.integer({ min: 0, max: 2 }),
});
const opArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('addTask' as const), task: taskArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('removeTask' as const), id: fc.constantFrom(...TASK_IDS) }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('upsertAgent' as const), agent: agentArb }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('removeAgent' as const), id: fc.constantFrom(...AGENT_IDS) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('release' as const), id: fc.constantFrom(...AGENT_IDS) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('next' as const),
      dt: fc.integer({ min: 0, max: 100 }),
      limit: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
    }),
  },
);

describe('IndexedHeap', () => {
  it('pops in the same order as sorting, under inserts, updates and deletes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('set' as const),
              k: fc.integer({ min: 0, max: 20 }),
              v: fc.integer(),
            }),
            fc.record({ op: fc.constant('delete' as const), k: fc.integer({ min: 0, max: 20 }) }),
            fc.record({ op: fc.constant('pop' as const) }),
          ),
        ),
        (ops) => {
          const heap = new IndexedHeap<number, [number, number]>((a, b) =>
            a[0] !== b[0] ? a[0] < b[0] : a[1] < b[1],
          );
          const model = new Map<number, number>();
          const min = () => [...model].sort((a, b) => a[1] - b[1] || a[0] - b[0])[0];
          for (const o of ops) {
            if (o.op === 'set') {
              heap.set(o.k, [o.v, o.k]);
              model.set(o.k, o.v);
            } else if (o.op === 'delete') {
              expect(heap.delete(o.k)).toBe(model.delete(o.k));
            } else {
              const m = min();
              expect(heap.pop()?.key).toBe(m?.[0]);
              if (m) model.delete(m[0]);
            }
            expect(heap.size).toBe(model.size);
            expect(heap.peek()?.key).toBe(min()?.[0]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('Scheduler', () => {
  it.each([0, 40])(
    'equals the naive O(n·m) reference on random operation sequences (agingMs %i)',
    (agingMs) => {
      let assignments = 0;
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 40, maxLength: 150 }), (ops) => {
          const real = new Scheduler({ agingMs });
          const ref = new ReferenceScheduler(agingMs);
          let now = 0;
          for (const o of ops) {
            switch (o.op) {
              case 'addTask':
                real.addTask(o.task);
                ref.addTask(o.task);
                break;
              case 'removeTask':
                real.removeTask(o.id);
                ref.removeTask(o.id);
                break;
              case 'upsertAgent':
                real.upsertAgent(o.agent);
                ref.upsertAgent(o.agent);
                break;
              case 'removeAgent':
                real.removeAgent(o.id);
                ref.removeAgent(o.id);
                break;
              case 'release':
                real.release(o.id);
                ref.release(o.id);
                break;
              case 'next': {
                now += o.dt;
                const got = real.nextAssignments(now, o.limit);
                expect(got).toEqual(ref.nextAssignments(now, o.limit));
                expect(real.nextWakeAt()).toBe(ref.nextWakeAt(now));
                assignments += got.length;
              }
            }
          }
        }),
        { numRuns: 300 },
      );
      expect(assignments).toBeGreaterThan(500); // the comparison must cover real matches
    },
  );

  it('never exceeds slots, never breaks capability/queue rules, never assigns a delayed task early', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 40, maxLength: 150 }), (ops) => {
        const s = new Scheduler();
        const tasks = new Map<TaskId, TaskSummary>();
        const agents = new Map<AgentId, AgentSummary>();
        let now = 0;
        for (const o of ops) {
          if (o.op === 'addTask') {
            s.addTask(o.task);
            tasks.set(o.task.id, o.task);
          } else if (o.op === 'removeTask') {
            s.removeTask(o.id);
            tasks.delete(o.id);
          } else if (o.op === 'upsertAgent') {
            s.upsertAgent(o.agent);
            agents.set(o.agent.id, { ...o.agent });
          } else if (o.op === 'removeAgent') {
            s.removeAgent(o.id);
            agents.delete(o.id);
          } else if (o.op === 'release') {
            s.release(o.id);
            const a = agents.get(o.id);
            if (a) a.busy = Math.max(0, a.busy - 1);
          } else {
            now += o.dt;
            const got = s.nextAssignments(now, o.limit);
            expect(new Set(got.map((g) => g.taskId)).size).toBe(got.length);
            for (const { taskId, agentId } of got) {
              const t = tasks.get(taskId)!;
              const a = agents.get(agentId)!;
              expect(t).toBeDefined();
              expect(a).toBeDefined();
              expect(eligible(a, t)).toBe(true);
              expect(t.notBefore === undefined || t.notBefore <= now).toBe(true);
              expect(a.busy).toBeLessThan(a.slots);
              a.busy++;
              tasks.delete(taskId);
              expect(s.hasTask(taskId)).toBe(false);
            }
            for (const a of agents.values()) expect(s.agent(a.id)?.busy).toBe(a.busy);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it.each([0, 40])(
    'a head of inPickOrder picks what the whole index picks until it picks a task not yet read, and nothing else (agingMs %i)',
    (agingMs) => {
      // A new leader reads its backlog in this order and assigns from the first slice on
      // (actors/scheduler/process.ts): each pick it makes meanwhile must be one the whole index makes.
      let compared = 0;
      fc.assert(
        fc.property(
          fc.uniqueArray(taskArb, { selector: (t) => t.id, minLength: 1, maxLength: 40 }),
          fc.uniqueArray(agentArb, { selector: (a) => a.id, maxLength: 6 }),
          fc.nat(),
          fc.integer({ min: 0, max: 500 }),
          (tasks, agents, cut, now) => {
            const ordered = inPickOrder(tasks, (t) => t, agingMs).map((e) => e.item);
            const head = ordered.slice(0, cut % (ordered.length + 1));
            const picksOf = (ts: readonly TaskSummary[]) => {
              const s = new Scheduler({ agingMs });
              for (const a of agents) s.upsertAgent(a);
              for (const t of ts) s.addTask(t);
              return s.nextAssignments(now);
            };
            const whole = picksOf(tasks);
            const read = new Set(head.map((t) => t.id));
            const upTo = whole.findIndex((p) => !read.has(p.taskId));
            const agreed = upTo < 0 ? whole : whole.slice(0, upTo);
            // Nothing beyond: a pick after those would be a task the whole index ranks below one
            // it hands out first.
            expect(picksOf(head)).toEqual(agreed);
            compared += agreed.length;
          },
        ),
        { numRuns: 1000 },
      );
      expect(compared).toBeGreaterThan(500); // the comparison must cover real picks
    },
  );
});
