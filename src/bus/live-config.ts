/**
 * @module live-config
 * The runtime settings of the config bucket beside the limits (live-limits.ts): the control value
 * (pause and resume, protocol/control.ts) and the timeout overrides (protocol/runtime-config.ts).
 * Writers change a key with compare-and-set ({@link changeKey}), so two operators pausing and
 * resuming at once never lose one of the changes; actors follow a key with a LiveValue. Nothing
 * here decides what a setting means: the TaskQueue, the Scheduler and the API do.
 */
import { CONTROL_KEY, type Control, ControlSchema, DEFAULT_CONTROL } from '../protocol/control.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { TIMEOUTS_KEY, type Timeouts, TimeoutsSchema } from '../protocol/runtime-config.js';
import type { Bus } from './connection.js';
import { openKv, type TypedKv } from './kv.js';
import { type LiveValue, openLiveValue } from './live-value.js';

export type LiveControl = LiveValue<Control>;
/** The stored overrides; null when none are stored. */
export type LiveTimeouts = LiveValue<Timeouts | null>;

export function openControlKv(bus: Bus): Promise<TypedKv<Control>> {
  return openKv(bus, bus.names.buckets.config, ControlSchema);
}

export function openTimeoutsKv(bus: Bus): Promise<TypedKv<Timeouts>> {
  return openKv(bus, bus.names.buckets.config, TimeoutsSchema);
}

export function openLiveControl(bus: Bus): Promise<LiveControl> {
  return openLiveValue(bus, {
    bucket: bus.names.buckets.config,
    key: CONTROL_KEY,
    schema: ControlSchema,
    fallback: DEFAULT_CONTROL,
    what: 'control',
  });
}

export function openLiveTimeouts(bus: Bus): Promise<LiveTimeouts> {
  return openLiveValue<Timeouts | null>(bus, {
    bucket: bus.names.buckets.config,
    key: TIMEOUTS_KEY,
    schema: TimeoutsSchema,
    fallback: null,
    what: 'timeouts',
  });
}

/** Compare-and-set attempts before {@link changeKey} gives up with `conflict`. */
const CHANGE_ATTEMPTS = 10;

export interface KeyChange<T> {
  /** The stored value after the call (null: none). */
  value: T | null;
  /** Its revision (null: nothing stored). */
  revision: number | null;
  changed: boolean;
}

/**
 * Reads `key`, asks `change` for the next value (null: leave it as it is) and writes it with
 * compare-and-set, reading again when another writer got there first. A stored value that fails
 * the schema (written by hand) counts as absent and is overwritten.
 * @throws AgentComError `conflict` after {@link CHANGE_ATTEMPTS} lost races.
 */
export async function changeKey<T>(
  kv: TypedKv<T>,
  key: string,
  change: (current: T | null) => T | null,
): Promise<KeyChange<T>> {
  for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
    let got: { value: T; revision: number } | null;
    let invalid = false;
    try {
      got = await kv.get(key);
    } catch (err) {
      if (!(err instanceof AgentComError) || err.code !== ERROR_CODES.INVALID_PAYLOAD) throw err;
      got = null;
      invalid = true;
    }
    const next = change(got?.value ?? null);
    if (next === null) return { value: got?.value ?? null, revision: got?.revision ?? null, changed: false };
    if (invalid) return { value: next, revision: await kv.put(key, next), changed: true };
    const r = got ? await kv.update(key, next, got.revision) : await kv.create(key, next);
    if (r.ok) return { value: next, revision: r.revision, changed: true };
  }
  throw new AgentComError(
    ERROR_CODES.CONFLICT,
    `${kv.bucket}/${key} kept changing under this write (${CHANGE_ATTEMPTS} attempts); try again`,
  );
}
