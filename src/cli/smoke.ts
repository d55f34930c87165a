/**
 * @module cli/smoke
 * `agentcom smoke`: the seeds' smoke test (2 agents, 10 tasks) against a live hub, run by
 * smoke-run.ts. Exit 0 when it passes, 1 when it does not (the report says why), 69 when no hub
 * answers. The hub is asked for its stats first, so "nothing listening" is told apart from "the
 * hub is there but the tasks did not get done".
 */
import type { Command } from 'commander';
import { readSeedFile } from '../bus/nkeys.js';
import { type ConnectionFlags, withConnectionFlags, withHub } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { formatDuration, parseDuration } from './format.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';
import { runSmoke, type SmokeReport } from './smoke-run.js';

interface SmokeFlags extends ConnectionFlags {
  deadline?: string;
}

export function smokeReportLines(r: SmokeReport): string[] {
  const ms = (v: { p50: number; max: number } | null) => (v ? `p50 ${v.p50} ms, max ${v.max} ms` : '-');
  const agents = r.agents.map((a) => `${a}: ${r.perAgent[a] ?? 0}`).join(', ');
  const lines = [
    `smoke: ${r.passed ? 'PASS' : 'FAIL'}  ${r.completed}/${r.submitted} done by ${r.agents.length} agents, ${r.duplicates} duplicates`,
    `  submit -> accepted  ${ms(r.acceptLatencyMs)}`,
    `  submit -> assigned  ${ms(r.assignLatencyMs)}`,
    `  per agent           ${agents}`,
    `  tokens              ${r.tokensUsed}`,
    `  total               ${r.totalMs === null ? '-' : formatDuration(r.totalMs)} (first submit to last completion); run ${formatDuration(r.wallMs)}`,
  ];
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  return lines;
}

async function smokeCommand(f: SmokeFlags, out: Output): Promise<ExitCode> {
  const deadlineMs = f.deadline === undefined ? 60_000 : parseDuration(f.deadline, 'deadline');
  return withHub(f, async (hub, conn) => {
    await hub.stats(); // a hub answers, or this is `unavailable` (exit 69) before any agent starts
    const nkeySeed = conn.nkeyFile ? await readSeedFile(conn.nkeyFile) : undefined;
    const report = await runSmoke({
      hub,
      deadlineMs,
      agentConnection: {
        servers: conn.servers,
        prefix: conn.prefix,
        timeoutMs: conn.timeoutMs,
        apiTimeoutMs: conn.timeoutMs,
        waitOnFirstConnect: false,
        // A smoke run has no business outliving a NATS outage; it fails instead.
        maxReconnectAttempts: 0,
        ...(nkeySeed ? { nkeySeed } : {}),
      },
      onProgress: (p) => {
        const rest = Object.entries(p.byStatus)
          .filter(([s]) => s !== 'done')
          .map(([s, n]) => `${s} ${n}`)
          .join(', ');
        out.progress(
          `smoke: ${p.done}/${p.total} done${rest ? ` (${rest})` : ''} · ${formatDuration(p.elapsedMs)}`,
        );
      },
    });
    out.result(report, smokeReportLines(report));
    return report.passed ? EXIT.OK : EXIT.FAILURE;
  });
}

export function registerSmokeCommand(program: Command): void {
  withConnectionFlags(program.command('smoke'))
    .description(
      "run the seeds' smoke test against a live hub: 2 in-process agents on a queue of their own, 10 trivial tasks (exit 0 pass, 1 fail, 69 no hub)",
    )
    .option('--deadline <duration>', 'how long the 10 tasks may take (default 60s)')
    .action((f: SmokeFlags) => runCommand('smoke', f, (out) => smokeCommand(f, out)));
}
