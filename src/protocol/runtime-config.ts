/**
 * @module runtime-config
 * What an operator changes on a running deployment without a restart (docs/operations.md,
 * "Changing timeouts at runtime"): the scheduler's timeouts, kept in the config bucket (key
 * `timeouts`, partial: a timeout not in it is the hub's configured one), and the `config.get` /
 * `config.set` API that shows them with the limits and the control value. The leading hub's
 * scheduler follows the key live: a change applies to its next decision (the next sweep).
 * The values are bounded: a timeout of 0 or of a year is a typo, not a setting.
 */
import { z } from 'zod';
import { ControlSchema } from './control.js';
import { durationField, durationFieldMs } from './duration.js';
import { LimitsSchema } from './limits.js';

/** The scheduler timeouts an operator may change at runtime (src/hub/config.ts has their defaults). */
export const TIMEOUT_NAMES = ['acceptTimeoutMs', 'progressTimeoutMs', 'blockedTimeoutMs'] as const;
export type TimeoutName = (typeof TIMEOUT_NAMES)[number];
export type TimeoutValues = Record<TimeoutName, number>;

/** Smallest runtime value of every timeout, ms (the sweep checks them every `sweepIntervalMs`). */
export const MIN_TIMEOUT_MS = 100;
/** Largest runtime value of each timeout, ms. */
export const MAX_TIMEOUT_MS: Readonly<TimeoutValues> = {
  acceptTimeoutMs: 86_400_000,
  progressTimeoutMs: 7 * 86_400_000,
  blockedTimeoutMs: 30 * 86_400_000,
};

const MEANING: Readonly<Record<TimeoutName, string>> = {
  acceptTimeoutMs:
    'An `assigned` task not accepted within this many ms is reclaimed and its agent flagged (at most 1 day).',
  progressTimeoutMs:
    'A `working` task with no sign of life (accept, progress, unblock) for this many ms is reclaimed as stuck (at most 7 days).',
  blockedTimeoutMs: 'A task `blocked` for this many ms may be reassigned (at most 30 days).',
};

const stored = (name: TimeoutName) =>
  z.int().min(MIN_TIMEOUT_MS).max(MAX_TIMEOUT_MS[name]).describe(MEANING[name]);

export const TimeoutsSchema = z
  .strictObject({
    v: z.literal(1).describe('Schema version.'),
    acceptTimeoutMs: stored('acceptTimeoutMs').optional(),
    progressTimeoutMs: stored('progressTimeoutMs').optional(),
    blockedTimeoutMs: stored('blockedTimeoutMs').optional(),
    by: z.string().min(1).max(100).optional().describe('Who made the last change (as the caller says).'),
    at: z.int().nonnegative().describe('When the last change was made (epoch ms).'),
  })
  .describe(
    'Runtime overrides of the scheduler timeouts, ms (config bucket, key `timeouts`); one absent is the hub’s configured value.',
  );
export type Timeouts = z.infer<typeof TimeoutsSchema>;

/** Config-bucket key of the timeout overrides. */
export const TIMEOUTS_KEY = 'timeouts';

const settable = (name: TimeoutName) =>
  durationField(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS[name])
    .nullable()
    .optional()
    .describe(`${MEANING[name]} Whole ms or a duration (\`30s\`, \`5m\`); null: back to the hub’s value.`);

export const ConfigSetRequestSchema = z
  .strictObject({
    v: z.literal(1),
    timeouts: z
      .strictObject({
        acceptTimeoutMs: settable('acceptTimeoutMs'),
        progressTimeoutMs: settable('progressTimeoutMs'),
        blockedTimeoutMs: settable('blockedTimeoutMs'),
      })
      .optional()
      .describe('The timeouts to change; those not named keep their value.'),
    by: z.string().min(1).max(100).optional().describe('Who makes the change (an audit note).'),
  })
  .describe(
    'config.set: change runtime settings; nothing is stored unless all of it is valid. Replies as config.get.',
  );
export type ConfigSetRequest = z.infer<typeof ConfigSetRequestSchema>;
export type ConfigSetRequestInput = z.input<typeof ConfigSetRequestSchema>;

const TimeoutEntrySchema = z.object({
  ms: z.int().positive().describe('The value in force, ms.'),
  source: z
    .enum(['runtime', 'hub'])
    .describe('runtime: set with config.set; hub: the hub’s configuration (flag, environment or default).'),
  hubMs: z.int().positive().describe('The hub’s configured value, ms (what `null` goes back to).'),
});
export type TimeoutEntry = z.infer<typeof TimeoutEntrySchema>;

export const ConfigReplySchema = z
  .object({
    v: z.literal(1),
    timeouts: z.object({
      acceptTimeoutMs: TimeoutEntrySchema,
      progressTimeoutMs: TimeoutEntrySchema,
      blockedTimeoutMs: TimeoutEntrySchema,
    }),
    stored: TimeoutsSchema.nullable().describe('The stored overrides (key `timeouts`), with who and when.'),
    limits: LimitsSchema.describe('The limits in force (key `limits`; the defaults when absent).'),
    control: ControlSchema.describe('Whether intake and assignment run (key `control`).'),
  })
  .describe(
    'config.get / config.set: the runtime settings in force on the leading hub, and where each comes from.',
  );
export type ConfigReply = z.infer<typeof ConfigReplySchema>;

/** The timeouts in force: the stored overrides over the hub's configured values. Pure. */
export function effectiveTimeouts(hub: TimeoutValues, overrides: Timeouts | null): TimeoutValues {
  const out = { ...hub };
  for (const n of TIMEOUT_NAMES) {
    const v = overrides?.[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
}

/** Each timeout in force with where it comes from. Pure. */
export function describeTimeouts(hub: TimeoutValues, overrides: Timeouts | null): ConfigReply['timeouts'] {
  const entry = (n: TimeoutName): TimeoutEntry => {
    const v = overrides?.[n];
    return v === undefined
      ? { ms: hub[n], source: 'hub', hubMs: hub[n] }
      : { ms: v, source: 'runtime', hubMs: hub[n] };
  };
  return {
    acceptTimeoutMs: entry('acceptTimeoutMs'),
    progressTimeoutMs: entry('progressTimeoutMs'),
    blockedTimeoutMs: entry('blockedTimeoutMs'),
  };
}

/**
 * The stored overrides after a validated `config.set` patch (a duration string becomes ms, null
 * removes an override), or null when the patch changes nothing. Pure.
 */
export function patchTimeouts(
  current: Timeouts | null,
  patch: NonNullable<ConfigSetRequest['timeouts']>,
  by: string | undefined,
  now: number,
): Timeouts | null {
  const next: Timeouts = { v: 1, at: now };
  let changed = false;
  for (const n of TIMEOUT_NAMES) {
    const was = current?.[n];
    const p = patch[n];
    const value = p === undefined ? was : p === null ? undefined : durationFieldMs(p);
    if (value !== was) changed = true;
    if (value !== undefined) next[n] = value;
  }
  if (!changed) return null;
  if (by !== undefined) next.by = by;
  return next;
}
