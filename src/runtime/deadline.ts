/**
 * @module deadline
 * A deadline that does not count its own process's stall against what it waits for. When the
 * event loop was held past the deadline (a long GC, a start-up pass over 100,000 records), the
 * timer phase, which runs before the sockets are read, fires the timer first, and an answer that
 * arrived in the first millisecond and sits unread in the socket would be reported as a timeout.
 * So a timer that fires only decides one loop turn later (`setImmediate`, after the poll phase):
 * what arrived meanwhile is read first and wins. A peer that really does not answer is still
 * given up on after the deadline and one turn.
 *
 * It does not cancel the work: a request given up on may still be answered, and applied by the
 * server, later. Callers treat a deadline like any timeout (the outcome is unknown), and the
 * work's late outcome (a rejection too) is dropped here.
 *
 * Limits: one turn reads what one poll of the sockets finds, so an answer stuck behind much other
 * traffic on the same connection may still lose (the lease has a connection of its own, hub
 * main.ts). And the work's own timeout, if it has one, must be longer than the stalls to ride
 * out: a timer of its own that fires late fires before the socket is read, as before.
 */

/**
 * The timeout to give the work's own client when it is raced with a deadline of `ms`: long enough
 * to ride out stalls of a few deadlines, so that it only ends a request given up on.
 */
export const abandonAfterMs = (ms: number): number => ms * 5;

export class DeadlineError extends Error {
  readonly code = 'timeout';

  constructor(what: string, ms: number) {
    super(`${what}: no answer within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

/** `work`'s outcome, or a {@link DeadlineError} when it has none `ms` after the call (see above). */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => setImmediate(() => settle(() => reject(new DeadlineError(what, ms)))), ms);
    work.then(
      (v) => settle(() => resolve(v)),
      (err: unknown) => settle(() => reject(err)),
    );
  });
}
