/**
 * @module runtime
 * Erlang/OTP supervision for XState v5 actors: supervisors, a dynamic supervisor, a registry,
 * call/cast, OS-process children, opt-in backoff, supervision reports. Every expected outcome is
 * a `Result` value (`{ ok: true, value } | { ok: false, error: { kind, ... } }`), never an exception.
 * Imports only xstate, pino (types) and Node built-ins. The architecture and its guarantees are in
 * docs/runtime.md.
 */

export { actorChild, actorStartKind } from './actor-child.js';
export {
  ActorPid,
  type ActorStartOptions,
  SHUTDOWN_EVENT,
  type ShutdownEvent,
  spawnActor,
  stopTree,
} from './actor-process.js';
export {
  type BackoffOptions,
  backoffDelay,
  type ExponentialBackoff,
  exponentialDelay,
  type JitterOptions,
  type NormalizedBackoff,
  nextAttempt,
} from './backoff.js';
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
  type ChildOptions,
  type ChildSpec,
  type ChildSpecInput,
  type ChildStart,
  type ChildType,
  checkChildSpecs,
  childSpec,
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
export { fnChild, fnStartKind, type StartFunction } from './fn-child.js';
export { type LineListener, type OsProcessOptions, OsProcessPid, startOsProcess } from './os-process.js';
export { type ExitListener, exit, Pid } from './pid.js';
export { processChild, processStartKind } from './process-child.js';
export { defaultRegistry, type RegisterError, Registry } from './registry.js';
export type { ReportListener, SupervisorReport } from './reports.js';
export { addRestart, type IntensityLimits, type RestartDecision } from './restart-intensity.js';
export { type Err, err, type Ok, ok, type Result } from './result.js';
export { type Server, type ServerContext, serverChild, serverStartKind, startServer } from './server.js';
export { type Attach, defineStartKind, type Launch, type StartEnv, type StartKind } from './start-kind.js';
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
  dynamicSupervisorChild,
  dynamicSupervisorStartKind,
  supervisorChild,
  supervisorStartKind,
} from './supervisor-child.js';
export {
  type AutoShutdown,
  type FlagsError,
  type Strategy,
  type SupervisorFlags,
  validateFlags,
} from './supervisor-flags.js';
export { forEachYielding, type YieldingOptions, yieldToLoop } from './yielding.js';
