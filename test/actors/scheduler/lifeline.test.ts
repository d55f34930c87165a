/**
 * The lifeline: the one place that decides reclaims. Timeouts from the sweep, and `not_held` from
 * what a live agent session says it holds.
 */
import { describe, expect, it } from 'vitest';
import {
  heardAt,
  MAX_UNREAD_WAIT_MS,
  notHeld,
  type SessionView,
  sweepReason,
} from '../../../actors/scheduler/lifeline.js';
import { applyTaskCommand } from '../../../actors/task-queue/state.js';
import type { TaskRecord } from '../../../src/protocol/task.js';
import { A, assignedTo, drive, okTask, submitted, T, T0 } from '../task-queue/helpers.js';

describe('sweepReason', () => {
  const timeouts = { acceptTimeoutMs: 1000, progressTimeoutMs: 5000, blockedTimeoutMs: 10_000 };
  it('finds accept timeouts, stuck, blocked and overdue tasks', () => {
    const assigned = assignedTo(A); // assignedAt = T0 + 10
    expect(sweepReason(assigned, T0 + 1009, timeouts)).toBeNull();
    expect(sweepReason(assigned, T0 + 1010, timeouts)).toBe('accept_timeout');
    const working = assignedTo(A, true); // lastProgressAt = T0 + 10
    expect(sweepReason(working, T0 + 5009, timeouts)).toBeNull();
    expect(sweepReason(working, T0 + 5010, timeouts)).toBe('stuck');
    const blocked = drive(working, [{ type: 'block', agentId: A, generation: 1, reason: 'r' }], T0 + 100);
    expect(sweepReason(blocked, T0 + 10_099, timeouts)).toBeNull();
    expect(sweepReason(blocked, T0 + 10_100, timeouts)).toBe('blocked_timeout');
    expect(sweepReason(submitted({ completeBy: T0 + 5 }), T0 + 5, timeouts)).toBe('overdue');
    expect(sweepReason(submitted(), T0 + 1e9, timeouts)).toBeNull();
  });

  it('the timeouts a report ends count to what the hub has heard, not to now; overdue counts to now', () => {
    const late = T0 + 1e6;
    // Every report sent before T0 + 1009 is applied: no accept came in 999 ms, none is due yet.
    expect(sweepReason(assignedTo(A), late, timeouts, T0 + 1009)).toBeNull();
    expect(sweepReason(assignedTo(A), late, timeouts, T0 + 1010)).toBe('accept_timeout');
    expect(sweepReason(assignedTo(A, true), late, timeouts, T0 + 5009)).toBeNull();
    const working = assignedTo(A, true);
    const blocked = drive(working, [{ type: 'block', agentId: A, generation: 1, reason: 'r' }], T0 + 100);
    expect(sweepReason(blocked, late, timeouts, T0 + 10_099)).toBeNull();
    // A deadline is the hub's own clock: no report can move it.
    expect(sweepReason(assignedTo(A, false, { completeBy: T0 + 5 }), T0 + 5, timeouts, T0)).toBe('overdue');
  });

  it('heardAt: the read-through time, never past now, never more than MAX_UNREAD_WAIT_MS behind', () => {
    expect(heardAt(T0, T0 - 500)).toBe(T0 - 500);
    expect(heardAt(T0, T0 + 500)).toBe(T0);
    expect(heardAt(T0, Number.NEGATIVE_INFINITY)).toBe(T0 - MAX_UNREAD_WAIT_MS);
    expect(heardAt(T0, T0 - 2 * MAX_UNREAD_WAIT_MS)).toBe(T0 - MAX_UNREAD_WAIT_MS);
  });
});

describe('notHeld', () => {
  const GRACE = 10_000;
  /** Accepted at T0 + 10 by session `s1`. */
  const accepted = (): TaskRecord => {
    const t = assignedTo(A);
    return okTask(applyTaskCommand(t, { type: 'accept', agentId: A, generation: 1, session: 's1' }, T0 + 10));
  };
  const view = (over: Partial<SessionView> = {}): SessionView => ({
    session: 's1',
    holding: new Set(),
    finished: new Set(),
    at: T0 + 20,
    ...over,
  });

  it('records the reporting session on the task', () => {
    expect(accepted().session).toBe('s1');
  });

  it('a new session that does not hold an accepted task loses it at once', () => {
    expect(notHeld([accepted()], view({ session: 's2' }), GRACE).map((t) => t.id)).toEqual([T]);
  });

  it('a new session that lists it (a sidecar with its queue file) keeps it', () => {
    expect(notHeld([accepted()], view({ session: 's2', holding: new Set([T]) }), GRACE)).toEqual([]);
  });

  it('an assignment not yet accepted is left to the inbox redelivery and the accept timeout', () => {
    expect(notHeld([assignedTo(A)], view({ session: 's2', at: T0 + 1e9 }), GRACE)).toEqual([]);
  });

  it('the same session: only once the last sign of life is older than the grace', () => {
    expect(notHeld([accepted()], view({ at: T0 + 10 + GRACE - 1 }), GRACE)).toEqual([]);
    expect(notHeld([accepted()], view({ at: T0 + 10 + GRACE }), GRACE).map((t) => t.id)).toEqual([T]);
  });

  it('a task the session finished lately is not lost (its outcome may be on its way)', () => {
    const v = view({ session: 's2', finished: new Set([T]), at: T0 + 1e9 });
    expect(notHeld([accepted()], v, GRACE)).toEqual([]);
  });

  it('agents without sessions fall back to the grace rule', () => {
    const legacy = okTask(
      applyTaskCommand(assignedTo(A), { type: 'accept', agentId: A, generation: 1 }, T0 + 10),
    );
    expect(notHeld([legacy], view({ session: undefined, at: T0 + 20 }), GRACE)).toEqual([]);
    expect(notHeld([legacy], view({ session: 's9', at: T0 + 20 }), GRACE)).toEqual([]);
    expect(notHeld([legacy], view({ session: undefined, at: T0 + 10 + GRACE }), GRACE)).toHaveLength(1);
  });

  it('a blocked task counts as held work too', () => {
    const blocked = drive(
      accepted(),
      [{ type: 'block', agentId: A, generation: 1, reason: 'wait' }],
      T0 + 11,
    );
    expect(notHeld([blocked], view({ session: 's2' }), GRACE).map((t) => t.status)).toEqual(['blocked']);
  });

  it('the reclaim it asks for raises the generation and requeues (not_held applies to working/blocked only)', () => {
    const r = applyTaskCommand(accepted(), { type: 'reclaim', reason: 'not_held', generation: 1 }, T0 + 30);
    expect(r.ok && r.task).toMatchObject({ status: 'queued', generation: 2, assignee: null });
    expect(r.ok && r.task.session).toBeUndefined();
    const early = applyTaskCommand(assignedTo(A), { type: 'reclaim', reason: 'not_held' }, T0 + 30);
    expect(!early.ok && early.error.code).toBe('invalid_state');
  });
});
