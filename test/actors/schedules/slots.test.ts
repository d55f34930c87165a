import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cronProblem,
  nextSlots,
  planSlots,
  type SlotClock,
  slotAction,
  slotClock,
} from '../../../actors/schedules/slots.js';
import {
  MAX_CATCHUP_SLOTS,
  ON_TIME_GRACE_MS,
  type ScheduleSpec,
  type ScheduleSpecInput,
  ScheduleSpecSchema,
} from '../../../src/protocol/schedule.js';
import { TaskSubmitSchema } from '../../../src/protocol/task.js';

const spec = (over: Partial<ScheduleSpecInput>): ScheduleSpec =>
  ScheduleSpecSchema.parse({
    v: 1,
    name: 'beat',
    action: { type: 'task', task: { title: 'tick', queue: 'cognition' } },
    ...over,
  });

/** Every slot in (from, to], by walking next(): the reference the plans are checked against. */
function walk(clock: SlotClock, from: number, to: number): number[] {
  const out: number[] = [];
  for (let s = clock.next(from); s !== null && s <= to; s = clock.next(s)) out.push(s);
  return out;
}

const H = 3_600_000;

describe('schedule specs', () => {
  it('need exactly one of cron and every, and timezone/startAt only with their kind', () => {
    const base = { v: 1, name: 'x', action: { type: 'task', task: { title: 't' } } };
    expect(ScheduleSpecSchema.safeParse(base).success).toBe(false);
    expect(ScheduleSpecSchema.safeParse({ ...base, cron: '* * * * *', every: '1m' }).success).toBe(false);
    expect(ScheduleSpecSchema.safeParse({ ...base, every: '1m', timezone: 'UTC' }).success).toBe(false);
    expect(ScheduleSpecSchema.safeParse({ ...base, cron: '* * * * *', startAt: 1 }).success).toBe(false);
    expect(
      ScheduleSpecSchema.safeParse({ ...base, cron: '* * * * *', timezone: 'Mars/Olympus' }).success,
    ).toBe(false);
    expect(ScheduleSpecSchema.safeParse({ ...base, every: '500ms' }).success).toBe(false);
    expect(ScheduleSpecSchema.safeParse({ ...base, name: 'a.b', every: '1m' }).success).toBe(false);
    const ok = ScheduleSpecSchema.parse({ ...base, cron: '0 22 * * *', timezone: 'Europe/Berlin' });
    expect(ok).toMatchObject({ catchup: 'once', catchupWindow: '1d', overlap: 'skip', paused: false });
  });

  it('croner says which cron expressions cannot be used', () => {
    expect(cronProblem('*/5 * * * *')).toBeNull();
    expect(cronProblem('@daily', 'Asia/Tokyo')).toBeNull();
    expect(cronProblem('not a cron')).toMatch(/five, six, or seven/);
    expect(cronProblem('61 * * * *')).not.toBeNull();
    expect(cronProblem('0 0 30 2 *')).toBe('the expression has no future slot');
  });
});

