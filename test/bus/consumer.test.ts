import { describe, expect, it } from 'vitest';
import {
  type Bus,
  type ConsumerRunner,
  type ConsumerSpec,
  dlqStreamSpec,
  ensureStream,
  listDeadLetters,
  type MessageContext,
  type Outcome,
  outcome,
  publish,
  publishRaw,
  retryDelay,
  runConsumer,
} from '../../src/bus/index.js';
import { eventually } from '../support/eventually.js';
import { useNatsServer } from '../support/nats-server.js';
import { deferred, enc, ensureSubmitStream, Job, peerBus, testBus, within } from './support.js';

const server = useNatsServer();

interface Fixture {
  bus: Bus;
  spec: ConsumerSpec;
  subject: string;
  depth(): Promise<number>;
  dlqDepth(): Promise<number>;
  cleanup(): Promise<void>;
}

async function fixture(consumer: Partial<ConsumerSpec> = {}): Promise<Fixture> {
  const bus = await testBus(server.url);
  const n = bus.names;
  await ensureSubmitStream(bus, 'memory');
  await ensureStream(bus, dlqStreamSpec(n, 'memory'));
  const runners: ConsumerRunner[] = [];
  return {
    bus,
    spec: { stream: n.streams.submit, durable: 'hub-intake', ackWaitMs: 1_000, maxDeliver: 4, ...consumer },
    subject: n.subjects.taskSubmit,
    depth: async () => (await bus.jsm.streams.info(n.streams.submit)).state.messages,
    dlqDepth: async () => (await bus.jsm.streams.info(n.streams.dlq)).state.messages,
    cleanup: async () => {
      await Promise.all(runners.map((r) => r.stop()));
      await bus.drain();
    },
  };
}

