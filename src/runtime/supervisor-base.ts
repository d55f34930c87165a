/**
 * @module supervisor-base
 * What the static and the dynamic supervisor share: the one-at-a-time mailbox (gen_server
 * semantics: requests and child exits are handled in order; a dead supervisor answers `noproc`),
 * supervision reports, the stop protocol (stop the children, then exit with the reason), and the
 * restart machinery (docs/runtime.md §2.7, §2.8): what an exit means for each restart type, the
 * intensity window and giving up when it is exceeded, retrying a failed restart through the
 * mailbox or after a backoff delay, and stopping one child by its shutdown spec. Subclasses say
 * which children a restart touches and how they are stopped all together.
 */
import type { Logger } from 'pino';
import type { ChildRestart } from './child-restart.js';
import type { ChildSpec } from './child-spec.js';
import { systemClock } from './clock.js';
import type { ExitReason } from './exit-reason.js';
import { isNormalExit } from './exit-reason.js';
import { OpQueue } from './op-queue.js';
import { Pid } from './pid.js';
import { defaultRegistry } from './registry.js';
import { type ReportBody, Reporter, type ReportListener, type SupervisorReport } from './reports.js';
import { type IntensityLimits, RestartWindow } from './restart-intensity.js';
import { type Err, err, ok, type Result } from './result.js';
import { isExpectedShutdownReason, terminate } from './shutdown.js';
import type { StartEnv } from './start-kind.js';

export type NoProc = { readonly kind: 'noproc' };
export type SupervisorState = 'running' | 'terminating' | 'dead';

export interface SupervisorBaseOptions {
  name?: string | undefined;
  logger?: Logger | undefined;
  registry?: StartEnv['registry'] | undefined;
  clock?: StartEnv['clock'] | undefined;
  onReport?: ReportListener | undefined;
}

export abstract class SupervisorBase extends Pid {
  readonly name: string | undefined;
  protected state: SupervisorState = 'running';
  protected readonly queue: OpQueue;
  protected readonly reporter: Reporter;
  protected readonly env: StartEnv;
  private readonly restarts: RestartWindow;

  constructor(opts: SupervisorBaseOptions, limits: IntensityLimits) {
    super();
    this.restarts = new RestartWindow(limits);
    this.name = opts.name;
    this.env = {
      logger: opts.logger,
      registry: opts.registry ?? defaultRegistry,
      clock: opts.clock ?? systemClock,
    };
    this.reporter = new Reporter(opts.logger, opts.onReport);
    this.queue = new OpQueue((e) =>
      opts.logger?.error({ actor: this.label, phase: 'internal', err: e }, 'supervisor operation threw'),
    );
  }

  protected get label(): string {
    return this.name ?? this.toString();
  }

  /**
   * What inspection and status displays show: its life state, its restart-intensity limits and the
   * restarts counted since it started (restart attempts, refused ones included). Read-only.
   */
  inspectState(): {
    readonly state: SupervisorState;
    readonly intensity: number;
    readonly period: number;
    readonly restarts: number;
  } {
    const { intensity, period } = this.restarts.limits;
    return { state: this.state, intensity, period, restarts: this.restarts.total };
  }

  /** Subscribe to supervision reports. Returns the unsubscribe function. */
  subscribe(listener: ReportListener): () => void {
    return this.reporter.subscribe(listener);
  }

  /**
   * Stop every child (in the subclass's order), then exit with `reason`. A stop while one is under
   * way waits for that one to finish (the reason is the first stop's); a dead supervisor answers
   * `noproc`.
   */
  async stop(reason: ExitReason = 'shutdown'): Promise<Result<void, NoProc>> {
    if (this.state === 'dead') return err({ kind: 'noproc' });
    this._shutdown(reason);
    await this.exited;
    return ok(undefined);
  }

  override _shutdown(reason: ExitReason): void {
    this.queue.push(async () => {
      if (this.state !== 'running') return;
      this.state = 'terminating';
      await this.terminateAll();
      this.die(reason);
    });
  }

  /** @internal */
  _onChildExit(pid: Pid, reason: ExitReason): void {
    // Only a running supervisor acts on an exit: while it terminates, the exits of the children it
    // stops are expected, and queueing 100k of them would hold every stopped child until drained.
    if (this.state !== 'running') return;
    this.queue.push(() => this.handleExit(pid, reason));
  }

  /** Stop every child by its shutdown spec. */
  protected abstract terminateAll(): Promise<void>;

