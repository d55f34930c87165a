/**
 * @module restart-intensity
 * OTP's restart-intensity rule (`supervisor:add_restart/3`) as a pure function: one sliding window
 * per supervisor, shared by all its children. With `intensity = N`, the (N+1)-th restart within
 * `period` ms is refused. Timestamps are milliseconds and the window is inclusive
 * (`t >= now - period`), OTP's rule at ms rather than whole-second granularity.
 * See docs/runtime.md §2.6.
 */

export interface IntensityLimits {
  readonly intensity: number;
  readonly period: number;
}

export interface RestartDecision {
  /** `false`: the limit is exceeded and the supervisor must shut down. */
  readonly allowed: boolean;
  /** The new window, newest first; store it for the next attempt. */
  readonly restarts: readonly number[];
}

export function addRestart(
  restarts: readonly number[],
  now: number,
  limits: IntensityLimits,
): RestartDecision {
  const threshold = now - limits.period;
  const kept: number[] = [now];
  for (const t of restarts) {
    // Newest first, so the first stale timestamp ends the window (OTP's takewhile).
    if (t < threshold) break;
    kept.push(t);
  }
  return { allowed: kept.length <= limits.intensity, restarts: kept };
}

/**
 * The same rule, kept by a supervisor as restarts happen: O(1) amortized per restart whatever the
 * intensity (`addRestart` copies the window, so 20,000 restarts within one period would cost
 * O(n²)). Timestamps must not go backwards (the supervisor's clock).
 */
export class RestartWindow {
  /** Restart times, oldest first, from `#start` on. */
  #times: number[] = [];
  #start = 0;
  #total = 0;

  constructor(readonly limits: IntensityLimits) {}

  /** Restarts recorded since the window was made (for inspection; not part of the rule). */
  get total(): number {
    return this.#total;
  }

  /** Records a restart at `now`: false when it is one too many for the window (shut down). */
  add(now: number): boolean {
    this.#total++;
    this.#times.push(now);
    const threshold = now - this.limits.period;
    while (this.#times[this.#start]! < threshold) this.#start++;
    if (this.#start > 1024 && this.#start * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#start);
      this.#start = 0;
    }
    return this.#times.length - this.#start <= this.limits.intensity;
  }
}
