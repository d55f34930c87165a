/**
 * @module live-value
 * A value that follows one key of a KV bucket (a setting in the config bucket): read at open, then
 * replaced on every change, so an operator's change (`agentcom limits set`, `agentcom pause`) takes
 * effect on every hub at once, with no restart. A value that fails its schema (written by hand) is
 * logged and ignored: the last valid one stays. A deleted key means the fallback (the defaults).
 * Changes apply in revision order (one older than the value held is dropped), so the read at open
 * and the watch cannot race. Listeners hear each new value after `current` holds it; a throwing
 * listener is logged, never breaks the watch. Not a consensus: two followers may hold different
 * values for the moment a change takes to reach them; `waitFor` lets a writer wait until this one
 * has it.
 */
import type { z } from 'zod';
import type { Bus } from './connection.js';
import { openKv, type TypedKv } from './kv.js';

export interface LiveValue<T> {
  /** The value in force now. */
  readonly current: T;
  /** KV revision of the last change applied (0 until one is seen: the stored value or a change). */
  readonly revision: number;
  /** Calls `fn` after each change of `current` (not for the value found at open); returns an unsubscribe. */
  onChange(fn: (value: T, previous: T) => void): () => void;
  /**
   * Resolves true once a change of revision `revision` or later has been applied here and its
   * listeners have run (at once when it already has), false after `timeoutMs` or on stop.
   */
  waitFor(revision: number, timeoutMs: number): Promise<boolean>;
  stop(): void;
}

export interface LiveValueOptions<T> {
  bucket: string;
  key: string;
  schema: z.ZodType<T>;
  /** In force while the key is absent or deleted. */
  fallback: T;
  /** Named in log lines ("limits", "alert config"). */
  what: string;
  /** A first listener (as {@link LiveValue.onChange}). */
  onChange?: (value: T) => void;
  /** An already open typed bucket (the caller may write through it too). */
  kv?: TypedKv<T>;
}

/**
 * Opens `key` of `bucket` as a live value. Resolves once the stored value (or the fallback) is in
 * `current`, so nothing is judged by the fallback while the watch starts.
 */
export async function openLiveValue<T>(bus: Bus, o: LiveValueOptions<T>): Promise<LiveValue<T>> {
  const kv = o.kv ?? (await openKv(bus, o.bucket, o.schema));
  const log = bus.log;
  let current = o.fallback;
  let revision = 0;
  let stopped = false;
  const listeners = new Set<(value: T, previous: T) => void>();
  if (o.onChange) listeners.add(o.onChange);
  const waiters = new Set<{ revision: number; done: (ok: boolean) => void }>();

  const apply = (rev: number, value: T, notify: boolean) => {
    if (rev <= revision) return;
    revision = rev;
    const previous = current;
    current = value;
    if (notify) {
      for (const fn of listeners) {
        try {
          fn(value, previous);
        } catch (err) {
          log.warn({ err, bucket: kv.bucket, key: o.key }, `${o.what} listener failed`);
        }
      }
    }
    // After the listeners: a waiter resumed by this change finds what they started under way.
    for (const w of waiters) if (rev >= w.revision) w.done(true);
  };

  // The watch first, then the read: a change made between them is seen by the watch and one made
  // before it by the read; the revision check drops whichever arrives second.
  const watch = await kv.watch({ key: o.key, updatesOnly: true });
  try {
    const stored = await kv.get(o.key);
    if (stored) apply(stored.revision, stored.value, false);
  } catch (err) {
    log.warn({ err, bucket: kv.bucket, key: o.key }, `stored ${o.what} invalid; the defaults apply`);
  }
  void (async () => {
    for await (const c of watch) {
      if (c.operation !== 'put') apply(c.revision, o.fallback, true);
      else if (c.value) apply(c.revision, c.value, true);
      else log.warn({ error: c.error, bucket: kv.bucket }, `invalid ${o.what} ignored; the previous stay`);
    }
  })().catch((err) => log.warn({ err }, `${o.what} watch ended`));

  return {
    get current() {
      return current;
    },
    get revision() {
      return revision;
    },
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    waitFor(rev, timeoutMs) {
      if (rev <= revision) return Promise.resolve(true);
      if (stopped) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const w = {
          revision: rev,
          done: (ok: boolean) => {
            clearTimeout(timer);
            waiters.delete(w);
            resolve(ok);
          },
        };
        const timer = setTimeout(() => w.done(false), timeoutMs);
        timer.unref();
        waiters.add(w);
      });
    },
    stop() {
      stopped = true;
      watch.stop();
      listeners.clear();
      for (const w of waiters) w.done(false);
    },
  };
}
