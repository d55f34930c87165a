/**
 * The stall rule of src/bus/consumer-stall.ts, and the watch on a healthy consumer of a real
 * server: it never acts while messages are pending, ack-pending or delivered.
 */
import { describe, expect, it } from 'vitest';
import {
  type ConsumerSample,
  isStalled,
  outcome,
  publish,
  runConsumer,
  unaccounted,
  watchConsumerStall,
} from '../../src/bus/index.js';
import { eventually } from '../support/eventually.js';
import { useNatsServer } from '../support/nats-server.js';
import { ensureSubmitStream, Job, testBus } from './support.js';

const sample = (o: Partial<ConsumerSample> = {}): ConsumerSample => ({
  messages: 24,
  lastSeq: 20_000,
  pending: 0,
  ackPending: 0,
  delivered: 19_976,
  ...o,
});

describe('isStalled', () => {
  it('is the fault seen on the cluster: messages neither pending nor ack-pending, twice, nothing delivered', () => {
    expect(isStalled(sample(), sample())).toBe(true);
  });

  it('needs two samples, and is not a stall when the consumer accounts for them or moves', () => {
    expect(isStalled(undefined, sample())).toBe(false);
    expect(isStalled(sample(), sample({ pending: 24 }))).toBe(false);
    expect(isStalled(sample(), sample({ ackPending: 24 }))).toBe(false);
    expect(isStalled(sample({ pending: 24 }), sample())).toBe(false);
    expect(isStalled(sample(), sample({ delivered: 19_990 }))).toBe(false);
    expect(isStalled(sample(), sample({ messages: 0 }))).toBe(false);
    // Nothing newer than what was delivered: a count race, not a stuck consumer.
    expect(isStalled(sample({ lastSeq: 19_976 }), sample({ lastSeq: 19_976 }))).toBe(false);
  });
});

describe('watchConsumerStall on a healthy consumer', () => {
  const nats = useNatsServer();

  it('finds no stall while messages wait, are held unacked, and are consumed', async () => {
    const bus = await testBus(nats.url);
    const n = bus.names;
    await ensureSubmitStream(bus, 'memory');
    for (let i = 0; i < 20; i++) await publish(bus, n.subjects.taskSubmit, Job, { v: 1, n: i });
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let handled = 0;
    const runner = await runConsumer(bus, {
      spec: { stream: n.streams.submit, durable: 'hub-intake' },
      schema: Job,
      concurrency: 5,
      handler: async () => {
        // The first five are held unacked while the watch samples.
        if (++handled <= 5) await held;
        return outcome.ack();
      },
    });
    const samples: { s: ConsumerSample; stalled: boolean }[] = [];
    const watch = watchConsumerStall(bus, n.streams.submit, 'hub-intake', {
      periodMs: 50,
      onSample: (s, stalled) => samples.push({ s, stalled }),
    });
    try {
      // Three samples while five are held (all 20 still stored: pending, or delivered and
      // unacked), then the rest consumed.
      await eventually(() => expect(handled).toBe(5));
      await eventually(() =>
        expect(
          samples.filter((x) => x.s.messages === 20 && x.s.ackPending >= 5).length,
        ).toBeGreaterThanOrEqual(3),
      );
      release();
      await eventually(() => expect(samples.at(-1)?.s.messages).toBe(0));
      expect(samples.filter((x) => x.stalled)).toEqual([]);
      expect(samples.every((x) => unaccounted(x.s) === 0)).toBe(true);
    } finally {
      release();
      watch.stop();
      await runner.stop();
      await bus.drain();
    }
  });
});
