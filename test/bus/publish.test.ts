import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bus, ensureStream, publish, publishRaw } from '../../src/bus/index.js';
import { AgentComError } from '../../src/protocol/errors.js';
import { HEADERS, parseTraceparent } from '../../src/protocol/headers.js';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.js';
import { Job, testBus } from './support.js';

let server: TestNatsServer;
let bus: Bus;
beforeAll(async () => {
  server = await startNatsServer();
  bus = await testBus(server.url);
  await ensureStream(bus, {
    name: bus.names.streams.submit,
    subjects: [bus.names.subjects.taskSubmit],
    retention: 'workqueue',
  });
});
afterAll(async () => {
  await bus.drain();
  await server.dispose();
});

const subject = () => bus.names.subjects.taskSubmit;

describe('publish()', () => {
  it('stores a republished message once (Nats-Msg-Id dedupe) and says duplicate', async () => {
    const before = (await bus.jsm.streams.info(bus.names.streams.submit)).state.messages;
    const a = await publish(bus, subject(), Job, { v: 1, n: 1 }, { msgId: 'idem-1' });
    const b = await publish(bus, subject(), Job, { v: 1, n: 1 }, { msgId: 'idem-1' });
    expect(a.duplicate).toBe(false);
    expect(b).toMatchObject({ duplicate: true, seq: a.seq, msgId: 'idem-1' });
    expect((await bus.jsm.streams.info(bus.names.streams.submit)).state.messages).toBe(before + 1);
  });

  it('dedupes even when another header name contains Nats-Msg-Id (2.9 header lookup quirk)', async () => {
    const opts = { msgId: 'idem-2', headers: { 'X-Orig-Nats-Msg-Id': 'other' } };
    const a = await publish(bus, subject(), Job, { v: 1, n: 1 }, opts);
    const b = await publish(bus, subject(), Job, { v: 1, n: 1 }, opts);
    expect(b).toMatchObject({ duplicate: true, seq: a.seq });
  });

  it('sets message id, correlation id and a child traceparent headers', async () => {
    const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const r = await publish(
      bus,
      subject(),
      Job,
      { v: 1, n: 2 },
      { correlationId: 'corr-9', traceparent: parent },
    );
    const sm = await bus.jsm.streams.getMessage(bus.names.streams.submit, { seq: r.seq });
    expect(sm?.header.get(HEADERS.MSG_ID)).toBe(r.msgId);
    expect(r.msgId).toMatch(/^[0-9a-f]{24}$/);
    expect(sm?.header.get(HEADERS.CORRELATION_ID)).toBe('corr-9');
    const tp = parseTraceparent(sm?.header.get(HEADERS.TRACEPARENT));
    expect(tp?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(tp?.parentId).not.toBe('00f067aa0ba902b7');
  });

  it('defaults the correlation id to the message id', async () => {
    const r = await publish(bus, subject(), Job, { v: 1, n: 3 });
    expect(r.correlationId).toBe(r.msgId);
  });

  it('rejects invalid, wrong-version and oversized payloads before sending', async () => {
    const before = (await bus.jsm.streams.info(bus.names.streams.submit)).state.messages;
    await expect(publish(bus, subject(), Job, { v: 1, n: 1.5 })).rejects.toMatchObject({
      code: 'invalid_payload',
    });
    await expect(publish(bus, subject(), Job, { v: 2, n: 1 } as never)).rejects.toMatchObject({
      code: 'unsupported_version',
    });
    await expect(
      publish(bus, subject(), Job, { v: 1, n: 1, note: 'x'.repeat(2000) }, { maxBytes: 1000 }),
    ).rejects.toBeInstanceOf(AgentComError);
    expect((await bus.jsm.streams.info(bus.names.streams.submit)).state.messages).toBe(before);
  });

  it('keeps thousands of publishes in flight at once', async () => {
    const before = (await bus.jsm.streams.info(bus.names.streams.submit)).state.messages;
    const acks = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => publish(bus, subject(), Job, { v: 1, n: i })),
    );
    expect(new Set(acks.map((a) => a.seq)).size).toBe(2000);
    expect((await bus.jsm.streams.info(bus.names.streams.submit)).state.messages).toBe(before + 2000);
  });

  it('does not retry an expectation failure', async () => {
    const s = bus.names.subjects.taskSubmit;
    await expect(
      publishRaw(bus, s, new TextEncoder().encode('{}'), { expect: { lastSequence: 1 }, retries: 3 }),
    ).rejects.toMatchObject({ name: 'JetStreamApiError' });
    expect(bus.metrics.publishRetries).toBe(0);
  });
});

