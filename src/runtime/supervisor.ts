/**
 * @module supervisor
 * A static supervisor with OTP semantics: children start in list order and stop in reverse
 * order, one at a time; one_for_one / one_for_all / rest_for_one; permanent / transient /
 * temporary; one restart-intensity window per supervisor (exceeding it stops every child and the
 * supervisor exits `shutdown`, which its parent sees as any other exit); failed restarts are
 * retried through the mailbox, each retry counting toward intensity; significant children and
 * autoShutdown. Requests and child exits are handled one at a time, in order (a gen_server).
 * It does NOT keep children added with startChild across its own restart by a parent (OTP).
 * See docs/runtime.md §2.4-§2.7, §2.10-§2.12.
 */
import type { Logger } from 'pino';
import { ChildRestart } from './child-restart.js';
import type { ChildSpec, ChildSpecInput, ChildType, SpecError, StartResult } from './child-spec.js';
import { checkChildSpecs, validateChildSpec } from './child-spec.js';
import type { Clock } from './clock.js';
import type { ExitReason } from './exit-reason.js';
import { shutdownWith } from './exit-reason.js';
import type { Pid } from './pid.js';
import type { Registry } from './registry.js';
import { defaultRegistry } from './registry.js';
import type { ReportListener } from './reports.js';
import type { Result } from './result.js';
import { err, ok } from './result.js';
import { startChildProcess } from './start-child.js';
import { planRestart } from './strategy.js';
import { type NoProc, SupervisorBase, startChildError } from './supervisor-base.js';
import type { FlagsError, NormalizedFlags, SupervisorFlags } from './supervisor-flags.js';
import { validateFlags } from './supervisor-flags.js';

export interface SupervisorOptions {
  /** Register the supervisor under this name. */
  name?: string | undefined;
  /** Reports and warnings go here (pino). Nested supervisors inherit it. */
  logger?: Logger | undefined;
  /** Where `name` and the children's names are registered. Default `defaultRegistry`. */
  registry?: Registry | undefined;
  /** Time source of the intensity window and backoff reset. Default: monotonic system time. */
  clock?: Clock | undefined;
  /** Subscribed before the first child starts. */
  onReport?: ReportListener | undefined;
}

export type SupervisorStartError =
  | { readonly kind: 'supervisor_data'; readonly reason: FlagsError }
  | { readonly kind: 'start_spec'; readonly reason: SpecError }
  | { readonly kind: 'already_started'; readonly pid: Pid }
  /** OTP's `{shutdown, {failed_to_start_child, Id, Reason}}`: started siblings were stopped. */
  | { readonly kind: 'failed_to_start_child'; readonly id: string; readonly reason: unknown };

/** The pid slot of `whichChildren`: a live pid, or OTP's `undefined` / `restarting`. */
export type ChildSlot = Pid | 'undefined' | 'restarting';

export interface ChildInfo {
  /** `undefined` for dynamic children. */
  readonly id: string | undefined;
  readonly pid: ChildSlot;
  readonly type: ChildType;
}

export interface ChildCounts {
  /** Specs kept, running or not. */
  readonly specs: number;
  /** Children with a live pid. */
  readonly active: number;
  readonly supervisors: number;
  readonly workers: number;
}

export type { NoProc } from './supervisor-base.js';
export type NotFound = { readonly kind: 'not_found' };

export interface StartedChild {
  /** `undefined` when the start returned `ignore`. */
  readonly pid: Pid | undefined;
  readonly info?: unknown;
}

export type StartChildError =
  | SpecError
  | NoProc
  | { readonly kind: 'already_started'; readonly pid: Pid }
  | { readonly kind: 'already_present' }
  | { readonly kind: 'start_error'; readonly reason: unknown };

export type TerminateChildError = NoProc | NotFound;
export type RestartChildError =
  | NoProc
  | NotFound
  | { readonly kind: 'running' }
  | { readonly kind: 'restarting' }
  | { readonly kind: 'start_error'; readonly reason: unknown };
export type DeleteChildError =
  | NoProc
  | NotFound
  | { readonly kind: 'running' }
  | { readonly kind: 'restarting' };

class Child extends ChildRestart {
  pid: Pid | undefined = undefined;
}

export class Supervisor extends SupervisorBase {
  readonly kind = 'supervisor';
  readonly flags: NormalizedFlags;
  /** Start order. */
  private children: Child[] = [];
  private readonly byId = new Map<string, Child>();

  /** @internal use `startSupervisor`. */
  constructor(flags: NormalizedFlags, opts: SupervisorOptions) {
    super(opts, flags);
    this.flags = flags;
  }

  // --- Public API -------------------------------------------------------------------------

