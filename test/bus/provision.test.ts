import { describe, expect, it } from 'vitest';
import {
  type Bus,
  DEFAULT_DLQ_LIMITS,
  defaultTopology,
  dlqStreamSpec,
  ensureBucket,
  ensureConsumer,
  ensureStream,
  ProvisionConflictError,
  provision,
} from '../../src/bus/index.js';
import { useNatsServer } from '../support/nats-server.js';
import { testBus } from './support.js';

const server = useNatsServer();

async function withBus(fn: (bus: Bus) => Promise<void>) {
  const bus = await testBus(server.url);
  try {
    await fn(bus);
  } finally {
    await bus.drain();
  }
}

describe('provision()', () => {
  it('creates the whole topology once, then reports everything unchanged', () =>
    withBus(async (bus) => {
      const topo = defaultTopology(bus.names, { storage: 'memory' });
      const first = await provision(bus, topo);
      expect(first.every((r) => r.action === 'created')).toBe(true);
      expect(first).toHaveLength(topo.streams.length + topo.consumers.length + topo.buckets.length);
      const second = await provision(bus, topo);
      expect(second.map((r) => r.action)).toEqual(second.map(() => 'unchanged'));
      const sub = await bus.jsm.streams.info(bus.names.streams.submit);
      expect(sub.config.retention).toBe('workqueue');
      expect(sub.config.duplicate_window).toBe(120_000_000_000);
      const intake = await bus.jsm.consumers.info(bus.names.streams.submit, 'hub-intake');
      expect(intake.config.ack_policy).toBe('explicit');
    }));

  it('is safe when several processes provision at the same time', () =>
    withBus(async (bus) => {
      const topo = defaultTopology(bus.names, { storage: 'memory' });
      const results = await Promise.all([provision(bus, topo), provision(bus, topo), provision(bus, topo)]);
      for (const r of results) expect(r.every((x) => x.action !== 'updated')).toBe(true);
      const again = await provision(bus, topo);
      expect(again.every((r) => r.action === 'unchanged')).toBe(true);
    }));
});

describe('ensureConsumer()', () => {
  it('updates only the fields we own and keeps the rest (2.9 would overwrite on add)', () =>
    withBus(async (bus) => {
      const stream = bus.names.streams.reports;
      await ensureStream(bus, {
        name: stream,
        subjects: [bus.names.subjects.agentAll('report')],
        retention: 'workqueue',
      });
      const spec = { stream, durable: 'hub-reports', ackWaitMs: 5_000, maxDeliver: 4, maxAckPending: 50 };
      expect((await ensureConsumer(bus, spec)).action).toBe('created');
      const r = await ensureConsumer(bus, { ...spec, maxDeliver: 7 });
      expect(r).toMatchObject({ action: 'updated', changed: ['max_deliver'] });
      const info = await bus.jsm.consumers.info(stream, 'hub-reports');
      expect(info.config.max_deliver).toBe(7);
      expect(info.config.max_ack_pending).toBe(50);
      expect(info.config.ack_wait).toBe(5_000_000_000);
      expect((await ensureConsumer(bus, { ...spec, maxDeliver: 7 })).action).toBe('unchanged');
    }));

  it('refuses to overwrite a durable whose filter subject differs', () =>
    withBus(async (bus) => {
      const stream = bus.names.streams.inbox;
      await ensureStream(bus, {
        name: stream,
        subjects: [bus.names.subjects.agentAll('inbox')],
        retention: 'workqueue',
      });
      await ensureConsumer(bus, {
        stream,
        durable: 'inbox-a',
        filterSubject: bus.names.subjects.agentInbox('a'),
      });
      await expect(
        ensureConsumer(bus, {
          stream,
          durable: 'inbox-a',
          filterSubject: bus.names.subjects.agentInbox('b'),
        }),
      ).rejects.toBeInstanceOf(ProvisionConflictError);
      const info = await bus.jsm.consumers.info(stream, 'inbox-a');
      expect(info.config.filter_subject).toBe(bus.names.subjects.agentInbox('a'));
    }));
});

