/**
 * @module pid
 * A `Pid` is the identity of one incarnation of a supervised process (an XState actor, a
 * supervisor, an OS process, or anything a custom start function wraps). A restart always makes a
 * new Pid. A Pid exits exactly once; its exit reason is final, and exit listeners run once.
 * It does NOT restart itself: that is the supervisor's job.
 * See docs/runtime.md §1.1, §2.2.
 */
import type { ExitReason } from './exit-reason.js';

export type ExitListener = (pid: Pid, reason: ExitReason) => void;

/** @internal The supervisor side of the link: told about a child's exit after other listeners. */
export interface PidOwner {
  _onChildExit(pid: Pid, reason: ExitReason): void;
}

let nextPid = 1;

export abstract class Pid {
  /** Unique for the lifetime of this Node process; never reused. */
  readonly id: number = nextPid++;
  /** `undefined` while the process is alive. */
  exitReason: ExitReason | undefined = undefined;
  /** @internal */
  _owner: PidOwner | undefined = undefined;
  /** @internal bookkeeping slot for the owner (the static supervisor's child record). */
  _tag: unknown = undefined;
  // Lazily allocated: most pids only ever have their owner as an observer, and pids are
  // created per child, so an empty array or a promise per pid would be measurable at 100k.
  private _listeners: ExitListener[] | undefined = undefined;
  private _exitedPromise: Promise<ExitReason> | undefined = undefined;
  private _resolveExited: ((r: ExitReason) => void) | undefined = undefined;

  /** A short label used in logs, e.g. `actor`, `supervisor`, `process`. */
  abstract readonly kind: string;

  get alive(): boolean {
    return this.exitReason === undefined;
  }

  /** Resolves with the exit reason once the process has exited. */
  get exited(): Promise<ExitReason> {
    if (!this._exitedPromise) {
      if (this.exitReason !== undefined) {
        this._exitedPromise = Promise.resolve(this.exitReason);
      } else {
        this._exitedPromise = new Promise((resolve) => {
          this._resolveExited = resolve;
        });
      }
    }
    return this._exitedPromise;
  }

  /**
   * Observe the exit (an OTP monitor). Runs at once (synchronously) if already dead.
   * Returns a function that removes the listener. Listener errors are swallowed: an observer
   * can never break the process or its supervisor.
   */
  onExit(listener: ExitListener): () => void {
    if (this.exitReason !== undefined) {
      safeCall(listener, this, this.exitReason);
      return noop;
    }
    if (!this._listeners) this._listeners = [];
    this._listeners.push(listener);
    return () => {
      const ls = this._listeners;
      if (!ls) return;
      const i = ls.indexOf(listener);
      if (i >= 0) ls.splice(i, 1);
    };
  }

  /** Deliver a message (OTP cast). Processes that take no messages drop it. */
  send(_event: { type: string }): void {}

  /** @internal true while this process is executing its own code (used to detect `calling_self`). */
  _isBusy(): boolean {
    return false;
  }

  /** @internal true if exit signals reach the process as messages (OTP `trap_exit`). */
  _trapsExits(): boolean {
    return false;
  }

  /** @internal Ask the process to stop with `reason`, running its graceful cleanup. */
  abstract _shutdown(reason: ExitReason): void;
  /** @internal Stop at once; the process exits `killed`. */
  abstract _kill(): void;

  /** @internal Attach the owner; if the process already died, the owner is told now. */
  _setOwner(owner: PidOwner, tag?: unknown): void {
    this._owner = owner;
    this._tag = tag;
    if (this.exitReason !== undefined) owner._onChildExit(this, this.exitReason);
  }

  /** @internal Record the exit once and notify listeners, then the owner. */
  _exit(reason: ExitReason): void {
    if (this.exitReason !== undefined) return;
    this.exitReason = reason;
    const ls = this._listeners;
    this._listeners = undefined;
    // Listeners (registry, pending calls) run before the owner so that a restart that follows
    // synchronously finds the name free and no call still waiting on the old incarnation.
    if (ls) for (const l of ls) safeCall(l, this, reason);
    this._resolveExited?.(reason);
    this._owner?._onChildExit(this, reason);
  }

  toString(): string {
    return `<${this.kind}.${this.id}>`;
  }
}

function noop(): void {}

function safeCall(l: ExitListener, pid: Pid, reason: ExitReason): void {
  try {
    l(pid, reason);
  } catch {
    // An exit observer must never break the runtime; there is no one to report to here.
  }
}

/**
 * OTP `exit(Pid, Reason)`: send an exit signal. `'kill'` stops the process at once (it exits
 * `killed`, untrappable); `'normal'` is ignored unless the process traps exits (OTP drops a
 * `normal` exit signal to a process that does not trap); any other reason, `'killed'` included,
 * is an ordinary signal: the process stops gracefully and exits with that reason (a `trapExit`
 * actor gets its shutdown event and may end otherwise). Never throws; a dead pid is left alone.
 */
export function exit(pid: Pid, reason: ExitReason | 'kill'): void {
  if (!pid.alive) return;
  if (reason === 'kill') pid._kill();
  else if (reason === 'normal' && !pid._trapsExits()) return;
  else pid._shutdown(reason);
}
