/**
 * @module control
 * Whether the hub takes work in and hands it out: the control value of the config bucket (key
 * `control`, docs/operations.md "Pausing the hub"), written through the API (`hub.pause`,
 * `hub.resume`; `agentcom pause|resume`) and followed live by every hub. Absent, both run.
 *
 * Paused intake: submissions on the bus wait in the SUBMIT stream untouched (the leading hub stops
 * pulling them) and API submissions are refused with `unavailable`. Paused assignment: queued tasks
 * stay queued; what is already assigned goes on, and reports are applied. Neither stops schedules
 * or the field from creating tasks inside the hub: they queue, and wait for assignment like the rest.
 */
import { z } from 'zod';

export const RUN_STATES = ['running', 'paused'] as const;
export const RunStateSchema = z.enum(RUN_STATES);
export type RunState = z.infer<typeof RunStateSchema>;

/** The two things that can be paused. */
export const CONTROL_PARTS = ['intake', 'assignment'] as const;
export type ControlPart = (typeof CONTROL_PARTS)[number];

const ByField = z
  .string()
  .min(1)
  .max(100)
  .describe('Who made the change, as the caller says (an audit note, not an identity check).');
const ReasonField = z.string().min(1).max(500).describe('Why, for whoever looks next.');

export const ControlSchema = z
  .object({
    v: z.literal(1).describe('Schema version.'),
    intake: RunStateSchema.describe(
      'paused: bus submissions wait in the SUBMIT stream (nothing is pulled) and API submissions are refused with `unavailable`.',
    ),
    assignment: RunStateSchema.describe(
      'paused: the scheduler assigns nothing; queued tasks wait, assigned ones go on.',
    ),
    by: ByField.optional(),
    at: z.int().nonnegative().describe('When the last change was made (epoch ms; 0: never changed).'),
    reason: ReasonField.optional(),
  })
  .describe('Whether the hub takes work in and hands it out (config bucket, key `control`).');
export type Control = z.infer<typeof ControlSchema>;

/** Config-bucket key of the control value. */
export const CONTROL_KEY = 'control';

export const DEFAULT_CONTROL: Control = { v: 1, intake: 'running', assignment: 'running', at: 0 };

export const HubControlRequestSchema = z
  .object({
    v: z.literal(1),
    intake: z.boolean().optional().describe('Pause (resume) intake. With neither part given: both.'),
    assignment: z.boolean().optional().describe('Pause (resume) assignment. With neither part given: both.'),
    reason: ReasonField.optional(),
    by: ByField.optional(),
  })
  .refine((r) => r.intake !== false || r.assignment !== false, {
    message: 'name at least one of intake and assignment (or neither, for both)',
    path: ['intake'],
  })
  .describe(
    'hub.pause / hub.resume: which parts (default both), and why. Replies with the control value after it ([config.control](config.control.json)).',
  );
export type HubControlRequest = z.infer<typeof HubControlRequestSchema>;
export type HubControlRequestInput = z.input<typeof HubControlRequestSchema>;

/** The parts a pause or resume request names (both when it names neither). */
export function requestedParts(r: Pick<HubControlRequest, 'intake' | 'assignment'>): ControlPart[] {
  if (r.intake === undefined && r.assignment === undefined) return [...CONTROL_PARTS];
  return CONTROL_PARTS.filter((p) => r[p] === true);
}

/**
 * The control value after pausing or resuming the parts `r` names, or null when that changes
 * nothing (a second pause is not a new one: its time and reason stay). Pure.
 */
export function changeControl(
  current: Control,
  op: 'pause' | 'resume',
  r: HubControlRequest,
  now: number,
): Control | null {
  const to: RunState = op === 'pause' ? 'paused' : 'running';
  const parts = requestedParts(r);
  if (parts.every((p) => current[p] === to)) return null;
  const next: Control = { v: 1, intake: current.intake, assignment: current.assignment, at: now };
  for (const p of parts) next[p] = to;
  if (r.by !== undefined) next.by = r.by;
  if (r.reason !== undefined) next.reason = r.reason;
  return next;
}

/** `intake paused, assignment running` (with who, when and why when set), for people. */
export function describeControl(c: Control): string {
  const state = `intake ${c.intake}, assignment ${c.assignment}`;
  if (c.at === 0) return state;
  const who = c.by ? ` by ${c.by}` : '';
  const why = c.reason ? `: ${c.reason}` : '';
  // Whole seconds: enough for people, and no stray digits in a message.
  const at = new Date(Math.floor(c.at / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  return `${state} (changed ${at}${who}${why})`;
}
