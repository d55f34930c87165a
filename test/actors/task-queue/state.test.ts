import { describe, expect, it } from 'vitest';
import {
  applyTaskCommand,
  assignMessage,
  backoffDelay,
  commandFromReport,
  refusalNotice,
  type TaskCommand,
  type TaskEffect,
} from '../../../actors/task-queue/state.js';
import { InboxMessageSchema, ReportSchema } from '../../../src/protocol/agent.js';
import type { ErrorCode } from '../../../src/protocol/errors.js';
import type { AgentId } from '../../../src/protocol/ids.js';
import { type TaskRecord, TaskRecordSchema } from '../../../src/protocol/task.js';
import { A, assignedTo, B, drive, okTask, submitted, T, T0 } from './helpers.js';

const NOW = T0 + 100;

function apply(task: TaskRecord | undefined, c: TaskCommand, now = NOW) {
  return applyTaskCommand(task, c, now);
}
function types(effects: TaskEffect[]) {
  return effects.map((e) => e.type);
}

describe('submit', () => {
  it('creates a queued task at generation 0 and enqueues it now', () => {
    const r = apply(undefined, {
      type: 'submit',
      id: T,
      submit: baseSubmit(),
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.task.status).toBe('queued');
    expect(r.task.generation).toBe(0);
    expect(r.task.createdAt).toBe(NOW);
    expect(r.task.history).toEqual([{ at: NOW, from: null, to: 'queued', generation: 0, by: 'hub' }]);
    expect(r.effects).toEqual([{ type: 'enqueue', taskId: T, at: NOW }]);
    expect(TaskRecordSchema.parse(JSON.parse(JSON.stringify(r.task)))).toEqual(r.task);
  });

  it('a delayed task is enqueued at notBefore and cannot be assigned before it', () => {
    const t = submitted({ notBefore: T0 + 5000 });
    const r = apply(
      undefined,
      { type: 'submit', id: T, submit: { ...baseSubmit(), notBefore: T0 + 5000 } },
      T0,
    );
    expect(r.ok && r.effects).toEqual([{ type: 'enqueue', taskId: T, at: T0 + 5000 }]);
    const early = apply(t, { type: 'assign', agentId: A }, T0 + 4999);
    expect(!early.ok && early.error.code).toBe('invalid_state');
    expect(apply(t, { type: 'assign', agentId: A }, T0 + 5000).ok).toBe(true);
  });

  it('submitting an existing id is a duplicate no-op', () => {
    const t = submitted();
    const r = apply(t, { type: 'submit', id: T, submit: { ...baseSubmit(), title: 'other' } });
    expect(r).toEqual({ ok: true, task: t, effects: [], duplicate: true });
  });
});

describe('assign', () => {
  it('moves queued -> assigned, raises the generation and delivers', () => {
    const r = apply(submitted(), { type: 'assign', agentId: A });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.task).toMatchObject({ status: 'assigned', assignee: A, generation: 1, assignedAt: NOW });
    expect(r.effects).toEqual([{ type: 'deliver_assign', agentId: A, taskId: T, generation: 1 }]);
    expect(r.task.history.at(-1)).toEqual({
      at: NOW,
      from: 'queued',
      to: 'assigned',
      generation: 1,
      by: 'hub',
      agent: A,
    });
  });

  it('an assign with the expected generation already applied is a duplicate', () => {
    const t = assignedTo(A);
    expect(apply(t, { type: 'assign', agentId: A, generation: 1 })).toMatchObject({
      ok: true,
      duplicate: true,
    });
    const r = apply(t, { type: 'assign', agentId: A, generation: 3 });
    expect(!r.ok && r.error.code).toBe('stale_generation');
  });

  it('every reassignment raises the generation again', () => {
    let t = assignedTo(A);
    t = drive(t, [{ type: 'reclaim', reason: 'accept_timeout' }]);
    expect(t.generation).toBe(2);
    t = drive(t, [{ type: 'assign', agentId: B, generation: 3 }]);
    expect(t).toMatchObject({ generation: 3, assignee: B, status: 'assigned' });
  });
});

