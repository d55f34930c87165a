/**
 * @module live-limits
 * The deployment's limits (protocol/limits.ts) as a value that follows the config bucket: read at
 * open, then replaced on every change, so `agentcom limits set` takes effect on every hub at once.
 * A value that fails its schema (written by hand) is logged and ignored: the last valid one stays.
 * A deleted key means the defaults. One {@link LiveValue} (live-value.ts).
 */
import { DEFAULT_LIMITS, LIMITS_KEY, type Limits, LimitsSchema } from '../protocol/limits.js';
import type { Bus } from './connection.js';
import { openKv, type TypedKv } from './kv.js';
import { type LiveValue, openLiveValue } from './live-value.js';

export type LiveLimits = LiveValue<Limits>;

export function openLimitsKv(bus: Bus): Promise<TypedKv<Limits>> {
  return openKv(bus, bus.names.buckets.config, LimitsSchema);
}

export function openLiveLimits(bus: Bus): Promise<LiveLimits> {
  return openLiveValue(bus, {
    bucket: bus.names.buckets.config,
    key: LIMITS_KEY,
    schema: LimitsSchema,
    fallback: DEFAULT_LIMITS,
    what: 'limits',
  });
}
