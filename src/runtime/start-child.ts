/**
 * @module start-child
 * Turns a validated child spec into a running process: one place for every start kind (XState
 * actor, supervisor, dynamic supervisor, OS process, custom function). The owner is attached
 * before the process can exit, and the spec's `name` is registered in the same step as the start
 * (before an actor's `start()`, OTP's "register before init"); a taken name fails the start with
 * `{ kind: 'already_started', pid }`. It does NOT retry or count restarts.
 */
import type { Logger } from 'pino';
import { ActorPid } from './actor-process.js';
import type { ChildSpec, StartResult } from './child-spec.js';
import type { Clock } from './clock.js';
import { startDynamicSupervisor } from './dynamic-supervisor.js';
import { startOsProcess } from './os-process.js';
import type { Pid, PidOwner } from './pid.js';
import type { Registry } from './registry.js';
import { startSupervisor } from './supervisor.js';

export interface StartEnv {
  readonly logger: Logger | undefined;
  readonly registry: Registry;
  readonly clock: Clock;
}

const NO_ARGS: readonly unknown[] = [];

export function startChildProcess(
  spec: ChildSpec,
  extraArgs: readonly unknown[] | undefined,
  env: StartEnv,
  owner: PidOwner,
  tag: unknown,
): StartResult | Promise<StartResult> {
  const start = spec.start;
  if (start.kind === 'actor') {
    // The synchronous path matters: it is the restart-latency and 100k-children hot path.
    let pid: ActorPid;
    try {
      pid = new ActorPid(start.logic, start, extraArgs ?? NO_ARGS, env.logger);
    } catch (e) {
      return { kind: 'error', reason: e };
    }
    if (spec.name !== undefined) {
      const r = env.registry.register(spec.name, pid);
      if (!r.ok) return { kind: 'error', reason: { kind: 'already_started', pid: r.error.pid } };
    }
    pid._setOwner(owner, tag);
    const s = pid.start();
    return s.ok ? { kind: 'ok', pid } : { kind: 'error', reason: s.error };
  }
  return startAsync(spec, extraArgs ?? NO_ARGS, env, owner, tag);
}

async function startAsync(
  spec: ChildSpec,
  extraArgs: readonly unknown[],
  env: StartEnv,
  owner: PidOwner,
  tag: unknown,
): Promise<StartResult> {
  const start = spec.start;
  // Register before start, as for actors: a taken name fails the start without running it.
  // Supervisors check their own name (inside startSupervisor); a name taken while an async start
  // ran is caught after it.
  const selfNamed = start.kind === 'supervisor' || start.kind === 'dynamic_supervisor';
  if (spec.name !== undefined && !selfNamed) {
    const holder = env.registry.whereis(spec.name);
    if (holder) return { kind: 'error', reason: { kind: 'already_started', pid: holder } };
  }
  let result: StartResult;
  try {
    switch (start.kind) {
      case 'supervisor': {
        const r = await startSupervisor(start.children, start.flags, { ...env, name: spec.name });
        result = r.ok ? { kind: 'ok', pid: r.value } : { kind: 'error', reason: r.error };
        break;
      }
      case 'dynamic_supervisor': {
        const r = await startDynamicSupervisor({ ...env, ...start.options, name: spec.name });
        result = r.ok ? { kind: 'ok', pid: r.value } : { kind: 'error', reason: r.error };
        break;
      }
      case 'process':
        result = await startOsProcess(start, env.logger);
        break;
      case 'fn':
        result = checkStartResult(await start.fn(...extraArgs, ...(start.args ?? NO_ARGS)));
        break;
      default:
        return { kind: 'error', reason: { kind: 'invalid_start', value: start } };
    }
  } catch (e) {
    return { kind: 'error', reason: e };
  }
  if (result.kind !== 'ok') return result;
  const pid = result.pid;
  if (spec.name !== undefined && !selfNamed) {
    const r = env.registry.register(spec.name, pid);
    if (!r.ok) {
      pid._kill();
      return { kind: 'error', reason: { kind: 'already_started', pid: r.error.pid } };
    }
  }
  pid._setOwner(owner, tag);
  return result;
}

function checkStartResult(r: unknown): StartResult {
  if (typeof r === 'object' && r !== null) {
    const k = (r as { kind?: unknown }).kind;
    if (k === 'ok' && typeof (r as { pid?: { _setOwner?: unknown } }).pid?._setOwner === 'function') {
      return r as StartResult;
    }
    if (k === 'ignore' || k === 'error') return r as StartResult;
  }
  return { kind: 'error', reason: { kind: 'bad_return', value: r } };
}

/** @internal re-exported for custom start functions that wrap an existing Pid. */
export type { Pid };