describe('slot clocks', () => {
  it('read a cron expression in its time zone, across a daylight-saving change', () => {
    const clock = slotClock({ spec: spec({ cron: '0 22 * * *', timezone: 'Europe/Berlin' }), createdAt: 0 });
    // Berlin moves from UTC+1 to UTC+2 on 2026-03-29.
    const slots = nextSlots(clock, Date.parse('2026-03-27T12:00:00Z'), 3);
    expect(slots.map((s) => new Date(s).toISOString())).toEqual([
      '2026-03-27T21:00:00.000Z',
      '2026-03-28T21:00:00.000Z',
      '2026-03-29T20:00:00.000Z',
    ]);
    expect(clock.latest(2, slots[2]!)).toEqual(slots.slice(1));
  });

  it('put interval slots at startAt + k × every, or one interval after creation', () => {
    const created = slotClock({ spec: spec({ every: '10m' }), createdAt: 1_000_000 });
    expect(nextSlots(created, 0, 2)).toEqual([1_600_000, 2_200_000]);
    const anchored = slotClock({ spec: spec({ every: 60_000, startAt: 5_000 }), createdAt: 1_000_000 });
    expect(nextSlots(anchored, 1_000_000, 2)).toEqual([1_025_000, 1_085_000]);
    expect(anchored.latest(3, 125_000)).toEqual([5_000, 65_000, 125_000]);
  });

  it('latest(n, t) is the last n slots of walking next() up to t (intervals and cron)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ every: fc.integer({ min: 1_000, max: 5 * H }), startAt: fc.nat(10 * H) }),
          fc.constantFrom({ cron: '*/7 * * * *' }, { cron: '0 */3 * * *' }, { cron: '15 4 * * 1-5' }),
        ),
        fc.nat(3 * 86_400_000),
        fc.integer({ min: 1, max: 12 }),
        (kind, t, n) => {
          const clock = slotClock({ spec: spec(kind), createdAt: 0 });
          const from = Math.max(0, t - 4 * 86_400_000);
          const all = walk(clock, from, t);
          expect(clock.latest(n, t).filter((s) => s > from)).toEqual(all.slice(-n));
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('planSlots', () => {
  const clock = slotClock({ spec: spec({ every: '1m', startAt: 0 }), createdAt: 0 });
  const plan = (catchup: 'skip' | 'once' | 'all', lower: number, now: number, window = '1h') =>
    planSlots(clock, { catchup, catchupWindow: window }, lower, now);

  it('fires on-time slots (less than a minute late) under every policy', () => {
    for (const policy of ['skip', 'once', 'all'] as const)
      expect(plan(policy, 10 * 60_000, 11 * 60_000 + 59_000)).toEqual({
        fire: [11 * 60_000],
        missed: [],
        handledUpTo: 11 * 60_000,
      });
  });

  it('skip drops missed slots; once fires the latest within the window; all fires every one in it', () => {
    // Down from minute 10 to 20.5: slots 11..19 are late, 20 is on time.
    const now = 20 * 60_000 + 30_000;
    expect(plan('skip', 10 * 60_000, now).fire).toEqual([20 * 60_000]);
    expect(plan('once', 10 * 60_000, now).fire).toEqual([20 * 60_000]);
    expect(plan('all', 10 * 60_000, now).fire).toHaveLength(10);
    // Every 5 minutes, down from minute 10 to 22: no slot on time, so once catches up the latest.
    const five = slotClock({ spec: spec({ every: '5m', startAt: 0 }), createdAt: 0 });
    const late = 22 * 60_000;
    const p5 = (catchup: 'skip' | 'once' | 'all', window = '1h') =>
      planSlots(five, { catchup, catchupWindow: window }, 10 * 60_000, late);
    expect(p5('once')).toEqual({ fire: [20 * 60_000], missed: [15 * 60_000], handledUpTo: 20 * 60_000 });
    expect(p5('skip')).toEqual({ fire: [], missed: [15 * 60_000, 20 * 60_000], handledUpTo: 20 * 60_000 });
    expect(p5('all').fire).toEqual([15 * 60_000, 20 * 60_000]);
    // A window of 5 minutes reaches back to minute 17.
    expect(p5('all', '5m').fire).toEqual([20 * 60_000]);
    expect(p5('once', '1m')).toMatchObject({ fire: [], handledUpTo: 20 * 60_000 });
  });

  it('nothing at or before the lower bound is due', () => {
    expect(plan('all', 20 * 60_000, 20 * 60_000 + 30_000)).toEqual({
      fire: [],
      missed: [],
      handledUpTo: null,
    });
  });

  it('a run of evaluations fires each slot at most once; with all and evaluations within the window, every slot', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('skip', 'once', 'all'),
        fc.array(fc.integer({ min: 1, max: 10 * 60_000 }), { minLength: 1, maxLength: 40 }),
        (policy, gaps) => {
          let now = 0;
          let lower = 0;
          const fired: number[] = [];
          for (const g of gaps) {
            now += g;
            const p = plan(policy as 'all', lower, now);
            expect(p.fire.every((s) => s > lower && s <= now)).toBe(true);
            expect(p.fire.filter((s) => p.missed.includes(s))).toEqual([]);
            expect([...p.fire].sort((a, b) => a - b)).toEqual(p.fire);
            fired.push(...p.fire);
            lower = p.handledUpTo ?? lower;
          }
          expect(new Set(fired).size).toBe(fired.length);
          const due = walk(clock, 0, now);
          if (policy === 'all') expect(fired).toEqual(due);
          // Every on-time slot fires under every policy: those no evaluation saw late.
          if (gaps.every((g) => g < ON_TIME_GRACE_MS)) expect(fired).toEqual(due);
        },
      ),
    );
  });

  it('catches up at most MAX_CATCHUP_SLOTS, the newest', () => {
    const p = plan('all', 0, 1_000 * 60_000, '1d');
    expect(p.fire).toHaveLength(MAX_CATCHUP_SLOTS);
    expect(p.fire.at(-1)).toBe(1_000 * 60_000);
    expect(p.handledUpTo).toBe(1_000 * 60_000);
  });
});

describe('slotAction', () => {
  const record = {
    spec: spec({
      every: '1h',
      action: {
        type: 'task',
        task: { title: 'diary', queue: 'cognition', completeWithin: '30m', metadata: { kind: 'nightly' } },
      },
    }),
    createdAt: 42,
  };
  const submitOf = (r: typeof record, slot: number, kind?: 'trigger') => {
    const a = slotAction(r, slot, kind);
    if (a.type !== 'task') throw new Error('not a task');
    return a.submit;
  };

  it('is a valid submission whose key names the incarnation and the slot', () => {
    const a = submitOf(record, 3_600_000);
    expect(TaskSubmitSchema.parse(a)).toMatchObject({
      title: 'diary',
      queue: 'cognition',
      completeBy: 3_600_000 + 30 * 60_000,
      idempotencyKey: 'schedule:beat:42:3600000',
      submittedBy: 'schedule:beat',
      metadata: { kind: 'nightly', schedule: 'beat', slot: '1970-01-01T01:00:00.000Z' },
    });
    expect(submitOf(record, 3_600_000).idempotencyKey).toBe(a.idempotencyKey);
    expect(submitOf({ ...record, createdAt: 43 }, 3_600_000).idempotencyKey).not.toBe(a.idempotencyKey);
    expect(submitOf(record, 3_600_000, 'trigger').idempotencyKey).toBe('schedule:beat:42:trigger:3600000');
  });

  it('or a pheromone from the schedule, keyed the same way, its payload stamped with the slot', () => {
    const a = slotAction(
      {
        spec: spec({
          every: '1h',
          action: {
            type: 'pheromone',
            pheromone: { type: 'heartbeat.clock', payload: { beat: true }, ttl: 60 },
          },
        }),
        createdAt: 42,
      },
      3_600_000,
    );
    expect(a).toEqual({
      type: 'pheromone',
      source: 'schedule:beat',
      emit: {
        v: 1,
        type: 'heartbeat.clock',
        selector: '',
        ttl: 60,
        payload: { beat: true, schedule: 'beat', slot: '1970-01-01T01:00:00.000Z' },
        idempotencyKey: 'schedule:beat:42:3600000',
      },
    });
  });
});
