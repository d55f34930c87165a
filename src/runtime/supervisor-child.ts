/**
 * @module supervisor-child
 * The `supervisor` and `dynamic_supervisor` child kinds: nested supervisors (type `supervisor`,
 * shutdown `infinity` by default). They register their own name before starting their children,
 * and inherit the parent's logger, registry and clock.
 * See docs/runtime.md §1.2.
 */
import { type ChildOptions, type ChildSpecInput, childSpec } from './child-spec.js';
import { type DynamicSupervisorOptions, startDynamicSupervisor } from './dynamic-supervisor.js';
import { defineStartKind, type Launch } from './start-kind.js';
import { startSupervisor } from './supervisor.js';
import type { SupervisorFlags } from './supervisor-flags.js';

type SupervisorStart = {
  readonly kind: 'supervisor';
  readonly children: readonly ChildSpecInput[];
  readonly flags?: SupervisorFlags;
};
type DynamicSupervisorStart = {
  readonly kind: 'dynamic_supervisor';
  readonly options?: DynamicSupervisorOptions;
};

const launchSupervisor: Launch = async (spec, _extraArgs, env) => {
  const start = spec.start as SupervisorStart;
  const r = await startSupervisor(start.children, start.flags, { ...env, name: spec.name });
  return r.ok ? { kind: 'ok', pid: r.value } : { kind: 'error', reason: r.error };
};

const launchDynamicSupervisor: Launch = async (spec, _extraArgs, env) => {
  const start = spec.start as DynamicSupervisorStart;
  const r = await startDynamicSupervisor({ ...env, ...start.options, name: spec.name });
  return r.ok ? { kind: 'ok', pid: r.value } : { kind: 'error', reason: r.error };
};

export const supervisorStartKind = defineStartKind({
  kind: 'supervisor',
  check: (s) => Array.isArray(s.children),
  launch: launchSupervisor,
  type: 'supervisor',
  registersOwnName: true,
});

export const dynamicSupervisorStartKind = defineStartKind({
  kind: 'dynamic_supervisor',
  check: () => true,
  launch: launchDynamicSupervisor,
  type: 'supervisor',
  registersOwnName: true,
});

/** A nested supervisor (type `supervisor`, shutdown `infinity` by default). */
export function supervisorChild(
  id: string,
  children: readonly ChildSpecInput[],
  flags: SupervisorFlags = {},
  opts: ChildOptions = {},
): ChildSpecInput {
  return childSpec(id, { kind: 'supervisor', children, flags, launch: launchSupervisor }, opts);
}

/** A nested dynamic supervisor (its logger/registry/clock are inherited from the parent). */
export function dynamicSupervisorChild(
  id: string,
  options: Omit<DynamicSupervisorOptions, 'logger' | 'registry' | 'clock' | 'name'> = {},
  opts: ChildOptions = {},
): ChildSpecInput {
  return childSpec(id, { kind: 'dynamic_supervisor', options, launch: launchDynamicSupervisor }, opts);
}
