/**
 * @module process-child
 * The `process` child kind: an OS program supervised like any child (os-process.ts): SIGTERM on
 * shutdown, SIGKILL after the timeout, exit 0 is `normal`.
 * See docs/runtime.md §1.2.
 */
import { type ChildOptions, type ChildSpecInput, childSpec } from './child-spec.js';
import { type OsProcessOptions, startOsProcess } from './os-process.js';
import { defineStartKind, type Launch } from './start-kind.js';

const launchProcess: Launch = (spec, _extraArgs, env) =>
  startOsProcess(spec.start as OsProcessOptions, env.logger);

export const processStartKind = defineStartKind({
  kind: 'process',
  check: (s) => typeof s.command === 'string',
  launch: launchProcess,
});

/** An OS process child. */
export function processChild(id: string, proc: OsProcessOptions, opts: ChildOptions = {}): ChildSpecInput {
  return childSpec(id, { kind: 'process', ...proc, launch: launchProcess }, opts);
}
