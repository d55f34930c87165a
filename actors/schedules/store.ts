/**
 * @module schedules/store
 * The schedules bucket (`<p>_schedules`): `spec.<name>` holds a {@link ScheduleRecord} (written by
 * the API, any hub), `state.<name>` a {@link ScheduleState} (written by the hub holding the lease,
 * compare-and-set). Operations an operator asks for are here, so the API and tests share them; each
 * returns its outcome as a value or throws a structured AgentComError.
 */
import { z } from 'zod';
import type { Bus } from '../../src/bus/connection.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import { FieldEmitRequestSchema } from '../../src/protocol/field.js';
import {
  type ScheduleRecord,
  ScheduleRecordSchema,
  type ScheduleSpec,
  type ScheduleState,
  ScheduleStateSchema,
  type ScheduleView,
} from '../../src/protocol/schedule.js';
import { TaskSubmitSchema } from '../../src/protocol/task.js';
import { cronProblem, nextSlots, slotAction, slotClock } from './slots.js';

export const specKey = (name: string) => `spec.${name}`;
export const stateKey = (name: string) => `state.${name}`;
export const SPEC_KEYS = 'spec.>';

export interface ScheduleStore {
  specs: TypedKv<ScheduleRecord>;
  states: TypedKv<ScheduleState>;
  /** Both kinds, for reading the whole bucket in one pass (the key says which). */
  all: TypedKv<ScheduleRecord | ScheduleState>;
}

export async function openScheduleStore(bus: Bus): Promise<ScheduleStore> {
  const bucket = bus.names.buckets.schedules;
  const [specs, states, all] = await Promise.all([
    openKv(bus, bucket, ScheduleRecordSchema),
    openKv(bus, bucket, ScheduleStateSchema),
    openKv(bus, bucket, z.union([ScheduleRecordSchema, ScheduleStateSchema])),
  ]);
  return { specs, states, all };
}

/** The state of this incarnation of the schedule (a state left by a removed namesake is not). */
export function currentState(record: ScheduleRecord, state: ScheduleState | null | undefined) {
  return state && state.createdAt === record.createdAt ? state : null;
}

/** What croner and the task schema say about a spec, beyond its own schema: the first problem. */
export function specProblem(spec: ScheduleSpec): string | null {
  if (spec.cron !== undefined) {
    const p = cronProblem(spec.cron, spec.timezone);
    if (p) return `cron: ${p}`;
  }
  // A slot's task or pheromone, as a slot would make it (its metadata or payload grows).
  const action = slotAction({ spec, createdAt: 0 }, Date.now());
  const sample =
    action.type === 'task'
      ? TaskSubmitSchema.safeParse(action.submit)
      : FieldEmitRequestSchema.safeParse(action.emit);
  if (!sample.success)
    return `action.${action.type}: ${sample.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
  return null;
}

export function scheduleView(record: ScheduleRecord, state: ScheduleState | null, now: number): ScheduleView {
  const from = Math.max(now, record.since, state?.lastSlot ?? 0);
  return {
    ...record,
    state,
    nextRuns: record.spec.paused ? [] : nextSlots(slotClock(record), from, 3),
  };
}

export async function getSchedule(
  store: ScheduleStore,
  name: string,
  now = Date.now(),
): Promise<ScheduleView> {
  const rec = await store.specs.get(specKey(name));
  if (!rec) throw new AgentComError(ERROR_CODES.NOT_FOUND, `schedule ${name} not found`);
  const state = currentState(rec.value, (await store.states.get(stateKey(name)))?.value);
  return scheduleView(rec.value, state, now);
}

export async function listSchedules(store: ScheduleStore, now = Date.now()): Promise<ScheduleView[]> {
  const entries = await store.all.entries();
  const views: ScheduleView[] = [];
  for (const [key, { value }] of entries) {
    if (!key.startsWith('spec.') || !('spec' in value)) continue;
    const state = entries.get(stateKey(value.spec.name))?.value;
    views.push(scheduleView(value, currentState(value, state && 'fired' in state ? state : null), now));
  }
  return views.sort((a, b) => a.spec.name.localeCompare(b.spec.name));
}

/** Store a new schedule, or replace one (`replace`: its progress is kept, nothing before now fires). */
export async function createSchedule(
  store: ScheduleStore,
  spec: ScheduleSpec,
  opts: { replace: boolean; now?: number },
): Promise<ScheduleView> {
  const problem = specProblem(spec);
  if (problem) throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, problem, { path: ['spec'] });
  const now = opts.now ?? Date.now();
  const key = specKey(spec.name);
  const fresh: ScheduleRecord = { spec, createdAt: now, since: now, updatedAt: now };
  const created = await store.specs.create(key, fresh);
  if (created.ok) return scheduleView(fresh, null, now);
  if (!opts.replace)
    throw new AgentComError(ERROR_CODES.CONFLICT, `schedule ${spec.name} exists (pass replace to change it)`);
  return modify(store, spec.name, (r) => ({ ...r, spec, since: now, updatedAt: now }), now);
}

export function pauseSchedule(store: ScheduleStore, name: string, now = Date.now()) {
  return modify(store, name, (r) => ({ ...r, spec: { ...r.spec, paused: true }, updatedAt: now }), now);
}

/** Resuming skips what the pause missed: slots up to now never fire. */
export function resumeSchedule(store: ScheduleStore, name: string, now = Date.now()) {
  return modify(
    store,
    name,
    (r) => (r.spec.paused ? { ...r, spec: { ...r.spec, paused: false }, since: now, updatedAt: now } : r),
    now,
  );
}

export async function removeSchedule(store: ScheduleStore, name: string): Promise<void> {
  const rec = await store.specs.get(specKey(name));
  if (!rec) throw new AgentComError(ERROR_CODES.NOT_FOUND, `schedule ${name} not found`);
  await store.specs.delete(specKey(name));
  await store.states.delete(stateKey(name));
}

/** Compare-and-set on the spec's revision, retried when another writer got there first. */
async function modify(
  store: ScheduleStore,
  name: string,
  change: (r: ScheduleRecord) => ScheduleRecord,
  now: number,
): Promise<ScheduleView> {
  for (;;) {
    const rec = await store.specs.get(specKey(name));
    if (!rec) throw new AgentComError(ERROR_CODES.NOT_FOUND, `schedule ${name} not found`);
    const next = change(rec.value);
    if (next !== rec.value) {
      const r = await store.specs.update(specKey(name), next, rec.revision);
      if (!r.ok) continue;
    }
    const state = currentState(next, (await store.states.get(stateKey(name)))?.value);
    return scheduleView(next, state, now);
  }
}
