/**
 * @module schedules/process
 * Fires schedules (run by the hub holding the lease). It follows the `spec.*` keys of the schedules
 * bucket, keeps one timer per active schedule for its next slot, and at a slot submits the slot's
 * task through the TaskQueue or emits its pheromone into the field, then records the slot in
 * `state.<name>` (compare-and-set).
 *
 * Exactly one task (or pheromone) per slot: its idempotency key names the schedule's incarnation
 * and the slot (slots.ts), so a hub that fires a slot another fired before it crashed, or two hubs
 * firing at once for a moment, submit the same task; the state's revision keeps their counts
 * straight. The submit comes before the state write, so a crash between them re-fires (the same
 * task) and never loses the slot. Which due slots fire is decided by planSlots (slots.ts). A
 * failure (no TaskQueue, a lost lease) is retried with backoff; nothing waits for the next slot.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import type { ScheduleRecord, ScheduleState } from '../../src/protocol/schedule.js';
import { isTerminal, type TaskRecord } from '../../src/protocol/task.js';
import { call, type Registry } from '../../src/runtime/index.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import { type FieldStore, findKey, isLive, openFieldStore } from '../field/index.js';
import type { AssignReply } from '../task-queue/index.js';
import { carryOut, type Fired } from './fire.js';
import { planSlots, slotAction, slotClock } from './slots.js';
import { currentState, openScheduleStore, type ScheduleStore, SPEC_KEYS, stateKey } from './store.js';

export interface SchedulesInput {
  bus: Bus;
  registry: Registry;
  log: Logger;
  /** The TaskQueue's registered name. */
  taskQueue: string;
}

export type SchedulesMessage =
  | { type: 'spec'; name: string; record: ScheduleRecord | null }
  | { type: 'due'; name: string };

/** Timers longer than this are re-armed (Node's limit is 2^31-1 ms; a day keeps drift small). */
const MAX_TIMER_MS = 86_400_000;
const RETRY_BASE_MS = 500;
const RETRY_MAX_MS = 30_000;

/** Another writer moved `state.<name>` (a second hub for a moment): read it again and re-plan. */
class StateConflict extends Error {}

export class SchedulesProcess implements Server<SchedulesMessage> {
  private readonly records = new Map<string, ScheduleRecord>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly runs = new Map<string, Promise<void>>();
  private readonly failures = new Map<string, number>();
  private readonly log: Logger;
  private stopped = false;

  private constructor(
    private readonly input: SchedulesInput,
    private readonly store: ScheduleStore,
    private readonly field: FieldStore,
    private readonly ctx: ServerContext,
  ) {
    this.log = input.log.child({ actor: 'schedules' });
  }

  static async start(input: SchedulesInput, ctx: ServerContext): Promise<SchedulesProcess> {
    const p = new SchedulesProcess(
      input,
      await openScheduleStore(input.bus),
      await openFieldStore(input.bus),
      ctx,
    );
    const watch = await p.store.specs.watch({ key: SPEC_KEYS });
    p.stopWatch = () => watch.stop();
    void (async () => {
      for await (const c of watch) {
        const name = c.key.slice('spec.'.length);
        if (c.error) p.log.warn({ schedule: name, error: c.error }, 'invalid schedule ignored');
        const msg: SchedulesMessage = { type: 'spec', name, record: c.operation === 'put' ? c.value : null };
        ctx.send(msg);
      }
    })().catch((err) => ctx.crash(err));
    p.log.info({ phase: 'start' }, 'schedules started');
    return p;
  }

  private stopWatch: () => void = () => {};

  handle(msg: SchedulesMessage): void {
    if (msg.type === 'spec') {
      if (msg.record) this.records.set(msg.name, msg.record);
      else this.records.delete(msg.name);
      this.failures.delete(msg.name);
    }
    this.evaluate(msg.name);
  }

  async terminate(): Promise<void> {
    this.stopped = true;
    this.stopWatch();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.all(this.runs.values());
  }

  /** Runs of one schedule are serial; a run asked for while one is going runs after it. */
  private evaluate(name: string): void {
    const previous = this.runs.get(name) ?? Promise.resolve();
    const run = previous
      .then(() => this.run(name))
      .then(
        () => {
          this.failures.delete(name);
        },
        (err) => this.failed(name, err),
      )
      .finally(() => {
        if (this.runs.get(name) === run) this.runs.delete(name);
      });
    this.runs.set(name, run);
  }

