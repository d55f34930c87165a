/**
 * @module call
 * `call` and `cast`, gen_server style, to a pid or a registered name. A call delivers the message
 * with a `reply` function added; the callee answers by calling it (once; later calls are no-ops).
 * Failures are values, as OTP's reasons: `noproc`, `calling_self`, `timeout`, or the callee's exit
 * reason if it dies before replying. A reply after the timeout is dropped: each call has its own
 * reply function, so it can never reach a later call. A timeout does NOT cancel the work.
 *
 * @example An XState machine answering a call:
 *   on: { get: { actions: ({ context, event }) => event.reply(context.count) } }
 *   const r = await call<number>('counter', { type: 'get' });   // { ok: true, value: 3 }
 * See docs/runtime.md §2.14.
 */
import type { ExitReason } from './exit-reason.js';
import type { Pid } from './pid.js';
import type { Registry } from './registry.js';
import { defaultRegistry } from './registry.js';
import type { Result } from './result.js';
import { err, ok } from './result.js';

/** How a callee answers: call it once with the reply. */
export type ReplyFn<R = unknown> = (reply: R) => void;

/** The event a callee receives for `call(target, message)`: the message plus `reply`. */
export type CallEvent<M extends { type: string } = { type: string }, R = unknown> = M & { reply: ReplyFn<R> };

export type CallError =
  | { readonly kind: 'noproc' }
  | { readonly kind: 'calling_self' }
  | { readonly kind: 'timeout' }
  /** The callee exited before replying. */
  | { readonly kind: 'exit'; readonly reason: ExitReason };

export interface CallOptions {
  /** ms or `infinity`. Default 5000. */
  timeout?: number | 'infinity';
  /** Where names are looked up. Default: the process-wide `defaultRegistry`. */
  registry?: Registry;
  /** The calling process, when it has one: a call to itself fails with `calling_self`. */
  from?: Pid;
}

export const DEFAULT_CALL_TIMEOUT = 5000;

export type CallTarget = Pid | string;

export function resolveTarget(target: CallTarget, registry: Registry = defaultRegistry): Pid | undefined {
  const pid = typeof target === 'string' ? registry.whereis(target) : target;
  return pid?.alive ? pid : undefined;
}

export function call<R = unknown>(
  target: CallTarget,
  message: { type: string; [k: string]: unknown },
  opts: CallOptions = {},
): Promise<Result<R, CallError>> {
  const pid = resolveTarget(target, opts.registry);
  if (!pid) return Promise.resolve(err({ kind: 'noproc' }));
  // In JS a self-call would not deadlock (it would queue behind the current step), but OTP says
  // calling_self, and a machine waiting on itself is a bug worth surfacing. `_isBusy` is true when
  // the call is made synchronously from inside the target's own transition.
  if (opts.from === pid || pid._isBusy()) return Promise.resolve(err({ kind: 'calling_self' }));
  const timeout = opts.timeout ?? DEFAULT_CALL_TIMEOUT;
  return new Promise((resolve) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let unmonitor: (() => void) | undefined;
    const settle = (r: Result<R, CallError>) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      unmonitor?.();
      resolve(r);
    };
    const reply: ReplyFn<R> = (value) => settle(ok(value));
    unmonitor = pid.onExit((_p, reason) => settle(err({ kind: 'exit', reason })));
    if (done) return;
    if (timeout !== 'infinity') timer = setTimeout(() => settle(err({ kind: 'timeout' })), timeout);
    try {
      pid.send({ ...message, reply } as { type: string });
    } catch {
      // Delivery itself failing means the callee cannot take messages: as good as not there.
      settle(err({ kind: 'noproc' }));
    }
  });
}

/** Fire and forget (OTP cast). Returns whether a live process was found to deliver to. */
export function cast(
  target: CallTarget,
  message: { type: string; [k: string]: unknown },
  registry?: Registry,
): boolean {
  const pid = resolveTarget(target, registry);
  if (!pid) return false;
  try {
    pid.send(message);
  } catch {
    return false;
  }
  return true;
}
