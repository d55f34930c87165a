/**
 * The Field actor against a real nats-server: it repairs what a killed leader left half done (a
 * final revision not deleted, a revision without its audit event) and removes ended pheromones'
 * delete markers once they are old, so the bucket holds the live field only.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FieldProcess } from '../../../actors/field/index.js';
import { claim, emit, openFieldStore, pheromoneKey } from '../../../actors/field/store.js';
import type { Bus } from '../../../src/bus/connection.js';
import { defaultTopology, provision } from '../../../src/bus/provision.js';
import { publish } from '../../../src/bus/publish.js';
import { type Pheromone, PheromoneSchema } from '../../../src/protocol/field.js';
import type { TaskRecord } from '../../../src/protocol/task.js';
import { exit, type Pid, Registry } from '../../../src/runtime/index.js';
import { type Server, startServer } from '../../../src/runtime/server.js';
import { testBus } from '../../bus/support.js';
import { eventually } from '../../support/eventually.js';
import { useNatsServer } from '../../support/nats-server.js';
import { submitted } from '../task-queue/helpers.js';

const nats = useNatsServer();
let bus: Bus | undefined;
let pid: Pid | undefined;
const standIns: Pid[] = [];
afterEach(async () => {
  if (pid) exit(pid, 'shutdown');
  pid = undefined;
  for (const s of standIns.splice(0)) exit(s, 'shutdown');
  await bus?.drain();
});

async function setup() {
  bus = await testBus(nats.url);
  await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
  return { bus, store: await openFieldStore(bus) };
}

async function startField(b: Bus, over: { tombstoneKeepMs?: number; tombstoneSweepMs?: number } = {}) {
  const r = await startServer(FieldProcess.start, { bus: b, log: pino({ level: 'silent' }), ...over });
  if (r.kind !== 'ok') throw new Error('field did not start');
  pid = r.pid;
}

const subjectOf = (b: Bus, p: Pheromone) => `$KV.${b.names.buckets.field}.${pheromoneKey(p)}`;
/** The last message stored under a key's subject, or null when the stream holds none. */
async function lastStored(b: Bus, p: Pheromone) {
  return b.jsm.direct
    .getMessage(`KV_${b.names.buckets.field}`, { last_by_subj: subjectOf(b, p) })
    .catch(() => null);
}

