/**
 * The chaos checker must catch what it is there to catch: each violation is planted in a small
 * hand-made history and found, and a clean history passes.
 */
import { describe, expect, it } from 'vitest';
import type { HistoryEntry, TaskRecord } from '../../src/protocol/task.js';
import { checkHistory, staleEntries } from './checker.js';
import type { HistoryEvent } from './history.js';

const T = 1_000_000;
const entry = (
  at: number,
  from: string | null,
  to: string,
  generation: number,
  by: string,
  extra: Record<string, string> = {},
) => ({ at: T + at, from, to, generation, by, ...extra }) as HistoryEntry;

function record(id: string, history: HistoryEntry[], status = history.at(-1)!.to): TaskRecord {
  return {
    v: 1,
    id,
    title: id,
    description: '',
    priority: 'normal',
    queue: 'default',
    capabilities: [],
    maxRetries: 3,
    backoff: { baseMs: 1000, maxMs: 60_000 },
    status,
    assignee: 'a1',
    generation: history.at(-1)!.generation,
    retryCount: 0,
    createdAt: T,
    assignedAt: null,
    acceptedAt: null,
    lastProgressAt: null,
    blockedAt: null,
    completedAt: status === 'done' ? history.at(-1)!.at : null,
    result: null,
    error: null,
    tokensUsed: 0,
    assignmentTokens: 0,
    progress: null,
    lastReport: null,
    flaggedAgents: [],
    history,
  } as unknown as TaskRecord;
}

const clean = () => [
  entry(0, null, 'queued', 0, 'hub'),
  entry(1, 'queued', 'assigned', 1, 'hub', { agent: 'a1' }),
  entry(2, 'assigned', 'working', 1, 'a1'),
  entry(3, 'working', 'done', 1, 'a1'),
];
const submitted = (id: string): HistoryEvent => ({ t: T, kind: 'submit', key: `k-${id}`, taskId: id });

describe('chaos checker', () => {
  it('passes a clean history', () => {
    const r = checkHistory([submitted('t1')], [record('t1', clean())]);
    expect(r.ok).toBe(true);
    expect(r.tasks.byStatus).toEqual({ done: 1 });
    expect(r.latencyMs.n).toBe(1);
  });

  it('finds a submission with no record, and one that ended dead', () => {
    const dead = [...clean().slice(0, 3), entry(3, 'working', 'dead', 1, 'a1')];
    const r = checkHistory([submitted('t1'), submitted('t2')], [record('t2', dead)]);
    expect(r.violations.map((v) => [v.kind, v.taskId])).toEqual([
      ['lost', 't1'],
      ['lost', 't2'],
    ]);
  });

  it('finds a task that entered done twice', () => {
    const twice = [
      ...clean(),
      entry(4, 'done', 'queued', 1, 'hub', { reason: 'manual retry' }),
      entry(5, 'queued', 'assigned', 2, 'hub', { agent: 'a2' }),
      entry(6, 'assigned', 'done', 2, 'a2'),
    ];
    const r = checkHistory([submitted('t1')], [record('t1', twice)]);
    expect(r.violations.map((v) => v.kind)).toEqual(['doubled']);
  });

  it('finds an agent transition applied for a stale generation or by another agent', () => {
    expect(
      staleEntries([
        entry(0, null, 'queued', 0, 'hub'),
        entry(1, 'queued', 'assigned', 1, 'hub', { agent: 'a1' }),
        entry(2, 'assigned', 'queued', 2, 'hub', { reason: 'agent_offline' }),
        entry(3, 'queued', 'assigned', 3, 'hub', { agent: 'a2' }),
        entry(4, 'assigned', 'working', 1, 'a1'),
      ]),
    ).toHaveLength(1);
    expect(
      staleEntries([
        entry(1, 'queued', 'assigned', 1, 'hub', { agent: 'a1' }),
        entry(2, 'assigned', 'working', 1, 'a2'),
      ]),
    ).toHaveLength(1);
    expect(staleEntries(clean())).toEqual([]);
  });

  it('finds a task still open at the end', () => {
    const r = checkHistory([submitted('t1')], [record('t1', clean().slice(0, 3))]);
    expect(r.violations.map((v) => v.kind)).toEqual(['not_terminal']);
  });

  it('splits re-executions by cause and measures how long a killed agent held work', () => {
    const history = [
      entry(0, null, 'queued', 0, 'hub'),
      entry(1, 'queued', 'assigned', 1, 'hub', { agent: 'a1' }),
      entry(2, 'assigned', 'working', 1, 'a1'),
      entry(500, 'working', 'queued', 2, 'hub', { reason: 'not_held' }),
      entry(501, 'queued', 'assigned', 3, 'hub', { agent: 'a2' }),
      entry(600, 'assigned', 'done', 3, 'a2'),
    ];
    const events: HistoryEvent[] = [
      submitted('t1'),
      { t: T + 2, kind: 'start', proc: 'a1#1', agentId: 'a1', taskId: 't1', generation: 1 },
      {
        t: T + 100,
        kind: 'fault',
        phase: 'start',
        fault: { kind: 'kill_agent', agent: 0, downMs: 200 },
        target: 'a1#1',
      },
      { t: T + 100, kind: 'exit', proc: 'a1#1', signal: 'SIGKILL', code: null },
      { t: T + 502, kind: 'start', proc: 'a2#1', agentId: 'a2', taskId: 't1', generation: 3 },
      {
        t: T + 600,
        kind: 'finish',
        proc: 'a2#1',
        agentId: 'a2',
        taskId: 't1',
        generation: 3,
        outcome: 'completed',
      },
    ];
    const r = checkHistory(events, [record('t1', history)]);
    expect(r.ok).toBe(true);
    expect(r.reexecutions).toEqual({ total: 1, byCause: { reassigned_after_not_held: 1 } });
    expect(r.blockedSlotMs).toMatchObject({ n: 1, max: 400 });
  });
});
