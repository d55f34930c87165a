/**
 * @module rate-limit
 * Token buckets keyed by sender (an agent id), the one rate limiter of the project. A bucket holds
 * up to `burst` tokens and refills at `perSecond`; {@link KeyedRateLimiter.take} spends one token or
 * says how long until one is there (the `retryAfterMs` of a `rate_limited` refusal). Pure and
 * synchronous: time is a parameter, so the hot paths that call it (every report, hello, submit)
 * pay a map lookup and a few multiplications.
 *
 * Memory: a key whose bucket has refilled to `burst` carries no information and is forgotten at the
 * next sweep, so the map holds only the senders active within the last `burst / perSecond` seconds.
 * Not durable and not shared between processes: each hub limits what it handles itself.
 */

/** A sustained rate and the burst allowed above it. */
export interface Rate {
  /** Tokens added per second (> 0). */
  perSecond: number;
  /** Bucket size: how many may arrive at once after a quiet period (>= 1). */
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Sweep for full buckets once the map has grown by this many keys since the last sweep. */
const SWEEP_EVERY = 1_024;

export class KeyedRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private sweepAt = SWEEP_EVERY;

  /** `rateOf` is asked on every call (limits change at runtime); `null` means unlimited. */
  constructor(private readonly rateOf: (key: string) => Rate | null) {}

  /**
   * Spends one token of `key`'s bucket. Returns 0 when it was there (admitted), otherwise the ms
   * until the next token (refused; nothing is spent).
   */
  take(key: string, now: number): number {
    const rate = this.rateOf(key);
    if (!rate) return 0;
    const b = this.refill(key, rate, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - b.tokens) * 1000) / rate.perSecond));
  }

  /** Whether a token is there now (nothing is spent). */
  has(key: string, now: number): boolean {
    const rate = this.rateOf(key);
    return !rate || this.refill(key, rate, now).tokens >= 1;
  }

  /**
   * Spends one token ahead when none is there, going into debt, unless that puts the token more
   * than `maxWaitMs` away; returns the ms until the spent token is due (0: at once), or `null`
   * (refused; nothing spent). For admitting what comes too fast but spacing it out at the rate
   * (a queue, not a refusal); {@link take} on the same key sees the debt and refuses until it is
   * paid.
   */
  reserve(key: string, now: number, maxWaitMs: number): number | null {
    const rate = this.rateOf(key);
    if (!rate) return 0;
    const b = this.refill(key, rate, now);
    const wait = b.tokens >= 1 ? 0 : Math.max(1, Math.ceil(((1 - b.tokens) * 1000) / rate.perSecond));
    if (wait > maxWaitMs) return null;
    b.tokens -= 1;
    return wait;
  }

  /** Buckets held (senders seen recently). */
  get size(): number {
    return this.buckets.size;
  }

  private refill(key: string, rate: Rate, now: number): Bucket {
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.sweepAt) this.sweep(now);
      b = { tokens: rate.burst, at: now };
      this.buckets.set(key, b);
      return b;
    }
    // A clock that steps back refills nothing rather than draining the bucket.
    const elapsed = Math.max(0, now - b.at);
    b.tokens = Math.min(rate.burst, b.tokens + (elapsed * rate.perSecond) / 1000);
    b.at = now;
    return b;
  }

  private sweep(now: number): void {
    for (const [key, b] of this.buckets) {
      const rate = this.rateOf(key);
      if (!rate || b.tokens + ((now - b.at) * rate.perSecond) / 1000 >= rate.burst) this.buckets.delete(key);
    }
    this.sweepAt = this.buckets.size + SWEEP_EVERY;
  }
}
