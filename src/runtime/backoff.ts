/**
 * @module backoff
 * The one place that computes exponential delays with jitter: every retry loop in the project calls
 * {@link exponentialDelay}. One rule: `d = min(max, min * factor^attempt)`, then jitter REMOVES up
 * to `jitter` of it, so a delay lies in `[(1 - jitter) * d, d]` and never exceeds `max`. Huge
 * attempts give `max`, never NaN or Infinity. Pure: the random source is a parameter, so a caller
 * that must replay (the task queue) passes a deterministic one. Delays are not rounded.
 *
 * Also the supervision runtime's opt-in Akka-style restart backoff (`backoff` on a child spec):
 * the same delays, with an attempt counter that resets once a child has run for `resetAfter` ms.
 * Unlike Akka's `randomFactor`, jitter shortens a delay instead of lengthening it. OTP itself
 * restarts immediately. See docs/runtime.md §2.8.
 */

/** The exponential part: attempt 0 waits `min`, each further attempt `factor` times more, up to `max`. */
export interface ExponentialBackoff {
  /** Delay of attempt 0, ms (>= 0). */
  min: number;
  /** Cap, ms (>= min): no delay exceeds it, jitter included. */
  max: number;
  /** Growth per attempt (>= 1). Default 2. */
  factor?: number;
}

export interface JitterOptions {
  /** Fraction of the delay that jitter may remove, in [0, 1]. Default 0: no jitter. */
  jitter?: number;
  /** U[0,1), called once per delay when `jitter` > 0; clamped to [0, 1]. Default Math.random. */
  random?: () => number;
}

/**
 * Delay before retry `attempt` (0-based; negative or NaN counts as 0):
 * `min(max, min * factor^attempt) * (1 - jitter * U)`, U from `random`.
 */
export function exponentialDelay(attempt: number, b: ExponentialBackoff, j: JitterOptions = {}): number {
  const { min, max } = b;
  const factor = b.factor ?? 2;
  const n = attempt > 0 ? attempt : 0; // NaN > 0 is false
  // factor ** n may overflow to Infinity: anything not below max (Infinity included) is max.
  const grown = factor > 1 && min > 0 ? min * factor ** n : min;
  const capped = grown < max ? grown : max;
  const jitter = clampUnit(j.jitter ?? 0);
  if (jitter === 0) return capped;
  return capped * (1 - jitter * clampUnit((j.random ?? Math.random)()));
}

function clampUnit(x: number): number {
  return x > 0 ? (x < 1 ? x : 1) : 0; // NaN -> 0
}

// --- Supervision (child spec `backoff`) ---

export interface BackoffOptions {
  /** First delay, ms (> 0). */
  min: number;
  /** Cap, ms (>= min); jitter only shortens delays, so none exceeds it. */
  max: number;
  /** Growth per attempt (>= 1). Default 2. */
  factor?: number;
  /** Fraction in [0, 1] that jitter may remove: delay * (1 - U[0,1) * jitter). Default 0.2. */
  jitter?: number;
  /** A child that ran this long (ms) is considered stable: its attempt counter resets. Default `min`. */
  resetAfter?: number;
}

export type NormalizedBackoff = Required<BackoffOptions>;

export function normalizeBackoff(b: BackoffOptions): NormalizedBackoff {
  return { factor: 2, jitter: 0.2, resetAfter: b.min, ...b };
}

/** Returns an error message, or undefined when the options are valid. */
export function checkBackoff(b: unknown): string | undefined {
  if (typeof b !== 'object' || b === null) return 'backoff must be an object';
  const o = b as Record<string, unknown>;
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (!num(o.min) || (o.min as number) <= 0) return 'min must be a number > 0';
  if (!num(o.max) || (o.max as number) < (o.min as number)) return 'max must be a number >= min';
  if (o.factor !== undefined && (!num(o.factor) || (o.factor as number) < 1)) return 'factor must be >= 1';
  if (o.jitter !== undefined && (!num(o.jitter) || (o.jitter as number) < 0 || (o.jitter as number) > 1))
    return 'jitter must be in [0, 1]';
  if (o.resetAfter !== undefined && (!num(o.resetAfter) || (o.resetAfter as number) < 0))
    return 'resetAfter must be >= 0';
  return undefined;
}

/** Delay before restart attempt `attempt` (0-based). `random` returns U[0,1). */
export function backoffDelay(
  attempt: number,
  b: NormalizedBackoff,
  random: () => number = Math.random,
): number {
  return exponentialDelay(attempt, b, { jitter: b.jitter, random });
}

/** The attempt number to use after a crash: 0 again when the child had been stable long enough. */
export function nextAttempt(previous: number, ranForMs: number, b: NormalizedBackoff): number {
  return ranForMs >= b.resetAfter ? 0 : previous;
}
