/**
 * @module start-child
 * Turns a validated child spec into a running process, whatever its kind (start-kind.ts): the
 * spec's name is checked before the start runs and registered before the process runs code of
 * its own (OTP's "register before init"); a taken name fails the start with
 * `{ kind: 'already_started', pid }` and a process started meanwhile under it is killed. The
 * owner is attached before the process can exit unseen. What a start returns is checked. It
 * does NOT retry or count restarts.
 * See docs/runtime.md §1.2.
 */
import type { ChildSpec, StartResult } from './child-spec.js';
import type { Pid, PidOwner } from './pid.js';
import type { Attach, StartEnv } from './start-kind.js';
import { startKindOf } from './start-kind.js';

export type { StartEnv } from './start-kind.js';

const NO_ARGS: readonly unknown[] = [];

export function startChildProcess(
  spec: ChildSpec,
  extraArgs: readonly unknown[] | undefined,
  env: StartEnv,
  owner: PidOwner,
  tag: unknown,
): StartResult | Promise<StartResult> {
  const start = spec.start;
  const def = startKindOf(start.kind);
  const launch = start.launch ?? def?.launch;
  if (!launch) return { kind: 'error', reason: { kind: 'invalid_start', value: start } };
  const name = def?.registersOwnName ? undefined : spec.name;
  if (name !== undefined) {
    const holder = env.registry.whereis(name);
    if (holder) return alreadyStarted(holder);
  }
  let attached: Pid | undefined;
  const attach: Attach = (pid) => {
    if (name !== undefined) {
      const r = env.registry.register(name, pid);
      if (!r.ok) return alreadyStarted(r.error.pid);
    }
    pid._setOwner(owner, tag);
    attached = pid;
    return undefined;
  };
  const finish = (returned: unknown): StartResult => {
    const r = checkStartResult(returned);
    if (r.kind !== 'ok' || r.pid === attached) return r;
    // Launched without attaching (custom functions, OS processes, supervisors): attach now; a
    // name taken while an async start ran loses to its holder.
    const refused = attach(r.pid);
    if (refused) r.pid._kill();
    return refused ?? r;
  };
  let returned: StartResult | Promise<StartResult>;
  try {
    returned = launch(spec, extraArgs ?? NO_ARGS, env, attach);
  } catch (e) {
    return { kind: 'error', reason: e };
  }
  // The synchronous path matters: actor starts are the restart-latency and 100k-children hot path.
  if (isThenable(returned))
    return Promise.resolve(returned).then(finish, (reason: unknown) => ({ kind: 'error', reason }));
  return finish(returned);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

function alreadyStarted(pid: Pid): StartResult {
  return { kind: 'error', reason: { kind: 'already_started', pid } };
}

/** OTP's `{ok, Pid} | {ok, Pid, Info} | ignore | {error, R}`; anything else is `bad_return`. */
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
