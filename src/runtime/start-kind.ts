/**
 * @module start-kind
 * How the kernel starts a child without knowing what it is (docs/runtime.md §1.2). A
 * child spec's `start` names its kind and carries its own `launch` function (OTP's `{M, F, A}`);
 * a hand-written start without one (`{ kind: 'actor', logic }`) gets it from the kind's
 * definition, kept in an open table that each kind's own module fills. It does NOT start
 * anything itself (start-child.ts does) and knows no kind by name.
 */
import type { Logger } from 'pino';
import type { ChildSpec, ChildType, StartResult } from './child-spec.js';
import type { Clock } from './clock.js';
import type { Pid } from './pid.js';
import type { Registry } from './registry.js';

/** What a start may use: the supervisor's logger, registry and clock. */
export interface StartEnv {
  readonly logger: Logger | undefined;
  readonly registry: Registry;
  readonly clock: Clock;
}

/**
 * Registers the spec's name for `pid` and makes the supervisor its owner. A launch calls it
 * before the process runs any code of its own (OTP registers before `init`); it returns the
 * failed start to hand back when the name is taken. A launch that never calls it is attached
 * after it returns.
 */
export type Attach = (pid: Pid) => StartResult | undefined;

/** Starts one child. `extraArgs` are a dynamic supervisor's, prepended to the start's own. */
export type Launch = (
  spec: ChildSpec,
  extraArgs: readonly unknown[],
  env: StartEnv,
  attach: Attach,
) => StartResult | Promise<StartResult>;

export interface StartKind {
  readonly kind: string;
  /** Whether a start of this kind is well-formed (a failed check is the spec error `invalid_start`). */
  check(start: Readonly<Record<string, unknown>>): boolean;
  readonly launch: Launch;
  /** The child type when the spec gives none. Default `worker`. */
  readonly type?: ChildType;
  /** The started process registers the spec's name itself (supervisors do, before their children). */
  readonly registersOwnName?: boolean;
}

const kinds = new Map<string, StartKind>();

/** Adds a kind to the table. Defining a kind twice with different definitions is a programming error. */
export function defineStartKind(def: StartKind): StartKind {
  const existing = kinds.get(def.kind);
  if (existing && existing !== def) throw new TypeError(`start kind '${def.kind}' is already defined`);
  kinds.set(def.kind, def);
  return def;
}

export function startKindOf(kind: unknown): StartKind | undefined {
  return typeof kind === 'string' ? kinds.get(kind) : undefined;
}
