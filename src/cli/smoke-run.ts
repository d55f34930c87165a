/**
 * @module cli/smoke-run
 * The seeds' smoke test (seed 002: 2 agents, 10 trivial tasks) against a live hub. The agents run
 * in this process on the agent SDK and serve only a queue of their own (`smoke-<run>`), so real
 * work is never taken and real agents never see the smoke tasks. Pass: every task done, none run
 * twice, and the slowest submit-to-accepted under 5 s (the seed's criterion). Whatever happens,
 * the agents say goodbye and any smoke task left unfinished is cancelled, so a failed run leaves
 * no work queued behind it. The agents stay registered (offline) on the hub afterwards.
 * Latencies come from the hub's own timestamps in the task records, not from this process's clock.
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { AgentClient } from '../agent/client.js';
import type { BusConnectOptions } from '../bus/connection.js';
import type { HubClient } from '../bus/hub-client.js';
import type { QueueName } from '../protocol/ids.js';
import type { TaskRecord } from '../protocol/task.js';
import { isTerminal } from '../protocol/task.js';

/** Seed 002's pass criterion for assignment latency. */
export const SMOKE_MAX_ACCEPT_LATENCY_MS = 5_000;

export interface SmokeOptions {
  hub: HubClient;
  /** How the in-process agents connect (same server, prefix and credentials as the CLI). */
  agentConnection: BusConnectOptions;
  /** Give up waiting for the tasks after this long (from the first submit). */
  deadlineMs: number;
  tasks?: number;
  agents?: number;
  /** Time between looks at the tasks while waiting (default 100 ms). */
  pollMs?: number;
  onProgress?: (p: SmokeProgress) => void;
}

export interface SmokeProgress {
  done: number;
  total: number;
  byStatus: Record<string, number>;
  elapsedMs: number;
}

export interface SmokeReport {
  v: 1;
  passed: boolean;
  /** Why it did not pass (empty when it passed). */
  problems: string[];
  run: string;
  queue: string;
  agents: string[];
  submitted: number;
  completed: number;
  /** Tasks whose handler ran more than once, or that entered `done` more than once. */
  duplicates: number;
  /** Tasks that ended failed, dead or cancelled. */
  failed: number;
  /** Tasks not finished at the deadline (cancelled afterwards). */
  unfinished: number;
  /** submit -> accepted, from the records' `createdAt` and `acceptedAt` (ms). */
  acceptLatencyMs: { p50: number; max: number } | null;
  /** submit -> assigned (ms). */
  assignLatencyMs: { p50: number; max: number } | null;
  tokensUsed: number;
  /** First submit to last completion, hub clock (ms); null unless all completed. */
  totalMs: number | null;
  /** The whole run including connecting the agents and cleaning up (ms). */
  wallMs: number;
  /** Completions per agent. */
  perAgent: Record<string, number>;
  taskIds: string[];
}

