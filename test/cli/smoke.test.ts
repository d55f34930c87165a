/**
 * `agentcom smoke` against a real hub on a test nats-server: it passes on a healthy hub, fails
 * (exit 1) when the tasks cannot finish by the deadline, and in both cases stops its agents and
 * leaves none of its tasks queued; no hub means exit 69, a bad flag exit 2.
 */
import { describe, expect, it } from 'vitest';
import type { SmokeReport } from '../../src/cli/smoke-run.js';
import { isTerminal } from '../../src/protocol/task.js';
import { runCli } from '../support/cli.js';
import { useCliHub } from '../support/cli-hub.js';
import { eventually } from '../support/eventually.js';

const h = useCliHub('clismoke');

const cli = h.cli;

/** The run's agents went offline and none of its tasks is left open. */
async function expectCleanedUp(report: SmokeReport): Promise<void> {
  await eventually(async () => {
    const agents = (await h.api.agents()).agents.filter((a) => report.agents.includes(a.id));
    expect(agents.map((a) => [a.id, a.online]).sort()).toEqual(report.agents.map((id) => [id, false]));
  });
  const tasks = (await h.api.list({ queue: report.queue as never, limit: 100 })).tasks;
  expect(tasks.map((t) => t.id).sort()).toEqual([...report.taskIds].sort());
  for (const t of tasks) expect(isTerminal(t.status)).toBe(true);
}

describe('agentcom smoke', () => {
  it('passes on a healthy hub: 10/10 done, no duplicates, latencies from the records', async () => {
    const r = await cli('smoke', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = r.json<SmokeReport>();
    expect(report).toMatchObject({ passed: true, problems: [], submitted: 10, completed: 10, duplicates: 0 });
    expect(report.queue).toBe(`smoke-${report.run}`);
    expect(report.agents).toEqual([`smoke-${report.run}-1`, `smoke-${report.run}-2`]);
    expect(report.acceptLatencyMs!.max).toBeLessThan(5_000);
    expect(report.acceptLatencyMs!.p50).toBeLessThanOrEqual(report.acceptLatencyMs!.max);
    expect(Object.values(report.perAgent).reduce((a, b) => a + b, 0)).toBe(10);
    const done = (await h.api.list({ queue: report.queue as never, limit: 100 })).tasks;
    expect(done.map((t) => t.result).sort((a, b) => (a as { n: number }).n - (b as { n: number }).n)).toEqual(
      Array.from({ length: 10 }, (_, i) => ({ n: i + 1 })),
    );
    await expectCleanedUp(report);

    const text = await cli('smoke');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^smoke: PASS {2}10\/10 done by 2 agents, 0 duplicates\n/);
    expect(text.stdout).toMatch(/submit -> accepted {2}p50 \d+ ms, max \d+ ms/);
  });

  it('fails with exit 1 when the tasks miss the deadline, and still stops its agents and cancels the rest', async () => {
    // 1 ms from the last submit: the first look at the tasks is already past the deadline.
    const r = await cli('smoke', '--deadline', '1ms', '--json');
    expect(r.code).toBe(1);
    const report = r.json<SmokeReport>();
    expect(report.passed).toBe(false);
    expect(report.completed).toBeLessThan(10);
    expect(report.problems[0]).toMatch(/^\d+\/10 tasks done$/);
    await expectCleanedUp(report);
  });

  it('exits 69 when no hub answers and 2 for a bad --deadline', async () => {
    const [noNats, noHub, badFlag] = await Promise.all([
      runCli(['smoke', '--nats-url', 'nats://127.0.0.1:1']),
      runCli(['smoke', '--nats-url', h.url, '--prefix', 'nohub']),
      cli('smoke', '--deadline', '60'),
    ]);
    expect(noNats.stderr).toMatch(/^agentcom smoke: cannot reach NATS at .*is the hub running\?/);
    expect(noNats.code).toBe(69);
    expect(noHub.stderr).toMatch(/^agentcom smoke: no hub answers on NATS at .*prefix nohub/);
    expect(noHub.code).toBe(69);
    expect(badFlag.stderr).toContain('--deadline must be a duration like 30s');
    expect(badFlag.code).toBe(2);
  });
});
