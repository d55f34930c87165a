/**
 * @module runtime
 * Erlang/OTP supervision for XState v5 actors: supervisors, a dynamic supervisor, a registry,
 * call/cast, OS-process children, opt-in backoff, supervision reports. Every expected outcome is
 * a `Result` value (`{ ok: true, value } | { ok: false, error: { kind, ... } }`), never an exception.
 * Imports only xstate, pino (types) and Node built-ins.
 */
import type { AnyActorLogic } from 'xstate';
import type { ActorStartOptions } from './actor-process.js';
import type { ChildSpecInput, StartResult } from './child-spec.js';
import type { DynamicSupervisorOptions } from './dynamic-supervisor.js';
import type { OsProcessOptions } from './os-process.js';
import type { SupervisorFlags } from './supervisor-flags.js';

export {
  ActorPid,
  type ActorStartOptions,
  SHUTDOWN_EVENT,
  type ShutdownEvent,
  spawnActor,
  stopTree,
} from './actor-process.js';
export { type BackoffOptions, backoffDelay, type NormalizedBackoff, nextAttempt } from './backoff.js';
export {
  type CallError,
  type CallEvent,
  type CallOptions,
  type CallTarget,
  call,
  cast,
  DEFAULT_CALL_TIMEOUT,
  type ReplyFn,
} from './call.js';
export {
  type ChildSpec,
  type ChildSpecInput,
  type ChildStart,
  type ChildType,
  checkChildSpecs,
  type Restart,
  type Shutdown,
  type SpecError,
  type StartContext,
  type StartResult,
  validateChildSpec,
} from './child-spec.js';
export { type Clock, ManualClock, systemClock } from './clock.js';
export {
  type DynamicStartChildError,
  DynamicSupervisor,
  type DynamicSupervisorOptions,
  type DynamicSupervisorStartError,
  startDynamicSupervisor,
} from './dynamic-supervisor.js';
export { describeReason, type ExitReason, errorReason, isNormalExit, shutdownWith } from './exit-reason.js';
export { type LineListener, type OsProcessOptions, OsProcessPid, startOsProcess } from './os-process.js';
export { type ExitListener, exit, Pid } from './pid.js';
export { defaultRegistry, type RegisterError, Registry } from './registry.js';
export type { ReportListener, SupervisorReport } from './reports.js';
export { addRestart, type IntensityLimits, type RestartDecision } from './restart-intensity.js';
export { type Err, err, type Ok, ok, type Result } from './result.js';
export { planRestart, type RestartPlan } from './strategy.js';
export {
  type ChildCounts,
  type ChildInfo,
  type ChildSlot,
  type DeleteChildError,
  type RestartChildError,
  type StartChildError,
  type StartedChild,
  Supervisor,
  type SupervisorOptions,
  type SupervisorStartError,
  startSupervisor,
  type TerminateChildError,
} from './supervisor.js';
export {
  type AutoShutdown,
  type FlagsError,
  type Strategy,
  type SupervisorFlags,
  validateFlags,
} from './supervisor-flags.js';

/** Spec fields other than `id` and `start`. */
export type ChildOptions = Omit<ChildSpecInput, 'id' | 'start'>;

/**
 * A child running XState logic (a machine, fromCallback, fromPromise, ...) as its own root actor.
 * @example actorChild('counter', counterMachine, { input: { start: 0 }, name: 'counter' })
 */
export function actorChild<TLogic extends AnyActorLogic>(
  id: string,
  logic: TLogic,
  opts: ActorStartOptions<TLogic> & ChildOptions = {},
): ChildSpecInput {
  const { restart, shutdown, type, significant, name, backoff, ...start } = opts;
  return withOptions(
    { id, start: { kind: 'actor', logic, ...(start as ActorStartOptions) } },
    { restart, shutdown, type, significant, name, backoff },
  );
}

/** A nested supervisor (type `supervisor`, shutdown `infinity` by default). */
export function supervisorChild(
  id: string,
  children: readonly ChildSpecInput[],
  flags: SupervisorFlags = {},
  opts: ChildOptions = {},
): ChildSpecInput {
  return withOptions({ id, start: { kind: 'supervisor', children, flags } }, opts);
}

/** A nested dynamic supervisor (its logger/registry/clock are inherited from the parent). */
export function dynamicSupervisorChild(
  id: string,
  options: Omit<DynamicSupervisorOptions, 'logger' | 'registry' | 'clock' | 'name'> = {},
  opts: ChildOptions = {},
): ChildSpecInput {
  return withOptions({ id, start: { kind: 'dynamic_supervisor', options } }, opts);
}

/** An OS process child. */
export function processChild(id: string, proc: OsProcessOptions, opts: ChildOptions = {}): ChildSpecInput {
  return withOptions({ id, start: { kind: 'process', ...proc } }, opts);
}

/** A custom start: `fn(...extraArgs, ...args)` resolves to `{ kind: 'ok', pid } | { kind: 'ignore' } | { kind: 'error', reason }`. */
export function fnChild(
  id: string,
  fn: (...args: unknown[]) => StartResult | Promise<StartResult>,
  args: readonly unknown[] = [],
  opts: ChildOptions = {},
): ChildSpecInput {
  return withOptions({ id, start: { kind: 'fn', fn, args } }, opts);
}

function withOptions(spec: ChildSpecInput, opts: ChildOptions): ChildSpecInput {
  const out: Record<string, unknown> = { ...spec };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) out[k] = v;
  return out as unknown as ChildSpecInput;
}
