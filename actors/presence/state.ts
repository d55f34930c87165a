/**
 * @module presence/state
 * Heartbeat bookkeeping: which agents are online and when each one expires. An agent that sends no
 * beat for `missedBeats` whole intervals (default 3 x 5000 ms) expires; a goodbye removes it at once.
 * Every agent has the same timeout, so deadlines are ordered like last beats: agents are kept in a
 * Map re-inserted on each beat (insertion order = expiry order), making beat, goodbye and
 * nextDeadline O(1) and `expired(now)` O(k) for k expiring agents, never a scan of everyone. `now` is
 * treated as monotone (a smaller value counts as the latest seen). Pure bookkeeping: no timers, no
 * clock; the caller sets one timer for `nextDeadline()` and reclaims the work of what `expired` returns.
 */
import type { AgentId } from '../../src/protocol/ids.js';

export interface PresenceConfig {
  /** Expected heartbeat interval in ms (default 5000). */
  intervalMs: number;
  /** Intervals without a beat after which an agent is offline (default 3). */
  missedBeats: number;
}

export const DEFAULT_PRESENCE_CONFIG: PresenceConfig = { intervalMs: 5000, missedBeats: 3 };

export interface BeatResult {
  /** True when the agent was not online before this beat (it has just joined or come back). */
  joined: boolean;
  /** The time at which it expires unless it beats again. */
  expiresAt: number;
}

export class Presence {
  readonly config: PresenceConfig;
  /** agent -> last beat, in ascending order of last beat (delete + set moves an entry to the end). */
  readonly #lastBeat = new Map<AgentId, number>();
  #clock = Number.NEGATIVE_INFINITY;

  constructor(config: Partial<PresenceConfig> = {}) {
    this.config = { ...DEFAULT_PRESENCE_CONFIG, ...config };
    if (!(this.config.intervalMs > 0) || !(this.config.missedBeats >= 1))
      throw new RangeError('presence: intervalMs must be > 0 and missedBeats >= 1');
  }

  /** Record a heartbeat (a hello counts as one) at `now`, or at the latest time seen if that is later. */
  beat(agentId: AgentId, now: number): BeatResult {
    this.#clock = Math.max(this.#clock, now);
    const joined = !this.#lastBeat.delete(agentId);
    this.#lastBeat.set(agentId, this.#clock);
    return { joined, expiresAt: this.expiresAt(this.#clock) };
  }

  /** The agent left (goodbye or disconnect). Returns whether it was online. */
  goodbye(agentId: AgentId): boolean {
    return this.#lastBeat.delete(agentId);
  }

  /** Remove and return the agents that expired by `now`, earliest first. */
  expired(now: number): AgentId[] {
    const out: AgentId[] = [];
    for (const [id, last] of this.#lastBeat) {
      if (this.expiresAt(last) > now) break; // ordered: everyone after expires later
      out.push(id);
    }
    for (const id of out) this.#lastBeat.delete(id);
    return out;
  }

  /** When the next agent expires (so the caller can set one timer), or null if nobody is online. */
  nextDeadline(): number | null {
    for (const last of this.#lastBeat.values()) return this.expiresAt(last);
    return null;
  }

  isOnline(agentId: AgentId): boolean {
    return this.#lastBeat.has(agentId);
  }

  lastBeat(agentId: AgentId): number | undefined {
    return this.#lastBeat.get(agentId);
  }

  online(): AgentId[] {
    return [...this.#lastBeat.keys()];
  }

  get size(): number {
    return this.#lastBeat.size;
  }

  /** Expiry of a beat at `at`: `missedBeats` whole intervals must pass without another beat. */
  expiresAt(at: number): number {
    return at + this.config.missedBeats * this.config.intervalMs + 1;
  }
}
