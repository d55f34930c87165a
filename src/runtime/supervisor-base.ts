/**
 * @module supervisor-base
 * What the static and the dynamic supervisor share: the one-at-a-time mailbox (gen_server
 * semantics: requests and child exits are handled in order; a dead supervisor answers `noproc`),
 * supervision reports, and the stop protocol (stop the children, then exit with the reason).
 * Subclasses say how their children are stopped and how a child exit is handled.
 */
import type { Logger } from 'pino';
import { systemClock } from './clock.js';
import type { ExitReason } from './exit-reason.js';
import { OpQueue } from './op-queue.js';
import { Pid } from './pid.js';
import { defaultRegistry } from './registry.js';
import { type ReportBody, Reporter, type ReportListener, type SupervisorReport } from './reports.js';
import { type Err, err, ok, type Result } from './result.js';
import type { StartEnv } from './start-child.js';

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

  constructor(opts: SupervisorBaseOptions) {
    super();
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
    if (this.state === 'dead') return;
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

  protected die(reason: ExitReason): void {
    this.state = 'dead';
    this.report({ type: 'shutdown', reason });
    this._exit(reason);
  }
}
