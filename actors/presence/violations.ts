/**
 * @module presence/violations
 * The violation tracker (docs/security.md, "Suspension"): counts each agent's invalid messages (malformed
 * payloads, forged reports, invalid hellos) in a sliding window and says when one has sent
 * `threshold` of them within `windowMs`, and for how long it is then suspended: `suspendMs`,
 * doubling with each suspension it has had, up to `maxSuspendMs`. Pure: time is a parameter, the
 * suspension itself (a write to the config bucket) is the caller's.
 *
 * Memory: per agent at most `threshold` timestamps, and only for agents with a violation inside
 * the window (older ones are dropped when the map is swept).
 */
import type { ViolationPolicy } from '../../src/protocol/limits.js';

const SWEEP_EVERY = 1_024;

export class ViolationTracker {
  /** agent -> times of its recent violations, oldest first, at most `threshold` of them. */
  private readonly recent = new Map<string, number[]>();
  private sweepAt = SWEEP_EVERY;

  /** Records one violation; true when it brings the agent to the threshold (its count restarts). */
  record(agentId: string, now: number, policy: ViolationPolicy): boolean {
    let times = this.recent.get(agentId);
    if (!times) {
      if (this.recent.size >= this.sweepAt) this.sweep(now, policy);
      times = [];
      this.recent.set(agentId, times);
    }
    while (times.length > 0 && times[0]! <= now - policy.windowMs) times.shift();
    times.push(now);
    if (times.length < policy.threshold) return false;
    this.recent.delete(agentId);
    return true;
  }

  /** Violations of `agentId` inside the window now. */
  count(agentId: string, now: number, policy: ViolationPolicy): number {
    return (this.recent.get(agentId) ?? []).filter((t) => t > now - policy.windowMs).length;
  }

  private sweep(now: number, policy: ViolationPolicy): void {
    for (const [id, times] of this.recent) if (times.at(-1)! <= now - policy.windowMs) this.recent.delete(id);
    this.sweepAt = this.recent.size + SWEEP_EVERY;
  }
}

/** How long the `count`-th suspension (1-based) lasts. */
export function suspensionMs(policy: ViolationPolicy, count: number): number {
  return Math.min(policy.maxSuspendMs, policy.suspendMs * 2 ** Math.min(30, Math.max(0, count - 1)));
}