  startChild(input: ChildSpecInput): Promise<Result<StartedChild, StartChildError>> {
    return this.request(async () => {
      const v = validateChildSpec(input, this.flags.autoShutdown);
      if (!v.ok) return err(v.error);
      const spec = v.value;
      const existing = this.byId.get(spec.id);
      if (existing) {
        return existing.pid
          ? err({ kind: 'already_started', pid: existing.pid })
          : err({ kind: 'already_present' });
      }
      const child = new Child(spec);
      const r = await this.startOne(child);
      if (r.kind === 'error') return err(startChildError(r.reason));
      if (r.kind === 'ignore' && spec.restart === 'temporary') return ok({ pid: undefined });
      this.add(child);
      return ok(r.kind === 'ok' ? { pid: r.pid, info: r.info } : { pid: undefined });
    });
  }

  /** Stop a child by id; its spec is kept (except temporary). Idempotent. Never restarts it. */
  terminateChild(id: string | Pid): Promise<Result<void, TerminateChildError>> {
    return this.request(async () => {
      const child = typeof id === 'string' ? this.byId.get(id) : undefined;
      if (!child) return err({ kind: 'not_found' });
      await this.stopChild(child);
      if (child.spec.restart === 'temporary') this.remove(child);
      return ok(undefined);
    });
  }

  /** Start a stopped child again (does not count toward intensity). */
  restartChild(id: string): Promise<Result<StartedChild, RestartChildError>> {
    return this.request(async () => {
      const child = this.byId.get(id);
      if (!child) return err({ kind: 'not_found' });
      if (child.restarting) return err({ kind: 'restarting' });
      if (child.pid) return err({ kind: 'running' });
      const r = await this.startOne(child);
      if (r.kind === 'error') return err({ kind: 'start_error', reason: r.reason });
      return ok(r.kind === 'ok' ? { pid: r.pid, info: r.info } : { pid: undefined });
    });
  }

  deleteChild(id: string): Promise<Result<void, DeleteChildError>> {
    return this.request(() => {
      const child = this.byId.get(id);
      if (!child) return err({ kind: 'not_found' });
      if (child.restarting) return err({ kind: 'restarting' });
      if (child.pid) return err({ kind: 'running' });
      this.remove(child);
      return ok(undefined);
    });
  }

  /** OTP order: reverse start order. A child whose exit is not yet handled shows as `undefined`. */
  whichChildren(): Promise<Result<ChildInfo[], NoProc>> {
    return this.request(() => {
      const out: ChildInfo[] = [];
      for (let i = this.children.length - 1; i >= 0; i--) {
        const c = this.children[i]!;
        out.push({ id: c.spec.id, pid: slot(c), type: c.spec.type });
      }
      return ok(out);
    });
  }

  countChildren(): Promise<Result<ChildCounts, NoProc>> {
    return this.request(() => {
      let active = 0;
      let supervisors = 0;
      for (const c of this.children) {
        if (c.pid?.alive && !c.restarting) active++;
        if (c.spec.type === 'supervisor') supervisors++;
      }
      const specs = this.children.length;
      return ok({ specs, active, supervisors, workers: specs - supervisors });
    });
  }

  /** The spec with every default filled in; by id or by a child's pid. */
  getChildSpec(id: string | Pid): Promise<Result<ChildSpec, NoProc | NotFound>> {
    return this.request(() => {
      const child =
        typeof id === 'string'
          ? this.byId.get(id)
          : this.children.find((c) => c.pid === id && c.pid !== undefined);
      return child ? ok(child.spec) : err({ kind: 'not_found' });
    });
  }

  // --- Process protocol --------------------------------------------------------------------

