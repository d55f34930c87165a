/**
 * TaskStore against a real nats-server: compare-and-set writes, coalescing of queued commands into
 * one write, lingering, re-apply after a conflict with another writer, the status counters, and
 * the removal of finished tasks (retention).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskStore } from '../../../actors/task-queue/store.js';
import { type Bus, connectBus } from '../../../src/bus/connection.js';
import { openKv, type TypedKv } from '../../../src/bus/kv.js';
import { ensureBucket } from '../../../src/bus/provision.js';
import type { AgentId, TaskId } from '../../../src/protocol/ids.js';
import { type TaskRecord, TaskRecordSchema, TaskSubmitSchema } from '../../../src/protocol/task.js';
import { uniqueName } from '../../support/names.js';
import { useNatsServer } from '../../support/nats-server.js';

describe('TaskStore', () => {
  const nats = useNatsServer();
  let bus: Bus;
  beforeAll(async () => {
    bus = await connectBus({ servers: nats.url, logger: pino({ level: 'silent' }) });
  });
  afterAll(() => bus.drain());

  const freshKv = async (): Promise<TypedKv<TaskRecord>> => {
    const bucket = uniqueName('tasks');
    await ensureBucket(bus, { bucket, history: 10 });
    return openKv(bus, bucket, TaskRecordSchema);
  };
  const submit = (id: string) => ({
    type: 'submit' as const,
    id: id as TaskId,
    submit: TaskSubmitSchema.parse({ v: 1, title: id }),
  });
  const a1 = 'a1' as AgentId;

  it('writes each change with compare-and-set and counts statuses', async () => {
    const kv = await freshKv();
    const store = new TaskStore(kv);
    await store.load();
    const created = await store.apply('t1', submit('t1'));
    expect(created.ok).toBe(true);
    const assigned = await store.apply('t1', { type: 'assign', agentId: a1 });
    expect(assigned.ok && assigned.task.generation).toBe(1);
    const stored = await kv.get('t1');
    expect(stored?.value.status).toBe('assigned');
    expect(stored?.revision).toBe(store.get('t1')!.revision);
    expect(store.stats().byStatus).toEqual({ assigned: 1 });
    expect(store.stats().total).toBe(1);
    store.stop();
  });

  it('coalesces commands queued behind an in-flight write into one write, each answered separately', async () => {
    const kv = await freshKv();
    const store = new TaskStore(kv);
    await store.load();
    // The submit starts a write at once; everything after it queues behind that write.
    const created = store.apply('t2', submit('t2'));
    const assign = store.apply('t2', { type: 'assign', agentId: a1 });
    const accept = store.apply('t2', { type: 'accept', agentId: a1, generation: 1 });
    const complete = store.apply('t2', { type: 'complete', agentId: a1, generation: 1, result: 42 });
    const stale = store.apply('t2', { type: 'progress', agentId: a1, generation: 0 });
    const [r0, r1, r2, r3, r4] = await Promise.all([created, assign, accept, complete, stale]);
    expect([r0.ok, r1.ok, r2.ok, r3.ok]).toEqual([true, true, true, true]);
    expect(r4.ok ? null : r4.error.code).toBe('stale_generation');
    const got = await kv.get('t2');
    expect(got?.value.status).toBe('done');
    // The create, then ONE write holding assign + accept + complete (one key in a fresh bucket: its
    // revision counts the writes).
    expect(got?.revision).toBe(2);
    expect(got?.value.history.map((h) => h.to)).toEqual(['queued', 'assigned', 'working', 'done']);
    store.stop();
  });

  it('stop() writes what lingers at once and resolves only after that write is answered', async () => {
    const kv = await freshKv();
    const store = new TaskStore(kv);
    await store.load();
    let answered = false;
    const created = store.apply('t9', submit('t9'), { lingerMs: 60_000 }).then((r) => {
      answered = true;
      return r;
    });
    await store.stop();
    // Without the stop the write would wait a minute; with it, it is durable when stop() resolves.
    expect(answered).toBe(true);
    expect((await created).ok).toBe(true);
    expect((await kv.get('t9'))?.value.status).toBe('queued');
  });

  it('lingers a write so that a later command joins it', async () => {
    const kv = await freshKv();
    const store = new TaskStore(kv);
    await store.load();
    const created = store.apply('t3', submit('t3'), { lingerMs: 50 });
    const assigned = store.apply('t3', { type: 'assign', agentId: a1 });
    await Promise.all([created, assigned]);
    const got = await kv.get('t3');
    expect(got?.value.status).toBe('assigned');
    expect(got?.revision).toBe(1); // created and assigned in one write
    store.stop();
  });

  it('re-reads and re-applies when another writer changed the record first', async () => {
    const kv = await freshKv();
    const mine = new TaskStore(kv);
    const theirs = new TaskStore(kv);
    await mine.load();
    await theirs.load();
    await mine.apply('t4', submit('t4'));
    await theirs.apply('t4', { type: 'cancel', reason: 'by the other hub' });
    // `mine` still caches the queued record; its assign must see the cancellation, not overwrite it.
    const r = await mine.apply('t4', { type: 'assign', agentId: a1 });
    expect(r.ok ? 'applied' : r.error.code).toBe('invalid_state');
    expect((await kv.get('t4'))?.value.status).toBe('cancelled');
    mine.stop();
    theirs.stop();
  });

  it('loads existing records and counts them', async () => {
    const kv = await freshKv();
    const writer = new TaskStore(kv);
    await writer.load();
    await writer.apply('t5', submit('t5'));
    await writer.apply('t5', { type: 'assign', agentId: a1 });
    await writer.apply('t6', submit('t6'));
    const reader = new TaskStore(kv);
    await reader.load();
    expect(reader.get('t5')?.record.status).toBe('assigned');
    expect(reader.stats()).toMatchObject({ total: 2, byStatus: { assigned: 1, queued: 1 } });
    writer.stop();
    reader.stop();
  });

  describe('remove() (retention)', () => {
    const finish = async (store: TaskStore, id: string) => {
      await store.apply(id, submit(id));
      await store.apply(id, { type: 'cancel', reason: 'finished for the test' });
    };
    /** Messages the tasks stream still holds for `key` (0 when nothing of it remains). */
    const storedFor = async (kv: TypedKv<TaskRecord>, key: string) => {
      const subject = `$KV.${kv.bucket}.${key}`;
      const info = await bus.jsm.streams.info(`KV_${kv.bucket}`, { subjects_filter: subject });
      return info.state.subjects?.[subject] ?? 0;
    };

    it('removes a finished task from the bucket, leaving nothing in the stream, and from the counts', async () => {
      const kv = await freshKv();
      const store = new TaskStore(kv);
      await store.load();
      await finish(store, 'r1');
      await store.apply('r2', submit('r2'));
      expect([...store.finished().keys()]).toEqual(['r1']);
      expect(await storedFor(kv, 'r1')).toBe(2);
      expect(await store.remove('r1')).toBe(true);
      expect(await kv.get('r1')).toBeNull();
      expect(await storedFor(kv, 'r1')).toBe(0);
      expect(store.get('r1')).toBeUndefined();
      expect(store.finished().size).toBe(0);
      expect(store.stats()).toMatchObject({ total: 1, byStatus: { queued: 1 } });
      // Unknown from then on: a report is refused; the same id submitted again is a new task.
      const late = await store.apply('r1', { type: 'complete', agentId: a1, generation: 1, result: 1 });
      expect(late.ok ? 'applied' : late.error.code).toBe('not_found');
      const again = await store.apply('r1', submit('r1'));
      expect(again.ok && !again.duplicate && again.task.status).toBe('queued');
      await store.stop();
    });

    it('never removes a task that is not finished', async () => {
      const kv = await freshKv();
      const store = new TaskStore(kv);
      await store.load();
      await store.apply('r3', submit('r3'));
      expect(await store.remove('r3')).toBe(false);
      expect((await kv.get('r3'))?.value.status).toBe('queued');
      await store.stop();
    });

    it('is compare-and-set: a record another writer changed is re-read, not removed', async () => {
      const kv = await freshKv();
      const mine = new TaskStore(kv);
      const theirs = new TaskStore(kv);
      await mine.load();
      await finish(mine, 'r4');
      await theirs.load();
      // The other writer revives it (a manual retry of a cancelled task is refused, so: a new write).
      const rev = (await kv.get('r4'))!.revision;
      const revived = { ...(await kv.get('r4'))!.value, status: 'queued' as const, completedAt: null };
      await kv.update('r4', revived, rev);
      expect(await mine.remove('r4')).toBe(false);
      expect((await kv.get('r4'))?.value.status).toBe('queued');
      expect(mine.get('r4')?.record.status).toBe('queued');
      expect(mine.finished().has('r4')).toBe(false);
      await mine.stop();
      await theirs.stop();
    });

    it('a command for the task waits for the removal, then finds the task unknown', async () => {
      const kv = await freshKv();
      const store = new TaskStore(kv);
      await store.load();
      await finish(store, 'r5');
      const removing = store.remove('r5');
      const report = store.apply('r5', { type: 'progress', agentId: a1, generation: 1 });
      expect(await removing).toBe(true);
      const r = await report;
      expect(r.ok ? 'applied' : r.error.code).toBe('not_found');
      await store.stop();
    });

    it('after a load, finished tasks are in the order they finished, not the order last written', async () => {
      const kv = await freshKv();
      const writer = new TaskStore(kv);
      await writer.load();
      await finish(writer, 'f1');
      await finish(writer, 'f2');
      // f1 is written again after f2 (still finished, a second before f2 did).
      const f1 = (await kv.get('f1'))!;
      const f2At = (await kv.get('f2'))!.value.completedAt!;
      await kv.update('f1', { ...f1.value, tokensUsed: 7, completedAt: f2At - 1_000 }, f1.revision);
      const reader = new TaskStore(kv);
      await reader.load();
      expect([...reader.finished().keys()]).toEqual(['f1', 'f2']);
      expect(reader.get('f1')?.record.tokensUsed).toBe(7);
      await writer.stop();
      await reader.stop();
    });
  });
});
