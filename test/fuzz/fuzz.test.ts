/**
 * The fuzzer, small and seeded, inside `npm test` (`npm run fuzz` sends 100,000 inputs per
 * subject): malformed, oversized, mutated and valid payloads on every inbound subject of a hub
 * process, while an agent works through real tasks. Each input must get its documented outcome,
 * the hub must stay up, and no real task may be lost.
 */
import { describe, expect, it } from 'vitest';
import { runFuzz } from './run.js';

describe('fuzz (short, seeded)', () => {
  it('answers or dead-letters every input as documented, stays up, and loses no real task', {
    timeout: 300_000,
  }, async () => {
    const r = await runFuzz({ perTarget: 300, seed: 42 });
    const violations = Object.fromEntries(
      Object.entries(r.targets).map(([k, t]) => [k, t.violations.slice(0, 3)]),
    );
    expect(violations).toEqual(Object.fromEntries(Object.keys(r.targets).map((k) => [k, []])));
    expect(r.hubAlive).toBe(true);
    expect(r.realTasks.done).toBe(r.realTasks.submitted);
    expect(r.realTasks.submitted).toBeGreaterThan(0);
    // Every family reached the hub, refused and valid ones alike.
    expect(r.targets['task.submit']!.outcomes.dead_lettered).toBeGreaterThan(0);
    expect(r.targets['task.submit']!.outcomes.tasks).toBeGreaterThan(0);
    expect(r.targets['agent.hello']!.outcomes.ok).toBeGreaterThan(0);
    expect(r.targets['agent.hello']!.outcomes.invalid_payload).toBeGreaterThan(0);
  });
});
