import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyTaskCommand, RECLAIM_REASONS, type TaskCommand } from '../../../actors/task-queue/state.js';
import type { AgentId } from '../../../src/protocol/ids.js';
import { isTerminal, type TaskRecord, TaskRecordSchema } from '../../../src/protocol/task.js';
import { submitted, T0 } from './helpers.js';

const AGENTS = ['a1', 'a2', 'a3'] as AgentId[];

/** A command template; report generations are relative to the task's current one so most are plausible. */
const step = fc.record({
  kind: fc.constantFrom(
    'assign',
    'assign',
    'accept',
    'accept',
    'progress',
    'progress',
    'block',
    'unblock',
    'complete',
    'fail',
    'reject',
    'recovering',
    'cancel',
    'retry',
    'reclaim',
  ),
  agent: fc.constantFrom(...AGENTS),
  genOffset: fc.constantFrom(0, 0, 0, -1, 1),
  retryable: fc.boolean(),
  reason: fc.constantFrom(...RECLAIM_REASONS),
  tokens: fc.nat(1000),
  dt: fc.nat(3000),
  useAssignee: fc.constantFrom(true, true, true, false),
});
type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

function toCommand(task: TaskRecord, s: Step): TaskCommand {
  const agentId = s.useAssignee && task.assignee ? task.assignee : s.agent;
  const generation = Math.max(0, task.generation + s.genOffset);
  const base = { agentId, generation };
  switch (s.kind) {
    case 'assign':
      return { type: 'assign', agentId };
    case 'accept':
      return { type: 'accept', ...base };
    case 'progress':
      return { type: 'progress', ...base, tokensUsed: s.tokens };
    case 'block':
      return { type: 'block', ...base, reason: 'wait' };
    case 'unblock':
      return { type: 'unblock', ...base };
    case 'complete':
      return { type: 'complete', ...base, result: { ok: 1 }, tokensUsed: s.tokens };
    case 'fail':
      return { type: 'fail', ...base, error: { message: 'x' }, retryable: s.retryable, tokensUsed: s.tokens };
    case 'reject':
      return { type: 'reject', ...base, reason: 'no' };
    case 'recovering':
      return { type: 'recovering', ...base };
    case 'cancel':
      return { type: 'cancel' };
    case 'retry':
      return { type: 'retry' };
    default:
      return { type: 'reclaim', reason: s.reason };
  }
}

const scenario = fc.record({
  maxRetries: fc.integer({ min: 0, max: 4 }),
  completeBy: fc.option(fc.integer({ min: T0, max: T0 + 200_000 }), { nil: undefined, freq: 4 }),
  steps: fc.array(step, { minLength: 20, maxLength: 80 }),
});

/** Run a scenario, checking per-step invariants; returns the number of ok, non-duplicate steps. */
function run(sc: typeof scenario extends fc.Arbitrary<infer R> ? R : never): number {
  let task = submitted(
    sc.completeBy === undefined
      ? { maxRetries: sc.maxRetries }
      : { maxRetries: sc.maxRetries, completeBy: sc.completeBy },
  );
  let now = T0;
  let applied = 0;
  for (const s of sc.steps) {
    now += s.dt;
    const command = toCommand(task, s);
    const r = applyTaskCommand(task, command, now);
    if (!r.ok) continue;
    const prev = task;
    const next = r.task;
    // generation never decreases; an assignment raises it by exactly one
    expect(next.generation).toBeGreaterThanOrEqual(prev.generation);
    if (command.type === 'assign' && !r.duplicate) expect(next.generation).toBe(prev.generation + 1);
    // a report older than the current generation is never applied
    if ('generation' in command && command.type !== 'assign' && command.generation !== undefined)
      if (command.generation < prev.generation) expect(r.duplicate).toBe(true);
    // duplicates change nothing
    if (r.duplicate) {
      expect(next).toBe(prev);
      expect(r.effects).toEqual([]);
    }
    // terminal tasks change only through retry
    if (isTerminal(prev.status) && next !== prev) expect(command.type).toBe('retry');
    // a report is only applied for the assignee
    if ('agentId' in command && command.type !== 'assign' && !r.duplicate)
      expect(prev.assignee).toBe(command.agentId);
    expect(next.retryCount).toBeLessThanOrEqual(next.maxRetries);
    expect(next.tokensUsed).toBeGreaterThanOrEqual(prev.tokensUsed);
    expect(next.history.length).toBeLessThanOrEqual(50);
    if (next.status !== prev.status)
      expect(next.history.at(-1)).toMatchObject({ from: prev.status, to: next.status, at: now });
    // the record stays JSON and schema-valid
    expect(TaskRecordSchema.parse(JSON.parse(JSON.stringify(next)))).toEqual(
      JSON.parse(JSON.stringify(next)),
    );
    if (!r.duplicate) applied++;
    task = next;
  }
  return applied;
}

describe('applyTaskCommand properties', () => {
  it('fencing, terminal stability, retry bounds and schema validity hold on random command sequences', () => {
    let total = 0;
    fc.assert(
      fc.property(scenario, (sc) => {
        total += run(sc);
      }),
      { numRuns: 400 },
    );
    // the generator must actually exercise transitions, or the property above proves nothing
    expect(total).toBeGreaterThan(1000);
  });

  it('an assignment that ends without a result consumes a retry; attempts are bounded by maxRetries + 1', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.constantFrom('fail', 'reject', 'offline', 'stuck', 'accept_timeout'), {
          minLength: 1,
          maxLength: 12,
        }),
        (maxRetries, endings) => {
          let task = submitted({ maxRetries });
          let now = T0;
          let assignments = 0;
          for (const end of endings) {
            if (task.status !== 'queued') break;
            now = Math.max(now, task.notBefore ?? now) + 1;
            const a = applyTaskCommand(task, { type: 'assign', agentId: AGENTS[0]! }, now);
            if (!a.ok) throw new Error(a.error.message);
            assignments++;
            task = a.task;
            const g = task.generation;
            const agentId = AGENTS[0]!;
            if (end !== 'accept_timeout' && end !== 'reject')
              task = ok(applyTaskCommand(task, { type: 'accept', agentId, generation: g }, now));
            const c: TaskCommand =
              end === 'fail'
                ? { type: 'fail', agentId, generation: g, error: { message: 'x' }, retryable: true }
                : end === 'reject'
                  ? { type: 'reject', agentId, generation: g, reason: 'r' }
                  : { type: 'reclaim', reason: end === 'offline' ? 'agent_offline' : end };
            task = ok(applyTaskCommand(task, c, now));
            expect(task.retryCount).toBe(Math.min(assignments, maxRetries));
          }
          expect(assignments).toBeLessThanOrEqual(maxRetries + 1);
          if (assignments === maxRetries + 1) expect(task.status).toBe('dead');
          else expect(task.status).toBe('queued');
        },
      ),
      { numRuns: 300 },
    );
  });
});

function ok(r: ReturnType<typeof applyTaskCommand>): TaskRecord {
  if (!r.ok) throw new Error(r.error.message);
  return r.task;
}
