/**
 * @module actor-process
 * Runs one XState v5 actor as its own root (its own system) and maps its life to OTP exits:
 * error (thrown action/guard, unhandled invoked failure) -> `{ kind: 'error', error }`; final
 * state -> the reason its output names (`{ exitReason }`), else the reason a shutdown request
 * asked for, else `normal`; stopped by its supervisor -> the requested reason; force-stopped ->
 * `killed`.
 * An `error` observer is attached before `start()`, so XState never rethrows globally; the
 * orphaned children of a crashed actor are stopped; a user `inspect` callback is wrapped so it can
 * never break the actor. It does NOT persist snapshots or restart anything.
 * See docs/runtime.md §1.1, §2.1.
 */
import type { Logger } from 'pino';
import type { Actor, AnyActorLogic, AnyActorRef, InspectionEvent, Snapshot } from 'xstate';
import { createActor } from 'xstate';
import type { ExitReason } from './exit-reason.js';
import { errorReason, isExitReason } from './exit-reason.js';
import { Pid } from './pid.js';

/** The event a `trapExit` actor receives when its supervisor asks it to stop. */
export const SHUTDOWN_EVENT = 'supervisor.shutdown';
export type ShutdownEvent = { type: typeof SHUTDOWN_EVENT; reason: ExitReason };

export interface ActorStartOptions<TLogic extends AnyActorLogic = AnyActorLogic> {
  /** Input given to the logic. */
  input?: unknown;
  /** Builds the input from a dynamic supervisor's `extraArgs` (prepended to nothing else). */
  inputFrom?: (...extraArgs: unknown[]) => unknown;
  /** Restore from a persisted snapshot instead of starting fresh. */
  snapshot?: Snapshot<unknown>;
  systemId?: string;
  /** Inspection callback; exceptions it throws are caught and logged, never seen by the actor. */
  inspect?: (event: InspectionEvent) => void;
  /**
   * Graceful shutdown, OTP `trap_exit` style: the actor receives `{ type: 'supervisor.shutdown',
   * reason }` and has until its `shutdown` timeout to reach a final state (it then exits with the
   * requested reason); after that it is force-stopped and exits `killed`. Without it the actor is
   * stopped at once (XState `stop()`: fromCallback cleanups run, promise signals abort).
   */
  trapExit?: boolean;
  /**
   * Async cleanup run before the actor is stopped, bounded by the shutdown timeout (e.g. flush a
   * fromCallback's resources). A rejection is recorded as the exit reason `{ kind: 'error' }`.
   */
  onShutdown?: (actor: Actor<TLogic>, reason: ExitReason) => void | Promise<void>;
}

/** Stop every still-active descendant of an actor: XState leaves them running after a crash. */
export function stopTree(actor: AnyActorRef): void {
  const children = (actor.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> }).children;
  if (!children) return;
  for (const child of Object.values(children)) {
    if (!child) continue;
    stopTree(child);
    if (child.getSnapshot().status === 'active') {
      // The public API refuses to stop a non-root actor; this event is XState's own stop signal.
      child.send({ type: 'xstate.stop' } as never);
    }
  }
}

/**
 * The reason a final state names in its output (`{ exitReason }`). One that is not an exit
 * reason is a crash that says so, rather than a silent `normal`.
 */
function chosenExitReason(snapshot: { status: string; output?: unknown }): ExitReason | undefined {
  if (snapshot.status !== 'done') return undefined;
  const out = snapshot.output as { exitReason?: unknown } | null | undefined;
  if (typeof out !== 'object' || out === null || !('exitReason' in out)) return undefined;
  if (isExitReason(out.exitReason)) return out.exitReason;
  return errorReason(
    new TypeError(
      `invalid exitReason in final output: ${JSON.stringify(out.exitReason)} (expected 'normal', 'shutdown', 'killed' or { kind: 'shutdown' | 'error' | 'exit', ... })`,
    ),
  );
}

/** The actors whose `send` is running, innermost last (their transitions run inside it). */
const stepping: Pid[] = [];

export class ActorPid<TLogic extends AnyActorLogic = AnyActorLogic> extends Pid {
  readonly kind = 'actor';
  readonly actor: Actor<TLogic>;
  private pendingReason: ExitReason | undefined = undefined;
  private readonly opts: ActorStartOptions<TLogic> | undefined;

