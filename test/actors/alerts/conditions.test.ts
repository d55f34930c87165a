/**
 * What each alert rule measures (actors/alerts/conditions.ts), from hand-made observations.
 */
import { describe, expect, it } from 'vitest';
import {
  type AgentFacts,
  HISTORY_MAX,
  isStuck,
  measure,
  type Observation,
  type Point,
  pointOf,
  remember,
  type TaskFacts,
} from '../../../actors/alerts/conditions.js';
import { AlertConfigSchema, effectiveRules } from '../../../src/protocol/alert.js';

const NOW = 10_000_000;

let n = 0;
function task(over: Partial<TaskFacts> = {}): TaskFacts {
  return {
    id: `t${n++}` as TaskFacts['id'],
    status: 'queued',
    queue: 'default' as TaskFacts['queue'],
    capabilities: [],
    assignedAt: null,
    acceptedAt: null,
    lastProgressAt: null,
    completedAt: null,
    ...over,
  };
}
const agent = (over: Partial<AgentFacts> = {}): AgentFacts => ({
  id: `a${n++}`,
  online: true,
  queues: ['default'],
  capabilities: [],
  ...over,
});
const rules = (r: unknown = {}) => effectiveRules(AlertConfigSchema.parse({ v: 1, rules: r }));
const obs = (o: Partial<Observation>): Observation => ({
  at: NOW,
  tasks: [],
  agents: [],
  deadLetters: 0,
  ...o,
});
const now = (o: Observation, history: Point[] = [], r = rules()) => measure(o, [...history, pointOf(o)], r);

describe('no_agents_online', () => {
  it('holds with no agent online and enough queued tasks; delayed tasks are not a backlog', () => {
    const queued = [task(), task(), task({ notBefore: NOW + 60_000 })];
    const c = now(obs({ tasks: queued, agents: [agent({ online: false })] }));
    expect(c.no_agents_online).toMatchObject({ holds: true, value: 2, threshold: 1 });
    expect(c.no_agents_online?.message).toMatch(/no agent online \(1 agent registered\); 2 tasks queued/);
    expect(now(obs({ tasks: queued, agents: [agent()] })).no_agents_online?.holds).toBe(false);
    expect(now(obs({ tasks: [], agents: [] })).no_agents_online?.holds).toBe(false);
    expect(
      now(obs({ tasks: [], agents: [] }), [], rules({ no_agents_online: { minQueued: 0 } })).no_agents_online
        ?.holds,
    ).toBe(true);
    expect(now(obs({ agents: null })).no_agents_online).toBeNull();
  });
});

describe('unservable_tasks', () => {
  it('counts due queued tasks no online agent can take (queue and capabilities), by signature', () => {
    const tasks = [
      task({ capabilities: ['gpu'] as never }),
      task({ capabilities: ['gpu'] as never }),
      task({ queue: 'cognition' as never }),
      task({ capabilities: ['ts'] as never }),
      task({ capabilities: ['gpu'] as never, status: 'working' }),
    ];
    const agents = [
      agent({ capabilities: ['ts'] }),
      agent({ online: false, capabilities: ['gpu'], queues: ['cognition'] }),
    ];
    const c = now(obs({ tasks, agents })).unservable_tasks!;
    expect(c).toMatchObject({ holds: true, value: 3, threshold: 1 });
    expect(c.message).toContain('queue default needing [gpu] (2)');
    expect(c.message).toContain('queue cognition (1)');
    // With nobody online it is no_agents_online's alert, not this one.
    expect(now(obs({ tasks, agents: [agent({ online: false })] })).unservable_tasks?.holds).toBe(false);
  });
});