describe('a per-sender backlog (maxMsgsPerSubject)', () => {
  it('refuses a sender whose subject is full with rate_limited and a retry-after; other senders are not affected', async () => {
    const name = `${bus.names.streams.submit}_CAP`;
    const subjectOf = (who: string) => `${bus.names.prefix}.cap.${who}`;
    const created = await ensureStream(bus, {
      name,
      subjects: [`${bus.names.prefix}.cap.*`],
      retention: 'workqueue',
      maxMsgsPerSubject: 3,
    });
    expect(created.action).toBe('created');
    const config = (await bus.jsm.streams.info(name)).config;
    expect(config).toMatchObject({ max_msgs_per_subject: 3, discard_new_per_subject: true, discard: 'new' });
    for (let i = 0; i < 3; i++) await publish(bus, subjectOf('flood'), Job, { v: 1, n: i });
    const refused = await publish(bus, subjectOf('flood'), Job, { v: 1, n: 4 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AgentComError);
    expect(refused).toMatchObject({ code: 'rate_limited', retryAfterMs: expect.any(Number) });
    expect((await bus.jsm.streams.info(name)).state.messages).toBe(3);
    // Another sender's subject still has room.
    expect((await publish(bus, subjectOf('honest'), Job, { v: 1, n: 1 })).duplicate).toBe(false);
    // Provisioning the same spec again changes nothing; dropping the cap is an update.
    expect(
      (
        await ensureStream(bus, {
          name,
          subjects: [`${bus.names.prefix}.cap.*`],
          retention: 'workqueue',
          maxMsgsPerSubject: 3,
        })
      ).action,
    ).toBe('unchanged');
    const lifted = await ensureStream(bus, {
      name,
      subjects: [`${bus.names.prefix}.cap.*`],
      retention: 'workqueue',
    });
    expect(lifted).toMatchObject({ action: 'updated' });
    expect(lifted.changed).toEqual(
      expect.arrayContaining(['max_msgs_per_subject', 'discard_new_per_subject']),
    );
  });
});

describe('putting a per-subject cap on a stream with a backlog', () => {
  it('waits until no subject holds more than the cap (a restart would trim the excess away)', async () => {
    const name = `${bus.names.streams.submit}_LATE`;
    const spec = { name, subjects: [`${bus.names.prefix}.late.*`], retention: 'workqueue' as const };
    await ensureStream(bus, spec);
    for (let i = 0; i < 5; i++) await publish(bus, `${bus.names.prefix}.late.a`, Job, { v: 1, n: i });
    const deferred = await ensureStream(bus, { ...spec, maxMsgsPerSubject: 3 });
    expect(deferred.action).toBe('unchanged');
    expect((await bus.jsm.streams.info(name)).config.max_msgs_per_subject).toBe(-1);
    expect((await bus.jsm.streams.info(name)).state.messages).toBe(5);
    await bus.jsm.streams.purge(name);
    const applied = await ensureStream(bus, { ...spec, maxMsgsPerSubject: 3 });
    expect(applied.action).toBe('updated');
    expect((await bus.jsm.streams.info(name)).config.max_msgs_per_subject).toBe(3);
  });
});