  private failed(name: string, err: unknown): void {
    if (err instanceof StateConflict) {
      this.log.info({ schedule: name }, 'schedule state moved under us; planning again');
      this.evaluate(name);
      return;
    }
    const n = (this.failures.get(name) ?? 0) + 1;
    this.failures.set(name, n);
    const ms = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (n - 1));
    this.log.warn({ err, schedule: name, retry_ms: ms }, 'schedule not fired; trying again');
    this.arm(name, ms);
  }

  private arm(name: string, ms: number): void {
    clearTimeout(this.timers.get(name));
    if (this.stopped) return;
    const due: SchedulesMessage = { type: 'due', name };
    const t = setTimeout(() => this.ctx.send(due), Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    t.unref();
    this.timers.set(name, t);
  }

  private async run(name: string): Promise<void> {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
    const record = this.records.get(name);
    if (!record || record.spec.paused || this.stopped) return;
    const stored = await this.store.states.get(stateKey(name));
    let revision = stored?.revision ?? null;
    let state: ScheduleState = currentState(record, stored?.value) ?? {
      v: 1,
      createdAt: record.createdAt,
      lastSlot: null,
      lastTaskId: null,
      lastPheromoneId: null,
      lastFiredAt: null,
      fired: 0,
      skipped: 0,
      lastSkip: null,
    };
    const clock = slotClock(record);
    const now = Date.now();
    const plan = planSlots(clock, record.spec, Math.max(record.since, state.lastSlot ?? 0), now);
    const firing = new Set(plan.fire);
    let unwritten = false;
    for (const slot of [...plan.missed, ...plan.fire].sort((a, b) => a - b)) {
      if (!firing.has(slot)) {
        state = {
          ...state,
          lastSlot: slot,
          skipped: state.skipped + 1,
          lastSkip: { slot, reason: 'missed' },
        };
        unwritten = true;
        continue;
      }
      state = await this.fire(record, slot, state);
      revision = await this.write(name, state, revision);
      unwritten = false;
    }
    if (unwritten) revision = await this.write(name, state, revision);
    if (plan.missed.length)
      this.log.info(
        { schedule: name, phase: 'missed', slots: plan.missed.length, policy: record.spec.catchup },
        'missed slots skipped',
      );
    const next = clock.next(Math.max(now, record.since, state.lastSlot ?? 0));
    if (next !== null) this.arm(name, next - Date.now());
  }

  /** Carry out the slot's action (or skip it as an overlap); the state after it. */
  private async fire(record: ScheduleRecord, slot: number, state: ScheduleState): Promise<ScheduleState> {
    const name = record.spec.name;
    const skip = (reason: 'overlap' | 'invalid') => ({
      ...state,
      lastSlot: slot,
      skipped: state.skipped + 1,
      lastSkip: { slot, reason },
    });
    if (record.spec.overlap === 'skip' && (await this.previousOpen(state))) {
      this.log.info({ schedule: name, slot, phase: 'overlap' }, 'slot skipped: the previous one is open');
      return skip('overlap');
    }
    const action = slotAction(record, slot);
    let fired: Fired;
    try {
      fired = await carryOut(action, {
        field: this.field,
        submit: (submit) => this.ask<AssignReply>({ type: 'submit', submit }),
      });
    } catch (err) {
      // The spec was checked when it was stored; a refusal now (other errors are retried) means the
      // task or pheromone itself cannot be taken, and trying again would not change that.
      if (!(err instanceof AgentComError) || err.code !== ERROR_CODES.INVALID_PAYLOAD) throw err;
      this.log.error({ schedule: name, slot, err }, 'slot action refused; slot skipped');
      return skip('invalid');
    }
    this.log.info({ schedule: name, slot, ...fired, phase: 'fired' }, 'schedule fired');
    // The other kind's last id is cleared: after a replace it must not hold the new action back.
    const last = { lastTaskId: null, lastPheromoneId: null, ...fired };
    return { ...state, ...last, lastSlot: slot, lastFiredAt: Date.now(), fired: state.fired + 1 };
  }

  /** The previous slot's task is unfinished, or its pheromone still in the field. */
  private async previousOpen(state: ScheduleState): Promise<boolean> {
    if (state.lastTaskId) {
      const task = await this.ask<TaskRecord | null>({ type: 'get', taskId: state.lastTaskId });
      if (task !== null && !isTerminal(task.status)) return true;
    }
    if (state.lastPheromoneId) {
      const key = await findKey(this.field, state.lastPheromoneId);
      const p = key ? await this.field.kv.get(key) : null;
      return p !== null && isLive(p.value, Date.now());
    }
    return false;
  }

  private async write(name: string, state: ScheduleState, revision: number | null): Promise<number> {
    const r =
      revision === null
        ? await this.store.states.create(stateKey(name), state)
        : await this.store.states.update(stateKey(name), state, revision);
    if (!r.ok) throw new StateConflict();
    return r.revision;
  }

  private async ask<R>(msg: { type: string; [k: string]: unknown }): Promise<R> {
    const r = await call<R>(this.input.taskQueue, msg, { registry: this.input.registry, timeout: 10_000 });
    if (!r.ok)
      throw new AgentComError(
        ERROR_CODES.UNAVAILABLE,
        `${this.input.taskQueue} is not available (${r.error.kind})`,
      );
    return r.value;
  }
}
