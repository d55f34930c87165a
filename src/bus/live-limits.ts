/**
 * @module live-limits
 * The deployment's limits (protocol/limits.ts) as a value that follows the config bucket: read at
 * open, then replaced on every change, so `agentcom limits set` takes effect on every hub at once.
 * A value that fails its schema (written by hand) is logged and ignored: the last valid one stays.
 * A deleted key means the defaults.
 */
import { DEFAULT_LIMITS, LIMITS_KEY, type Limits, LimitsSchema } from '../protocol/limits.js';
import type { Bus } from './connection.js';
import { openKv, type TypedKv } from './kv.js';

export interface LiveLimits {
  /** The limits in force now. */
  readonly current: Limits;
  stop(): void;
}

export function openLimitsKv(bus: Bus): Promise<TypedKv<Limits>> {
  return openKv(bus, bus.names.buckets.config, LimitsSchema);
}

export async function openLiveLimits(bus: Bus): Promise<LiveLimits> {
  const kv = await openLimitsKv(bus);
  // Read before returning, so no message is judged by the defaults while the watch starts.
  let current = (await kv.get(LIMITS_KEY).catch(() => null))?.value ?? DEFAULT_LIMITS;
  const watch = await kv.watch({ key: LIMITS_KEY, updatesOnly: true });
  void (async () => {
    for await (const c of watch) {
      if (c.operation !== 'put') current = DEFAULT_LIMITS;
      else if (c.value) current = c.value;
      else bus.log.warn({ error: c.error, bucket: kv.bucket }, 'invalid limits ignored; the previous stay');
    }
  })().catch((err) => bus.log.warn({ err }, 'limits watch ended'));
  return {
    get current() {
      return current;
    },
    stop: () => watch.stop(),
  };
}
