/**
 * The chaos suite, short and seeded, inside `npm test`: a 3-node cluster with 3 replicas, two hubs,
 * SDK and sidecar agents as processes, and a fault schedule that kills agents, the leading hub and
 * a NATS node, stalls a hub and an agent, and sends duplicate and stale reports. The checker must
 * find nothing lost, nothing completed twice, no stale report applied, and every task done.
 * `npm run chaos` runs the long version (10,000 tasks, 50 agent kills...).
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from './run.js';

describe('chaos (short, seeded)', () => {
  it('loses nothing and completes nothing twice under agent, hub and NATS node faults', {
    timeout: 300_000,
  }, async () => {
    const { report, faults } = await runChaos({
      seed: 2026,
      tasks: 240,
      rate: 30,
      hubs: 2,
      sdkAgents: 3,
      sidecarAgents: 1,
      slots: 2,
      agentKills: 4,
      hubKills: 1,
      natsKills: 1,
      stalls: 2,
      reportBursts: 1,
      heartbeatIntervalMs: 1_000,
      drainTimeoutMs: 120_000,
    });
    if (!report.ok) console.error(JSON.stringify(report, null, 2));
    expect(report.violations).toEqual([]);
    expect(report.tasks.byStatus).toEqual({ done: 240 });
    // The faults did happen: the run proves something.
    expect(faults.executed.kill_agent ?? 0).toBeGreaterThan(0);
    expect(faults.executed.kill_nats).toBe(1);
    expect((faults.executed.kill_hub ?? 0) + (faults.executed.stall_hub ?? 0)).toBeGreaterThan(0);
    expect(report.refusedReports).toBeGreaterThan(0);
  });
});
