import { describe, expect, it } from 'vitest';
import {
  type Bus,
  type ConnectionEvent,
  deadLetter,
  defaultTopology,
  provision,
  publish,
  sampleBusStatus,
  startStatusPublisher,
} from '../../src/bus/index.js';
import { BusStatusSchema } from '../../src/protocol/status.js';
import { eventually } from '../support/eventually.js';
import { startNatsServer, useNatsServer } from '../support/nats-server.js';
import { enc, Job, testBus } from './support.js';

const server = useNatsServer();

describe('startStatusPublisher()', () => {
  it('publishes stream depths, consumer pending/ack-pending and the DLQ size on the status subject', async () => {
    const bus: Bus = await testBus(server.url);
    const n = bus.names;
    await provision(bus, defaultTopology(n, { storage: 'memory' }));
    for (let i = 0; i < 3; i++) await publish(bus, n.subjects.taskSubmit, Job, { v: 1, n: i });
    await deadLetter(bus, {
      subject: n.subjects.taskSubmit,
      headers: undefined,
      data: enc('x'),
      stream: n.streams.submit,
      consumer: 'hub-intake',
      streamSeq: 99,
      deliveries: 1,
      reason: { code: 'invalid_payload', message: 'x' },
    });
    const samples: unknown[] = [];
    const sub = bus.nc.subscribe(n.subjects.busStatus, {
      callback: (_e, m) => {
        samples.push(m.json());
      },
    });
    const pub = startStatusPublisher(bus, { intervalMs: 100 });
    try {
      await eventually(() => expect(samples.length).toBeGreaterThanOrEqual(2));
      const s = BusStatusSchema.parse(samples.at(-1));
      expect(s.prefix).toBe(n.prefix);
      expect(s.streams.find((x) => x.name === n.streams.submit)?.messages).toBe(3);
      expect(s.consumers.find((c) => c.name === 'hub-intake')).toMatchObject({ pending: 3, ack_pending: 0 });
      expect(s.dlq.messages).toBe(1);
      expect(s.local?.published).toBeGreaterThanOrEqual(4);
      expect(s.local?.dead_lettered).toBe(1);
    } finally {
      pub.stop();
      sub.unsubscribe();
      await bus.drain();
    }
  });
});

describe('sampleBusStatus() with many consumers', () => {
  it('lists at most maxConsumers, those furthest behind, and counts the rest in consumersOmitted', async () => {
    const bus: Bus = await testBus(server.url);
    const n = bus.names;
    try {
      await provision(bus, defaultTopology(n, { storage: 'memory' }));
      for (let i = 0; i < 3; i++) await publish(bus, n.subjects.taskSubmit, Job, { v: 1, n: i });
      const full = await sampleBusStatus(bus, { includeLocal: false });
      expect(full.consumersOmitted).toBeUndefined();
      expect(full.consumers.length).toBeGreaterThan(2);
      const capped = await sampleBusStatus(bus, { includeLocal: false, maxConsumers: 1 });
      // hub-intake has the 3 submissions pending; every other consumer has none.
      expect(capped.consumers.map((c) => c.name)).toEqual(['hub-intake']);
      expect(capped.consumersOmitted).toBe(full.consumers.length - 1);
      BusStatusSchema.parse(capped);
    } finally {
      await bus.drain();
    }
  });
});

describe('connectBus() status events', () => {
  it('reports disconnect and reconnect when the server restarts', async () => {
    const own = await startNatsServer();
    const bus = await testBus(own.url);
    const events: ConnectionEvent['type'][] = [];
    bus.onStatus((e) => events.push(e.type));
    try {
      await own.kill();
      await eventually(() => expect(events).toContain('disconnect'));
      await own.restart();
      await eventually(() => expect(events).toContain('reconnect'), { timeout: 15_000 });
      expect(events.indexOf('disconnect')).toBeLessThan(events.indexOf('reconnect'));
      const closed: string[] = [];
      bus.onStatus((e) => closed.push(e.type));
      await bus.drain();
      expect(closed).toContain('closed');
      expect(bus.isClosed()).toBe(true);
    } finally {
      await bus.drain();
      await own.dispose();
    }
  });
});
