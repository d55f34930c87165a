/**
 * The task mirror against a real server: idle until its hub stands by; then it follows the tasks
 * bucket through writes, deletes and retention's removals, hands over exactly what a full read of
 * the bucket returns, stops following once it has handed them over, and follows again when told
 * to resume.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TaskMirror,
  type TaskMirrorMessage,
  type TaskMirrorStatus,
} from '../../../actors/task-mirror/index.js';
import {
  type Bus,
  defaultTopology,
  type KvValue,
  openKv,
  provision,
  type TypedKv,
} from '../../../src/bus/index.js';
import type { TaskId } from '../../../src/protocol/ids.js';
import { type TaskRecord, TaskRecordSchema } from '../../../src/protocol/task.js';
import { call, cast, exit, type Pid, startServer } from '../../../src/runtime/index.js';
import { testBus } from '../../bus/support.js';
import { eventually } from '../../support/eventually.js';
import { useNatsServer } from '../../support/nats-server.js';
import { A, assignedTo, submitted } from '../task-queue/helpers.js';

const record = (id: string, assigned = false): TaskRecord => ({
  ...(assigned ? assignedTo(A) : submitted()),
  id: id as TaskId,
});

describe('task mirror', () => {
  const nats = useNatsServer();
  const pids: Pid[] = [];
  let bus: Bus | undefined;
  afterEach(async () => {
    for (const p of pids.splice(0)) exit(p, 'shutdown');
    await bus?.drain();
  });

  async function setUp(): Promise<{ kv: TypedKv<TaskRecord>; mirror: Pid }> {
    bus = await testBus(nats.url);
    await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
    const kv = await openKv(bus, bus.names.buckets.tasks, TaskRecordSchema);
    for (let i = 0; i < 50; i++) await kv.create(`t${i}`, record(`t${i}`));
    const started = await startServer(TaskMirror.start, { bus, log: pino({ level: 'silent' }) });
    if (started.kind !== 'ok') throw new Error('mirror did not start');
    pids.push(started.pid);
    return { kv, mirror: started.pid };
  }

  const status = async (mirror: Pid): Promise<TaskMirrorStatus> => {
    const r = await call<TaskMirrorStatus>(mirror, { type: 'status' } satisfies TaskMirrorMessage);
    if (!r.ok) throw new Error(`status: ${r.error.kind}`);
    return r.value;
  };
  const take = async (mirror: Pid) => {
    const r = await call<Map<string, KvValue<TaskRecord>> | null>(mirror, {
      type: 'take',
    } satisfies TaskMirrorMessage);
    if (!r.ok) throw new Error(`take: ${r.error.kind}`);
    return r.value;
  };

  it('hands over what a full read returns, after writes, deletes and removals it followed', async () => {
    const { kv, mirror } = await setUp();
    // Idle until told that its hub stands by: a hub leading from its start reads nothing twice.
    expect(await status(mirror)).toMatchObject({ phase: 'stopped', tasks: 0 });
    expect(await take(mirror)).toBeNull();
    cast(mirror, { type: 'resume' } satisfies TaskMirrorMessage);
    await eventually(async () => expect((await status(mirror)).phase).toBe('following'));
    for (let i = 0; i < 10; i++) {
      const cur = await kv.get(`t${i}`);
      await kv.update(`t${i}`, record(`t${i}`, true), cur!.revision);
    }
    for (let i = 50; i < 60; i++) await kv.create(`t${i}`, record(`t${i}`));
    for (let i = 10; i < 15; i++) await kv.delete(`t${i}`);
    // Retention's removal leaves nothing in the stream: a purge marker, then a purge up to it.
    const removed = ['t15', 't16', 't17', 't18', 't19'];
    for (const id of removed) await kv.remove(id, (await kv.get(id))!.revision);

    const handed = await take(mirror);
    const bucket = await kv.entries();
    expect(handed).not.toBeNull();
    expect(bucket.size).toBe(50);
    for (const [key, value] of bucket) expect(handed!.get(key)).toEqual(value);
    // Only a removed key may be left over: when the purge beat the tail to the marker (the
    // module header says so; the TaskQueue's first retention sweep removes it again).
    expect([...handed!.keys()].filter((k) => !bucket.has(k)).every((k) => removed.includes(k))).toBe(true);
    expect(handed!.get('t0')?.value.status).toBe('assigned');

    // Handed over: it follows no more, and a second take gets nothing.
    expect((await status(mirror)).phase).toBe('stopped');
    expect(await take(mirror)).toBeNull();

    // Resumed (this hub stands by again): it reads and follows again.
    await kv.create('t60', record('t60'));
    cast(mirror, { type: 'resume' } satisfies TaskMirrorMessage);
    await eventually(async () =>
      expect(await status(mirror)).toMatchObject({ phase: 'following', tasks: 51 }),
    );
    const again = await take(mirror);
    expect([...again!].sort()).toEqual([...(await kv.entries())].sort());
    expect(again!.has('t60')).toBe(true);
  });
});