/** Nearest-rank percentile of a non-empty list. */
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function spread(values: number[]): { p50: number; max: number } | null {
  return values.length ? { p50: percentile(values, 50), max: Math.max(...values) } : null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runSmoke(opts: SmokeOptions): Promise<SmokeReport> {
  const wallStart = Date.now();
  const total = opts.tasks ?? 10;
  const run = randomBytes(4).toString('hex');
  const queue = `smoke-${run}` as QueueName;
  const agentIds = Array.from({ length: opts.agents ?? 2 }, (_, i) => `smoke-${run}-${i + 1}`);
  const runs = new Map<string, number>();
  const agents: AgentClient[] = [];
  let ids: string[] = [];
  let records: TaskRecord[] = [];
  try {
    for (const agentId of agentIds) {
      const agent = await AgentClient.connect({
        connection: { ...opts.agentConnection, name: `agentcom-smoke-${agentId}` },
        agentId,
        hello: { queues: [queue], name: 'agentcom smoke', slots: 1 },
        logger: pino({ level: process.env.AGENTCOM_LOG_LEVEL || 'silent' }),
        helloTimeoutMs: Math.min(opts.deadlineMs, 10_000),
      });
      agents.push(agent);
      await agent.start(async (ctx) => {
        runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
        const n = ctx.task.metadata?.n;
        return { type: 'completed', result: { n } };
      });
    }

    const submitted = await Promise.allSettled(
      Array.from({ length: total }, (_, i) =>
        opts.hub.submit({
          title: `write the number ${i + 1}`,
          queue,
          idempotencyKey: `${queue}-${i + 1}`,
          metadata: { smoke: run, n: i + 1 },
          maxRetries: 1,
          submittedBy: 'agentcom smoke',
        }),
      ),
    );
    // Keep the ids of those that made it, so the cleanup below cancels them if one did not.
    ids = submitted.flatMap((s) => (s.status === 'fulfilled' ? [s.value.id] : []));
    const refused = submitted.find((s) => s.status === 'rejected');
    if (refused) throw refused.reason;
    const deadline = Date.now() + opts.deadlineMs;
    const started = Date.now();
    for (;;) {
      records = (await opts.hub.list({ queue, limit: Math.max(total, 1) })).tasks;
      const byStatus: Record<string, number> = {};
      for (const t of records) byStatus[t.status] = (byStatus[t.status] ?? 0) + 1;
      opts.onProgress?.({ done: byStatus.done ?? 0, total, byStatus, elapsedMs: Date.now() - started });
      const finished = records.length >= total && records.every((t) => isTerminal(t.status));
      if (finished || Date.now() >= deadline) break;
      await sleep(Math.min(opts.pollMs ?? 100, Math.max(1, deadline - Date.now())));
    }
  } finally {
    // Leave nothing behind: unfinished smoke tasks are cancelled (nobody else serves the queue),
    // then the agents leave with a goodbye so the hub marks them offline at once.
    const open = ids.filter((id) => !records.some((t) => t.id === id && isTerminal(t.status)));
    await Promise.allSettled(open.map((id) => opts.hub.cancel(id, 'smoke test over')));
    await Promise.allSettled(agents.map((a) => a.stop({ reason: 'smoke test over' })));
  }
  return summarise({ run, queue, agentIds, ids, records, runs, total, wallStart });
}

function summarise(r: {
  run: string;
  queue: string;
  agentIds: string[];
  ids: string[];
  records: TaskRecord[];
  runs: Map<string, number>;
  total: number;
  wallStart: number;
}): SmokeReport {
  const done = r.records.filter((t) => t.status === 'done');
  const failed = r.records.filter((t) => isTerminal(t.status) && t.status !== 'done');
  const duplicates = r.ids.filter(
    (id) =>
      (r.runs.get(id) ?? 0) > 1 ||
      (r.records.find((t) => t.id === id)?.history.filter((h) => h.to === 'done').length ?? 0) > 1,
  ).length;
  const accept = done.filter((t) => t.acceptedAt !== null).map((t) => t.acceptedAt! - t.createdAt);
  const assign = done.filter((t) => t.assignedAt !== null).map((t) => t.assignedAt! - t.createdAt);
  const perAgent: Record<string, number> = {};
  for (const t of done) if (t.assignee) perAgent[t.assignee] = (perAgent[t.assignee] ?? 0) + 1;
  const acceptLatencyMs = spread(accept);
  const problems: string[] = [];
  if (done.length < r.total) problems.push(`${done.length}/${r.total} tasks done`);
  if (failed.length)
    problems.push(`${failed.length} failed: ${failed.map((t) => `${t.id} ${t.status}`).join(', ')}`);
  if (duplicates) problems.push(`${duplicates} task(s) ran more than once`);
  if (acceptLatencyMs && acceptLatencyMs.max >= SMOKE_MAX_ACCEPT_LATENCY_MS)
    problems.push(
      `slowest submit -> accepted ${acceptLatencyMs.max} ms (must be under ${SMOKE_MAX_ACCEPT_LATENCY_MS})`,
    );
  const allDone = done.length === r.total;
  return {
    v: 1,
    passed: problems.length === 0,
    problems,
    run: r.run,
    queue: r.queue,
    agents: r.agentIds,
    submitted: r.ids.length,
    completed: done.length,
    duplicates,
    failed: failed.length,
    unfinished: r.total - done.length - failed.length,
    acceptLatencyMs,
    assignLatencyMs: spread(assign),
    tokensUsed: done.reduce((s, t) => s + t.tokensUsed, 0),
    totalMs: allDone
      ? Math.max(...done.map((t) => t.completedAt ?? t.createdAt)) - Math.min(...done.map((t) => t.createdAt))
      : null,
    wallMs: Date.now() - r.wallStart,
    perAgent,
    taskIds: r.ids,
  };
}
