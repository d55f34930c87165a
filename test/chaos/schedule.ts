/**
 * The chaos suite's fault schedule: a pure function of a seed and counts, so a run can be
 * reproduced exactly (`--seed`). Faults are spread over the submission window with a random gap
 * each, and never leave the system without a quorum or without a hub: one NATS node and one hub at
 * most are down or stalled at a time (the next such fault waits until the previous one is over).
 */

export type Fault =
  /** SIGKILL an agent process; start it again (same id) after `downMs`. */
  | { kind: 'kill_agent'; agent: number; downMs: number }
  /** SIGKILL the hub holding the lease (or a standby); start it again after `downMs`. */
  | { kind: 'kill_hub'; role: 'leader' | 'standby'; downMs: number }
  /** SIGKILL one nats-server node; restart it on the same store after `downMs`. */
  | { kind: 'kill_nats'; node: number; downMs: number }
  /** SIGSTOP the leading hub, SIGCONT after `downMs` (longer than its lease). */
  | { kind: 'stall_hub'; downMs: number }
  /** SIGSTOP an agent, SIGCONT after `downMs` (longer than the presence window). */
  | { kind: 'stall_agent'; agent: number; downMs: number }
  /** Publish duplicate and stale reports about finished tasks, as their agents. */
  | { kind: 'report_burst'; count: number };

export interface ScheduledFault {
  /** Ms after the start of the submissions. */
  at: number;
  fault: Fault;
}

export interface ScheduleOptions {
  seed: number;
  /** How long the submissions last, ms: faults start within it. */
  windowMs: number;
  agents: number;
  natsNodes: number;
  agentKills: number;
  hubKills: number;
  natsKills: number;
  /** Stalls: half of the hub, half of an agent (a hub first). */
  stalls: number;
  reportBursts: number;
  /** Presence window (heartbeat interval x missed beats): slow agent restarts and agent stalls exceed it. */
  presenceWindowMs: number;
  /** Lease lifetime: hub stalls exceed it. */
  leaseTtlMs: number;
}

/** mulberry32: a small, well-known seeded PRNG (uniform in [0, 1)). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function faultSchedule(o: ScheduleOptions): ScheduledFault[] {
  const rnd = prng(o.seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const faults: Fault[] = [];
  for (let i = 0; i < o.agentKills; i++) {
    // One in five restarts slowly (past the presence window: offline, reclaimed); the rest at once.
    const slow = rnd() < 0.2;
    faults.push({
      kind: 'kill_agent',
      agent: int(0, o.agents - 1),
      downMs: slow ? o.presenceWindowMs + int(1_000, 3_000) : int(100, 500),
    });
  }
  for (let i = 0; i < o.hubKills; i++)
    faults.push({ kind: 'kill_hub', role: i % 3 === 2 ? 'standby' : 'leader', downMs: int(1_000, 4_000) });
  for (let i = 0; i < o.natsKills; i++)
    faults.push({ kind: 'kill_nats', node: int(0, o.natsNodes - 1), downMs: int(2_000, 5_000) });
  for (let i = 0; i < o.stalls; i++) {
    if (i % 2 === 0) faults.push({ kind: 'stall_hub', downMs: o.leaseTtlMs + int(1_000, 3_000) });
    else
      faults.push({
        kind: 'stall_agent',
        agent: int(0, o.agents - 1),
        downMs: o.presenceWindowMs + int(1_000, 3_000),
      });
  }
  for (let i = 0; i < o.reportBursts; i++) faults.push({ kind: 'report_burst', count: int(20, 60) });
  // Shuffle (Fisher-Yates), then place along the window.
  for (let i = faults.length - 1; i > 0; i--) {
    const j = int(0, i);
    [faults[i], faults[j]] = [faults[j]!, faults[i]!];
  }
  const out: ScheduledFault[] = [];
  const step = faults.length ? o.windowMs / (faults.length + 1) : 0;
  // A hub or NATS fault starts only after the previous one of its kind is over.
  let hubFreeAt = 0;
  let natsFreeAt = 0;
  faults.forEach((fault, i) => {
    let at = Math.round(step * (i + 1) + (rnd() - 0.5) * step * 0.5);
    if (fault.kind === 'kill_hub' || fault.kind === 'stall_hub') {
      at = Math.max(at, hubFreeAt);
      hubFreeAt = at + fault.downMs + 3_000;
    } else if (fault.kind === 'kill_nats') {
      at = Math.max(at, natsFreeAt);
      natsFreeAt = at + fault.downMs + 5_000;
    }
    out.push({ at, fault });
  });
  return out.sort((a, b) => a.at - b.at);
}
