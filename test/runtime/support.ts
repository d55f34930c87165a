/**
 * Test harness for the runtime, after OTP's supervisor_SUITE vocabulary: `W` builds child starts
 * with a chosen start behaviour, `crash`/`stopNormal`/`exit` end a child with a chosen reason,
 * and report helpers wait for supervision events instead of sleeping.
 */
import { setup } from 'xstate';
import type {
  ChildSlot,
  ChildStart,
  DynamicSupervisor,
  Pid,
  ReplyFn,
  StartResult,
  Supervisor,
  SupervisorReport,
} from '../../src/runtime/index.js';
import { spawnActor } from '../../src/runtime/index.js';

type WorkerEvent =
  | { type: 'crash' }
  | { type: 'stop' }
  | { type: 'ping'; reply: ReplyFn<string> }
  | { type: 'supervisor.shutdown' };

/**
 * A test worker: `crash` throws (exit `{ kind: 'error' }`), `stop` reaches a final state
 * (`normal`), `ping` answers `pong` to a call.
 */
export const worker = setup({ types: { events: {} as WorkerEvent } }).createMachine({
  id: 'worker',
  initial: 'running',
  states: {
    running: {
      on: {
        crash: {
          actions: () => {
            throw new Error('died');
          },
        },
        stop: 'done',
        ping: { actions: ({ event }) => event.reply('pong') },
      },
    },
    done: { type: 'final' },
  },
});

export function fnStart(fn: (...args: unknown[]) => StartResult | Promise<StartResult>): ChildStart {
  return { kind: 'fn', fn };
}

/** Start modes of the harness worker. */
export const W = {
  ok: (): ChildStart => ({ kind: 'actor', logic: worker }),
  okInfo: (info: unknown): ChildStart => fnStart(() => ({ ...spawnActor(worker), info })),
  ignore: (): ChildStart => fnStart(() => ({ kind: 'ignore' })),
  error: (reason: unknown): ChildStart => fnStart(() => ({ kind: 'error', reason })),
  bad: (value: unknown): ChildStart => fnStart(() => value as StartResult),
  throws: (e: unknown): ChildStart =>
    fnStart(() => {
      throw e;
    }),
  /** The n-th start uses `modes[n]`; the last mode repeats. `calls.n` counts starts. */
  sequence: (modes: readonly ('ok' | 'ignore' | 'error')[], calls = { n: 0 }): ChildStart =>
    fnStart(() => {
      const mode = modes[Math.min(calls.n, modes.length - 1)];
      calls.n++;
      if (mode === 'ok') return spawnActor(worker);
      if (mode === 'ignore') return { kind: 'ignore' };
      return { kind: 'error', reason: 'boom' };
    }),
  /** A trapping worker that ignores the shutdown request: it is killed after its timeout. */
  busyOnShutdown: (): ChildStart => ({ kind: 'actor', logic: worker, trapExit: true }),
};

/** A start that blocks until the test releases it (OTP supervisor_3 "gated"). */
export function gated() {
  const waiting: ((r: StartResult) => void)[] = [];
  let starts = 0;
  return {
    start: fnStart(
      () =>
        new Promise<StartResult>((resolve) => {
          starts++;
          waiting.push(resolve);
        }),
    ),
    get starts() {
      return starts;
    },
    get pending() {
      return waiting.length;
    },
    release(mode: 'ok' | 'ignore' | 'error') {
      const r = waiting.shift();
      if (!r) throw new Error('no start is waiting');
      r(
        mode === 'ok'
          ? spawnActor(worker)
          : mode === 'ignore'
            ? { kind: 'ignore' }
            : { kind: 'error', reason: 'gated' },
      );
    },
  };
}

export const crash = (pid: Pid) => pid.send({ type: 'crash' });
export const stopNormal = (pid: Pid) => pid.send({ type: 'stop' });

type AnySup = Supervisor | DynamicSupervisor;

/** Unwrap an ok result or fail the test with the error. */
export function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: unknown }): T {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r.error, replacer)}`);
  return r.value;
}

function replacer(_k: string, v: unknown) {
  return typeof v === 'object' &&
    v !== null &&
    'id' in v &&
    'kind' in v &&
    typeof (v as Pid).alive === 'boolean'
    ? String(v)
    : v;
}

export async function wc(sup: AnySup): Promise<{ id: string | undefined; pid: ChildSlot }[]> {
  return unwrap(await sup.whichChildren()).map(({ id, pid }) => ({ id, pid }));
}

/** OTP's `cnt`: [specs, active, supervisors, workers]. */
export async function cnt(sup: AnySup): Promise<[number, number, number, number]> {
  const c = unwrap(await sup.countChildren());
  return [c.specs, c.active, c.supervisors, c.workers];
}

export async function pidOf(sup: Supervisor, id: string): Promise<Pid> {
  const entry = unwrap(await sup.whichChildren()).find((c) => c.id === id);
  if (!entry || typeof entry.pid === 'string') throw new Error(`child ${id} is not running (${entry?.pid})`);
  return entry.pid;
}

/** Record every report of a supervisor. */
export function recorder(sup: AnySup) {
  const reports: SupervisorReport[] = [];
  const waiters: { pred: (r: SupervisorReport) => boolean; resolve: (r: SupervisorReport) => void }[] = [];
  sup.subscribe((r) => {
    reports.push(r);
    for (const w of [...waiters]) {
      if (w.pred(r)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(r);
      }
    }
  });
  return {
    reports,
    /** Resolve on the next report (from now on) matching `pred`; reject after `timeout` ms. */
    next(pred: (r: SupervisorReport) => boolean, timeout = 5000): Promise<SupervisorReport> {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('timed out waiting for a report')), timeout);
        waiters.push({
          pred,
          resolve: (r) => {
            clearTimeout(t);
            resolve(r);
          },
        });
      });
    },
  };
}

/** Resolve with the exit reason, or reject after `timeout` ms. */
export function exitOf(pid: Pid, timeout = 5000) {
  return Promise.race([
    pid.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${pid} did not exit`)), timeout).unref(),
    ),
  ]);
}

export const HOUR = 3_600_000;