describe('ensureStream()', () => {
  it('updates owned limits and refuses a different retention', () =>
    withBus(async (bus) => {
      const name = bus.names.streams.submit;
      const spec = {
        name,
        subjects: [bus.names.subjects.taskSubmit],
        retention: 'workqueue' as const,
        storage: 'memory' as const,
      };
      expect((await ensureStream(bus, spec)).action).toBe('created');
      const r = await ensureStream(bus, { ...spec, duplicateWindowMs: 30_000 });
      expect(r).toMatchObject({ action: 'updated', changed: ['duplicate_window'] });
      expect((await bus.jsm.streams.info(name)).config.duplicate_window).toBe(30_000_000_000);
      await expect(
        ensureStream(bus, { ...spec, duplicateWindowMs: 30_000, retention: 'limits' }),
      ).rejects.toThrow(/retention/);
      expect((await bus.jsm.streams.info(name)).config.retention).toBe('workqueue');
    }));

  it('bounds the DLQ, discarding its oldest letters, and bounds an unbounded one from before', () =>
    withBus(async (bus) => {
      const n = bus.names;
      // A deployment from before the DLQ had limits: unbounded, with a letter in it.
      const unbounded = { ...dlqStreamSpec(n, 'memory'), maxAgeMs: 0, maxMsgs: -1 };
      await ensureStream(bus, unbounded);
      const subject = n.subjects.dlq(n.streams.submit, 'hub-intake');
      await bus.js.publish(subject, new Uint8Array(100));
      const r = await ensureStream(bus, dlqStreamSpec(n, 'memory'));
      expect(r).toMatchObject({ action: 'updated', changed: ['max_age', 'max_msgs'] });
      let info = await bus.jsm.streams.info(n.streams.dlq);
      expect(info.config.max_age).toBe(DEFAULT_DLQ_LIMITS.maxAgeMs * 1_000_000);
      expect(info.config.max_msgs).toBe(DEFAULT_DLQ_LIMITS.maxMsgs);
      // No byte limit unless asked: nats-server would reserve that much storage for the stream.
      expect(info.config.max_bytes).toBe(-1);
      expect(info.state.messages).toBe(1); // kept: within the new limits

      // Past a limit the oldest letters go and new ones are still taken (discard old).
      await ensureStream(bus, dlqStreamSpec(n, 'memory', { maxMsgs: 5 }));
      for (let i = 0; i < 10; i++) await bus.js.publish(subject, new Uint8Array(100));
      info = await bus.jsm.streams.info(n.streams.dlq);
      expect([info.state.messages, info.state.first_seq, info.state.last_seq]).toEqual([5, 7, 11]);
      await ensureStream(bus, dlqStreamSpec(n, 'memory', { maxMsgs: 1_000, maxBytes: 4_000 }));
      for (let i = 0; i < 20; i++) await bus.js.publish(subject, new Uint8Array(500));
      info = await bus.jsm.streams.info(n.streams.dlq);
      expect(info.state.bytes).toBeLessThanOrEqual(4_000);
      expect(info.state.messages).toBeGreaterThan(0);
      expect(info.state.last_seq).toBe(31);
    }));
});

describe('ensureBucket()', () => {
  it('creates a bucket, then updates its history in place', () =>
    withBus(async (bus) => {
      const bucket = bus.names.buckets.tasks;
      expect((await ensureBucket(bus, { bucket, history: 3, storage: 'memory' })).action).toBe('created');
      expect((await ensureBucket(bus, { bucket, history: 3, storage: 'memory' })).action).toBe('unchanged');
      expect(await ensureBucket(bus, { bucket, history: 5, storage: 'memory' })).toMatchObject({
        action: 'updated',
        changed: ['history'],
      });
      expect((await bus.jsm.streams.info(`KV_${bucket}`)).config.max_msgs_per_subject).toBe(5);
      await expect(ensureBucket(bus, { bucket, history: 5, storage: 'file' })).rejects.toBeInstanceOf(
        ProvisionConflictError,
      );
    }));
});