  constructor(
    logic: TLogic,
    opts?: ActorStartOptions<TLogic>,
    extraArgs?: readonly unknown[],
    logger?: Logger,
  ) {
    super();
    this.opts = opts;
    const userInspect = opts?.inspect;
    const input = opts?.inputFrom ? opts.inputFrom(...(extraArgs ?? [])) : opts?.input;
    this.actor = createActor(logic, {
      input,
      snapshot: opts?.snapshot,
      systemId: opts?.systemId,
      inspect: userInspect
        ? (ev: InspectionEvent) => {
            try {
              userInspect(ev);
            } catch (e) {
              logger?.warn({ actor: this.toString(), phase: 'inspect', err: e }, 'inspect callback threw');
            }
          }
        : undefined,
    } as never) as Actor<TLogic>;
    // Subscribed before start(): an error observer must exist or XState rethrows globally.
    this.actor.subscribe({
      error: (e: unknown) => {
        stopTree(this.actor);
        this._exit(errorReason(e));
      },
      complete: () => {
        // A final state may name its exit reason in its output (`{ exitReason }`, as an Erlang
        // process calls exit(Reason)); otherwise it exits with the reason a shutdown request asked
        // for, or `normal` (a final state, or a stop() by someone other than the supervisor).
        this._exit(chosenExitReason(this.actor.getSnapshot()) ?? this.pendingReason ?? 'normal');
      },
    });
  }

  /** Start the actor; reports an error thrown by its initial state as a failed start. */
  start(): { ok: true } | { ok: false; error: unknown } {
    try {
      this.actor.start();
    } catch (e) {
      this._exit(errorReason(e));
      return { ok: false, error: e };
    }
    const snap = this.actor.getSnapshot() as { status: string; error?: unknown };
    if (snap.status === 'error') return { ok: false, error: snap.error };
    return { ok: true };
  }

  override send(event: { type: string }): void {
    // XState runs the transition inside this call when the actor is idle: while it runs, this is
    // the innermost process executing (see `_isBusy`).
    stepping.push(this);
    try {
      this.actor.send(event as never);
    } finally {
      stepping.pop();
    }
  }

  /**
   * True while this actor's own code runs and is the one calling: its transition is under way
   * (XState's mailbox holds the event being processed in `_current`) and no other process's step
   * is nested inside it. When B's action casts to A and A's action calls B, A is the caller: B is
   * busy but the call is not B calling itself, and B answers after its current step.
   */
  override _isBusy(): boolean {
    const a = this.actor as unknown as { mailbox?: { _current?: unknown }; _processingStatus?: number };
    const processing = a.mailbox?._current != null && a._processingStatus === 1;
    if (!processing) return false;
    const innermost = stepping[stepping.length - 1];
    return innermost === undefined || innermost === this;
  }

  override _trapsExits(): boolean {
    return this.opts?.trapExit === true;
  }

  override _shutdown(reason: ExitReason): void {
    if (!this.alive) return;
    this.pendingReason = reason;
    const onShutdown = this.opts?.onShutdown;
    if (onShutdown) {
      let p: void | Promise<void>;
      try {
        p = onShutdown(this.actor, reason);
      } catch (e) {
        this.stopNow(errorReason(e));
        return;
      }
      Promise.resolve(p).then(
        () => this.stopNow(reason),
        (e) => this.stopNow(errorReason(e)),
      );
      return;
    }
    if (this.opts?.trapExit) {
      this.actor.send({ type: SHUTDOWN_EVENT, reason } as never);
      return;
    }
    this.stopNow(reason);
  }

  override _kill(): void {
    this.stopNow('killed');
  }

  private stopNow(reason: ExitReason): void {
    if (!this.alive) return;
    this.pendingReason = reason;
    stopTree(this.actor);
    this.actor.stop();
    // stop() is deferred when called from inside the actor's own transition: the process is
    // dead for the runtime from now on either way.
    this._exit(reason);
  }
}

/**
 * Start logic as a standalone actor process: for custom `fn` starts that decide at start time
 * (e.g. `ignore` or an error) and otherwise run an actor.
 */
export function spawnActor<TLogic extends AnyActorLogic>(
  logic: TLogic,
  opts?: ActorStartOptions<TLogic>,
): { kind: 'ok'; pid: ActorPid<TLogic> } | { kind: 'error'; reason: unknown } {
  const pid = new ActorPid(logic, opts);
  const s = pid.start();
  return s.ok ? { kind: 'ok', pid } : { kind: 'error', reason: s.error };
}