  override _kill(): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    for (let i = this.children.length - 1; i >= 0; i--) {
      const c = this.children[i]!;
      c.clearRetry();
      c.pid?._kill();
      c.pid = undefined;
    }
    this.reporter.emit({ type: 'shutdown', supervisor: this.label, reason: 'killed' });
    this._exit('killed');
  }

  /** @internal Start the initial children in order; on failure stop them in reverse order. */
  async _init(specs: readonly ChildSpec[]): Promise<Result<Supervisor, SupervisorStartError>> {
    return this.queue.run(async () => {
      for (const spec of specs) {
        const child = new Child(spec);
        const r = await this.startOne(child);
        if (r.kind === 'error') {
          this.report({ type: 'start_error', childId: spec.id, reason: r.reason });
          this.state = 'terminating';
          await this.terminateAll();
          this.die(shutdownWith({ failed_to_start_child: spec.id }));
          return err({ kind: 'failed_to_start_child', id: spec.id, reason: r.reason });
        }
        if (r.kind === 'ignore' && spec.restart === 'temporary') continue;
        this.add(child);
      }
      return ok(this as Supervisor);
    });
  }

  // --- Internals -----------------------------------------------------------------------------

  private add(child: Child): void {
    this.children.push(child);
    this.byId.set(child.spec.id, child);
  }

  private remove(child: Child): void {
    const i = this.children.indexOf(child);
    if (i >= 0) this.children.splice(i, 1);
    this.byId.delete(child.spec.id);
  }

  private async startOne(child: Child): Promise<StartResult> {
    const r = await startChildProcess(child.spec, undefined, this.env, this, child);
    if (r.kind === 'ok') {
      child.pid = r.pid;
      child.started(this.env.clock.now());
      this.report({ type: 'progress', childId: child.spec.id, pid: r.pid });
    } else {
      child.pid = undefined;
    }
    return r;
  }

  /** Stop a child by its shutdown spec; its exit will be ignored by handleExit. */
  private async stopChild(child: Child): Promise<void> {
    child.clearRetry();
    const pid = child.pid;
    child.pid = undefined;
    if (pid) await this.stopByShutdownSpec(pid, child.spec, child.spec.id);
  }

  /** One at a time, newest first (OTP): each child fully stopped before the next is signalled. */
  protected async terminateAll(): Promise<void> {
    // One at a time, newest first: each child is fully stopped before the next is signalled.
    for (let i = this.children.length - 1; i >= 0; i--) {
      const c = this.children[i];
      if (c) await this.stopChild(c);
    }
  }

  protected async handleExit(pid: Pid, reason: ExitReason): Promise<void> {
    if (this.state !== 'running') return;
    const child = pid._tag as Child | undefined;
    // Stale exits (a child we stopped ourselves, an incarnation already replaced) are ignored:
    // that is how bystanders of one_for_all / rest_for_one never restart or auto-shut down.
    if (!child || child.pid !== pid || this.byId.get(child.spec.id) !== child) return;
    const { id, restart, significant } = child.spec;
    child.pid = undefined;
    if (!this.exitNeedsRestart(child.spec, pid, reason, id)) {
      if (restart === 'temporary') this.remove(child);
      if (significant && this.autoShutdownTriggered(child)) {
        this.report({ type: 'auto_shutdown', childId: child.spec.id });
        this.state = 'terminating';
        await this.terminateAll();
        this.die('shutdown');
      }
      return;
    }
    if (child.spec.backoff) {
      this.delayRestart(child, this.env.clock.now() - child.startedAt, id, () => this.retry(child));
      return;
    }
    await this.restart(child);
  }

  private autoShutdownTriggered(child: Child): boolean {
    switch (this.flags.autoShutdown) {
      case 'never':
        return false;
      case 'any_significant':
        return true;
      case 'all_significant':
        return !this.children.some(
          (c) => c !== child && c.spec.significant && (c.pid !== undefined || c.restarting),
        );
    }
  }

  /** One restart attempt: counts toward intensity, then applies the strategy. */
  private async restart(child: Child): Promise<void> {
    if (!this.countRestart()) {
      child.clearRetry();
      await this.giveUp(child.spec.id);
      return;
    }
    const plan = planRestart(this.flags.strategy, this.children, this.children.indexOf(child));
    for (const sib of plan.terminate) {
      await this.stopChild(sib);
      if (sib.spec.restart === 'temporary') this.remove(sib);
    }
    for (const c of plan.start) {
      if (this.byId.get(c.spec.id) !== c) continue; // a temporary sibling removed above
      c.clearRetry();
      const r = await this.startOne(c);
      if (r.kind === 'error') {
        // OTP: the children after it stay `undefined` until its retry succeeds.
        this.retryLater(c, c.spec.id, r.reason, () => this.retry(c));
        return;
      }
      if (r.kind === 'ok') this.report({ type: 'restarted', childId: c.spec.id, pid: r.pid });
    }
  }

  private retry(child: Child): Promise<void> | undefined {
    if (this.state !== 'running' || !child.restarting || this.byId.get(child.spec.id) !== child) return;
    return this.restart(child);
  }
}

function slot(c: Child): ChildSlot {
  if (c.restarting) return 'restarting';
  return c.pid?.alive ? c.pid : 'undefined';
}

/**
 * Start a supervisor and all its children, in order. Resolves once every child has started, or
 * with an error after the started ones were stopped again (no retry, no intensity accounting).
 */
export async function startSupervisor(
  children: readonly ChildSpecInput[],
  flags: SupervisorFlags = {},
  opts: SupervisorOptions = {},
): Promise<Result<Supervisor, SupervisorStartError>> {
  const f = validateFlags(flags);
  if (!f.ok) return err({ kind: 'supervisor_data', reason: f.error });
  const c = checkChildSpecs(children, f.value.autoShutdown);
  if (!c.ok) return err({ kind: 'start_spec', reason: c.error });
  const sup = new Supervisor(f.value, opts);
  if (opts.name !== undefined) {
    const r = (opts.registry ?? defaultRegistry).register(opts.name, sup);
    if (!r.ok) return err({ kind: 'already_started', pid: r.error.pid });
  }
  return sup._init(c.value);
}
