import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type AgentcomService,
  type Bus,
  createService,
  deadLetter,
  dlqStreamSpec,
  ensureStream,
  registerDlqEndpoints,
  request,
} from '../../src/bus/index.js';
import { DlqListResponseSchema, DlqPurgeResponseSchema, DlqRecordSchema } from '../../src/protocol/dlq.js';
import { versioned } from '../../src/protocol/envelope.js';
import { AgentComError } from '../../src/protocol/errors.js';
import { HEADERS } from '../../src/protocol/headers.js';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.js';
import { enc, testBus } from './support.js';

const Sum = versioned(1, { xs: z.array(z.number()).min(1) });
const SumReply = versioned(1, { total: z.number() });

let server: TestNatsServer;
let bus: Bus;
let client: Bus;
let svc: AgentcomService;
beforeAll(async () => {
  server = await startNatsServer();
  bus = await testBus(server.url);
  client = await testBus(server.url, { prefix: bus.names.prefix });
  await ensureStream(bus, dlqStreamSpec(bus.names, 'memory'));
  svc = await createService(bus, { version: '1.2.3' });
  svc.addEndpoint('task.stats', {
    input: Sum,
    output: SumReply,
    handler: async (req) => ({ v: 1 as const, total: req.xs.reduce((a, b) => a + b, 0) }),
  });
  svc.addEndpoint('task.get', {
    input: versioned(1, { id: z.string() }),
    handler: (req) => {
      if (req.id === 'boom') throw new Error('database on fire');
      throw new AgentComError('not_found', `no task ${req.id}`);
    },
  });
  registerDlqEndpoints(svc, bus);
  await bus.nc.flush();
});
afterAll(async () => {
  await svc.stop();
  await client.drain();
  await bus.drain();
  await server.dispose();
});

describe('createService()', () => {
  it('answers a valid request', async () => {
    expect(await request(client, 'task.stats', { v: 1, xs: [1, 2, 3.5] }, SumReply)).toEqual({
      v: 1,
      total: 6.5,
    });
  });

  it('answers invalid input with a typed error and the service error headers', async () => {
    const err = await request(client, 'task.stats', { v: 1, xs: [] }, SumReply).catch((e) => e);
    expect(err).toBeInstanceOf(AgentComError);
    expect(err).toMatchObject({ code: 'invalid_payload', path: ['xs'] });
    const raw = await client.nc.request(
      client.names.subjects.api['task.stats'],
      JSON.stringify({ v: 2, xs: [1] }),
    );
    expect(raw.headers?.get(HEADERS.SERVICE_ERROR_CODE)).toBe('400');
    expect(raw.json()).toMatchObject({ code: 'unsupported_version', path: ['v'] });
    const notJson = await client.nc.request(client.names.subjects.api['task.stats'], enc('{'));
    expect(notJson.json()).toMatchObject({ code: 'invalid_payload' });
  });

  it('keeps the code of a thrown AgentComError and maps other errors to internal', async () => {
    await expect(request(client, 'task.get', { v: 1, id: 'x' }, z.unknown())).rejects.toMatchObject({
      code: 'not_found',
      message: 'no task x',
    });
    const raw = await client.nc.request(
      client.names.subjects.api['task.get'],
      JSON.stringify({ v: 1, id: 'x' }),
    );
    expect(raw.headers?.get(HEADERS.SERVICE_ERROR_CODE)).toBe('404');
    await expect(request(client, 'task.get', { v: 1, id: 'boom' }, z.unknown())).rejects.toMatchObject({
      code: 'internal',
    });
  });

  it('answers $SRV.PING, INFO and STATS with the service name and endpoints', async () => {
    const name = bus.names.service.name;
    const ping = (await client.nc.request(`$SRV.PING.${name}`)).json<{
      name: string;
      version: string;
      type: string;
    }>();
    expect(ping).toMatchObject({ name, version: '1.2.3', type: 'io.nats.micro.v1.ping_response' });
    const info = (await client.nc.request(`$SRV.INFO.${name}`)).json<{ endpoints: { subject: string }[] }>();
    expect(info.endpoints.map((e) => e.subject).sort()).toEqual(
      ['dlq.get', 'dlq.list', 'dlq.purge', 'dlq.replay', 'task.get', 'task.stats'].map(
        (e) => `${bus.names.subjects.apiPrefix}.${e}`,
      ),
    );
    const stats = (await client.nc.request(`$SRV.STATS.${name}`)).json<{
      endpoints: { num_requests: number }[];
    }>();
    expect(stats.endpoints.some((e) => e.num_requests > 0)).toBe(true);
  });

  it('serves the DLQ endpoints', async () => {
    const n = bus.names;
    await deadLetter(bus, {
      subject: n.subjects.taskSubmit,
      headers: undefined,
      data: enc('{"v":1}'),
      stream: n.streams.submit,
      consumer: 'hub-intake',
      streamSeq: 1,
      deliveries: 1,
      reason: { code: 'invalid_payload', message: 'bad' },
    });
    const list = await request(client, 'dlq.list', { v: 1 }, DlqListResponseSchema);
    expect(list.items).toHaveLength(1);
    const rec = await request(client, 'dlq.get', { v: 1, seq: list.items[0]!.seq }, DlqRecordSchema);
    expect(rec.reason).toEqual({ code: 'invalid_payload', message: 'bad' });
    await expect(request(client, 'dlq.get', { v: 1, seq: 424242 }, DlqRecordSchema)).rejects.toMatchObject({
      code: 'not_found',
    });
    await expect(request(client, 'dlq.replay', { v: 1, seq: 424242 }, z.unknown())).rejects.toMatchObject({
      code: 'not_found',
    });
    expect(await request(client, 'dlq.purge', { v: 1 }, DlqPurgeResponseSchema)).toEqual({ v: 1, purged: 1 });
  });

  it('reports unavailable when no service answers', async () => {
    await expect(
      request(client, 'agent.list', { v: 1 }, z.unknown(), { timeoutMs: 1_000 }),
    ).rejects.toMatchObject({
      code: 'unavailable',
    });
  });
});
