/**
 * @module exit-reason
 * Exit reasons, classified as OTP/Elixir do: `normal`, `shutdown` and `{ kind: 'shutdown' }` are
 * normal (a transient child is not restarted, no `child_terminated` report unless permanent);
 * everything else is abnormal. Reasons are plain data so they can be logged and compared.
 * See docs/runtime.md §2.1.
 */

export type ExitReason =
  /** The actor finished on its own: an XState final state, an OS process exiting 0. */
  | 'normal'
  /** Stopped by its supervisor (or its own graceful shutdown). */
  | 'shutdown'
  /** Forcibly stopped: `brutal_kill`, or still alive after its shutdown timeout. */
  | 'killed'
  /** A shutdown carrying a detail, OTP's `{shutdown, Term}`: still a normal exit. */
  | { readonly kind: 'shutdown'; readonly detail: unknown }
  /** A crash: a thrown error in an action/guard, an unhandled invoked-actor failure, a throwing start. */
  | { readonly kind: 'error'; readonly error: unknown }
  /** An OS process that exited non-zero or died from a signal it was not asked to take. */
  | { readonly kind: 'exit'; readonly code: number | null; readonly signal: string | null };

export const shutdownWith = (detail: unknown): ExitReason => ({ kind: 'shutdown', detail });
export const errorReason = (error: unknown): ExitReason => ({ kind: 'error', error });

/** True if `v` has the shape of an exit reason (for reasons chosen by user code at run time). */
export function isExitReason(v: unknown): v is ExitReason {
  if (v === 'normal' || v === 'shutdown' || v === 'killed') return true;
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  if (r.kind === 'shutdown') return 'detail' in r;
  if (r.kind === 'error') return 'error' in r;
  if (r.kind === 'exit')
    return (
      (typeof r.code === 'number' || r.code === null) && (typeof r.signal === 'string' || r.signal === null)
    );
  return false;
}

/** OTP's `normal | shutdown | {shutdown, _}`: the reasons that do not restart a transient child. */
export function isNormalExit(reason: ExitReason): boolean {
  return (
    reason === 'normal' || reason === 'shutdown' || (typeof reason === 'object' && reason.kind === 'shutdown')
  );
}

/** A compact, log-friendly rendering (errors become their message and stack). */
export function describeReason(reason: ExitReason): unknown {
  if (typeof reason === 'string') return reason;
  if (reason.kind === 'error') {
    const e = reason.error;
    return e instanceof Error ? { kind: 'error', message: e.message, stack: e.stack } : reason;
  }
  return reason;
}
