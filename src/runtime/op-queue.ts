/**
 * @module op-queue
 * The supervisor's mailbox: operations (admin calls, child exits, restart retries) run one at a
 * time, in arrival order, like a gen_server. An operation may be async; the next one starts only
 * when it has finished. Errors thrown by an operation are reported to `onError`, never lost.
 * A long run of operations (a child that keeps failing to start and is retried through the
 * mailbox, as OTP's try_again_restart) yields to the event loop every YIELD_AFTER_MS, so timers,
 * I/O and other processes are never starved; the order of operations is unchanged by it.
 * See docs/runtime.md §1.4.
 */

type Op = () => void | Promise<void>;

/** A drain that has run this long without a break lets the event loop turn once. */
const YIELD_AFTER_MS = 2;

export class OpQueue {
  // A ring of head index + array: `shift()` is O(n) on large arrays, and a burst of 100k
  // startChild calls would make the queue quadratic.
  private items: Op[] = [];
  private head = 0;
  private running = false;

  constructor(private readonly onError: (e: unknown) => void) {}

  /** @internal Operations queued and not yet started. */
  get pending(): number {
    return this.items.length - this.head;
  }

  push(op: Op): void {
    this.items.push(op);
    if (!this.running) {
      this.running = true;
      // A microtask, not a synchronous run: a child's exit is often reported from inside XState's
      // observer callbacks, and supervisor work should not re-enter XState there.
      queueMicrotask(() => void this.drain());
    }
  }

  /**
   * Run `op` in turn and resolve with its result. When nothing is queued or running, `op` runs
   * at once, synchronously: same order guarantee, and no promise/microtask hops on the hot path
   * (a burst of dynamic startChild calls).
   */
  run<T>(op: () => T | Promise<T>): Promise<T> {
    if (!this.running && this.head >= this.items.length) {
      this.running = true;
      let r: T | Promise<T>;
      try {
        r = op();
      } catch (e) {
        this.release();
        return Promise.reject(e);
      }
      if (r instanceof Promise) {
        return r.finally(() => this.release());
      }
      this.release();
      return Promise.resolve(r);
    }
    return this.enqueue(op);
  }

  /** After a synchronous run: process whatever was queued meanwhile, in a microtask as usual. */
  private release(): void {
    if (this.head < this.items.length) queueMicrotask(() => void this.drain());
    else this.running = false;
  }

  private enqueue<T>(op: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.push(async () => {
        try {
          resolve(await op());
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  private async drain(): Promise<void> {
    let since = performance.now();
    while (this.head < this.items.length) {
      if (performance.now() - since >= YIELD_AFTER_MS) {
        await new Promise<void>((r) => setImmediate(r));
        since = performance.now();
      }
      const op = this.items[this.head]!;
      this.items[this.head] = undefined as unknown as Op;
      this.head++;
      try {
        const r = op();
        if (r) await r;
      } catch (e) {
        this.onError(e);
      }
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
    }
    this.items = [];
    this.head = 0;
    this.running = false;
  }
}
