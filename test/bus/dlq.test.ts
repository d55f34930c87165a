import { AckPolicy } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import {
  advisoryStreamSpec,
  type Bus,
  type ConsumerRunner,
  deadLetter,
  dlqForwarderSpec,
  dlqStreamSpec,
  ensureStream,
  getDeadLetter,
  listDeadLetters,
  outcome,
  publish,
  purgeDeadLetters,
  replayDeadLetter,
  runConsumer,
  startDlqForwarder,
} from '../../src/bus/index.js';
import { HEADERS } from '../../src/protocol/headers.js';
import { eventually } from '../support/eventually.js';
import { useNatsServer } from '../support/nats-server.js';
import { ensureSubmitStream, Job, testBus } from './support.js';

const server = useNatsServer();

async function setup(): Promise<Bus> {
  const bus = await testBus(server.url);
  const n = bus.names;
  await ensureSubmitStream(bus, 'memory');
  await ensureStream(bus, {
    name: n.streams.reports,
    subjects: [n.subjects.agentAll('report')],
    retention: 'workqueue',
    storage: 'memory',
  });
  await ensureStream(bus, dlqStreamSpec(n, 'memory'));
  return bus;
}

/** Writes `count` dead letters as if consumer `c` on `stream` had given up on them. */
async function seed(bus: Bus, stream: string, subject: string, count: number, from = 1) {
  for (let i = 0; i < count; i++) {
    const p = await publish(bus, subject, Job, { v: 1, n: from + i }, { correlationId: `corr-${from + i}` });
    const sm = await bus.jsm.streams.getMessage(stream, { seq: p.seq });
    await deadLetter(bus, {
      subject,
      headers: sm!.header,
      data: sm!.data,
      stream,
      consumer: 'c',
      streamSeq: p.seq,
      deliveries: 5,
      reason: { code: 'max_deliveries', message: `failed ${from + i}` },
    });
    await bus.jsm.streams.deleteMessage(stream, p.seq);
  }
}

describe('DLQ API', () => {
  it('writes a dead letter once even when written twice (runner and forwarder race)', async () => {
    const bus = await setup();
    try {
      const n = bus.names;
      const p = await publish(bus, n.subjects.taskSubmit, Job, { v: 1, n: 1 });
      const sm = await bus.jsm.streams.getMessage(n.streams.submit, { seq: p.seq });
      const input = {
        subject: n.subjects.taskSubmit,
        headers: sm!.header,
        data: sm!.data,
        stream: n.streams.submit,
        consumer: 'c',
        streamSeq: p.seq,
        deliveries: 3,
        reason: { code: 'max_deliveries' as const, message: 'x' },
      };
      const a = await deadLetter(bus, input);
      const b = await deadLetter(bus, input);
      expect(a.duplicate).toBe(false);
      expect(b.duplicate).toBe(true);
      expect((await listDeadLetters(bus)).items).toHaveLength(1);
    } finally {
      await bus.drain();
    }
  });

  it('lists in pages, filters by stream, and inspects one record', async () => {
    const bus = await setup();
    try {
      const n = bus.names;
      await seed(bus, n.streams.submit, n.subjects.taskSubmit, 5);
      await seed(bus, n.streams.reports, n.subjects.agentReport('a1'), 2, 100);
      const page1 = await listDeadLetters(bus, { limit: 4 });
      expect(page1.items.map((i) => JSON.parse(i.payload).n)).toEqual([1, 2, 3, 4]);
      expect(page1.next_after_seq).toBe(page1.items[3]!.seq);
      const page2 = await listDeadLetters(bus, { limit: 4, after_seq: page1.next_after_seq! });
      expect(page2.items.map((i) => JSON.parse(i.payload).n)).toEqual([5, 100, 101]);
      expect(page2.next_after_seq).toBeNull();
      const reports = await listDeadLetters(bus, { stream: n.streams.reports });
      expect(reports.items.map((i) => i.subject)).toEqual([
        n.subjects.agentReport('a1'),
        n.subjects.agentReport('a1'),
      ]);

      const one = await getDeadLetter(bus, page1.items[1]!.seq);
      expect(one).toMatchObject({
        v: 1,
        stream: n.streams.submit,
        consumer: 'c',
        subject: n.subjects.taskSubmit,
        deliveries: 5,
        correlation_id: 'corr-2',
        reason: { code: 'max_deliveries', message: 'failed 2' },
      });
      expect(one?.headers[HEADERS.MSG_ID]).toHaveLength(1);
      expect(await getDeadLetter(bus, 999_999)).toBeNull();
    } finally {
      await bus.drain();
    }
  });

  it('replays to the original subject with a fresh message id, once, and removes the dead letter', async () => {
    const bus = await setup();
    const got: { n: number; msgId: string | null; corr: string | null }[] = [];
    let r: ConsumerRunner | undefined;
    try {
      const n = bus.names;
      await seed(bus, n.streams.submit, n.subjects.taskSubmit, 1, 42);
      const [rec] = (await listDeadLetters(bus)).items;
      const res = await replayDeadLetter(bus, rec!.seq);
      expect(res).toMatchObject({
        subject: n.subjects.taskSubmit,
        stream: n.streams.submit,
        duplicate: false,
      });
      expect(res.msg_id).not.toBe(rec!.msg_id);
      expect(await getDeadLetter(bus, rec!.seq)).toBeNull();
      await expect(replayDeadLetter(bus, rec!.seq)).rejects.toMatchObject({ code: 'not_found' });

      r = await runConsumer(bus, {
        spec: { stream: n.streams.submit, durable: 'hub-intake', ackWaitMs: 1_000 },
        schema: Job,
        handler: (job, ctx) => {
          got.push({ n: job.n, msgId: ctx.msgId, corr: ctx.correlationId });
          return outcome.ack();
        },
      });
      await eventually(() => expect(got).toEqual([{ n: 42, msgId: res.msg_id, corr: 'corr-42' }]));
    } finally {
      await r?.stop();
      await bus.drain();
    }
  });

  it('replay with keep leaves the dead letter in place', async () => {
    const bus = await setup();
    try {
      const n = bus.names;
      await seed(bus, n.streams.submit, n.subjects.taskSubmit, 1);
      const [rec] = (await listDeadLetters(bus)).items;
      await replayDeadLetter(bus, rec!.seq, { keep: true });
      expect(await getDeadLetter(bus, rec!.seq)).not.toBeNull();
      expect((await bus.jsm.streams.info(n.streams.submit)).state.messages).toBe(1);
    } finally {
      await bus.drain();
    }
  });

  it('purges one, then all of one stream, then everything', async () => {
    const bus = await setup();
    try {
      const n = bus.names;
      await seed(bus, n.streams.submit, n.subjects.taskSubmit, 3);
      await seed(bus, n.streams.reports, n.subjects.agentReport('a1'), 2, 10);
      const [first] = (await listDeadLetters(bus)).items;
      expect(await purgeDeadLetters(bus, { seq: first!.seq })).toEqual({ v: 1, purged: 1 });
      expect(await purgeDeadLetters(bus, { seq: first!.seq })).toEqual({ v: 1, purged: 0 });
      expect(await purgeDeadLetters(bus, { stream: n.streams.reports })).toEqual({ v: 1, purged: 2 });
      expect((await listDeadLetters(bus)).items.map((i) => JSON.parse(i.payload).n)).toEqual([2, 3]);
      expect(await purgeDeadLetters(bus)).toEqual({ v: 1, purged: 2 });
      expect((await listDeadLetters(bus)).items).toEqual([]);
    } finally {
      await bus.drain();
    }
  });
});

