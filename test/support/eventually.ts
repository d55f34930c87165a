/**
 * Retry an assertion until it passes or the deadline expires: the way tests wait for an event
 * without sleeping for a guessed duration. The last failure is rethrown with the elapsed time.
 */
export interface EventuallyOptions {
  timeout?: number;
  interval?: number;
}

export async function eventually<T>(
  check: () => T | Promise<T>,
  { timeout = 10_000, interval = 20 }: EventuallyOptions = {},
): Promise<T> {
  const start = Date.now();
  let lastError: unknown;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      lastError = err;
    }
    if (Date.now() - start >= timeout) {
      const msg = lastError instanceof Error ? lastError.message : String(lastError);
      const wrapped = new Error(`eventually: still failing after ${timeout} ms: ${msg}`);
      (wrapped as Error & { cause?: unknown }).cause = lastError;
      throw wrapped;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Resolve when `predicate` becomes true, polling; reject with `what` after the timeout. */
export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  opts: EventuallyOptions = {},
): Promise<void> {
  await eventually(async () => {
    if (!(await predicate())) throw new Error(`waiting for ${what}`);
  }, opts);
}
