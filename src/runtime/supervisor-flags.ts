/**
 * @module supervisor-flags
 * Supervisor flags with Elixir's defaults (one_for_one, 3 restarts in 5000 ms, autoShutdown
 * never), validated in OTP's order (strategy, intensity, period, autoShutdown). Unknown keys are
 * ignored. Errors are values (`FlagsError`), never thrown.
 * See docs/runtime.md §2.3.
 */

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';
export type AutoShutdown = 'never' | 'any_significant' | 'all_significant';

export interface SupervisorFlags {
  /** Default `one_for_one`. */
  strategy?: Strategy;
  /** Max restarts within `period`; integer >= 0. Default 3. */
  intensity?: number;
  /** Window in ms; integer > 0. Default 5000. */
  period?: number;
  /** Default `never`. */
  autoShutdown?: AutoShutdown;
}

export type NormalizedFlags = Required<SupervisorFlags>;

export type FlagsError =
  | { readonly kind: 'invalid_type'; readonly value: unknown }
  | { readonly kind: 'invalid_strategy'; readonly value: unknown }
  | { readonly kind: 'invalid_intensity'; readonly value: unknown }
  | { readonly kind: 'invalid_period'; readonly value: unknown }
  | { readonly kind: 'invalid_auto_shutdown'; readonly value: unknown };

export const DEFAULT_INTENSITY = 3;
export const DEFAULT_PERIOD = 5000;

const STRATEGIES = new Set(['one_for_one', 'one_for_all', 'rest_for_one']);
const AUTO = new Set(['never', 'any_significant', 'all_significant']);

export function isIntensity(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}
export function isPeriod(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

export function validateFlags(
  flags: unknown,
): { ok: true; value: NormalizedFlags } | { ok: false; error: FlagsError } {
  if (flags === undefined) flags = {};
  if (typeof flags !== 'object' || flags === null || Array.isArray(flags))
    return { ok: false, error: { kind: 'invalid_type', value: flags } };
  const f = flags as Record<string, unknown>;
  const strategy = f.strategy ?? 'one_for_one';
  if (!STRATEGIES.has(strategy as string))
    return { ok: false, error: { kind: 'invalid_strategy', value: strategy } };
  const intensity = f.intensity ?? DEFAULT_INTENSITY;
  if (!isIntensity(intensity)) return { ok: false, error: { kind: 'invalid_intensity', value: intensity } };
  const period = f.period ?? DEFAULT_PERIOD;
  if (!isPeriod(period)) return { ok: false, error: { kind: 'invalid_period', value: period } };
  const autoShutdown = f.autoShutdown ?? 'never';
  if (!AUTO.has(autoShutdown as string))
    return { ok: false, error: { kind: 'invalid_auto_shutdown', value: autoShutdown } };
  return {
    ok: true,
    value: {
      strategy: strategy as Strategy,
      intensity: intensity as number,
      period: period as number,
      autoShutdown: autoShutdown as AutoShutdown,
    },
  };
}
