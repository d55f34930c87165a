/**
 * @module child-spec
 * Child specifications as data, validated before anything starts, in OTP's check order
 * (id, start, restart, significant, type, shutdown, then our extras: name, backoff); the first
 * failure wins and is returned as a `SpecError` value, never thrown. Unknown keys are ignored. A
 * start is checked by its kind's definition (start-kind.ts).
 * `normalizeSpec` fills every default, so `getChildSpec` shows what the supervisor really uses.
 * See docs/runtime.md §2.3.
 */
import type { Logger } from 'pino';
import type { AnyActorLogic } from 'xstate';
import type { ActorStartOptions } from './actor-process.js';
import type { BackoffOptions, NormalizedBackoff } from './backoff.js';
import { checkBackoff, normalizeBackoff } from './backoff.js';
import type { DynamicSupervisorOptions } from './dynamic-supervisor.js';
import type { OsProcessOptions } from './os-process.js';
import type { Pid } from './pid.js';
import type { Registry } from './registry.js';
import type { Shutdown } from './shutdown.js';
import type { Launch } from './start-kind.js';
import { startKindOf } from './start-kind.js';
import type { AutoShutdown, SupervisorFlags } from './supervisor-flags.js';

export type { Shutdown };
export type Restart = 'permanent' | 'transient' | 'temporary';
export type ChildType = 'worker' | 'supervisor';

/** What a start returns: OTP's `{ok, Pid} | {ok, Pid, Info} | ignore | {error, R}`. */
export type StartResult =
  | { readonly kind: 'ok'; readonly pid: Pid; readonly info?: unknown }
  | { readonly kind: 'ignore' }
  | { readonly kind: 'error'; readonly reason: unknown };

/** Given to custom start functions so they can use the tree's logger and registry. */
export interface StartContext {
  readonly logger: Logger | undefined;
  readonly registry: Registry;
}

/** Every start names its kind; one built by a helper also carries its launch function. */
interface StartBase {
  readonly kind: string;
  readonly launch?: Launch;
}

/**
 * How to start a child: built by the helpers (`actorChild`, `supervisorChild`, ...) or written by
 * hand in one of the shapes below; any other kind carries its own `launch` (start-kind.ts).
 */
export type ChildStart =
  | (StartBase & { readonly kind: 'actor'; readonly logic: AnyActorLogic } & ActorStartOptions)
  | (StartBase & {
      readonly kind: 'supervisor';
      readonly children: readonly ChildSpecInput[];
      readonly flags?: SupervisorFlags;
    })
  | (StartBase & { readonly kind: 'dynamic_supervisor'; readonly options?: DynamicSupervisorOptions })
  | (StartBase & { readonly kind: 'process' } & OsProcessOptions)
  | (StartBase & {
      readonly kind: 'fn';
      /** Called as `fn(...extraArgs, ...args)`; may also throw (a failed start). */
      readonly fn: (...args: unknown[]) => StartResult | Promise<StartResult>;
      readonly args?: readonly unknown[];
    })
  | (StartBase & { readonly launch: Launch });

/** A child spec as written by users: only `id` and `start` are required. */
export interface ChildSpecInput {
  readonly id: string;
  readonly start: ChildStart;
  /** Default `permanent`. */
  readonly restart?: Restart;
  /** ms, `brutal_kill` or `infinity`. Default 5000 for workers, `infinity` for supervisors. */
  readonly shutdown?: Shutdown;
  /** Default `worker`, or `supervisor` for supervisor starts. */
  readonly type?: ChildType;
  /** Default false. Only with `transient`/`temporary`, and only under an `autoShutdown` supervisor. */
  readonly significant?: boolean;
  /** Registered under this name in the tree's registry on every (re)start. */
  readonly name?: string;
  /** Opt-in delayed restarts (see backoff.ts). */
  readonly backoff?: BackoffOptions;
}

/** Spec fields other than `id` and `start`, as the child builders take them. */
export type ChildOptions = Omit<ChildSpecInput, 'id' | 'start'>;

/** A spec from its id, start and options (options left `undefined` are left out). */
export function childSpec(id: string, start: ChildStart, opts: ChildOptions = {}): ChildSpecInput {
  const out: Record<string, unknown> = { id, start };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) out[k] = v;
  return out as unknown as ChildSpecInput;
}

/** A child spec with every default filled in. */
export interface ChildSpec {
  readonly id: string;
  readonly start: ChildStart;
  readonly restart: Restart;
  readonly shutdown: Shutdown;
  readonly type: ChildType;
  readonly significant: boolean;
  readonly name: string | undefined;
  readonly backoff: NormalizedBackoff | undefined;
}

export type SpecError =
  | { readonly kind: 'invalid_child_spec'; readonly value: unknown }
  | { readonly kind: 'missing_id' }
  | { readonly kind: 'missing_start' }
  /** OTP's `{invalid_mfa, X}`: the start is not one of the `ChildStart` shapes. */
  | { readonly kind: 'invalid_start'; readonly value: unknown }
  | { readonly kind: 'invalid_restart_type'; readonly value: unknown }
  | { readonly kind: 'invalid_significant'; readonly value: unknown }
  /** e.g. `{ restart: 'permanent', significant: true }` or `{ autoShutdown: 'never', significant: true }`. */
  | { readonly kind: 'bad_combination'; readonly value: Readonly<Record<string, unknown>> }
  | { readonly kind: 'invalid_child_type'; readonly value: unknown }
  | { readonly kind: 'invalid_shutdown'; readonly value: unknown }
  | { readonly kind: 'invalid_name'; readonly value: unknown }
  | { readonly kind: 'invalid_backoff'; readonly value: unknown; readonly message: string }
  | { readonly kind: 'duplicate_child_name'; readonly id: string }
  /** `checkChildSpecs` was given something that is not an array. */
  | { readonly kind: 'badarg'; readonly value: unknown };

