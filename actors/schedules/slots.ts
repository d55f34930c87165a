/**
 * @module schedules/slots
 * When a schedule's slots fall, and which of them fire now. Pure (croner computes cron slots; no
 * clock, no I/O). A slot is identified by its time in epoch ms.
 *
 * The rules (docs/protocol.md, "Schedules"): slots at or before the lower bound (the last slot
 * handled, or the schedule's `since`) are done with. Among the rest up to `now`, a slot less than
 * ON_TIME_GRACE_MS old is on time and fires (a failover or a restart takes seconds, not a minute).
 * Older ones were missed while no hub ran, and the catch-up policy decides: `skip` none, `once`
 * the latest within the catch-up window (only when no on-time slot fires), `all` every one within
 * the window, at most MAX_CATCHUP_SLOTS, newest kept.
 */
import { Cron } from 'croner';
import { durationFieldMs } from '../../src/protocol/duration.js';
import type { FieldEmitRequest } from '../../src/protocol/field.js';
import {
  MAX_CATCHUP_SLOTS,
  ON_TIME_GRACE_MS,
  type ScheduleRecord,
  type ScheduleSpec,
} from '../../src/protocol/schedule.js';
import type { TaskSubmitInput } from '../../src/protocol/task.js';

export interface SlotClock {
  /** The first slot strictly after `after`, or null when there is none. */
  next(after: number): number | null;
  /** The newest `n` slots at or before `upTo`, oldest first. */
  latest(n: number, upTo: number): number[];
}

/** Why a cron expression cannot be used (croner's message), or null when it can. */
export function cronProblem(cron: string, timezone?: string): string | null {
  try {
    const c = new Cron(cron, { paused: true, ...(timezone ? { timezone } : {}) });
    return c.nextRun() ? null : 'the expression has no future slot';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export function slotClock(record: Pick<ScheduleRecord, 'spec' | 'createdAt'>): SlotClock {
  const { spec } = record;
  if (spec.cron !== undefined) {
    const cron = new Cron(spec.cron, { paused: true, ...(spec.timezone ? { timezone: spec.timezone } : {}) });
    return {
      next: (after) => cron.nextRun(new Date(after))?.getTime() ?? null,
      // previousRuns is strictly before its reference, newest first.
      latest: (n, upTo) =>
        cron
          .previousRuns(n, new Date(upTo + 1))
          .map((d) => d.getTime())
          .reverse(),
    };
  }
  const every = durationFieldMs(spec.every ?? 0);
  const anchor = spec.startAt ?? record.createdAt + every;
  return {
    next: (after) => (after < anchor ? anchor : anchor + (Math.floor((after - anchor) / every) + 1) * every),
    latest: (n, upTo) => {
      if (upTo < anchor) return [];
      const last = Math.floor((upTo - anchor) / every);
      const out: number[] = [];
      for (let k = Math.max(0, last - n + 1); k <= last; k++) out.push(anchor + k * every);
      return out;
    },
  };
}

export interface SlotPlan {
  /** Slots to fire, oldest first. */
  fire: number[];
  /** Slots missed and not caught up, oldest first (only those the plan looked at). */
  missed: number[];
  /** The newest slot the plan handled (fired or missed), or null when none is due. */
  handledUpTo: number | null;
}

/** Which due slots (after `lowerBound`, at or before `now`) fire and which are skipped as missed. */
export function planSlots(
  clock: SlotClock,
  policy: Pick<ScheduleSpec, 'catchup' | 'catchupWindow'>,
  lowerBound: number,
  now: number,
): SlotPlan {
  // One more than can fire, so that a longer backlog still counts as missed.
  const due = clock.latest(MAX_CATCHUP_SLOTS + 1, now).filter((s) => s > lowerBound);
  const onTime = due.filter((s) => now - s < ON_TIME_GRACE_MS);
  const late = due.filter((s) => now - s >= ON_TIME_GRACE_MS);
  const windowMs = durationFieldMs(policy.catchupWindow);
  const reachable = late.filter((s) => now - s <= windowMs);
  let caughtUp: number[] = [];
  if (policy.catchup === 'all') caughtUp = reachable;
  else if (policy.catchup === 'once' && onTime.length === 0) caughtUp = reachable.slice(-1);
  const fire = [...caughtUp, ...onTime].slice(-MAX_CATCHUP_SLOTS);
  const firing = new Set(fire);
  return {
    fire,
    missed: due.filter((s) => !firing.has(s)),
    handledUpTo: due.length ? due[due.length - 1]! : null,
  };
}

/** The next `n` slots after `from`. */
export function nextSlots(clock: SlotClock, from: number, n: number): number[] {
  const out: number[] = [];
  for (let s = clock.next(from); s !== null && out.length < n; s = clock.next(s)) out.push(s);
  return out;
}

/** What one slot does: a task to submit or a pheromone to emit (source `schedule:<name>`). */
export type SlotAction =
  | { type: 'task'; submit: TaskSubmitInput }
  | { type: 'pheromone'; emit: FieldEmitRequest; source: string };

/**
 * What a slot does. Its idempotency key names the schedule's incarnation and the slot, so every hub
 * that fires the slot (a failover, two hubs for a moment) submits the same task or emits the same
 * pheromone. A trigger (`schedule.trigger`) is keyed by its own time.
 */
export function slotAction(
  record: Pick<ScheduleRecord, 'spec' | 'createdAt'>,
  slot: number,
  kind: 'slot' | 'trigger' = 'slot',
): SlotAction {
  const name = record.spec.name;
  const idempotencyKey = `schedule:${name}:${record.createdAt}:${kind === 'trigger' ? 'trigger:' : ''}${slot}`;
  const stamp = {
    schedule: name,
    slot: new Date(slot).toISOString(),
    ...(kind === 'trigger' ? { triggered: true } : {}),
  };
  const source = `schedule:${name}`.slice(0, 64);
  const action = record.spec.action;
  if (action.type === 'pheromone') {
    const p = action.pheromone;
    return {
      type: 'pheromone',
      source,
      emit: { v: 1, ...p, payload: { ...p.payload, ...stamp }, idempotencyKey },
    };
  }
  const { completeWithin, ...task } = action.task;
  return {
    type: 'task',
    submit: {
      v: 1,
      ...task,
      ...(completeWithin !== undefined ? { completeBy: slot + durationFieldMs(completeWithin) } : {}),
      idempotencyKey,
      submittedBy: source,
      metadata: { ...task.metadata, ...stamp },
    },
  };
}
