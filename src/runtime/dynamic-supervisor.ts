/**
 * @module dynamic-supervisor
 * Elixir's DynamicSupervisor: children are started one by one with `startChild(spec)`, kept in a
 * Map keyed by pid (O(1) per operation), restarted one_for_one with `extraArgs` prepended on every
 * (re)start, capped by `maxChildren` (restarting children count). Shutdown is concurrent, with
 * one timer per distinct shutdown value. A child whose restart returns `ignore` is dropped.
 * It does NOT support significant children or autoShutdown (Elixir rejects them too): an option it
 * does not have is a `supervisor_data` error, never ignored.
 * See docs/runtime.md §2.9.
 */
import type { Logger } from 'pino';
import { ChildRestart } from './child-restart.js';
import type { ChildSpec, ChildSpecInput, StartResult } from './child-spec.js';
import { validateChildSpec } from './child-spec.js';
import type { Clock } from './clock.js';
import type { ExitReason } from './exit-reason.js';
import type { Pid } from './pid.js';
import type { Registry } from './registry.js';
import { defaultRegistry } from './registry.js';
import type { ReportListener } from './reports.js';
import type { Result } from './result.js';
import { err, ok } from './result.js';
import { terminateConcurrently } from './shutdown.js';
import { startChildProcess } from './start-child.js';
import type {
  ChildCounts,
  ChildInfo,
  NoProc,
  NotFound,
  StartChildError,
  StartedChild,
} from './supervisor.js';
import { SupervisorBase, startChildError } from './supervisor-base.js';
import type { FlagsError } from './supervisor-flags.js';
import { DEFAULT_INTENSITY, DEFAULT_PERIOD, isIntensity, isPeriod } from './supervisor-flags.js';

export interface DynamicSupervisorOptions {
  /** Only `one_for_one` (the default), as in Elixir. */
  strategy?: 'one_for_one';
  /** Default `infinity`. `0` rejects every start. */
  maxChildren?: number | 'infinity';
  /** Prepended to every child's start arguments (fn starts; `inputFrom` of actor starts). */
  extraArgs?: readonly unknown[];
  /** Default 3. */
  intensity?: number;
  /** ms, default 5000. */
  period?: number;
  name?: string | undefined;
  logger?: Logger | undefined;
  registry?: Registry | undefined;
  clock?: Clock | undefined;
  onReport?: ReportListener | undefined;
}

export type DynamicSupervisorStartError =
  | {
      readonly kind: 'supervisor_data';
      readonly reason:
        | FlagsError
        | { kind: 'invalid_max_children'; value: unknown }
        /** An option a dynamic supervisor does not have (`autoShutdown`, a typo): never ignored. */
        | { kind: 'unknown_option'; key: string };
    }
  | { readonly kind: 'already_started'; readonly pid: Pid };

export type DynamicStartChildError = StartChildError | { readonly kind: 'max_children' };

// One small record per child (a ChildRestart): the 100k-children budget is ~8 KB each, XState
// takes ~4 KB.
type DynChild = ChildRestart;

export class DynamicSupervisor extends SupervisorBase {
  readonly kind = 'dynamic_supervisor';
  /** Keyed by the current pid; a child waiting to restart stays under its old pid (Elixir). */
  private readonly children = new Map<Pid, DynChild>();
  private readonly maxChildren: number;
  private readonly extraArgs: readonly unknown[];

  /** @internal use `startDynamicSupervisor`. */
  constructor(opts: DynamicSupervisorOptions) {
    super(opts, { intensity: opts.intensity ?? DEFAULT_INTENSITY, period: opts.period ?? DEFAULT_PERIOD });
    this.maxChildren =
      opts.maxChildren === undefined || opts.maxChildren === 'infinity' ? Infinity : opts.maxChildren;
    this.extraArgs = opts.extraArgs ?? [];
  }

  /** The spec's `id` is required but ignored; `significant: true` is rejected. */
  startChild(input: ChildSpecInput): Promise<Result<StartedChild, DynamicStartChildError>> {
    // Not `async`: an actor start completes synchronously, and this is the 100k-children hot path.
    return this.request(
      ():
        | Result<StartedChild, DynamicStartChildError>
        | Promise<Result<StartedChild, DynamicStartChildError>> => {
        const v = validateChildSpec(input);
        if (!v.ok) return err(v.error);
        const spec = v.value;
        if (spec.significant) return err({ kind: 'invalid_significant', value: true });
        if (this.children.size >= this.maxChildren) return err({ kind: 'max_children' });
        const child = new ChildRestart(spec);
        const r = this.startOne(child);
        return r instanceof Promise ? r.then((x) => this.afterStart(child, x)) : this.afterStart(child, r);
      },
    );
  }

  private afterStart(child: DynChild, r: StartResult): Result<StartedChild, DynamicStartChildError> {
    if (r.kind === 'error') return err(startChildError(r.reason));
    if (r.kind === 'ignore') return ok({ pid: undefined });
    this.children.set(r.pid, child);
    return ok(r.info === undefined ? { pid: r.pid } : { pid: r.pid, info: r.info });
  }

  /** By pid only. A child waiting to restart can be terminated by its old pid. */
  terminateChild(pid: Pid): Promise<Result<void, NoProc | NotFound>> {
    return this.request(async () => {
      const child = this.children.get(pid);
      if (!child) return err({ kind: 'not_found' });
      this.children.delete(pid);
      child.clearRetry();
      if (pid.alive) await this.stopByShutdownSpec(pid, child.spec, undefined);
      return ok(undefined);
    });
  }