describe('agent reports', () => {
  it('accept: assigned -> working', () => {
    const r = apply(assignedTo(A), { type: 'accept', agentId: A, generation: 1 });
    expect(r.ok && r.task).toMatchObject({ status: 'working', acceptedAt: NOW, lastProgressAt: NOW });
    expect(r.ok && r.effects).toEqual([]);
  });

  it('progress records pct/message and counts cumulative tokens once', () => {
    let t = assignedTo(A, true);
    t = okTask(
      apply(t, { type: 'progress', agentId: A, generation: 1, pct: 40, message: 'half', tokensUsed: 100 }),
    );
    t = okTask(apply(t, { type: 'progress', agentId: A, generation: 1, tokensUsed: 100 }));
    t = okTask(apply(t, { type: 'progress', agentId: A, generation: 1, tokensUsed: 150 }, NOW + 5));
    expect(t.tokensUsed).toBe(150);
    expect(t.lastProgressAt).toBe(NOW + 5);
    expect(t.status).toBe('working');
  });

  it('progress on an assigned task implies accept', () => {
    const t = okTask(apply(assignedTo(A), { type: 'progress', agentId: A, generation: 1, pct: 1 }));
    expect(t).toMatchObject({ status: 'working', acceptedAt: NOW });
  });

  it('block and unblock', () => {
    const blocked = okTask(
      apply(assignedTo(A, true), { type: 'block', agentId: A, generation: 1, reason: 'need input' }),
    );
    expect(blocked).toMatchObject({ status: 'blocked', blockedAt: NOW });
    expect(blocked.history.at(-1)?.reason).toBe('need input');
    const working = okTask(apply(blocked, { type: 'unblock', agentId: A, generation: 1 }));
    expect(working).toMatchObject({ status: 'working', blockedAt: null });
  });

  it('complete: -> done with result, tokens, completedAt; frees the slot', () => {
    const r = apply(assignedTo(A, true), {
      type: 'complete',
      agentId: A,
      generation: 1,
      result: { n: 1 },
      tokensUsed: 7,
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.task).toMatchObject({
      status: 'done',
      result: { n: 1 },
      tokensUsed: 7,
      completedAt: NOW,
      assignee: A,
    });
    expect(r.effects).toEqual([
      { type: 'release', agentId: A, taskId: T, generation: 1 },
      { type: 'finished', taskId: T, status: 'done' },
    ]);
  });

  it('complete from blocked or straight from assigned is allowed', () => {
    const blocked = drive(assignedTo(A, true), [{ type: 'block', agentId: A, generation: 1, reason: 'x' }]);
    expect(okTask(apply(blocked, { type: 'complete', agentId: A, generation: 1, result: 1 })).status).toBe(
      'done',
    );
    const done = okTask(apply(assignedTo(A), { type: 'complete', agentId: A, generation: 1, result: 1 }));
    expect(done).toMatchObject({ status: 'done', acceptedAt: NOW });
  });

  it('retryable failure requeues with backoff and consumes a retry', () => {
    const r = applyTaskCommand(
      assignedTo(A, true, { backoff: { baseMs: 1000, maxMs: 60_000 } }),
      { type: 'fail', agentId: A, generation: 1, error: { message: 'boom' }, retryable: true, tokensUsed: 3 },
      NOW,
      { random: () => 0 },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.task).toMatchObject({
      status: 'queued',
      assignee: null,
      retryCount: 1,
      notBefore: NOW + 1000,
      generation: 1,
      tokensUsed: 3,
      error: { code: 'agent_error', message: 'boom' },
    });
    expect(r.effects).toEqual([
      { type: 'release', agentId: A, taskId: T, generation: 1 },
      { type: 'enqueue', taskId: T, at: NOW + 1000 },
    ]);
    // The next attempt prefers another agent (the scheduler avoids flagged agents while others are free).
    expect(r.task.flaggedAgents).toEqual([A]);
  });

  it("a report's session is recorded on the task, and forgotten when the assignment ends", () => {
    const working = okTask(
      applyTaskCommand(assignedTo(A), { type: 'accept', agentId: A, generation: 1, session: 's1' }, NOW),
    );
    expect(working.session).toBe('s1');
    // A restarted sidecar's `recovering` moves the assignment to its new session.
    const recovered = okTask(
      applyTaskCommand(working, { type: 'recovering', agentId: A, generation: 1, session: 's2' }, NOW + 1),
    );
    expect(recovered.session).toBe('s2');
    // The same session again changes nothing (a duplicate).
    const again = applyTaskCommand(
      recovered,
      { type: 'accept', agentId: A, generation: 1, session: 's2' },
      NOW + 2,
    );
    expect(again.ok && again.duplicate).toBe(true);
    // A new session's duplicate accept still records that session.
    const moved = applyTaskCommand(
      recovered,
      { type: 'accept', agentId: A, generation: 1, session: 's3' },
      NOW + 3,
    );
    expect(moved.ok && !moved.duplicate && moved.task.session).toBe('s3');
    const requeued = applyTaskCommand(recovered, { type: 'reclaim', reason: 'agent_offline' }, NOW + 4);
    expect(requeued.ok && requeued.task.session).toBeUndefined();
  });

  it('failures back off exponentially then dead-letter once retries are exhausted', () => {
    let t = submitted({ maxRetries: 2, backoff: { baseMs: 100, maxMs: 250 } });
    const delays: number[] = [];
    let now = T0;
    for (let i = 0; i < 3; i++) {
      now = Math.max(now, t.notBefore ?? now) + 1;
      t = okTask(applyTaskCommand(t, { type: 'assign', agentId: A }, now));
      const r = applyTaskCommand(
        t,
        {
          type: 'fail',
          agentId: A,
          generation: t.generation,
          error: { code: 'e', message: 'm' },
          retryable: true,
        },
        now,
        { random: () => 0 },
      );
      t = okTask(r);
      if (t.status === 'queued') delays.push((t.notBefore ?? 0) - now);
      else expect(r.ok && types(r.effects)).toEqual(['release', 'dead_lettered', 'finished']);
    }
    expect(delays).toEqual([100, 200]);
    expect(t).toMatchObject({ status: 'dead', retryCount: 2, error: { code: 'e' } });
  });

  it('non-retryable failure -> failed', () => {
    const r = apply(assignedTo(A, true), {
      type: 'fail',
      agentId: A,
      generation: 1,
      error: { code: 'bad_input', message: 'no' },
      retryable: false,
    });
    expect(r.ok && r.task).toMatchObject({ status: 'failed', retryCount: 0, error: { code: 'bad_input' } });
    expect(r.ok && types(r.effects)).toEqual(['release', 'finished']);
  });

  it('reject: back to queued with backoff, retry consumed, agent flagged', () => {
    const r = apply(assignedTo(A), { type: 'reject', agentId: A, generation: 1, reason: 'busy' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.task).toMatchObject({ status: 'queued', assignee: null, retryCount: 1, flaggedAgents: [A] });
    expect(r.task.notBefore).toBeGreaterThan(NOW);
    expect(types(r.effects)).toEqual(['release', 'flag_agent', 'enqueue']);
  });

  it('recovering confirms a live assignment without changing status', () => {
    const t = okTask(apply(assignedTo(A, true), { type: 'recovering', agentId: A, generation: 1 }, NOW + 50));
    expect(t).toMatchObject({ status: 'working', lastProgressAt: NOW + 50 });
  });
});

describe('duplicates are ok no-ops', () => {
  const working = () => assignedTo(A, true);
  const cases: Array<[string, () => TaskRecord, TaskCommand]> = [
    ['accepted while working', working, { type: 'accept', agentId: A, generation: 1 }],
    [
      'accepted while blocked',
      () => drive(working(), [{ type: 'block', agentId: A, generation: 1, reason: 'r' }]),
      { type: 'accept', agentId: A, generation: 1 },
    ],
    [
      'blocked while blocked',
      () => drive(working(), [{ type: 'block', agentId: A, generation: 1, reason: 'r' }]),
      { type: 'block', agentId: A, generation: 1, reason: 'r' },
    ],
    ['unblocked while working', working, { type: 'unblock', agentId: A, generation: 1 }],
    [
      'completed twice',
      () => drive(working(), [{ type: 'complete', agentId: A, generation: 1, result: 1 }]),
      { type: 'complete', agentId: A, generation: 1, result: 2 },
    ],
    [
      'failed twice (after the requeue)',
      () =>
        drive(working(), [
          { type: 'fail', agentId: A, generation: 1, error: { message: 'x' }, retryable: true },
        ]),
      { type: 'fail', agentId: A, generation: 1, error: { message: 'x' }, retryable: true },
    ],
    [
      'failed twice (non-retryable)',
      () =>
        drive(working(), [
          { type: 'fail', agentId: A, generation: 1, error: { message: 'x' }, retryable: false },
        ]),
      { type: 'fail', agentId: A, generation: 1, error: { message: 'x' }, retryable: false },
    ],
    [
      'rejected twice, even after reassignment',
      () =>
        drive(
          drive(assignedTo(A), [{ type: 'reject', agentId: A, generation: 1, reason: 'r' }]),
          [{ type: 'assign', agentId: B }],
          T0 + 9_000,
        ),
      { type: 'reject', agentId: A, generation: 1, reason: 'r' },
    ],
    ['cancel twice', () => drive(working(), [{ type: 'cancel' }]), { type: 'cancel' }],
  ];
  it.each(cases)('%s', (_name, build, command) => {
    const t = build();
    expect(applyTaskCommand(t, command, T0 + 10_000)).toEqual({
      ok: true,
      task: t,
      effects: [],
      duplicate: true,
    });
  });
});

describe('refusals', () => {
  const reclaimed = () => drive(assignedTo(A, true), [{ type: 'reclaim', reason: 'agent_offline' }]);
  const reassigned = () => drive(reclaimed(), [{ type: 'assign', agentId: B }]);
  const done = () => drive(assignedTo(A, true), [{ type: 'complete', agentId: A, generation: 1, result: 1 }]);
  const cases: Array<[string, () => TaskRecord | undefined, TaskCommand, ErrorCode]> = [
    [
      'report for a missing task',
      () => undefined,
      { type: 'accept', agentId: A, generation: 1 },
      'not_found',
    ],
    ['cancel of a missing task', () => undefined, { type: 'cancel' }, 'not_found'],
    [
      'report from another agent',
      () => assignedTo(A),
      { type: 'accept', agentId: B, generation: 1 },
      'forbidden',
    ],
    [
      'complete from another agent',
      () => assignedTo(A, true),
      { type: 'complete', agentId: B, generation: 1, result: 1 },
      'forbidden',
    ],
    [
      'report about a queued task',
      () => submitted(),
      { type: 'accept', agentId: A, generation: 0 },
      'forbidden',
    ],
    [
      'stale report after reclaim (before reassignment)',
      reclaimed,
      { type: 'complete', agentId: A, generation: 1, result: 1 },
      'stale_generation',
    ],
    [
      'stale report after reassignment',
      reassigned,
      { type: 'progress', agentId: A, generation: 1 },
      'stale_generation',
    ],
    [
      'report from the future',
      () => assignedTo(A),
      { type: 'accept', agentId: A, generation: 5 },
      'invalid_state',
    ],
    ['progress on a done task', done, { type: 'progress', agentId: A, generation: 1 }, 'invalid_state'],
    [
      'fail on a done task',
      done,
      { type: 'fail', agentId: A, generation: 1, error: { message: 'x' }, retryable: true },
      'invalid_state',
    ],
    [
      'reject once working',
      () => assignedTo(A, true),
      { type: 'reject', agentId: A, generation: 1, reason: 'r' },
      'invalid_state',
    ],
    [
      'unblock while assigned',
      () => assignedTo(A),
      { type: 'unblock', agentId: A, generation: 1 },
      'invalid_state',
    ],
    ['assign an assigned task', () => assignedTo(A), { type: 'assign', agentId: B }, 'invalid_state'],
    ['assign a done task', done, { type: 'assign', agentId: B }, 'invalid_state'],
    ['cancel a done task', done, { type: 'cancel' }, 'invalid_state'],
    ['retry a done task', done, { type: 'retry' }, 'invalid_state'],
    ['retry a queued task', () => submitted(), { type: 'retry' }, 'invalid_state'],
    [
      'reclaim a queued task',
      () => submitted(),
      { type: 'reclaim', reason: 'agent_offline' },
      'invalid_state',
    ],
    [
      'accept_timeout on a working task',
      () => assignedTo(A, true),
      { type: 'reclaim', reason: 'accept_timeout' },
      'invalid_state',
    ],
    ['stuck on an assigned task', () => assignedTo(A), { type: 'reclaim', reason: 'stuck' }, 'invalid_state'],
    [
      'blocked_timeout on a working task',
      () => assignedTo(A, true),
      { type: 'reclaim', reason: 'blocked_timeout' },
      'invalid_state',
    ],
    [
      'overdue without a deadline',
      () => assignedTo(A, true),
      { type: 'reclaim', reason: 'overdue' },
      'invalid_state',
    ],
    [
      'overdue before the deadline',
      () => assignedTo(A, true, { completeBy: NOW + 1 }),
      { type: 'reclaim', reason: 'overdue' },
      'invalid_state',
    ],
    [
      'overdue on a done task',
      () => drive(submitted({ completeBy: T0 + 1 }), [{ type: 'cancel' }]),
      { type: 'reclaim', reason: 'overdue' },
      'invalid_state',
    ],
    [
      'reclaim of an older generation',
      reassigned,
      { type: 'reclaim', reason: 'accept_timeout', generation: 1 },
      'stale_generation',
    ],
  ];
  it.each(cases)('%s -> %s', (_name, build, command, code) => {
    const t = build();
    const r = applyTaskCommand(t, command, NOW);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(code);
  });
});

describe('reclaim', () => {
  const cases: Array<
    [
      string,
      () => TaskRecord,
      'agent_offline' | 'not_held' | 'accept_timeout' | 'stuck' | 'blocked_timeout',
      boolean,
    ]
  > = [
    ['agent_offline from assigned', () => assignedTo(A), 'agent_offline', false],
    ['agent_offline from working', () => assignedTo(A, true), 'agent_offline', false],
    ['not_held from working', () => assignedTo(A, true), 'not_held', false],
    ['accept_timeout from assigned (flags the agent)', () => assignedTo(A), 'accept_timeout', true],
    ['stuck from working (flags the agent)', () => assignedTo(A, true), 'stuck', true],
    [
      'blocked_timeout from blocked',
      () => drive(assignedTo(A, true), [{ type: 'block', agentId: A, generation: 1, reason: 'r' }]),
      'blocked_timeout',
      false,
    ],
  ];
  it.each(cases)('%s: requeued at once, generation raised, agent told', (_n, build, reason, flags) => {
    const r = apply(build(), { type: 'reclaim', reason, generation: 1 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.task).toMatchObject({
      status: 'queued',
      assignee: null,
      generation: 2,
      retryCount: 1,
      notBefore: NOW,
    });
    expect(r.task.history.at(-1)).toMatchObject({ to: 'queued', by: 'hub', reason });
    expect(r.effects).toEqual([
      { type: 'notify_cancel', agentId: A, taskId: T, generation: 1, reason },
      { type: 'release', agentId: A, taskId: T, generation: 1 },
      ...(flags ? [{ type: 'flag_agent', agentId: A, taskId: T, reason }] : []),
      { type: 'enqueue', taskId: T, at: NOW },
    ]);
    expect(r.task.flaggedAgents).toEqual(flags ? [A] : []);
  });

  it('a reclaim with no retries left dead-letters', () => {
    const r = apply(assignedTo(A, true, { maxRetries: 0 }), { type: 'reclaim', reason: 'stuck' });
    expect(r.ok && r.task).toMatchObject({ status: 'dead', retryCount: 0, generation: 2 });
    expect(r.ok && types(r.effects)).toEqual([
      'notify_cancel',
      'release',
      'flag_agent',
      'dead_lettered',
      'finished',
    ]);
  });

  it('overdue fails an active task for good with code timeout', () => {
    const t = assignedTo(A, true, { completeBy: T0 + 50 });
    const r = apply(t, { type: 'reclaim', reason: 'overdue' });
    expect(r.ok && r.task).toMatchObject({ status: 'failed', error: { code: 'timeout' }, completedAt: NOW });
    expect(r.ok && types(r.effects)).toEqual(['notify_cancel', 'release', 'finished']);
  });

  it('overdue fails a queued task and removes it from the schedule', () => {
    const r = apply(submitted({ completeBy: T0 + 50 }), { type: 'reclaim', reason: 'overdue' });
    expect(r.ok && r.task.status).toBe('failed');
    expect(r.ok && r.effects).toEqual([
      { type: 'unschedule', taskId: T },
      { type: 'finished', taskId: T, status: 'failed' },
    ]);
  });
});

describe('cancel and retry', () => {
  it('cancel a queued task', () => {
    const r = apply(submitted(), { type: 'cancel', reason: 'no longer needed', by: 'nathan' });
    expect(r.ok && r.task).toMatchObject({ status: 'cancelled', completedAt: NOW });
    expect(r.ok && r.task.history.at(-1)).toMatchObject({ by: 'nathan', reason: 'no longer needed' });
    expect(r.ok && types(r.effects)).toEqual(['unschedule', 'finished']);
  });

  it('cancel a working task tells the assignee to stop', () => {
    const r = apply(assignedTo(A, true), { type: 'cancel' });
    expect(r.ok && r.effects).toEqual([
      { type: 'notify_cancel', agentId: A, taskId: T, generation: 1, reason: 'cancelled' },
      { type: 'release', agentId: A, taskId: T, generation: 1 },
      { type: 'finished', taskId: T, status: 'cancelled' },
    ]);
  });

  it.each(['dead', 'failed', 'cancelled'] as const)(
    'retry of a %s task requeues with a fresh budget',
    (status) => {
      const w = assignedTo(A, true, { maxRetries: 0 });
      const ended =
        status === 'dead'
          ? drive(w, [{ type: 'fail', agentId: A, generation: 1, error: { message: 'x' }, retryable: true }])
          : status === 'failed'
            ? drive(w, [
                { type: 'fail', agentId: A, generation: 1, error: { message: 'x' }, retryable: false },
              ])
            : drive(w, [{ type: 'cancel' }]);
      expect(ended.status).toBe(status);
      const r = apply(ended, { type: 'retry', by: 'ops' });
      expect(r.ok && r.task).toMatchObject({ status: 'queued', retryCount: 0, error: null, assignee: null });
      expect(r.ok && r.task.notBefore).toBeUndefined();
      expect(r.ok && r.effects).toEqual([{ type: 'enqueue', taskId: T, at: NOW }]);
    },
  );
});

describe('history', () => {
  it('keeps only the last 50 transitions', () => {
    let t = submitted({ maxRetries: 100 });
    for (let i = 0; i < 40; i++) {
      t = drive(
        t,
        [
          { type: 'assign', agentId: A },
          { type: 'reclaim', reason: 'accept_timeout' },
        ],
        T0 + 10 * i,
      );
    }
    expect(t.history).toHaveLength(50);
    expect(t.history.at(-1)).toMatchObject({ from: 'assigned', to: 'queued', generation: 80 });
    expect(TaskRecordSchema.safeParse(t).success).toBe(true);
  });
});

describe('backoffDelay', () => {
  it.each([
    [1, 0, 1000],
    [2, 0, 2000],
    [3, 0, 4000],
    [7, 0, 60_000],
    [20, 0, 60_000],
    [1, 0.5, 900],
    [3, 0.999999, 3200],
  ])('retry %i with jitter %d -> %i ms', (retry, u, ms) => {
    expect(backoffDelay({ baseMs: 1000, maxMs: 60_000 }, retry, u)).toBe(ms);
  });
});

describe('refusalNotice', () => {
  const refused = (
    task: TaskRecord | undefined,
    type: 'accepted' | 'progress' | 'completed',
    generation = 1,
    by = A,
  ) => {
    const r = apply(task, commandFromReport(by, { v: 1, type, taskId: T, generation, at: 1 } as never));
    if (r.ok) throw new Error('expected a refusal');
    return refusalNotice(task, by, { type, taskId: T, generation }, r.error);
  };

  it('an accept for a task already done: stop (the assignment was redelivered after a lost ack)', () => {
    const done = drive(assignedTo(A, true), [{ type: 'complete', agentId: A, generation: 1, result: 1 }]);
    const n = refused(done, 'accepted');
    expect(n).toMatchObject({
      type: 'notice',
      taskId: T,
      generation: 1,
      report: 'accepted',
      code: 'invalid_state',
      stop: true,
    });
    expect(InboxMessageSchema.parse(n)).toEqual(n);
  });

  it('a stale generation, another agent or an unknown task: stop', () => {
    const reassigned = drive(assignedTo(A, true), [
      { type: 'reclaim', reason: 'stuck', generation: 1 },
      { type: 'assign', agentId: B },
    ]);
    expect(refused(reassigned, 'progress')).toMatchObject({ code: 'stale_generation', stop: true });
    expect(refused(assignedTo(A, true), 'progress', 1, B)).toMatchObject({ code: 'forbidden', stop: true });
    expect(refused(undefined, 'completed')).toMatchObject({ code: 'not_found', stop: true });
  });

  it('a report the current assignment may not make: told, but not stopped', () => {
    const t = assignedTo(A);
    const r = apply(t, { type: 'unblock', agentId: A, generation: 1 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(refusalNotice(t, A, { type: 'unblocked', taskId: T, generation: 1 }, r.error)).toMatchObject({
      code: 'invalid_state',
      stop: false,
    });
  });
});

describe('wire helpers', () => {
  it('commandFromReport maps every report type', () => {
    const base = { v: 1, taskId: T, generation: 2, at: 5 };
    const reports = [
      { ...base, type: 'accepted' },
      { ...base, type: 'rejected', reason: 'r' },
      { ...base, type: 'progress', pct: 5 },
      { ...base, type: 'blocked', reason: 'b' },
      { ...base, type: 'unblocked' },
      { ...base, type: 'completed', result: 1 },
      { ...base, type: 'failed', error: { message: 'm' } },
      { ...base, type: 'recovering' },
    ].map((r) => ReportSchema.parse(r));
    expect(reports.map((r) => commandFromReport(A as AgentId, r).type)).toEqual([
      'accept',
      'reject',
      'progress',
      'block',
      'unblock',
      'complete',
      'fail',
      'recovering',
    ]);
    expect(commandFromReport(A, reports[6]!)).toMatchObject({ retryable: true, generation: 2, agentId: A });
  });

  it('assignMessage is a valid inbox message for the current generation', () => {
    const t = assignedTo(A, false, { metadata: { repo: 'x' }, completeBy: T0 + 99 });
    const m = assignMessage(t);
    expect(InboxMessageSchema.parse(m)).toEqual(m);
    expect(m).toMatchObject({ type: 'assign', taskId: T, generation: 1, task: { metadata: { repo: 'x' } } });
  });
});

function baseSubmit() {
  return {
    v: 1 as const,
    title: 'job',
    description: '',
    priority: 'normal' as const,
    queue: submitted().queue,
    capabilities: [],
    maxRetries: 3,
    backoff: { baseMs: 1000, maxMs: 60_000 },
  };
}
