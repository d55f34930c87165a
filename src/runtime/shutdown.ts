/**
 * @module shutdown
 * OTP's shutdown protocol for one child (`supervisor:shutdown/1`) and for a group of dynamic
 * children (`terminate_dynamic_children`): ask for a graceful stop, wait up to the shutdown
 * timeout, then kill. Resolves with the child's observed exit reason, which may be its own if it
 * died on its own meanwhile. It does NOT decide whether that reason was acceptable (see
 * `isExpectedShutdownReason`).
 * See docs/runtime.md §2.10.
 */
import type { ExitReason } from './exit-reason.js';
import { isNormalExit } from './exit-reason.js';
import type { Pid } from './pid.js';

export type Shutdown = number | 'brutal_kill' | 'infinity';

export function terminate(
  pid: Pid,
  shutdown: Shutdown,
  reason: ExitReason = 'shutdown',
): Promise<ExitReason> {
  if (pid.exitReason !== undefined) return Promise.resolve(pid.exitReason);
  if (shutdown === 'brutal_kill') {
    pid._kill();
    return pid.exited;
  }
  pid._shutdown(reason);
  if (shutdown === 'infinity' || pid.exitReason !== undefined) return pid.exited;
  return new Promise((resolve) => {
    const timer = setTimeout(() => pid._kill(), shutdown);
    pid.onExit((_p, r) => {
      clearTimeout(timer);
      resolve(r);
    });
  });
}

/**
 * Terminate many children at once: every child is signalled immediately, and one timer per
 * distinct shutdown value kills the stragglers (Elixir DynamicSupervisor). Order is unspecified.
 */
export async function terminateConcurrently(
  children: Iterable<{ pid: Pid; shutdown: Shutdown }>,
): Promise<void> {
  const groups = new Map<Shutdown, Pid[]>();
  for (const { pid, shutdown } of children) {
    if (pid.exitReason !== undefined) continue;
    let g = groups.get(shutdown);
    if (!g) {
      g = [];
      groups.set(shutdown, g);
    }
    g.push(pid);
  }
  const waits: Promise<unknown>[] = [];
  for (const [shutdown, pids] of groups) {
    for (const pid of pids) {
      if (shutdown === 'brutal_kill') pid._kill();
      else pid._shutdown('shutdown');
    }
    const pending = pids.filter((p) => p.exitReason === undefined);
    if (pending.length === 0) continue;
    const all = Promise.all(pending.map((p) => p.exited));
    if (typeof shutdown === 'number') {
      let timer: NodeJS.Timeout | undefined;
      const killer = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          for (const p of pending) if (p.exitReason === undefined) p._kill();
          resolve();
        }, shutdown);
      });
      waits.push(
        Promise.race([all, killer]).then(() => {
          clearTimeout(timer);
          return all;
        }),
      );
    } else {
      waits.push(all);
    }
  }
  await Promise.all(waits);
}

/** OTP's accepted shutdown reasons; anything else is reported as `shutdown_error`. */
export function isExpectedShutdownReason(
  reason: ExitReason,
  shutdown: Shutdown,
  permanent: boolean,
): boolean {
  if (shutdown === 'brutal_kill' && reason === 'killed') return true;
  if (shutdown !== 'brutal_kill' && reason === 'shutdown') return true;
  return !permanent && isNormalExit(reason);
}
