/**
 * @module strategy
 * OTP's restart strategies as a pure plan (`supervisor:restart/3`): given the children in start
 * order and the index of the one to restart, which siblings to terminate (reverse start order)
 * and which children to start (start order). The failed child itself is already dead and is not
 * in `terminate`. Removing temporary siblings is the caller's job.
 * See docs/runtime.md §2.5.
 */
import type { Strategy } from './supervisor-flags.js';

export interface RestartPlan<T> {
  readonly terminate: readonly T[];
  readonly start: readonly T[];
}

export function planRestart<T>(strategy: Strategy, children: readonly T[], failed: number): RestartPlan<T> {
  const c = children[failed];
  if (c === undefined) return { terminate: [], start: [] };
  switch (strategy) {
    case 'one_for_one':
      return { terminate: [], start: [c] };
    case 'one_for_all':
      return { terminate: children.filter((_, i) => i !== failed).reverse(), start: children.slice() };
    case 'rest_for_one': {
      const after = children.slice(failed);
      return { terminate: after.slice(1).reverse(), start: after };
    }
  }
}
