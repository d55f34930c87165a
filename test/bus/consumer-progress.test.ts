/**
 * src/bus/consumer-progress.ts: the read-through time of a durable consumer. The rule on samples,
 * and on a real server's work-queue stream: it does not pass a message until that message is
 * acked, whether it waits undelivered, is held unacked, or is acked after the messages behind it.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import {
  consumerProgress,
  ensureConsumer,
  type ProgressSample,
  publish,
  ReadThrough,
} from '../../src/bus/index.js';
import { useNatsServer } from '../support/nats-server.js';
import { ensureSubmitStream, Job, testBus } from './support.js';

const sample = (o: Partial<ProgressSample>): ProgressSample => ({
  at: 0,
  lastSeq: 0,
  delivered: 0,
  pending: 0,
  ackFloor: 0,
  ...o,
});

describe('ReadThrough', () => {
  it('knows nothing before a sample passes', () => {
    const r = new ReadThrough();
    expect(r.value).toBe(Number.NEGATIVE_INFINITY);
    expect(r.observe(sample({ at: 100, lastSeq: 15, delivered: 10, pending: 5, ackFloor: 7 }))).toBe(
      Number.NEGATIVE_INFINITY,
    );
  });

  it('passes a sample once a later ack floor reaches what the stream held then', () => {
    const r = new ReadThrough();
    r.observe(sample({ at: 100, lastSeq: 15, delivered: 10, pending: 5, ackFloor: 7 }));
    r.observe(sample({ at: 200, lastSeq: 25, delivered: 20, pending: 5, ackFloor: 14 }));
    expect(r.value).toBe(Number.NEGATIVE_INFINITY);
    expect(r.observe(sample({ at: 300, lastSeq: 26, delivered: 26, ackFloor: 15 }))).toBe(100);
    expect(r.observe(sample({ at: 400, lastSeq: 26, delivered: 26, ackFloor: 25 }))).toBe(200);
  });

  it('a sample whose ack floor is at the last sequence passes itself and every mark before it', () => {
    const r = new ReadThrough();
    r.observe(sample({ at: 100, lastSeq: 15, delivered: 10, pending: 5, ackFloor: 7 }));
    expect(r.observe(sample({ at: 200, lastSeq: 15, delivered: 15, ackFloor: 15 }))).toBe(200);
  });

  it('a consumer that does not count what the stream holds (the stall of consumer-stall.ts) passes nothing', () => {
    const r = new ReadThrough();
    // Nothing pending, nothing unacked, 24 messages in the stream past what it delivered.
    expect(r.observe(sample({ at: 100, lastSeq: 20_000, delivered: 19_976, ackFloor: 19_976 }))).toBe(
      Number.NEGATIVE_INFINITY,
    );
    expect(r.observe(sample({ at: 200, lastSeq: 20_000, delivered: 19_976, ackFloor: 19_976 }))).toBe(
      Number.NEGATIVE_INFINITY,
    );
    // Its leader moved; it delivered them, and they were acked.
    expect(
      r.observe(sample({ at: 300, lastSeq: 20_001, delivered: 20_000, pending: 1, ackFloor: 20_000 })),
    ).toBe(200);
  });

  it('never goes back, and a lower end (a recreated consumer) is held to the higher one', () => {
    const r = new ReadThrough();
    expect(r.observe(sample({ at: 100, lastSeq: 15, delivered: 15, ackFloor: 15 }))).toBe(100);
    r.observe(sample({ at: 200, lastSeq: 30, delivered: 20, pending: 10, ackFloor: 19 })); // end 30
    // The consumer was recreated: its ack floor restarts low.
    r.observe(sample({ at: 300, lastSeq: 30, delivered: 3, pending: 27, ackFloor: 2 }));
    expect(r.observe(sample({ at: 400, lastSeq: 30, delivered: 4, pending: 26, ackFloor: 3 }))).toBe(100);
    expect(r.observe(sample({ at: 500, lastSeq: 31, delivered: 30, pending: 1, ackFloor: 30 }))).toBe(400);
  });
});

describe('consumerProgress on a real server', () => {
  const nats = useNatsServer();

  /** A work-queue stream with one durable, `reader`, followed by consumerProgress. */
  async function reader() {
    const bus = await testBus(nats.url);
    const n = bus.names;
    await ensureSubmitStream(bus, 'memory');
    await ensureConsumer(bus, { stream: n.streams.submit, durable: 'reader' });
    const progress = consumerProgress(bus, n.streams.submit, 'reader');
    const consumer = await bus.js.consumers.get(n.streams.submit, 'reader');
    return { bus, n, progress, consumer };
  }

  it('does not pass a message that waits undelivered, delivered unacked, or unacked behind an ack', async () => {
    const { bus, n, progress, consumer } = await reader();
    const take = async (count: number): Promise<JsMsg[]> => {
      const got: JsMsg[] = [];
      const batch = await consumer.fetch({ max_messages: count, expires: 2_000 });
      for await (const m of batch) {
        got.push(m);
        if (got.length === count) break;
      }
      return got;
    };
    const put = (i: number) => publish(bus, n.subjects.taskSubmit, Job, { v: 1, n: i });

    // Nothing stored: caught up at once.
    const t0 = Date.now();
    expect(await progress.sample()).toBeGreaterThanOrEqual(t0);

    // Two messages wait undelivered: a sample asked for after them is not passed.
    await put(1);
    await put(2);
    const asked = Date.now();
    const before = await progress.sample();
    expect(before).toBeLessThan(asked);
    // Delivered, one acked: the other holds it.
    const [m1, m2] = await take(2);
    await m1!.ackAck();
    expect(await progress.sample()).toBe(before);

    // A third message is stored, delivered and acked while the second is still unacked.
    await put(3);
    const [m3] = await take(1);
    await m3!.ackAck();
    expect(await progress.sample()).toBe(before);

    // The second is acked: everything is read, through the latest sample at least.
    await m2!.ackAck();
    const last = Date.now();
    expect(await progress.sample()).toBeGreaterThanOrEqual(last);
    expect(progress.readThrough()).toBeGreaterThanOrEqual(last);
    await bus.drain();
  });

  it('passes a mark by the ack floor while later messages are still in flight', async () => {
    const { bus, n, progress, consumer } = await reader();
    await publish(bus, n.subjects.taskSubmit, Job, { v: 1, n: 1 });
    const asked = Date.now();
    await progress.sample(); // marks the end at message 1
    await publish(bus, n.subjects.taskSubmit, Job, { v: 1, n: 2 });
    const got: JsMsg[] = [];
    for await (const m of await consumer.fetch({ max_messages: 2, expires: 2_000 })) {
      got.push(m);
      if (got.length === 2) break;
    }
    await got[0]!.ackAck();
    // Message 2 is unacked, but everything stored when the first sample was asked for is acked.
    const through = await progress.sample();
    expect(through).toBeGreaterThanOrEqual(asked);
    expect(through).toBeLessThan(Date.now());
    await got[1]!.ackAck();
    await bus.drain();
  });
});