describe('runConsumer()', () => {
  it('ack removes the message from the work-queue stream', async () => {
    const f = await fixture();
    const got: number[] = [];
    const r = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      handler: (job) => {
        got.push(job.n);
        return outcome.ack();
      },
    });
    try {
      for (let i = 0; i < 20; i++) await publish(f.bus, f.subject, Job, { v: 1, n: i });
      await eventually(async () => expect(await f.depth()).toBe(0));
      expect(got.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(r.stats()).toMatchObject({ dispatched: 20, acked: 20, nacked: 0 });
      expect(r.stats().publishToDispatchMs.count).toBe(5); // sampled 1 in 4
    } finally {
      await r.stop();
      await f.cleanup();
    }
  });

  it('retry redelivers after the delay computed from the delivery count', async () => {
    const f = await fixture();
    const policy = { baseMs: 300, maxMs: 5_000, jitter: 0 };
    const deliveries: { count: number; at: number }[] = [];
    const done = deferred();
    const r = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      retry: policy,
      handler: (_job, ctx) => {
        deliveries.push({ count: ctx.deliveryCount, at: performance.now() });
        if (ctx.deliveryCount < 3) return outcome.retry();
        done.resolve();
        return outcome.ack();
      },
    });
    try {
      await publish(f.bus, f.subject, Job, { v: 1, n: 1 });
      await within(done.promise, 10_000, 'third delivery');
      expect(deliveries.map((d) => d.count)).toEqual([1, 2, 3]);
      // Not redelivered before the computed delay (300 ms, then 600 ms); 5 ms for clock granularity.
      expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(retryDelay(1, policy) - 5);
      expect(deliveries[2]!.at - deliveries[1]!.at).toBeGreaterThanOrEqual(retryDelay(2, policy) - 5);
      expect(r.stats().nacked).toBe(2);
    } finally {
      await r.stop();
      await f.cleanup();
    }
  });

  it('computes exponential delays, jitter only shortening them', () => {
    const p = { baseMs: 1_000, maxMs: 10_000, jitter: 0.2 };
    expect(retryDelay(1, p, () => 0)).toBe(1_000);
    expect(retryDelay(2, p, () => 0)).toBe(2_000);
    expect(retryDelay(4, p, () => 0)).toBe(8_000);
    expect(retryDelay(9, p, () => 0)).toBe(10_000);
    expect(retryDelay(1, p, () => 0.5)).toBe(900);
    expect(retryDelay(1, p, () => 0.999999)).toBe(800);
    expect(retryDelay(9, p, () => 0.999999)).toBe(8_000);
    expect(retryDelay(10_000, p, () => 0)).toBe(10_000);
  });

  it('keeps a slow handler in progress: no redelivery while it runs past ack_wait', async () => {
    const f = await fixture({ ackWaitMs: 400 });
    let calls = 0;
    const release = deferred();
    const finished = deferred();
    const r = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      handler: async () => {
        calls++;
        await release.promise;
        finished.resolve();
        return outcome.ack();
      },
    });
    try {
      await publish(f.bus, f.subject, Job, { v: 1, n: 1 });
      await eventually(() => expect(calls).toBe(1));
      // Hold the handler for 4 ack_wait periods, observed on the server: nothing is redelivered.
      const ci = () => f.bus.jsm.consumers.info(f.spec.stream, f.spec.durable);
      const until = Date.now() + 1_600;
      await eventually(
        async () => {
          const info = await ci();
          expect(info.num_redelivered).toBe(0);
          expect(info.num_ack_pending).toBe(1);
          if (Date.now() < until) throw new Error('still observing');
        },
        { timeout: 5_000, interval: 100 },
      );
      release.resolve();
      await finished.promise;
      await eventually(async () => expect(await f.depth()).toBe(0));
      expect(calls).toBe(1);
    } finally {
      release.resolve();
      await r.stop();
      await f.cleanup();
    }
  });

  it('puts a poison message in the DLQ exactly once, with its reason, then terms it', async () => {
    const f = await fixture({ maxDeliver: 3 });
    let calls = 0;
    const r = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      retry: { baseMs: 50, maxMs: 100 },
      handler: (job) => {
        calls++;
        if (job.n === 13) throw new Error('unlucky number');
        return outcome.ack();
      },
    });
    try {
      const p = await publish(f.bus, f.subject, Job, { v: 1, n: 13 }, { correlationId: 'c-13' });
      await publish(f.bus, f.subject, Job, { v: 1, n: 1 });
      await eventually(async () => expect(await f.dlqDepth()).toBe(1));
      await eventually(async () => expect(await f.depth()).toBe(0));
      expect(calls).toBe(4); // 3 deliveries of the poison + 1 good
      const { items } = await listDeadLetters(f.bus);
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({
        stream: f.spec.stream,
        consumer: 'hub-intake',
        subject: f.subject,
        stream_seq: p.seq,
        deliveries: 3,
        msg_id: p.msgId,
        correlation_id: 'c-13',
        reason: { code: 'max_deliveries' },
        payload_encoding: 'utf8',
      });
      expect(items[0]!.reason.message).toContain('unlucky number');
      expect(JSON.parse(items[0]!.payload)).toEqual({ v: 1, n: 13 });
      expect(r.stats()).toMatchObject({ deadLettered: 1, handlerErrors: 3 });
    } finally {
      await r.stop();
      await f.cleanup();
    }
  });

  it('dead-letters a handler-returned dead_letter outcome with its reason', async () => {
    const f = await fixture();
    const r = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      handler: () => outcome.deadLetter('task references a deleted repo', 'invalid_state'),
    });
    try {
      await publish(f.bus, f.subject, Job, { v: 1, n: 5 });
      await eventually(async () => expect(await f.dlqDepth()).toBe(1));
      await eventually(async () => expect(await f.depth()).toBe(0));
      const [rec] = (await listDeadLetters(f.bus)).items;
      expect(rec?.reason).toEqual({ code: 'invalid_state', message: 'task references a deleted repo' });
      expect(rec?.deliveries).toBe(1);
    } finally {
      await r.stop();
      await f.cleanup();
    }
  });

  it('dead-letters malformed, oversized and wrong-version payloads without calling the handler', async () => {
    const f = await fixture();
    let calls = 0;
    const r = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      maxBytes: 200,
      handler: () => {
        calls++;
        return outcome.ack();
      },
    });
    try {
      await publishRaw(f.bus, f.subject, enc('{not json'));
      await publishRaw(f.bus, f.subject, enc(JSON.stringify({ v: 1, n: 1, note: 'x'.repeat(300) })));
      await publishRaw(f.bus, f.subject, enc(JSON.stringify({ v: 7, n: 1 })));
      await publishRaw(f.bus, f.subject, enc(JSON.stringify({ v: 1, n: 'one' })));
      await publishRaw(f.bus, f.subject, new Uint8Array([0xff, 0xfe, 0x00]));
      await eventually(async () => expect(await f.dlqDepth()).toBe(5));
      await eventually(async () => expect(await f.depth()).toBe(0));
      expect(calls).toBe(0);
      const { items } = await listDeadLetters(f.bus);
      expect(items.map((i) => i.reason.code)).toEqual([
        'invalid_payload',
        'payload_too_large',
        'unsupported_version',
        'invalid_payload',
        'invalid_payload',
      ]);
      expect(items[3]?.reason.path).toEqual(['n']);
      expect(items.every((i) => i.deliveries === 1)).toBe(true);
      expect(items[4]).toMatchObject({
        payload_encoding: 'base64',
        payload: Buffer.from([0xff, 0xfe, 0]).toString('base64'),
      });
    } finally {
      await r.stop();
      await f.cleanup();
    }
  });

  it('never runs more handlers at once than its concurrency', async () => {
    const f = await fixture({ maxAckPending: 1000 });
    let running = 0;
    let peak = 0;
    let done = 0;
    const r = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      concurrency: 3,
      handler: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((res) => setImmediate(res));
        running--;
        done++;
        return outcome.ack();
      },
    });
    try {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => publish(f.bus, f.subject, Job, { v: 1, n: i })),
      );
      await eventually(() => expect(done).toBe(100));
      expect(peak).toBeLessThanOrEqual(3);
      expect(peak).toBeGreaterThan(0);
    } finally {
      await r.stop();
      await f.cleanup();
    }
  });

  it('recovers quickly when its durable is deleted under it', async () => {
    const f = await fixture();
    const got = new Set<number>();
    const r = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      handler: (job) => {
        got.add(job.n);
        return outcome.ack();
      },
    });
    try {
      await publish(f.bus, f.subject, Job, { v: 1, n: 1 });
      await eventually(() => expect(got.has(1)).toBe(true));
      await f.bus.jsm.consumers.delete(f.spec.stream, f.spec.durable);
      await publish(f.bus, f.subject, Job, { v: 1, n: 2 });
      // Well under the ~20 s (2 missed heartbeats) the client alone would take.
      await eventually(() => expect(got.has(2)).toBe(true), { timeout: 5_000 });
      expect(r.stats().recoveries).toBeGreaterThanOrEqual(1);
      const info = await f.bus.jsm.consumers.info(f.spec.stream, f.spec.durable);
      expect(info.config.max_deliver).toBe(4);
    } finally {
      await r.stop();
      await f.cleanup();
    }
  });

  it('adoptUnacked: what a dead consumer left unacked is redelivered at start, not after ack_wait', async () => {
    const f = await fixture({ ackWaitMs: 30_000 });
    // The process that dies: it acks n=1 and is holding n=2 when its connection goes.
    const dying = await peerBus(server.url, f.bus);
    const held = deferred();
    const first = await runConsumer(dying, {
      spec: f.spec,
      schema: Job,
      handler: (job): Outcome | Promise<Outcome> => {
        if (job.n === 1) return outcome.ack();
        held.resolve();
        return new Promise<Outcome>(() => {});
      },
    });
    const seen: { n: number; deliveries: number; seq: number }[] = [];
    let r: ConsumerRunner | undefined;
    try {
      await publish(f.bus, f.subject, Job, { v: 1, n: 1 });
      const p2 = await publish(f.bus, f.subject, Job, { v: 1, n: 2 });
      await within(held.promise, 5_000, 'n=2 held');
      await eventually(async () => expect(await f.depth()).toBe(1));
      await dying.nc.close(); // no ack, no nak: n=2 stays pending for ack_wait (30 s)
      const release = deferred();
      r = await runConsumer(f.bus, {
        spec: f.spec,
        adoptUnacked: true,
        schema: Job,
        handler: async (job, ctx) => {
          seen.push({ n: job.n, deliveries: ctx.deliveryCount, seq: ctx.streamSeq });
          await release.promise;
          return outcome.ack();
        },
      });
      // A real redelivery (the second delivery, counted by the server), long before ack_wait.
      await eventually(() => expect(seen).toEqual([{ n: 2, deliveries: 2, seq: p2.seq }]), {
        timeout: 3_000,
      });
      // It runs like any delivery: in flight, waited for by stop(), and its ack is applied.
      expect(r.stats().inFlight).toBe(1);
      let stopped = false;
      const stopping = r.stop().then(() => {
        stopped = true;
      });
      await f.bus.nc.flush();
      expect(stopped).toBe(false);
      release.resolve();
      await within(stopping, 5_000, 'stop after the handler ends');
      expect(await f.depth()).toBe(0);
    } finally {
      await first.stop({ timeoutMs: 10 });
      await r?.stop();
      await f.cleanup();
    }
  });

  it('adoptUnacked: a message that kills every process handling it still stops at max_deliver', async () => {
    const f = await fixture({ ackWaitMs: 30_000, maxDeliver: 2 });
    await publish(f.bus, f.subject, Job, { v: 1, n: 1 });
    const deliveries: number[] = [];
    // A process that takes the message and dies with it (never settling it), as a crash would.
    const startAndDie = async () => {
      const dying = await peerBus(server.url, f.bus);
      const took = deferred();
      await runConsumer(dying, {
        spec: f.spec,
        adoptUnacked: true,
        schema: Job,
        handler: (_job, ctx) => {
          deliveries.push(ctx.deliveryCount);
          took.resolve();
          return new Promise<Outcome>(() => {});
        },
      });
      await within(took.promise, 5_000, 'the message reaches the doomed process');
      await dying.nc.close();
    };
    const info = () => f.bus.jsm.consumers.info(f.spec.stream, f.spec.durable);
    try {
      await startAndDie(); // first delivery
      await startAndDie(); // second (max_deliver), at once thanks to adoptUnacked
      expect(deliveries).toEqual([1, 2]);
      // The next start asks again; the server has delivered it max_deliver times and lets it go
      // (its max-deliveries advisory is what the DLQ forwarder copies to the DLQ).
      let handled = 0;
      const r = await runConsumer(f.bus, {
        spec: f.spec,
        adoptUnacked: true,
        schema: Job,
        handler: () => {
          handled++;
          return outcome.ack();
        },
      });
      await eventually(async () => expect((await info()).num_ack_pending).toBe(0), { timeout: 5_000 });
      await r.stop();
      expect(handled).toBe(0);
    } finally {
      await f.cleanup();
    }
  });

  it('stop() waits for in-flight handlers and their acks reach the server', async () => {
    const f = await fixture();
    const started = deferred();
    const release = deferred();
    const r: ConsumerRunner = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      handler: async (): Promise<Outcome> => {
        started.resolve();
        await release.promise;
        return outcome.ack();
      },
    });
    try {
      await publish(f.bus, f.subject, Job, { v: 1, n: 1 });
      await within(started.promise, 5_000, 'handler start');
      const stopping = r.stop();
      release.resolve();
      await stopping;
      await f.bus.drain();
      const peer = await testBus(server.url, { prefix: f.bus.names.prefix });
      try {
        expect((await peer.jsm.streams.info(f.spec.stream)).state.messages).toBe(0);
      } finally {
        await peer.drain();
      }
    } finally {
      await r.stop();
    }
  });

  it('gives the handler ids, delivery data and headers in its context', async () => {
    const f = await fixture();
    const seen = deferred<MessageContext & { snapshot: Record<string, unknown> }>();
    const r = await runConsumer(f.bus, {
      spec: f.spec,
      schema: Job,
      handler: (_job, ctx) => {
        seen.resolve(
          Object.assign(ctx, {
            snapshot: {
              msgId: ctx.msgId,
              correlationId: ctx.correlationId,
              deliveryCount: ctx.deliveryCount,
              redelivered: ctx.redelivered,
              subject: ctx.subject,
              stream: ctx.stream,
              consumer: ctx.consumer,
              maxDeliver: ctx.maxDeliver,
              custom: ctx.header('X-Custom'),
            },
          }),
        );
        return outcome.ack();
      },
    });
    try {
      const p = await publish(
        f.bus,
        f.subject,
        Job,
        { v: 1, n: 1 },
        { correlationId: 'corr', headers: { 'X-Custom': 'yes' } },
      );
      const ctx = await within(seen.promise, 5_000, 'delivery');
      expect(ctx.snapshot).toEqual({
        msgId: p.msgId,
        correlationId: 'corr',
        deliveryCount: 1,
        redelivered: false,
        subject: f.subject,
        stream: f.spec.stream,
        consumer: 'hub-intake',
        maxDeliver: 4,
        custom: 'yes',
      });
    } finally {
      await r.stop();
      await f.cleanup();
    }
  });
});
