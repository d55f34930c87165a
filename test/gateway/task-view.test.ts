import { describe, expect, it } from 'vitest';
import { decodeTaskView, viewOfRecord } from '../../src/gateway/task-view.js';
import type { TaskRecord } from '../../src/protocol/task.js';
import { A, assignedTo, drive, submitted } from '../actors/task-queue/helpers.js';

const record = {
  v: 1,
  id: 't01a2486723b2228c22f47ded',
  title: 'a task',
  description: 'what to do',
  priority: 'normal',
  queue: 'default',
  capabilities: [],
  maxRetries: 3,
  backoff: { baseMs: 1000, maxMs: 60000 },
  status: 'done',
  assignee: 'a1',
  generation: 1,
  retryCount: 0,
  createdAt: 1,
  assignedAt: 2,
  acceptedAt: 3,
  lastProgressAt: 3,
  blockedAt: null,
  completedAt: 4,
  result: { ok: true },
  error: null,
  tokensUsed: 0,
  assignmentTokens: 0,
  progress: null,
  lastReport: { type: 'completed', agentId: 'a1', generation: 1 },
  flaggedAgents: [],
  history: [
    { at: 1, from: null, to: 'queued', generation: 0, by: 'hub' },
    { at: 2, from: 'queued', to: 'assigned', generation: 1, by: 'hub', agent: 'a1' },
    { at: 4, from: 'assigned', to: 'done', generation: 1, by: 'a1' },
  ],
};
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

describe('decodeTaskView', () => {
  it('reads the fields the gateway uses, from bytes or text, and leaves the body out', () => {
    const view = decodeTaskView(bytes(record));
    expect(view).toMatchObject({ id: record.id, status: 'done', queue: 'default', completedAt: 4 });
    expect(view?.history).toHaveLength(3);
    expect(view).not.toHaveProperty('description');
    expect(view).not.toHaveProperty('result');
    expect(decodeTaskView(JSON.stringify(record))).toEqual(view);
  });

  it('does not validate what it does not read (a body past its limit still gives a view)', () => {
    expect(
      decodeTaskView(bytes({ ...record, description: 'x'.repeat(70_000), metadata: 'no' })),
    ).not.toBeNull();
  });

  it('gives null for what is not a record: not JSON, a field it reads missing or malformed', () => {
    expect(decodeTaskView(bytes('{"v":1,'))).toBeNull();
    expect(decodeTaskView(bytes('null'))).toBeNull();
    const { status: _, ...noStatus } = record;
    expect(decodeTaskView(bytes(noStatus))).toBeNull();
    expect(decodeTaskView(bytes({ ...record, status: 'exploded' }))).toBeNull();
    expect(decodeTaskView(bytes({ ...record, history: [{ at: -1 }] }))).toBeNull();
  });

  it('viewOfRecord reads every field decodeTaskView gives for the bytes of the same record', () => {
    const assigned = assignedTo(A, true);
    const records: TaskRecord[] = [
      record as unknown as TaskRecord,
      submitted(),
      submitted({ notBefore: 2_000_000 }),
      assigned,
      drive(assigned, [{ type: 'progress', agentId: A, generation: 1, pct: 50, message: 'half' }]),
      drive(assigned, [
        { type: 'fail', agentId: A, generation: 1, error: { message: 'no' }, retryable: false },
      ]),
    ];
    for (const r of records) {
      const decoded = decodeTaskView(bytes(r))!;
      const view = viewOfRecord(r) as Record<string, unknown>;
      for (const [k, v] of Object.entries(decoded)) expect(view[k]).toEqual(v);
    }
  });
});
