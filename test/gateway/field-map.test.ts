/**
 * What the pheromone map reads besides the field's own routes, over real HTTP against a live hub:
 * `GET /api/pheromones/observers` (the hub's `field.observers`: the consumers field.observe made,
 * as agent, slot and pattern, with whether anyone listens), filtered and bounded, refusing bad
 * input with a structured error; and `payloads=false` on the list and the history (records without
 * their payloads, so a map of many pheromones reads little). The pheromone event's data carries
 * what a map draws a pheromone it did not load with.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { FieldClient } from '../../src/agent/field.js';
import { request } from '../../src/bus/service.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { FieldObserversReplySchema } from '../../src/protocol/field.js';
import { eventually } from '../support/eventually.js';
import { readEvents, useGateway } from '../support/gateway.js';

const gw = useGateway('fmap');
const stops: (() => unknown)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

async function connectAgent(url: string, prefix: string, agentId: string): Promise<AgentClient> {
  const a = await AgentClient.connect({
    connection: { servers: url, prefix },
    agentId,
    hello: { observes: ['alpha.*'] },
    logger: pino({ level: 'silent' }),
    helloTimeoutMs: 10_000,
  });
  stops.push(() => a.stop().catch(() => {}));
  return a;
}

interface Observer {
  consumer: string;
  agentId: string | null;
  slot: number | null;
  pattern: string;
  active: boolean;
  pending: number;
}

describe('GET /api/pheromones/observers', () => {
  it('lists each observation as agent, slot and pattern; filters by agent and type; bounds the reply', async () => {
    const g = await gw.setup();
    const a = await connectAgent(g.natsUrl, g.prefix, 'obs-a');
    const b = await connectAgent(g.natsUrl, g.prefix, 'obs-b');
    const oa = await a.field.observe(['alpha.*', '*']);
    const ob = await b.field.observe(['beta.>']);
    const trusted = await new FieldClient(g.bus).observe(['gamma.x']);
    stops.push(
      () => oa.stop(),
      () => ob.stop(),
      () => trusted.stop(),
    );

    const all = await eventually(async () => {
      const r = await g.http('GET', '/api/pheromones/observers', { token: g.tokens.read });
      expect(r.status).toBe(200);
      expect(r.body.total).toBe(4);
      return r.body as { observers: Observer[]; total: number; truncated: boolean };
    });
    expect(all.truncated).toBe(false);
    expect(all.observers.map((o) => [o.agentId, o.slot, o.pattern, o.active])).toEqual([
      ['obs-a', 0, 'alpha.*', true],
      ['obs-a', 1, '*', true],
      ['obs-b', 0, 'beta.>', true],
      [null, null, 'gamma.x', true],
    ]);
    expect(all.observers[0]!.consumer).toBe('fobs-obs-a-0');
    // The submitter role reads it too.
    expect((await g.http('GET', '/api/pheromones/observers', { token: g.tokens.submitter })).status).toBe(
      200,
    );

    const pick = async (query: string) => {
      const r = await g.http('GET', `/api/pheromones/observers?${query}`, { token: g.tokens.read });
      expect(r.status, query).toBe(200);
      return (r.body.observers as Observer[]).map((o) => `${o.agentId}/${o.pattern}`);
    };
    expect(await pick('agent=obs-b')).toEqual(['obs-b/beta.>']);
    expect(await pick('type=alpha.one')).toEqual(['obs-a/alpha.*', 'obs-a/*']);
    expect(await pick('type=beta.one.two')).toEqual(['obs-a/*', 'obs-b/beta.>']);
    expect(await pick('type=gamma.x')).toEqual(['obs-a/*', 'null/gamma.x']);
    const one = await g.http('GET', '/api/pheromones/observers?limit=1', { token: g.tokens.read });
    expect(one.body.observers).toHaveLength(1);
    expect(one.body.total).toBe(4);

    // An observation nobody listens to any more stays until the server removes it: not active.
    ob.stop();
    await eventually(
      async () => {
        const r = await g.http('GET', '/api/pheromones/observers?agent=obs-b', { token: g.tokens.read });
        expect(r.body.observers.map((o: Observer) => o.active)).toEqual([false]);
      },
      // The server's interest update, then the hub's scan cache (OBSERVERS_CACHE_MS) running out.
      { timeout: 25_000, interval: 250 },
    );
  });

  it('refuses bad input with a structured error, and agent tokens', async () => {
    const g = await gw.setup();
    for (const [query, path] of [
      ['limit=0', ['query', 'limit']],
      ['limit=1001', ['query', 'limit']],
      ['type=a..b', ['query', 'type']],
      ['agent=not%20an%20id', ['query', 'agent']],
    ] as const) {
      const r = await g.http('GET', `/api/pheromones/observers?${query}`, { token: g.tokens.read });
      expect(r.status, query).toBe(400);
      expect(r.body, query).toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD, path });
      expect(typeof r.body.message).toBe('string');
    }
    expect((await g.http('GET', '/api/pheromones/observers', { token: null })).status).toBe(401);
    const { token } = await g.token('agent', { agentId: 'nosy' });
    const denied = await g.http('GET', '/api/pheromones/observers', { token });
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe(ERROR_CODES.FORBIDDEN);
    // On NATS, the endpoint validates the same way.
    await expect(
      request(g.bus, 'field.observers', { v: 1, limit: 5000 }, FieldObserversReplySchema),
    ).rejects.toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD });
    await expect(
      request(g.bus, 'field.observers', { v: 1, type: '**' }, FieldObserversReplySchema),
    ).rejects.toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD });
    const empty = await request(g.bus, 'field.observers', { v: 1 }, FieldObserversReplySchema);
    expect(empty).toEqual({ v: 1, observers: [], total: 0, truncated: false });
  });
});

describe('what the map reads of the field', () => {
  it('payloads=false leaves the payloads out of the list and the history; a bad value is refused', async () => {
    const g = await gw.setup();
    const t0 = Date.now() - 1;
    const emitted = await g.http('POST', '/api/pheromones', {
      body: { type: 'map.note', selector: 'file[name=a.ts]', payload: { big: 'x'.repeat(1000) }, ttl: 60 },
    });
    expect(emitted.status).toBe(201);
    const list = await g.http('GET', '/api/pheromones?pattern=map.*&payloads=false', {
      token: g.tokens.read,
    });
    expect(list.body.pheromones).toHaveLength(1);
    expect(list.body.pheromones[0]).toMatchObject({
      type: 'map.note',
      selector: 'file[name=a.ts]',
      payload: {},
    });
    const full = await g.http('GET', '/api/pheromones?pattern=map.*', { token: g.tokens.read });
    expect(full.body.pheromones[0].payload.big).toHaveLength(1000);
    const history = await g.http('GET', `/api/pheromones/history?pattern=map.*&since=${t0}&payloads=false`, {
      token: g.tokens.read,
    });
    expect(history.body.events.map((e: { event: string; payload: object }) => [e.event, e.payload])).toEqual([
      ['emitted', {}],
    ]);
    const bad = await g.http('GET', '/api/pheromones?payloads=perhaps', { token: g.tokens.read });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD, path: ['query', 'payloads'] });
  });

  it('a pheromone event carries the record but its payload: emit time, ttl, claim time, who and when', async () => {
    const g = await gw.setup();
    let id = '';
    const got = await readEvents(
      `${g.url}/api/events?types=pheromone`,
      g.tokens.read,
      (ev) => ev.some((e) => e.event === 'pheromone' && e.data.id === id && e.data.event === 'claimed'),
      {
        onOpen: async () => {
          const r = await g.http('POST', '/api/pheromones', {
            body: { type: 'map.event', selector: 's', payload: { secret: 'not on the stream' }, ttl: 90 },
          });
          id = r.body.pheromone.id;
          await g.http('POST', `/api/pheromones/${id}/claim`, { token: g.tokens.submitter });
        },
      },
    );
    const mine = got.filter((e) => e.event === 'pheromone' && e.data.id === id);
    const [emitted, claimed] = mine.map((e) => e.data);
    expect(emitted).toMatchObject({
      type: 'map.event',
      event: 'emitted',
      ttl: 90,
      claimedBy: null,
      claimedAt: null,
    });
    expect(emitted.expiresAt - emitted.timestamp).toBe(90_000);
    expect(emitted.eventAt).toBe(emitted.timestamp);
    expect(claimed).toMatchObject({
      event: 'claimed',
      claimedBy: 'http:submitter',
      eventBy: 'http:submitter',
    });
    expect(claimed.claimedAt).toBe(claimed.eventAt);
    expect(claimed.timestamp).toBe(emitted.timestamp);
    expect(JSON.stringify(mine)).not.toContain('not on the stream');
  });
});
