/**
 * @module actor-child
 * The `actor` child kind: XState logic (a machine, `fromCallback`, `fromPromise`, ...) run as its
 * own root actor (actor-process.ts). The pid is created, its name registered and its owner
 * attached before the actor starts, so its first actions can already be reached by name; an
 * error in its initial state is a failed start.
 * See docs/runtime.md §1.2.
 */
import type { AnyActorLogic } from 'xstate';
import { ActorPid, type ActorStartOptions } from './actor-process.js';
import { type ChildOptions, type ChildSpecInput, childSpec } from './child-spec.js';
import { defineStartKind, type Launch } from './start-kind.js';

type ActorStart = { readonly kind: 'actor'; readonly logic: AnyActorLogic } & ActorStartOptions;

const launchActor: Launch = (spec, extraArgs, env, attach) => {
  const start = spec.start as ActorStart;
  let pid: ActorPid;
  try {
    pid = new ActorPid(start.logic, start, extraArgs, env.logger);
  } catch (e) {
    return { kind: 'error', reason: e };
  }
  const refused = attach(pid);
  if (refused) return refused;
  const s = pid.start();
  return s.ok ? { kind: 'ok', pid } : { kind: 'error', reason: s.error };
};

export const actorStartKind = defineStartKind({
  kind: 'actor',
  check: (s) => typeof s.logic === 'object' && s.logic !== null,
  launch: launchActor,
});

/**
 * A child running XState logic (a machine, fromCallback, fromPromise, ...) as its own root actor.
 * @example actorChild('counter', counterMachine, { input: { start: 0 }, name: 'counter' })
 */
export function actorChild<TLogic extends AnyActorLogic>(
  id: string,
  logic: TLogic,
  opts: ActorStartOptions<TLogic> & ChildOptions = {},
): ChildSpecInput {
  const { restart, shutdown, type, significant, name, backoff, ...start } = opts;
  return childSpec(
    id,
    { kind: 'actor', logic, ...(start as ActorStartOptions), launch: launchActor },
    { restart, shutdown, type, significant, name, backoff },
  );
}
