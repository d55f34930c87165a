/**
 * @module yielding
 * Long loops that give the event loop back every so often. A start-up pass over 100,000 task
 * records, or the start of 10,000 actors whose awaits settle as microtasks, would otherwise hold
 * the loop for seconds: no timer fires and no socket is read meanwhile, so a lease renewal
 * answered in a millisecond is still reported as timed out.
 */

/** Resolves after the event loop has run its timers and I/O once. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Calls `fn` for each item in order, awaiting it, and yields the loop after every `every` items. */
export async function forEachYielding<T>(
  items: Iterable<T>,
  fn: (item: T) => void | Promise<void>,
  every = 1_000,
): Promise<void> {
  let n = 0;
  for (const item of items) {
    await fn(item);
    if (++n % every === 0) await yieldToLoop();
  }
}
