/**
 * @module fn-child
 * The `fn` child kind, OTP's `{M, F, A}` in its plain form: `fn(...extraArgs, ...args)` returns
 * (or resolves to) `{ kind: 'ok', pid } | { kind: 'ignore' } | { kind: 'error', reason }`; a
 * throw or rejection is a failed start, anything else is `bad_return`. The pid it returns is
 * attached (named, owned) after it returns; a name already taken fails the start before `fn` runs.
 * See docs/runtime.md §1.2.
 */
import { type ChildOptions, type ChildSpecInput, childSpec, type StartResult } from './child-spec.js';
import { defineStartKind, type Launch } from './start-kind.js';

export type StartFunction = (...args: unknown[]) => StartResult | Promise<StartResult>;

type FnStart = { readonly kind: 'fn'; readonly fn: StartFunction; readonly args?: readonly unknown[] };

const launchFn: Launch = (spec, extraArgs) => {
  const start = spec.start as FnStart;
  return start.args?.length ? start.fn(...extraArgs, ...start.args) : start.fn(...extraArgs);
};

export const fnStartKind = defineStartKind({
  kind: 'fn',
  check: (s) => typeof s.fn === 'function',
  launch: launchFn,
});

/** A custom start: `fn(...extraArgs, ...args)` resolves to `{ kind: 'ok', pid } | { kind: 'ignore' } | { kind: 'error', reason }`. */
export function fnChild(
  id: string,
  fn: StartFunction,
  args: readonly unknown[] = [],
  opts: ChildOptions = {},
): ChildSpecInput {
  return childSpec(id, { kind: 'fn', fn, args, launch: launchFn }, opts);
}
