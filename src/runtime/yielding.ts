/**
 * @module yielding
 * Long loops that give the event loop back every so often. A start-up pass over 100,000 task
 * records, or the start of 10,000 actors whose awaits settle as microtasks, would otherwise hold
 * the loop for seconds: no timer fires and no socket is read meanwhile, so a lease renewal
 * answered in a millisecond is still reported as timed out.
 *
 * The loop yields by time, not by a count of items: what the rest of the process does between two
 * slices is one turn of the event loop, however long the slice was, so under load a pass's share
 * of the CPU is its slice against that turn (a scheduler's start over 85,000 records, yielding
 * every 5,000 of them, took 8.4 s beside a backlog of reports; docs/scaling.md).
 */

/** Resolves after the event loop has run its timers and I/O once. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface YieldingOptions {
  /** How long the loop may be held between two yields, ms (default 50). */
  sliceMs?: number;
  /** The clock (tests). */
  now?: () => number;
  /** Called at the end of each slice, before the loop is given back (e.g. to act on what the slice read). */
  afterSlice?: () => void;
}

/** Calls `fn` for each item in order, awaiting it, and yields the loop once a slice has run. */
export async function forEachYielding<T>(
  items: Iterable<T>,
  fn: (item: T) => void | Promise<void>,
  opts: YieldingOptions = {},
): Promise<void> {
  const now = opts.now ?? (() => performance.now());
  const sliceMs = opts.sliceMs ?? 50;
  let sliceEnds = now() + sliceMs;
  for (const item of items) {
    await fn(item);
    if (now() >= sliceEnds) {
      opts.afterSlice?.();
      await yieldToLoop();
      sliceEnds = now() + sliceMs;
    }
  }
}