  protected abstract handleExit(pid: Pid, reason: ExitReason): Promise<void> | void;

  // gen_server semantics: requests run in the mailbox, one at a time; a dead supervisor answers noproc.
  protected request<R>(op: () => R | Promise<R>): Promise<R | Err<NoProc>> {
    const noproc: Err<NoProc> = { ok: false, error: { kind: 'noproc' } };
    if (this.state !== 'running') return Promise.resolve(noproc);
    return this.queue.run<R | Err<NoProc>>(() => (this.state === 'running' ? op() : noproc));
  }

  protected report(r: ReportBody): void {
    // Progress reports nobody reads are skipped: starting 100k dynamic children is a hot path.
    if (r.type === 'progress' && this.reporter.quiet) return;
    this.reporter.emit({ ...r, supervisor: this.label } as SupervisorReport);
  }

  // --- Restarts (shared by both supervisors) -------------------------------------------------

  /**
   * A child exited on its own: reported as OTP does (always for a permanent child, otherwise when
   * abnormal). Returns whether its restart type restarts it.
   */
  protected exitNeedsRestart(
    spec: ChildSpec,
    pid: Pid,
    reason: ExitReason,
    childId: string | undefined,
  ): boolean {
    const normal = isNormalExit(reason);
    if (spec.restart === 'permanent' || !normal)
      this.report({ type: 'child_terminated', ...idOf(childId), pid, reason });
    return spec.restart === 'permanent' || (spec.restart === 'transient' && !normal);
  }

  /** Counts one restart toward intensity; false once that exceeds it (then call `giveUp`). */
  protected countRestart(): boolean {
    return this.restarts.add(this.env.clock.now());
  }

  /** Intensity exceeded: stop every child and exit `shutdown`, which the parent sees as any exit. */
  protected async giveUp(childId: string | undefined): Promise<void> {
    this.report({ type: 'reached_max_restart_intensity', ...idOf(childId) });
    this.state = 'terminating';
    await this.terminateAll();
    this.die('shutdown');
  }

  /**
   * A restart failed to start: reported, the child marked restarting, and `retry` run later,
   * through the mailbox (so pending requests, a terminateChild or a shutdown, get in first) or
   * after its backoff delay. Each retry counts toward intensity again.
   */
  protected retryLater(
    child: ChildRestart,
    childId: string | undefined,
    reason: unknown,
    retry: () => Promise<void> | undefined,
  ): void {
    this.report({ type: 'start_error', ...idOf(childId), reason });
    child.restarting = true;
    if (child.spec.backoff) this.delayRestart(child, 0, childId, retry);
    else this.queue.push(retry);
  }

  /** Runs `retry` through the mailbox after the child's backoff delay (reported `restart_scheduled`). */
  protected delayRestart(
    child: ChildRestart,
    ranForMs: number,
    childId: string | undefined,
    retry: () => Promise<void> | undefined,
  ): void {
    const { delay, attempt } = child.scheduleBackoff(ranForMs, () => this.queue.push(retry));
    this.report({ type: 'restart_scheduled', ...idOf(childId), delay, attempt });
  }

  /** Stops one child by its shutdown spec; an exit reason the spec does not expect is a `shutdown_error`. */
  protected async stopByShutdownSpec(pid: Pid, spec: ChildSpec, childId: string | undefined): Promise<void> {
    const reason = await terminate(pid, spec.shutdown);
    if (!isExpectedShutdownReason(reason, spec.shutdown, spec.restart === 'permanent'))
      this.report({ type: 'shutdown_error', ...idOf(childId), pid, reason });
  }

  protected die(reason: ExitReason): void {
    this.state = 'dead';
    this.report({ type: 'shutdown', reason });
    this._exit(reason);
  }
}

/** Report fields naming a child: its id under a static supervisor, nothing under a dynamic one. */
function idOf(childId: string | undefined): { childId?: string } {
  return childId === undefined ? {} : { childId };
}

/** A failed start as `startChild` returns it: a name clash passes through unwrapped (OTP's `{already_started, Pid}`). */
export function startChildError(
  reason: unknown,
):
  | { readonly kind: 'already_started'; readonly pid: Pid }
  | { readonly kind: 'start_error'; readonly reason: unknown } {
  const r = reason as { kind?: unknown; pid?: unknown } | null;
  if (r && typeof r === 'object' && r.kind === 'already_started' && r.pid instanceof Pid) {
    return { kind: 'already_started', pid: r.pid };
  }
  return { kind: 'start_error', reason };
}
