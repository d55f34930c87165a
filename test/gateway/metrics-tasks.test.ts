import { describe, expect, it } from 'vitest';
import { applyTaskCommand, type TaskCommand } from '../../actors/task-queue/state.js';
import { type TaskObservation, TaskTransitions } from '../../src/gateway/metrics-tasks.js';
import type { TaskRecord } from '../../src/protocol/task.js';
import { A, okTask, submitted, T0 } from '../actors/task-queue/helpers.js';

/**
 * One write of the TaskQueue: the commands applied together, stamped with one clock reading (as
 * actors/task-queue/store.ts does), giving one revision.
 */
class Writes {
  revision = 0;
  constructor(public task: TaskRecord) {
    this.revision = 1;
  }
  write(
    now: number,
    ...commands: ((t: TaskRecord) => TaskCommand)[]
  ): { task: TaskRecord; revision: number } {
    for (const c of commands) this.task = okTask(applyTaskCommand(this.task, c(this.task), now));
    this.revision++;
    return { task: this.task, revision: this.revision };
  }
}

const assign = () => ({ type: 'assign', agentId: A }) as const;
const accept = (t: TaskRecord) => ({ type: 'accept', agentId: A, generation: t.generation }) as const;
const complete = (t: TaskRecord) =>
  ({ type: 'complete', agentId: A, generation: t.generation, result: null }) as const;
const fail = (t: TaskRecord) =>
  ({
    type: 'fail',
    agentId: A,
    generation: t.generation,
    error: { message: 'no' },
    retryable: true,
  }) as const;

const kinds = (os: TaskObservation[]) => os.map((o) => o.kind);

describe('TaskTransitions', () => {
  it('counts every transition of a life once, several transitions per write included', () => {
    const tr = new TaskTransitions();
    const w = new Writes(submitted({ queue: 'q1' as never, priority: 'high' }, T0));
    const all: TaskObservation[] = [...tr.observe(w.task, w.revision)];
    const assigned = w.write(T0 + 40, assign);
    all.push(...tr.observe(assigned.task, assigned.revision));
    const done = w.write(T0 + 1_540, accept, complete); // accepted and completed in one write
    all.push(...tr.observe(done.task, done.revision));
    expect(kinds(all)).toEqual(['submitted', 'assigned', 'done']);
    expect(all[1]).toMatchObject({ queue: 'q1', priority: 'high', waitSeconds: 0.04 });
    expect(all[2]).toMatchObject({ runSeconds: 1.5 });
  });

  it('adds nothing for a revision delivered again, or an older one', () => {
    const tr = new TaskTransitions();
    const w = new Writes(submitted({}, T0));
    const first = w.write(T0 + 5, assign);
    const second = w.write(T0 + 10, accept, complete);
    expect(kinds(tr.observe(first.task, first.revision))).toEqual(['assigned']);
    expect(kinds(tr.observe(second.task, second.revision))).toEqual(['done']);
    expect(tr.observe(second.task, second.revision)).toEqual([]);
    expect(tr.observe(first.task, first.revision)).toEqual([]);
    // Finished tasks are remembered too: a late copy after the end is still recognised.
    expect(tr.size).toEqual({ open: 0, finished: 1 });
  });

  it('takes a task first seen mid-life for the transitions of that one write only', () => {
    const tr = new TaskTransitions();
    const w = new Writes(submitted({}, T0));
    w.write(T0 + 5, assign); // written before the watch started: never delivered
    const done = w.write(T0 + 20, accept, complete);
    const os = tr.observe(done.task, done.revision);
    expect(kinds(os)).toEqual(['done']);
    expect(os[0]).toMatchObject({ runSeconds: 0.015 });
  });

  it('counts a submission and assignment written together (a lingering submit)', () => {
    const tr = new TaskTransitions();
    const w = new Writes(submitted({}, T0));
    const both = { task: okTask(applyTaskCommand(w.task, assign(), T0)), revision: 1 };
    const os = tr.observe(both.task, both.revision);
    expect(kinds(os)).toEqual(['submitted', 'assigned']);
    expect(os[1]).toMatchObject({ waitSeconds: 0 });
  });

  it('counts automatic retries and the end of the retries, and measures the wait from the backoff end', () => {
    const tr = new TaskTransitions();
    const w = new Writes(submitted({ maxRetries: 1, backoff: { baseMs: 1000, maxMs: 1000 } }, T0));
    const seen: TaskObservation[] = [...tr.observe(w.task, w.revision)];
    for (const step of [
      w.write(T0 + 10, assign),
      w.write(T0 + 20, accept, fail), // back to the queue, eligible again at notBefore
    ])
      seen.push(...tr.observe(step.task, step.revision));
    const notBefore = w.task.notBefore!;
    expect(notBefore).toBeGreaterThan(T0 + 20);
    for (const step of [w.write(notBefore + 250, assign), w.write(notBefore + 300, accept, fail)])
      seen.push(...tr.observe(step.task, step.revision));
    expect(kinds(seen)).toEqual(['submitted', 'assigned', 'retried', 'assigned', 'dead']);
    expect(seen[3]).toMatchObject({ waitSeconds: 0.25 });
    expect(w.task.status).toBe('dead');
  });

  it('follows a finished task retried by hand, without calling it an automatic retry', () => {
    const tr = new TaskTransitions();
    const w = new Writes(submitted({ maxRetries: 0 }, T0));
    tr.observe(w.task, w.revision);
    const dead = w.write(T0 + 10, assign, accept, fail);
    expect(kinds(tr.observe(dead.task, dead.revision))).toEqual(['assigned', 'dead']);
    const again = w.write(T0 + 20, () => ({ type: 'retry', by: 'api' }));
    expect(kinds(tr.observe(again.task, again.revision))).toEqual([]);
    expect(tr.size).toEqual({ open: 1, finished: 0 });
    const assigned = w.write(T0 + 30, assign);
    expect(tr.observe(assigned.task, assigned.revision)).toEqual([
      { kind: 'assigned', queue: 'default', priority: 'normal', waitSeconds: 0.01 },
    ]);
  });

  it('forgets a removed task and bounds the finished tasks it remembers', () => {
    const tr = new TaskTransitions({ maxFinished: 2 });
    for (const id of ['t1', 't2', 't3']) {
      const t = { ...submitted({}, T0), id: id as never };
      const done = okTask(
        applyTaskCommand(okTask(applyTaskCommand(t, assign(), T0 + 1)), cancelOf(), T0 + 2),
      );
      expect(kinds(tr.observe(done, 3))).toEqual(['cancelled']);
    }
    expect(tr.size).toEqual({ open: 0, finished: 2 });
    tr.forget('t3');
    expect(tr.size).toEqual({ open: 0, finished: 1 });
  });
});

function cancelOf(): TaskCommand {
  return { type: 'cancel', reason: 'test', by: 'api' };
}
