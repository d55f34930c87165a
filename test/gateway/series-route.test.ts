/**
 * GET /api/dashboard/series and the `series` event over real HTTP against a live hub: the reply's
 * shape and who may read it (read ok, no token 401, an agent token 403, a bad query a structured
 * 400); tasks done by an agent process and a message sent through the API counted; the counts
 * pushed as `series` events without an id to a client that asked (`?series=1`) and to no other;
 * and a gateway started afterwards shows the same hour from its backfill.
 */
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/index.js';
import { eventually } from '../support/eventually.js';
import { readEvents, type SseEvent, useGateway } from '../support/gateway.js';
import { type SimAgent, spawnSimAgent } from '../support/sim-agents.js';

const gw = useGateway('gwseries');
const agents: SimAgent[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill()));
});

interface Point {
  t: number;
  done: number;
  failed: number;
  latencyP50: number | null;
  latencyP99: number | null;
  waitP50: number | null;
  waitP99: number | null;
  messages: Record<string, number>;
}
const sum = (points: Point[], f: (p: Point) => number) => points.reduce((a, p) => a + f(p), 0);
const seriesEvents = (events: SseEvent[]) => events.filter((e) => e.event === 'series');

describe('GET /api/dashboard/series', () => {
  it('answers a read token with the last 60 minutes; no token 401, an agent token 403, a bad query 400', async () => {
    const g = await gw.setup();
    const before = Math.floor(Date.now() / 60_000) * 60_000;
    const r = await g.http('GET', '/api/dashboard/series', { token: g.tokens.read });
    const after = Math.floor(Date.now() / 60_000) * 60_000;
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ v: 1, minuteMs: 60_000 });
    expect(typeof r.body.backfilled).toBe('boolean');
    const points: Point[] = r.body.points;
    expect(points).toHaveLength(60);
    const last = points[59]!.t;
    expect(last).toBeGreaterThanOrEqual(before);
    expect(last).toBeLessThanOrEqual(after);
    points.forEach((p, i) => {
      expect(p.t).toBe(last - (59 - i) * 60_000);
      expect(Object.keys(p.messages).sort()).toEqual(['broadcast', 'channel', 'direct', 'presence']);
    });
    const five = await g.http('GET', '/api/dashboard/series?minutes=5', { token: g.tokens.read });
    expect(five.body.points).toHaveLength(5);

    const none = await g.http('GET', '/api/dashboard/series', { token: null });
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('unauthorized');
    const { token: agent } = await g.token('agent', { agentId: 'peeker' });
    const forbidden = await g.http('GET', '/api/dashboard/series', { token: agent });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.code).toBe('forbidden');
    for (const bad of ['0', '61', 'abc', '1.5']) {
      const b = await g.http('GET', `/api/dashboard/series?minutes=${bad}`, { token: g.tokens.read });
      expect(b.status, bad).toBe(400);
      expect(b.body).toMatchObject({ code: 'invalid_payload', path: ['query', 'minutes'] });
    }
    // Listed in the OpenAPI document with its roles.
    const doc = await g.http('GET', '/api/openapi.json', { token: null });
    expect(doc.body.paths['/api/dashboard/series']?.get).toBeDefined();
  });

  it('counts done tasks and messages, pushes them as id-less series events to clients that ask, and a new gateway backfills them', async () => {
    const g = await gw.setup();
    const worker = await spawnSimAgent({
      url: g.natsUrl,
      prefix: g.prefix,
      agentId: 'series-worker',
      workMs: 50,
    });
    agents.push(worker);
    const ids: string[] = [];
    const live = await readEvents(
      `${g.url}/api/events?series=1&types=task`,
      g.tokens.read,
      (ev) => {
        const last = seriesEvents(ev).at(-1);
        return (
          last !== undefined &&
          sum(last.data.points, (p) => p.done) >= 3 &&
          sum(last.data.points, (p) => p.messages.broadcast ?? 0) >= 1
        );
      },
      {
        timeoutMs: 40_000,
        onOpen: async () => {
          for (const title of ['one', 'two', 'three']) {
            const r = await g.http('POST', '/api/tasks', { body: { title } });
            expect(r.status).toBe(201);
            ids.push(r.body.task.id);
          }
          const m = await g.http('POST', '/api/messages', {
            token: g.tokens.submitter,
            body: { broadcast: true, body: 'counted' },
          });
          expect(m.status).toBe(201);
        },
      },
    );
    expect(live[0]!.event).toBe('ready');
    // The series event is pushed at once after the replay, then every few seconds.
    expect(live[1]!.event).toBe('series');
    for (const e of seriesEvents(live)) {
      expect(e.id).toBeUndefined();
      expect(e.data.points).toHaveLength(2);
      expect(e.data.points[1].t - e.data.points[0].t).toBe(60_000);
    }
    // Task events keep their ids: the series events moved no cursor.
    const tasks = live.filter((e) => e.event === 'task');
    expect(tasks.length).toBeGreaterThan(0);
    expect(tasks.every((e) => typeof e.id === 'string' && e.id.length > 0)).toBe(true);

    const r = await g.http('GET', '/api/dashboard/series', { token: g.tokens.read });
    const points: Point[] = r.body.points;
    expect(sum(points, (p) => p.done)).toBe(3);
    expect(sum(points, (p) => p.failed)).toBe(0);
    expect(sum(points, (p) => p.messages.broadcast!)).toBe(1);
    const withLatency = points.filter((p) => p.latencyP50 !== null);
    expect(withLatency.length).toBeGreaterThan(0);
    for (const p of withLatency) {
      expect(p.latencyP50!).toBeLessThanOrEqual(p.latencyP99!);
      expect(p.waitP50).not.toBeNull();
    }

    // Without `series=1`, and for an agent token even with it, no series event: it would be the
    // first after `ready` (it is written at once), so the first live event settles it.
    let marker = '';
    const plain = await readEvents(
      `${g.url}/api/events?types=task`,
      g.tokens.read,
      (ev) => marker !== '' && ev.some((e) => e.event === 'task' && e.data.id === marker),
      {
        onOpen: async () => {
          marker = (await g.http('POST', '/api/tasks', { body: { title: 'marker' } })).body.task.id;
        },
      },
    );
    expect(seriesEvents(plain)).toEqual([]);
    const { token: agentToken } = await g.token('agent', { agentId: 'series-watcher' });
    const asAgent = await readEvents(
      `${g.url}/api/events?series=1`,
      agentToken,
      (ev) => ev.some((e) => e.event === 'agent' && e.data.id === 'series-watcher'),
      {
        onOpen: async () => {
          await g.http('POST', '/api/agents/series-watcher/hello', { token: agentToken, body: {} });
        },
      },
    );
    expect(seriesEvents(asAgent)).toEqual([]);

    // A gateway started now has seen none of it live: what it shows comes from its backfill.
    await worker.waitFor('the marker done', () => worker.completed().includes(marker), 30_000);
    const other = await startGateway({ bus: g.bus, log: pino({ level: 'silent' }), port: 0 });
    try {
      const fresh = await eventually(
        async () => {
          const res = await fetch(`${other.url}/api/dashboard/series`, {
            headers: { authorization: `Bearer ${g.tokens.read}` },
          });
          const body = (await res.json()) as { backfilled: boolean; gateway: string; points: Point[] };
          expect(body.backfilled).toBe(true);
          return body;
        },
        { timeout: 30_000, interval: 100 },
      );
      // Each gateway keeps its own series and says which it is (`rev` compares within one only).
      const first = (await g.http('GET', '/api/dashboard/series', { token: g.tokens.read })).body;
      expect(fresh.gateway).not.toBe(first.gateway);
      expect((await g.http('GET', '/api/dashboard/series', { token: g.tokens.read })).body.gateway).toBe(
        first.gateway,
      );
      expect(sum(fresh.points, (p) => p.done)).toBe(4);
      expect(sum(fresh.points, (p) => p.messages.broadcast!)).toBe(1);
    } finally {
      await other.close();
    }
  }, 120_000);
});