/** A known kind checks its own shape; an unknown one must carry its launch function. */
function checkStart(start: unknown): SpecError | undefined {
  if (start === undefined) return { kind: 'missing_start' };
  if (typeof start !== 'object' || start === null) return { kind: 'invalid_start', value: start };
  const s = start as Record<string, unknown>;
  if (typeof s.kind !== 'string') return { kind: 'invalid_start', value: start };
  if (s.launch !== undefined && typeof s.launch !== 'function')
    return { kind: 'invalid_start', value: start };
  const def = startKindOf(s.kind);
  const ok = def ? def.check(s) : typeof s.launch === 'function';
  return ok ? undefined : { kind: 'invalid_start', value: start };
}

function isShutdown(v: unknown): boolean {
  return v === 'brutal_kill' || v === 'infinity' || (typeof v === 'number' && Number.isInteger(v) && v >= 0);
}

// Normalized specs are cached by identity: a dynamic supervisor typically starts thousands of
// children from one spec object, and each would otherwise hold its own normalized copy.
const normalized = new WeakMap<object, ChildSpec>();

/**
 * Validate one spec. `autoShutdown`, when given, also checks OTP's
 * `{bad_combination, [{auto_shutdown, never}, {significant, true}]}`.
 */
export function validateChildSpec(
  spec: unknown,
  autoShutdown?: AutoShutdown,
): { ok: true; value: ChildSpec } | { ok: false; error: SpecError } {
  if (typeof spec === 'object' && spec !== null) {
    const cached = normalized.get(spec);
    if (cached && (autoShutdown === undefined || autoShutdown !== 'never' || !cached.significant)) {
      return { ok: true, value: cached };
    }
  }
  const error = checkSpec(spec, autoShutdown);
  if (error) return { ok: false, error };
  const value = normalizeSpec(spec as ChildSpecInput);
  normalized.set(spec as object, value);
  return { ok: true, value };
}

function checkSpec(spec: unknown, autoShutdown: AutoShutdown | undefined): SpecError | undefined {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    return { kind: 'invalid_child_spec', value: spec };
  const s = spec as Record<string, unknown>;
  if (s.id === undefined || s.id === null) return { kind: 'missing_id' };
  const startErr = checkStart(s.start);
  if (startErr) return startErr;
  if (
    s.restart !== undefined &&
    s.restart !== 'permanent' &&
    s.restart !== 'transient' &&
    s.restart !== 'temporary'
  )
    return { kind: 'invalid_restart_type', value: s.restart };
  if (s.significant !== undefined && typeof s.significant !== 'boolean')
    return { kind: 'invalid_significant', value: s.significant };
  if (s.significant === true) {
    if ((s.restart ?? 'permanent') === 'permanent')
      return { kind: 'bad_combination', value: { restart: 'permanent', significant: true } };
    if (autoShutdown === 'never')
      return { kind: 'bad_combination', value: { autoShutdown: 'never', significant: true } };
  }
  if (s.type !== undefined && s.type !== 'worker' && s.type !== 'supervisor')
    return { kind: 'invalid_child_type', value: s.type };
  if (s.shutdown !== undefined && !isShutdown(s.shutdown))
    return { kind: 'invalid_shutdown', value: s.shutdown };
  if (s.name !== undefined && (typeof s.name !== 'string' || s.name === ''))
    return { kind: 'invalid_name', value: s.name };
  if (s.backoff !== undefined) {
    const message = checkBackoff(s.backoff);
    if (message) return { kind: 'invalid_backoff', value: s.backoff, message };
  }
  return undefined;
}

export function normalizeSpec(s: ChildSpecInput): ChildSpec {
  const type: ChildType = s.type ?? startKindOf(s.start.kind)?.type ?? 'worker';
  return {
    id: s.id,
    start: s.start,
    restart: s.restart ?? 'permanent',
    shutdown: s.shutdown ?? (type === 'supervisor' ? 'infinity' : 5000),
    type,
    significant: s.significant ?? false,
    name: s.name,
    backoff: s.backoff ? normalizeBackoff(s.backoff) : undefined,
  };
}

/** OTP `check_childspecs/2`: validate a list, including duplicate ids. */
export function checkChildSpecs(
  specs: unknown,
  autoShutdown?: AutoShutdown,
): { ok: true; value: ChildSpec[] } | { ok: false; error: SpecError } {
  if (!Array.isArray(specs)) return { ok: false, error: { kind: 'badarg', value: specs } };
  const out: ChildSpec[] = [];
  const seen = new Set<string>();
  for (const spec of specs) {
    const r = validateChildSpec(spec, autoShutdown);
    if (!r.ok) return r;
    if (seen.has(r.value.id)) return { ok: false, error: { kind: 'duplicate_child_name', id: r.value.id } };
    seen.add(r.value.id);
    out.push(r.value);
  }
  return { ok: true, value: out };
}
