/**
 * The gateway's one tail of the tasks bucket (src/gateway/events.ts) and its readers: each
 * revision decoded once and handed to every reader; a reader that throws neither ends the tail
 * nor keeps the revision from the others.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Bus, defaultTopology, ensureBucket, openKv, provision } from '../../src/bus/index.js';
import { listenForEchoes, noteWrite, takeEcho } from '../../src/bus/kv-echo.js';
import { EventHub, type GatewayEvent } from '../../src/gateway/events.js';
import type { TaskView } from '../../src/gateway/task-view.js';
import { utf8 } from '../../src/protocol/envelope.js';
import type { TaskId } from '../../src/protocol/ids.js';
import { TaskRecordSchema } from '../../src/protocol/task.js';
import { A, assignedTo } from '../actors/task-queue/helpers.js';
import { testBus } from '../bus/support.js';
import { eventually } from '../support/eventually.js';
import { useNatsServer } from '../support/nats-server.js';

describe('the gateway task tail', () => {
  const nats = useNatsServer();
  let bus: Bus | undefined;
  let hub: EventHub | undefined;
  afterEach(async () => {
    hub?.stop();
    await bus?.drain();
  });

  it('hands each revision, decoded once, to every reader; a reader that throws stops nothing', async () => {
    bus = await testBus(nats.url);
    await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
    const tasks = await openKv(bus, bus.names.buckets.tasks, TaskRecordSchema);
    hub = await EventHub.start(bus, { series: false });
    const views: (TaskView | null)[] = [];
    let thrown = 0;
    hub.tapTasks(() => {
      thrown++;
      throw new Error('a faulty reader');
    });
    hub.tapTasks((_r, view) => views.push(view));
    const events: GatewayEvent[] = [];
    hub.subscribe((e) => events.push(e));

    const put = (id: string) => tasks.put(id, { ...assignedTo(A), id: id as TaskId });
    await put('t-one');
    await put('t-two');
    await eventually(() => expect(events.map((e) => e.data.id)).toEqual(['t-one', 't-two']));
    expect(thrown).toBe(2);
    expect(views.map((v) => [v?.id, v?.status])).toEqual([
      ['t-one', 'assigned'],
      ['t-two', 'assigned'],
    ]);
    // Both readers got the same decoded view, and the event carries its fields.
    expect(events[1]!.data).toMatchObject({ status: 'assigned', assignee: A });
  });

  it("takes a record its own process wrote without decoding it again, and decodes another's", async () => {
    bus = await testBus(nats.url);
    await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
    // As the hub's TaskQueue writes (trusted: its bytes are the record as given), and as a writer
    // whose bytes this process did not keep (validated writes are not kept).
    const own = await openKv(bus, bus.names.buckets.tasks, TaskRecordSchema, { validateWrites: false });
    const other = await openKv(bus, bus.names.buckets.tasks, TaskRecordSchema);
    hub = await EventHub.start(bus, { series: false });
    const seen: { view: TaskView | null; event?: GatewayEvent }[] = [];
    hub.tapTasks((_r, view) => seen.push({ view }));
    hub.subscribe((e) => {
      seen[seen.length - 1]!.event = e;
    });
    const body = { description: 'secret-description', metadata: { secret: 'secret-metadata' } };
    const mine = { ...assignedTo(A, false, body), id: 't-mine' as TaskId };
    const theirs = { ...assignedTo(A, false, body), id: 't-theirs' as TaskId };
    await own.put(mine.id, mine);
    await other.put(theirs.id, theirs);
    await eventually(() => expect(seen).toHaveLength(2));
    const [a, b] = seen;
    // The same history array: the record handed over, not a decoded copy.
    expect(a!.view?.history).toBe(mine.history);
    expect(b!.view?.history).not.toBe(theirs.history);
    // Either way the same fields and the same event (the body goes no further).
    const mineView = a!.view as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(b!.view!)) if (k !== 'id') expect(mineView[k]).toEqual(v);
    expect({ ...a!.event!.data, id: 0, at: 0 }).toEqual({ ...b!.event!.data, id: 0, at: 0 });
    expect(JSON.stringify(a!.event)).not.toContain('secret');
  });

  it('a start that fails stops the tails it had started (they would read, and take echoes, for nobody)', async () => {
    bus = await testBus(nats.url);
    // The tasks and agents buckets, not the alerts one: the start fails at its third source.
    await ensureBucket(bus, { bucket: bus.names.buckets.tasks, history: 5, storage: 'memory' });
    await ensureBucket(bus, { bucket: bus.names.buckets.agents, history: 1, storage: 'memory' });
    await expect(EventHub.start(bus, { series: false })).rejects.toThrow();
    // No reader listens for the tasks bucket's echoes any more: a write is not kept.
    const data = utf8('{}');
    noteWrite(bus.names.buckets.tasks, 'k', data, {});
    const unlisten = listenForEchoes(bus.names.buckets.tasks);
    expect(takeEcho(bus.names.buckets.tasks, 'k', data)).toBeUndefined();
    unlisten();
  });
});
