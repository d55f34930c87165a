/**
 * The sidecar's local queue (pure) and queue.json on disk: duplicates, supersession, cancels that
 * must not remove a newer assignment, and a corrupt or foreign file moved aside instead of
 * stopping the sidecar.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseResultFileName } from '../../src/agent/sidecar/files.js';
import * as lq from '../../src/agent/sidecar/local-queue.js';
import { loadQueue, saveQueue } from '../../src/agent/sidecar/queue-store.js';
import type { InboxAssign, InboxCancel } from '../../src/protocol/agent.js';
import type { QueueName, TaskId } from '../../src/protocol/ids.js';

const task = {
  title: 'x',
  description: '',
  priority: 'normal',
  queue: 'default' as QueueName,
  capabilities: [],
} as InboxAssign['task'];
const assign = (taskId: string, generation: number): InboxAssign => ({
  v: 1,
  type: 'assign',
  taskId: taskId as TaskId,
  generation,
  task,
});
const cancelMsg = (taskId: string, generation: number): InboxCancel => ({
  v: 1,
  type: 'cancel',
  taskId: taskId as TaskId,
  generation,
  reason: 'test',
});

describe('local queue', () => {
  it('keeps one entry per task at its newest generation', () => {
    let q = lq.emptyQueue('a1');
    const r1 = lq.receive(q, assign('t1', 1), 10);
    expect(r1.kind).toBe('new');
    q = (r1 as { queue: lq.LocalQueue }).queue;
    expect(lq.receive(q, assign('t1', 1), 11)).toMatchObject({ kind: 'duplicate' });
    expect(lq.receive(q, assign('t1', 0), 11)).toMatchObject({ kind: 'duplicate' });
    const r2 = lq.receive(q, assign('t1', 2), 12);
    expect(r2).toMatchObject({ kind: 'new', superseded: { generation: 1 } });
    q = (r2 as { queue: lq.LocalQueue }).queue;
    expect(q.tasks).toHaveLength(1);
    expect(q.tasks[0]).toMatchObject({ generation: 2, state: 'received', receivedAt: 12 });
  });

  it('an old cancel never removes a newer assignment', () => {
    const q = (lq.receive(lq.emptyQueue('a1'), assign('t1', 3), 0) as { queue: lq.LocalQueue }).queue;
    expect(lq.cancel(q, cancelMsg('t1', 2)).removed).toBeUndefined();
    expect(lq.cancel(q, cancelMsg('t1', 3)).removed).toMatchObject({ generation: 3 });
    expect(lq.cancel(q, cancelMsg('t9', 3)).queue).toBe(q);
  });

  it('accept, progress and finish apply to the exact generation only', () => {
    let q = (lq.receive(lq.emptyQueue('a1'), assign('t1', 2), 0) as { queue: lq.LocalQueue }).queue;
    expect(lq.markAccepted(q, 't1', 1)).toBe(q);
    q = lq.markAccepted(q, 't1', 2);
    expect(lq.find(q, 't1')?.state).toBe('accepted');
    q = lq.markProgress(q, 't1', 2, 3);
    expect(lq.markProgress(q, 't1', 2, 2)).toEqual(q); // never goes back
    expect(lq.find(q, 't1')?.progressSeq).toBe(3);
    expect(lq.finish(q, 't1', 1)).toBe(q);
    expect(lq.finish(q, 't1', 2).tasks).toEqual([]);
  });

  it('property: after any sequence of assigns and cancels, each task is held once, at the newest generation not cancelled', () => {
    const op = fc.record({
      kind: fc.constantFrom('assign', 'cancel'),
      task: fc.constantFrom('t1', 't2', 't3'),
      gen: fc.integer({ min: 0, max: 5 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        let q = lq.emptyQueue('a1');
        const newest = new Map<string, number>(); // the model: newest generation assigned, or -1 after a cancel that covers it
        for (const o of ops) {
          if (o.kind === 'assign') {
            const r = lq.receive(q, assign(o.task, o.gen), 0);
            if (r.kind === 'new') q = r.queue;
            const cur = newest.get(o.task);
            if (cur === undefined || cur < o.gen) newest.set(o.task, o.gen);
          } else {
            q = lq.cancel(q, cancelMsg(o.task, o.gen)).queue;
            const cur = newest.get(o.task);
            if (cur !== undefined && cur <= o.gen) newest.set(o.task, -1);
          }
        }
        const ids = q.tasks.map((t) => t.taskId);
        expect(new Set(ids).size).toBe(ids.length);
        for (const [t, g] of newest) {
          const e = lq.find(q, t);
          if (g === -1) expect(e).toBeUndefined();
          else expect(e?.generation).toBe(g);
        }
      }),
    );
  });

  it('result file names: results and progress of valid task ids; temp files and others ignored', () => {
    expect(parseResultFileName('t1.json')).toEqual({ taskId: 't1', kind: 'result' });
    expect(parseResultFileName('t1.progress.json')).toEqual({ taskId: 't1', kind: 'progress' });
    for (const n of ['.t1.json.abc.tmp', 't1.json.tmp', 'notes.txt', '../t1.json', 't 1.json'])
      expect(parseResultFileName(n)).toBeNull();
  });
});

describe('queue.json', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentcom-queue-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a missing file is an empty queue; a saved queue loads back, written 0600', async () => {
    const path = join(dir, 'queue.json');
    expect((await loadQueue(path, 'a1')).queue.tasks).toEqual([]);
    const q = (lq.receive(lq.emptyQueue('a1'), assign('t1', 1), 5) as { queue: lq.LocalQueue }).queue;
    await saveQueue(path, q);
    expect((await loadQueue(path, 'a1')).queue).toEqual(q);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it.each([
    ['not JSON', '{"v":1,"tasks":[', 'not JSON'],
    ['the wrong shape', '{"v":1,"agentId":"a1","tasks":[{"taskId":"t1"}]}', 'invalid'],
    ['another agent’s file', '{"v":1,"agentId":"b2","tasks":[]}', 'belongs to agent b2'],
  ])('%s is moved aside and the sidecar starts empty', async (_name, content, reason) => {
    const path = join(dir, 'queue.json');
    await writeFile(path, content);
    const r = await loadQueue(path, 'a1', 1234);
    expect(r.queue.tasks).toEqual([]);
    expect(r.quarantined?.path).toBe(`${path}.corrupt-1234`);
    expect(r.quarantined?.reason).toContain(reason);
    expect(await readFile(`${path}.corrupt-1234`, 'utf8')).toBe(content);
  });
});