describe('the Field actor', () => {
  it('finishes what a killed leader left: deletes a final revision, audits a revision that was not', async () => {
    const { bus: b, store } = await setup();
    const req = { v: 1 as const, selector: '', payload: {} };
    const ended = (await emit(store, { ...req, type: 'repair.ended' }, 'a')).pheromone;
    // As if the leader died between writing `expired` and deleting the key.
    const expired: Pheromone = { ...ended, event: 'expired', eventAt: Date.now(), eventBy: 'hub' };
    await store.kv.put(pheromoneKey(ended), expired);
    // As if it died between a write and its audit.
    const unaudited = (await emit(store, { ...req, type: 'repair.claimed' }, 'a')).pheromone;
    const claimed = {
      ...unaudited,
      claimedBy: 'x',
      claimedAt: 1,
      event: 'claimed' as const,
      eventAt: 1,
      eventBy: 'x',
    };
    const rev = await store.kv.put(pheromoneKey(unaudited), claimed);
    await startField(b);
    await eventually(async () => {
      if (await store.kv.get(pheromoneKey(ended))) throw new Error('not deleted yet');
    });
    const audit = await eventually(async () => {
      const sm = await b.jsm.direct.getMessage(b.names.streams.field, {
        last_by_subj: b.names.subjects.fieldAudit('claimed', unaudited.id, unaudited.type),
      });
      if (!sm) throw new Error('no audit yet');
      return sm;
    });
    expect(audit.header.get('Nats-Msg-Id')).toBe(`${unaudited.id}@${rev}`);
    expect(PheromoneSchema.parse(audit.json())).toMatchObject({ claimedBy: 'x' });
    // The ended one's last revision is in the trail too.
    const endedAudit = await b.jsm.direct.getMessage(b.names.streams.field, {
      last_by_subj: b.names.subjects.fieldAudit('expired', ended.id, ended.type),
    });
    expect(endedAudit?.seq).toBeGreaterThan(0);
    // Re-auditing that revision is a duplicate the stream drops: the trail holds it once.
    await publish(
      b,
      b.names.subjects.fieldAudit('claimed', unaudited.id, unaudited.type),
      PheromoneSchema,
      claimed,
      {
        msgId: `${unaudited.id}@${rev}`,
      },
    ).then((r) => expect(r.duplicate).toBe(true));
  });

  it('expires a pheromone at its ttl, then removes its delete marker once it is old', async () => {
    const { bus: b, store } = await setup();
    await startField(b, { tombstoneKeepMs: 0, tombstoneSweepMs: 50 });
    const p = (await emit(store, { v: 1, type: 'tomb.short', selector: '', payload: {}, ttl: 0.2 }, 'a'))
      .pheromone;
    const kept = (await emit(store, { v: 1, type: 'tomb.kept', selector: '', payload: {} }, 'a')).pheromone;
    // Nothing at all under the ended key's subject: not the record, not a delete marker.
    await eventually(
      async () => {
        if (await lastStored(b, p)) throw new Error('something still stored under the key');
      },
      { timeout: 10_000 },
    );
    expect((await store.kv.get(pheromoneKey(kept)))?.value.id).toBe(kept.id);
    const trail = await b.jsm.direct.getMessage(b.names.streams.field, {
      last_by_subj: b.names.subjects.fieldAudit('expired', p.id, p.type),
    });
    expect(PheromoneSchema.parse(trail?.json())).toMatchObject({
      id: p.id,
      event: 'expired',
      eventBy: 'hub',
    });
  });

  it('after a leader change, releases the claims of agents now offline and emits completions it missed', async () => {
    const { bus: b, store } = await setup();
    const registry = new Registry();
    // Stand-ins for Presence and the TaskQueue: a ghost agent went offline while no Field actor
    // ran (its agent_down went nowhere), and a task finished then.
    const presence: Server<{ type: string; reply?: (r: unknown) => void }> = {
      handle: (m) =>
        m.type === 'agents' ? m.reply?.([{ registration: { id: 'ghost' }, online: false }]) : undefined,
    };
    const done = {
      ...submitted(),
      id: 'tdone1',
      status: 'done',
      result: { summary: 'x'.repeat(60_000) },
      metadata: { completionPheromone: 'diary' },
    } as unknown as TaskRecord;
    const taskQueue: Server<{ type: string; reply?: (r: unknown) => void }> = {
      handle: (m) => (m.type === 'snapshot' ? m.reply?.([done]) : undefined),
    };
    for (const [name, server] of [
      ['presence', presence],
      ['tq', taskQueue],
    ] as const) {
      const r = await startServer(() => server, undefined);
      if (r.kind !== 'ok') throw new Error(`${name} stand-in did not start`);
      registry.register(name, r.pid);
      standIns.push(r.pid);
    }
    const p = (await emit(store, { v: 1, type: 'work.item', selector: '', payload: {} }, 'a')).pheromone;
    await claim(store, pheromoneKey(p), 'ghost');
    const r = await startServer(FieldProcess.start, {
      bus: b,
      log: pino({ level: 'silent' }),
      registry,
      presence: 'presence',
      taskQueue: 'tq',
      reconcileAfterMs: 50,
    });
    if (r.kind !== 'ok') throw new Error('field did not start');
    pid = r.pid;
    const released = await eventually(async () => {
      const got = (await store.kv.get(pheromoneKey(p)))?.value;
      if (got?.claimedBy !== null) throw new Error('still claimed');
      return got;
    });
    expect(released).toMatchObject({ event: 'released', eventBy: 'hub' });
    const completion = await eventually(async () => {
      const all = await store.kv.entries();
      const c = [...all.values()].map((e) => e.value).find((x) => x.type === 'completion.diary');
      if (!c) throw new Error('no completion yet');
      return c;
    });
    // A result larger than a payload may carry is named, not copied.
    expect(completion).toMatchObject({
      source: 'task:tdone1',
      payload: { task_id: 'tdone1', result: { truncated: true } },
    });
  });
});