describe('startDlqForwarder()', () => {
  it('moves a message that hit max deliveries without ever being acked into the DLQ and out of the work queue', async () => {
    const bus = await setup();
    let fwd: ConsumerRunner | undefined;
    try {
      const n = bus.names;
      await ensureStream(bus, advisoryStreamSpec(n, [n.streams.submit], 'memory'));
      // A consumer whose process "dies": it receives but never settles, so ack_wait expires twice.
      await bus.jsm.consumers.add(n.streams.submit, {
        durable_name: 'dead-worker',
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(300),
        max_deliver: 2,
      });
      const p = await publish(bus, n.subjects.taskSubmit, Job, { v: 1, n: 7 }, { correlationId: 'lost' });
      const c = await bus.js.consumers.get(n.streams.submit, 'dead-worker');
      expect((await c.next({ expires: 2_000 }))?.seq).toBe(p.seq);
      expect((await c.next({ expires: 2_000 }))?.info.deliveryCount).toBe(2);
      // The server checks max deliveries when it would redeliver, i.e. while some client pulls:
      // in production the other processes on the durable; here one more pull that gets nothing.
      expect(await c.next({ expires: 1_500 })).toBeNull();
      // The advisory is captured even though no forwarder runs yet.
      await eventually(async () =>
        expect((await bus.jsm.streams.info(n.streams.advisories)).state.messages).toBe(1),
      );
      expect((await bus.jsm.streams.info(n.streams.submit)).state.messages).toBe(1); // WQ keeps it forever

      fwd = await startDlqForwarder(bus, { spec: dlqForwarderSpec(n) });
      await eventually(async () => expect((await listDeadLetters(bus)).items).toHaveLength(1));
      const [rec] = (await listDeadLetters(bus)).items;
      expect(rec).toMatchObject({
        stream: n.streams.submit,
        consumer: 'dead-worker',
        stream_seq: p.seq,
        deliveries: 2,
        correlation_id: 'lost',
        msg_id: p.msgId,
        reason: { code: 'max_deliveries' },
      });
      await eventually(async () =>
        expect((await bus.jsm.streams.info(n.streams.submit)).state.messages).toBe(0),
      );
      await eventually(async () =>
        expect((await bus.jsm.streams.info(n.streams.advisories)).state.messages).toBe(0),
      );
    } finally {
      await fwd?.stop();
      await bus.drain();
    }
  });
});
