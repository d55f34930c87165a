import { describe, expect, it } from 'vitest';
import { type Bus, outcome, publish, runConsumer } from '../../src/bus/index.js';
import { eventually } from '../support/eventually.js';
import { useNatsServer } from '../support/nats-server.js';
import { deferred, ensureSubmitStream, Job, peerBus, testBus, within } from './support.js';

const server = useNatsServer();

describe('nats-server SIGKILLed and restarted on the same store under load', () => {
  it('consumes every message published with an ack, and an idempotent handler applies each once', async () => {
    const pubBus: Bus = await testBus(server.url, { apiTimeoutMs: 1_000 });
    const conBus = await peerBus(server.url, pubBus, { apiTimeoutMs: 1_000 });
    const n = pubBus.names;
    await ensureSubmitStream(pubBus);

    const applied = new Set<number>(); // the handler's idempotency record
    let deliveries = 0;
    let duplicates = 0; // reported for diagnosis only
    const runner = await runConsumer(conBus, {
      spec: { stream: n.streams.submit, durable: 'hub-intake', ackWaitMs: 1_000, maxDeliver: -1 },
      schema: Job,
      concurrency: 16,
      expiresMs: 2_000,
      handler: (job) => {
        deliveries++;
        if (applied.has(job.n))
          duplicates++; // redelivered after a lost ack: already applied
        else applied.add(job.n);
        return outcome.ack();
      },
    });

    const total = 1_500;
    const acked = new Set<number>();
    const failed: number[] = [];
    const halfway = deferred();
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        if (i === Math.floor(total / 3)) halfway.resolve();
        try {
          await publish(
            pubBus,
            n.subjects.taskSubmit,
            Job,
            { v: 1, n: i },
            { msgId: `m-${i}`, retries: 60, timeoutMs: 1_000 },
          );
          acked.add(i);
        } catch {
          failed.push(i);
        }
      }
    };
    const disconnected = deferred();
    const off = conBus.onStatus((e) => {
      if (e.type === 'disconnect') disconnected.resolve();
    });
    try {
      const publishers = Promise.all(Array.from({ length: 16 }, worker));
      await within(halfway.promise, 20_000, 'a third of the publishes');
      await server.kill();
      await within(disconnected.promise, 10_000, 'client disconnect');
      await server.restart();
      await within(publishers, 90_000, 'all publishes');

      expect(failed).toEqual([]);
      expect(acked.size).toBe(total);
      await eventually(() => expect(applied.size).toBe(total), { timeout: 30_000 });
      for (const i of acked) expect(applied.has(i), `message ${i}`).toBe(true);
      // A publish retried across the outage is stored again only when its first copy had already
      // been consumed: 2.9 rebuilds its dedupe table from the messages still stored, and a
      // WorkQueue stream deletes what is acked. Every extra copy was then delivered and absorbed by
      // the handler's idempotency, so extra copies can never exceed the absorbed duplicates.
      const info = await pubBus.jsm.streams.info(n.streams.submit);
      expect(info.state.last_seq).toBeGreaterThanOrEqual(total);
      expect(info.state.last_seq - total, `${duplicates} duplicates absorbed`).toBeLessThanOrEqual(
        duplicates,
      );
      expect(deliveries).toBeGreaterThanOrEqual(total);
      // Everything is delivered and acked: nothing pending, nothing awaiting an ack, and the stream
      // empties, except for what nats-server 2.9 itself leaves: killed after persisting the
      // consumer's ack floor but not the stream's deletes, it restarts with acked messages still
      // stored at or below that floor and never delivers them again (garbage, not loss;
      // docs/protocol.md §9).
      await eventually(
        async () => {
          const stream = (await pubBus.jsm.streams.info(n.streams.submit)).state;
          const c = await pubBus.jsm.consumers.info(n.streams.submit, 'hub-intake');
          const seen = `stream ${JSON.stringify(stream)}, consumer delivered ${c.delivered.stream_seq} ack floor ${c.ack_floor.stream_seq} pending ${c.num_pending} ack pending ${c.num_ack_pending}`;
          expect(c.num_pending, seen).toBe(0);
          expect(c.num_ack_pending, seen).toBe(0);
          if (stream.messages > 0) expect(stream.first_seq, seen).toBeLessThanOrEqual(c.ack_floor.stream_seq);
        },
        { timeout: 15_000 },
      );
      expect(pubBus.metrics.publishRetries).toBeGreaterThan(0);
    } finally {
      off();
      await runner.stop();
      await conBus.drain();
      await pubBus.drain();
    }
  }, 120_000);
});
