/**
 * @module backoff
 * Akka BackoffSupervisor delays as pure functions: `min * factor^n` capped at `max`, then jitter
 * (`randomFactor`) applied AFTER the cap, so a delay can reach `max * (1 + jitter)`. The attempt
 * counter resets once a child has run for `resetAfter` ms. Opt-in; OTP restarts immediately.
 */

export interface BackoffOptions {
  /** First delay, ms (> 0). */
  min: number;
  /** Cap before jitter, ms (>= min). */
  max: number;
  /** Growth per attempt (>= 1). Default 2. */
  factor?: number;
  /** Akka's randomFactor in [0, 1]: delay * (1 + U[0,1) * jitter). Default 0.2. */
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
  const base = Math.min(b.max, b.min * b.factor ** attempt);
  return base * (1 + random() * b.jitter);
}

/** The attempt number to use after a crash: 0 again when the child had been stable long enough. */
export function nextAttempt(previous: number, ranForMs: number, b: NormalizedBackoff): number {
  return ranForMs >= b.resetAfter ? 0 : previous;
}