  /** Order unspecified. `id` is always `undefined`. */
  whichChildren(): Promise<Result<ChildInfo[], NoProc>> {
    return this.request(() => {
      const out: ChildInfo[] = [];
      for (const [pid, c] of this.children) {
        out.push({
          id: undefined,
          pid: c.restarting ? 'restarting' : pid.alive ? pid : 'undefined',
          type: c.spec.type,
        });
      }
      return ok(out);
    });
  }

  countChildren(): Promise<Result<ChildCounts, NoProc>> {
    return this.request(() => {
      let active = 0;
      let supervisors = 0;
      for (const [pid, c] of this.children) {
        if (!c.restarting && pid.alive) active++;
        if (c.spec.type === 'supervisor') supervisors++;
      }
      const specs = this.children.size;
      return ok({ specs, active, supervisors, workers: specs - supervisors });
    });
  }

  getChildSpec(pid: Pid): Promise<Result<ChildSpec, NoProc | NotFound>> {
    return this.request(() => {
      const c = this.children.get(pid);
      return c ? ok(c.spec) : err({ kind: 'not_found' });
    });
  }

  override _kill(): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    for (const [pid, c] of this.children) {
      c.clearRetry();
      pid._kill();
    }
    this.children.clear();
    this.reporter.emit({ type: 'shutdown', supervisor: this.label, reason: 'killed' });
    this._exit('killed');
  }

  // --- Internals -----------------------------------------------------------------------------

  private startOne(child: DynChild): StartResult | Promise<StartResult> {
    const r = startChildProcess(child.spec, this.extraArgs, this.env, this, undefined);
    if (r instanceof Promise) return r.then((x) => this.started(child, x));
    return this.started(child, r);
  }

  private started(child: DynChild, r: StartResult): StartResult {
    if (r.kind === 'ok') {
      child.started(this.env.clock.now());
      this.report({ type: 'progress', pid: r.pid });
    }
    return r;
  }

  /** All at once (OTP simple_one_for_one / Elixir DynamicSupervisor), one timer per shutdown value. */
  protected async terminateAll(): Promise<void> {
    const list: { pid: Pid; shutdown: ChildSpec['shutdown'] }[] = [];
    for (const [pid, c] of this.children) {
      c.clearRetry();
      list.push({ pid, shutdown: c.spec.shutdown });
    }
    this.children.clear();
    await terminateConcurrently(list);
  }

  protected async handleExit(pid: Pid, reason: ExitReason): Promise<void> {
    if (this.state !== 'running') return;
    const child = this.children.get(pid);
    if (!child || child.restarting) return;
    if (!this.exitNeedsRestart(child.spec, pid, reason, undefined)) {
      this.children.delete(pid);
      return;
    }
    child.restarting = true;
    if (child.spec.backoff) {
      this.delayRestart(child, this.env.clock.now() - child.startedAt, undefined, () =>
        this.retry(pid, child),
      );
      return;
    }
    await this.restart(pid, child);
  }

  private async restart(oldPid: Pid, child: DynChild): Promise<void> {
    if (!this.countRestart()) {
      this.children.delete(oldPid);
      await this.giveUp(undefined);
      return;
    }
    const r = await this.startOne(child);
    if (r.kind === 'ok') {
      this.children.delete(oldPid);
      this.children.set(r.pid, child);
      this.report({ type: 'restarted', pid: r.pid });
      return;
    }
    if (r.kind === 'ignore') {
      this.children.delete(oldPid);
      return;
    }
    this.retryLater(child, undefined, r.reason, () => this.retry(oldPid, child));
  }

  private retry(oldPid: Pid, child: DynChild): Promise<void> | undefined {
    if (this.state !== 'running' || this.children.get(oldPid) !== child || !child.restarting) return;
    return this.restart(oldPid, child);
  }
}

const OPTION_KEYS: ReadonlySet<string> = new Set<keyof DynamicSupervisorOptions>([
  'strategy',
  'maxChildren',
  'extraArgs',
  'intensity',
  'period',
  'name',
  'logger',
  'registry',
  'clock',
  'onReport',
]);

export async function startDynamicSupervisor(
  opts: DynamicSupervisorOptions = {},
): Promise<Result<DynamicSupervisor, DynamicSupervisorStartError>> {
  for (const key of Object.keys(opts))
    if (!OPTION_KEYS.has(key))
      return err({ kind: 'supervisor_data', reason: { kind: 'unknown_option', key } });
  if (opts.strategy !== undefined && opts.strategy !== 'one_for_one')
    return err({ kind: 'supervisor_data', reason: { kind: 'invalid_strategy', value: opts.strategy } });
  if (opts.intensity !== undefined && !isIntensity(opts.intensity))
    return err({ kind: 'supervisor_data', reason: { kind: 'invalid_intensity', value: opts.intensity } });
  if (opts.period !== undefined && !isPeriod(opts.period))
    return err({ kind: 'supervisor_data', reason: { kind: 'invalid_period', value: opts.period } });
  const m = opts.maxChildren;
  if (m !== undefined && m !== 'infinity' && !(typeof m === 'number' && Number.isInteger(m) && m >= 0))
    return err({ kind: 'supervisor_data', reason: { kind: 'invalid_max_children', value: m } });
  const sup = new DynamicSupervisor(opts);
  if (opts.name !== undefined) {
    const r = (opts.registry ?? defaultRegistry).register(opts.name, sup);
    if (!r.ok) return err({ kind: 'already_started', pid: r.error.pid });
  }
  return ok(sup);
}
