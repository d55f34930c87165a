/**
 * @module schedule
 * Schedules (seed 000's "heartbeat"): a cron expression with a time zone, or an interval, that
 * submits a task to a named queue at each of its slots. A schedule is kept in the `<p>_schedules`
 * bucket as two keys: `spec.<name>` (what the operator wrote; changed by the API only) and
 * `state.<name>` (what has fired; written by the hub holding the lease only), so an operator's edit
 * and a firing never race on one revision. The cron syntax itself is checked where croner is (the
 * hub's API, actors/schedules/slots.ts): this module imports zod only.
 */
import { z } from 'zod';
import { durationField } from './duration.js';
import { FieldEmitRequestSchema } from './field.js';
import { TaskIdSchema } from './ids.js';
import { EpochMsSchema, TaskSubmitSchema } from './task.js';

export const ScheduleNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'schedule name must be 1-64 characters of A-Z a-z 0-9 _ -')
  .describe('The schedule’s name, unique in the deployment.');

/** True for an IANA time zone this runtime knows (`Europe/Berlin`, `UTC`). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const CATCHUP_POLICIES = ['skip', 'once', 'all'] as const;
export const OVERLAP_POLICIES = ['skip', 'allow'] as const;

/** A slot that fires within this long after its time is on time, not missed (a failover, a restart). */
export const ON_TIME_GRACE_MS = 60_000;
/** The most missed slots one catch-up fires (`catchup: 'all'`); older ones are skipped. */
export const MAX_CATCHUP_SLOTS = 100;
export const MIN_INTERVAL_MS = 1_000;
export const MAX_INTERVAL_MS = 366 * 86_400_000;

/** The task each slot submits: a submission without the fields a slot decides. */
export const ScheduledTaskSchema = TaskSubmitSchema.omit({
  v: true,
  notBefore: true,
  delay: true,
  completeBy: true,
  idempotencyKey: true,
  submittedBy: true,
})
  .extend({
    completeWithin: durationField(1_000, MAX_INTERVAL_MS)
      .optional()
      .describe('Deadline relative to the slot (the task’s completeBy is slot + completeWithin).'),
  })
  .describe(
    'The task submitted at each slot: as in task.submit, without the fields a slot sets (v, notBefore, delay, completeBy, idempotencyKey, submittedBy). Its metadata gains `schedule` and `slot`.',
  );
export type ScheduledTask = z.infer<typeof ScheduledTaskSchema>;

/** The pheromone each slot emits (source `schedule:<name>`). */
export const ScheduledPheromoneSchema = FieldEmitRequestSchema.omit({
  v: true,
  by: true,
  idempotencyKey: true,
}).describe(
  'The pheromone emitted at each slot: as in field.emit, without v, by and idempotencyKey (the slot sets those). Its payload gains `schedule` and `slot`.',
);

export const ScheduleActionSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('task'), task: ScheduledTaskSchema }).describe('Submit a task.'),
    z
      .object({ type: z.literal('pheromone'), pheromone: ScheduledPheromoneSchema })
      .describe('Emit a pheromone into the stigmergy field.'),
  ])
  .describe('What each slot does.');

export const ScheduleSpecSchema = z
  .object({
    v: z.literal(1),
    name: ScheduleNameSchema,
    cron: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe(
        'Cron expression (croner: 5 fields, or 6-7 with seconds and year; nicknames such as @daily). Exactly one of cron and every.',
      ),
    timezone: z
      .string()
      .max(64)
      .refine(isTimeZone, 'not an IANA time zone this runtime knows (e.g. Europe/Berlin, UTC)')
      .optional()
      .describe('IANA time zone the cron expression is read in (default UTC). Only with cron.'),
    every: durationField(MIN_INTERVAL_MS, MAX_INTERVAL_MS)
      .optional()
      .describe('Interval: ms, or a duration such as "15m". Slots are startAt + k × every.'),
    startAt: EpochMsSchema.optional().describe(
      'Intervals only: the first slot (epoch ms); default one interval after the schedule is created.',
    ),
    action: ScheduleActionSchema,
    catchup: z
      .enum(CATCHUP_POLICIES)
      .default('once')
      .describe(
        'Slots missed while no hub ran (more than a minute late): skip them, fire once (the latest within catchupWindow), or fire all within catchupWindow (at most 100).',
      ),
    catchupWindow: durationField(ON_TIME_GRACE_MS, MAX_INTERVAL_MS)
      .default('1d')
      .describe('How far back missed slots are caught up (default 1d); older ones are skipped.'),
    overlap: z
      .enum(OVERLAP_POLICIES)
      .default('skip')
      .describe(
        'A slot whose previous task is still open (not done, failed, dead or cancelled), or whose previous pheromone is still in the field (claimed or not): skip it (default) or fire anyway.',
      ),
    paused: z
      .boolean()
      .default(false)
      .describe('A paused schedule fires nothing; resuming skips what it missed.'),
    note: z.string().max(500).optional().describe('Free text for operators.'),
  })
  .refine((s) => (s.cron === undefined) !== (s.every === undefined), {
    message: 'give exactly one of cron and every',
    path: ['cron'],
  })
  .refine((s) => s.every !== undefined || s.startAt === undefined, {
    message: 'startAt is for intervals (every) only',
    path: ['startAt'],
  })
  .refine((s) => s.cron !== undefined || s.timezone === undefined, {
    message: 'timezone is for cron expressions only',
    path: ['timezone'],
  })
  .describe('schedule.create: a schedule as the operator writes it (defaults applied).');