describe('stuck_tasks', () => {
  it('a working task silent for noProgressMs, an assigned one unaccepted for assignedMs', () => {
    const r = rules({ stuck_tasks: { noProgressMs: 60_000, assignedMs: 10_000 } }).stuck_tasks;
    expect(isStuck(task({ status: 'working', acceptedAt: NOW - 61_000 }), NOW, r)).toBe(true);
    expect(
      isStuck(task({ status: 'working', acceptedAt: NOW - 61_000, lastProgressAt: NOW - 1_000 }), NOW, r),
    ).toBe(false);
    expect(isStuck(task({ status: 'assigned', assignedAt: NOW - 10_000 }), NOW, r)).toBe(true);
    expect(isStuck(task({ status: 'assigned', assignedAt: NOW - 9_999 }), NOW, r)).toBe(false);
    expect(isStuck(task({ status: 'blocked', assignedAt: NOW - 1e9 }), NOW, r)).toBe(false);
    const c = now(
      obs({ tasks: [task({ status: 'assigned', assignedAt: NOW - 20_000 })] }),
      [],
      rules({ stuck_tasks: { assignedMs: 10_000, minTasks: 1 } }),
    );
    expect(c.stuck_tasks).toMatchObject({ holds: true, value: 1 });
  });
});

describe('high_failure_rate', () => {
  it('failed and dead over finished within the window, once enough finished', () => {
    const within = NOW - 1_000;
    const tasks = [
      ...Array.from({ length: 4 }, () => task({ status: 'done', completedAt: within })),
      ...Array.from({ length: 5 }, () => task({ status: 'failed', completedAt: within })),
      task({ status: 'dead', completedAt: within }),
      task({ status: 'failed', completedAt: NOW - 10_000_000 }),
      task({ status: 'cancelled', completedAt: within }),
    ];
    const c = now(obs({ tasks })).high_failure_rate!;
    expect(c).toMatchObject({ holds: true, value: 0.6, threshold: 0.5 });
    expect(
      now(obs({ tasks }), [], rules({ high_failure_rate: { minFinished: 11 } })).high_failure_rate?.holds,
    ).toBe(false);
  });
});

describe('windowed rules', () => {
  it('queue_growing compares with the newest point a whole window old; null until there is one', () => {
    const r = rules({ queue_growing: { windowMs: 60_000, growthTasks: 3 } });
    const queued = (k: number) => Array.from({ length: k }, () => task());
    expect(
      now(obs({ tasks: queued(9) }), [{ at: NOW - 30_000, queued: 0, deadLetters: 0 }], r).queue_growing,
    ).toBeNull();
    const history: Point[] = [
      { at: NOW - 120_000, queued: 0, deadLetters: 0 },
      { at: NOW - 61_000, queued: 5, deadLetters: 0 },
      { at: NOW - 30_000, queued: 6, deadLetters: 0 },
    ];
    expect(now(obs({ tasks: queued(8) }), history, r).queue_growing).toMatchObject({ holds: true, value: 3 });
    expect(now(obs({ tasks: queued(7) }), history, r).queue_growing).toMatchObject({
      holds: false,
      value: 2,
    });
  });

  it('high_error_rate is dead letters added per minute over the window', () => {
    const r = rules({ high_error_rate: { windowMs: 60_000, deadLettersPerMinute: 10 } });
    const history: Point[] = [{ at: NOW - 60_000, queued: 0, deadLetters: 100 }];
    expect(now(obs({ deadLetters: 112 }), history, r).high_error_rate).toMatchObject({
      holds: true,
      value: 12,
    });
    expect(now(obs({ deadLetters: 105 }), history, r).high_error_rate).toMatchObject({
      holds: false,
      value: 5,
    });
    // A DLQ made afresh counts from zero: no negative rate.
    expect(now(obs({ deadLetters: 3 }), history, r).high_error_rate).toMatchObject({
      holds: false,
      value: 3,
    });
    expect(now(obs({ deadLetters: null }), history, r).high_error_rate).toBeNull();
  });

  it('remember keeps one point at or before the horizon and at most HISTORY_MAX', () => {
    let h: Point[] = [];
    for (let i = 0; i <= 100; i++) h = remember(h, { at: i * 1_000, queued: i, deadLetters: 0 }, 10_000);
    expect(h[0]!.at).toBe(90_000);
    expect(h.at(-1)!.at).toBe(100_000);
    let big: Point[] = [];
    for (let i = 0; i < HISTORY_MAX + 10; i++) big = remember(big, { at: i, queued: 0, deadLetters: 0 }, 1e9);
    expect(big).toHaveLength(HISTORY_MAX);
  });

  it('a rule with its inputs missing is null, never ok', () => {
    const c = now(obs({ tasks: null, agents: null, deadLetters: null }));
    for (const v of Object.values(c)) expect(v).toBeNull();
  });
});
