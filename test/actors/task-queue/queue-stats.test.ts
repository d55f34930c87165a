import { describe, expect, it } from 'vitest';
import { queueStats } from '../../../actors/task-queue/query.js';
import { applyTaskCommand } from '../../../actors/task-queue/state.js';
import type { TaskRecord } from '../../../src/protocol/task.js';
import { A, okTask, submitted, T0 } from './helpers.js';

const rec = (t: TaskRecord, id: string) => ({ record: { ...t, id: id as never } });

describe('queueStats', () => {
  it('counts queued tasks per queue and priority, delayed ones apart, and ages the oldest eligible one', () => {
    const now = T0 + 10_000;
    const all = [
      rec(submitted({ queue: 'a' as never, priority: 'high' }, T0), 't1'), // eligible since T0
      rec(submitted({ queue: 'a' as never, priority: 'high' }, T0 + 4_000), 't2'),
      rec(submitted({ queue: 'a' as never, priority: 'low', notBefore: T0 + 7_000 }, T0), 't3'), // since T0+7s
      rec(submitted({ queue: 'b' as never, notBefore: now + 60_000 }, T0), 't4'), // delayed
      rec(
        okTask(applyTaskCommand(submitted({ queue: 'b' as never }, T0), { type: 'assign', agentId: A }, T0)),
        't5',
      ),
    ];
    expect(queueStats(all, now)).toEqual({
      a: { queued: { high: 2, low: 1 }, delayed: 0, oldestReadyAgeMs: 10_000 },
      b: { queued: { normal: 1 }, delayed: 1, oldestReadyAgeMs: 0 },
    });
  });

  it('ages a requeued task from its return to the queue or the end of its backoff, not its creation', () => {
    let t = submitted({ backoff: { baseMs: 2_000, maxMs: 2_000 } }, T0);
    t = okTask(applyTaskCommand(t, { type: 'assign', agentId: A }, T0 + 100));
    t = okTask(
      applyTaskCommand(
        t,
        { type: 'fail', agentId: A, generation: t.generation, error: { message: 'x' }, retryable: true },
        T0 + 5_000,
      ),
    );
    const eligible = t.notBefore!;
    expect(eligible).toBeGreaterThan(T0 + 5_000);
    expect(queueStats([{ record: t }], eligible - 1).default).toMatchObject({
      delayed: 1,
      oldestReadyAgeMs: 0,
    });
    expect(queueStats([{ record: t }], eligible + 300).default).toMatchObject({
      delayed: 0,
      oldestReadyAgeMs: 300,
    });
  });

  it('keeps a queue named like an object member as data', () => {
    const s = queueStats([rec(submitted({ queue: '__proto__' as never }, T0), 't1')], T0);
    expect(Object.keys(s)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(s, '__proto__')?.value.queued).toEqual({ normal: 1 });
    expect(Object.getPrototypeOf(s)).toBe(Object.prototype);
  });
});