export type ScheduleSpec = z.infer<typeof ScheduleSpecSchema>;
export type ScheduleSpecInput = z.input<typeof ScheduleSpecSchema>;

/** `spec.<name>`: the spec and when it took effect. */
export const ScheduleRecordSchema = z
  .object({
    spec: ScheduleSpecSchema,
    createdAt: EpochMsSchema.describe(
      'When this schedule was created; part of every slot’s task id, so a schedule removed and created again under the same name fires afresh.',
    ),
    since: EpochMsSchema.describe(
      'Slots at or before this time never fire: the creation, the last resume or replace.',
    ),
    updatedAt: EpochMsSchema,
  })
  .describe('A stored schedule (`spec.<name>` in the schedules bucket).');
export type ScheduleRecord = z.infer<typeof ScheduleRecordSchema>;

/** `state.<name>`: what the hubs have done with the schedule's slots. */
export const ScheduleStateSchema = z
  .object({
    v: z.literal(1),
    createdAt: EpochMsSchema.describe(
      'The schedule incarnation this state belongs to (its record’s createdAt).',
    ),
    lastSlot: EpochMsSchema.nullable().describe('The latest slot handled (fired or skipped).'),
    lastTaskId: TaskIdSchema.nullable().describe(
      'The task the latest fired slot submitted (task schedules).',
    ),
    lastPheromoneId: z
      .string()
      .max(64)
      .nullable()
      .default(null)
      .describe('The pheromone the latest fired slot emitted (pheromone schedules).'),
    lastFiredAt: EpochMsSchema.nullable(),
    fired: z.int().nonnegative().describe('Slots that submitted a task.'),
    skipped: z
      .int()
      .nonnegative()
      .describe('Slots skipped: missed beyond the catch-up policy, overlapping an open task, or refused.'),
    lastSkip: z
      .object({
        slot: EpochMsSchema,
        reason: z
          .enum(['missed', 'overlap', 'invalid'])
          .describe(
            'missed: no hub ran and the catch-up policy skips it; overlap: the previous task was open; invalid: the hub refused the task (see its logs).',
          ),
      })
      .nullable()
      .describe('The latest skipped slot and why.'),
  })
  .describe('A schedule’s progress (`state.<name>` in the schedules bucket; written by the lease holder).');
export type ScheduleState = z.infer<typeof ScheduleStateSchema>;

/** A schedule as the API shows it. */
export const ScheduleViewSchema = ScheduleRecordSchema.extend({
  state: ScheduleStateSchema.nullable().describe('Null until the first slot is handled.'),
  nextRuns: z.array(EpochMsSchema).max(5).describe('The next slots (none while paused).'),
}).describe('A schedule, its progress and its next slots.');
export type ScheduleView = z.infer<typeof ScheduleViewSchema>;

export const ScheduleCreateRequestSchema = z
  .object({
    v: z.literal(1),
    spec: ScheduleSpecSchema,
    replace: z
      .boolean()
      .default(false)
      .describe('Replace a schedule of that name (its progress is kept; slots before now never fire).'),
  })
  .describe('schedule.create: store a schedule (conflict when the name exists and replace is not set).');

export const ScheduleRefSchema = z
  .object({ v: z.literal(1), name: ScheduleNameSchema })
  .describe('schedule.get / pause / resume / remove / trigger: which schedule.');

export const ScheduleReplySchema = z
  .object({ v: z.literal(1), schedule: ScheduleViewSchema })
  .describe('The schedule after the operation.');

export const ScheduleListReplySchema = z
  .object({ v: z.literal(1), schedules: z.array(ScheduleViewSchema) })
  .describe('schedule.list: every schedule, by name.');
export type ScheduleListReply = z.infer<typeof ScheduleListReplySchema>;

export const ScheduleTriggerReplySchema = z
  .object({
    v: z.literal(1),
    taskId: TaskIdSchema.optional().describe('The task submitted (task schedules).'),
    pheromoneId: z.string().max(64).optional().describe('The pheromone emitted (pheromone schedules).'),
  })
  .describe('schedule.trigger: what fired now (outside the slots; overlap not checked).');
