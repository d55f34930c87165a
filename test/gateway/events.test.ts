/**
 * The event stream over real HTTP: task events pushed as they happen, resumption with
 * Last-Event-ID (on the same gateway and on another one), `reset` for an unusable id, filters,
 * and an agent token confined to its own agent.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/index.js';
import { eventually } from '../support/eventually.js';
import { readEvents, type SseEvent, useGateway } from '../support/gateway.js';

const gw = useGateway('gwevents');

const taskEvents = (events: SseEvent[], id: string) =>
  events.filter((e) => e.event === 'task' && e.data.id === id);

describe('event stream', () => {
  it('pushes task transitions, and resumes after a disconnect from Last-Event-ID', async () => {
    const g = await gw.setup();
    let first = '';
    const live = await readEvents(
      `${g.url}/api/events?types=task`,
      g.tokens.read,
      (ev) => first !== '' && taskEvents(ev, first).length > 0,
      {
        onOpen: async () => {
          first = (await g.http('POST', '/api/tasks', { body: { title: 'seen live' } })).body.task.id;
        },
      },
    );
    expect(live[0]!.event).toBe('ready');
    const seen = taskEvents(live, first)[0]!;
    expect(seen.data).toMatchObject({ id: first, status: 'queued', title: 'seen live' });
    const lastId = live[live.length - 1]!.id!;

    // While no one listens: a cancel of the first task and a second task.
    await g.http('POST', `/api/tasks/${first}/cancel`);
    const second = (await g.http('POST', '/api/tasks', { body: { title: 'missed' } })).body.task.id;
    const resumed = await readEvents(
      `${g.url}/api/events?types=task`,
      g.tokens.read,
      (ev) => taskEvents(ev, second).length > 0,
      {
        lastEventId: lastId,
      },
    );
    // Exactly what was missed, in order, and nothing seen before.
    expect(resumed.map((e) => [e.data.id, e.data.status])).toEqual([
      [first, 'cancelled'],
      [second, 'queued'],
    ]);

    // Another gateway (of another process, or restarted) resumes from the same id.
    const other = await startGateway({ bus: g.bus, log: pino({ level: 'silent' }), port: 0 });
    try {
      const elsewhere = await readEvents(
        `${other.url}/api/events?types=task`,
        g.tokens.read,
        (ev) => taskEvents(ev, second).length > 0,
        {
          lastEventId: lastId,
        },
      );
      expect(elsewhere.map((e) => [e.data.id, e.data.status])).toEqual([
        [first, 'cancelled'],
        [second, 'queued'],
      ]);
    } finally {
      await other.close();
    }

    const reset = await readEvents(`${g.url}/api/events`, g.tokens.read, (ev) => ev.length > 0, {
      lastEventId: 'not-an-id',
    });
    expect(reset[0]!.event).toBe('reset');
    expect(reset[0]!.id).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it('filters by queue, and confines an agent token to its agent', async () => {
    const g = await gw.setup();
    let wanted = '';
    const got = await readEvents(
      `${g.url}/api/events?types=task&queue=action`,
      g.tokens.read,
      (ev) => wanted !== '' && taskEvents(ev, wanted).length > 0,
      {
        onOpen: async () => {
          await g.http('POST', '/api/tasks', { body: { title: 'elsewhere', queue: 'social' } });
          wanted = (await g.http('POST', '/api/tasks', { body: { title: 'here', queue: 'action' } })).body
            .task.id;
        },
      },
    );
    expect(got.filter((e) => e.event === 'task').every((e) => e.data.queue === 'action')).toBe(true);

    const { token } = await g.token('agent', { agentId: 'watcher' });
    let marker = '';
    const mine = await readEvents(
      `${g.url}/api/events?agent=someone-else`,
      token,
      (ev) => ev.some((e) => e.event === 'agent' && e.data.id === 'watcher'),
      {
        onOpen: async () => {
          marker = (
            await g.http('POST', '/api/tasks', {
              body: { title: 'not for the watcher', capabilities: ['gpu'] },
            })
          ).body.task.id;
          await g.http('POST', '/api/agents/watcher/hello', { token, body: {} });
        },
      },
    );
    expect(marker).not.toBe('');
    expect(taskEvents(mine, marker)).toEqual([]);
    expect(
      mine
        .filter((e) => e.event !== 'ready')
        .every((e) => e.data.id === 'watcher' || e.data.assignee === 'watcher'),
    ).toBe(true);
    expect((await g.http('GET', '/api/events?types=nope')).status).toBe(400);
    expect((await g.http('GET', '/api/events', { token: null })).status).toBe(401);
  });
});

describe('pheromone events', () => {
  it('streams a pheromone emitted, claimed and removed', async () => {
    const g = await gw.setup();
    let id = '';
    const got = await readEvents(
      `${g.url}/api/events?types=pheromone`,
      g.tokens.read,
      (ev) => ev.some((e) => e.event === 'pheromone' && e.data.removed),
      {
        onOpen: async () => {
          id = (await g.http('POST', '/api/pheromones', { body: { type: 'idea.new', ttl: 60 } })).body
            .pheromone.id;
          await g.http('POST', `/api/pheromones/${id}/claim`);
          await g.http('DELETE', `/api/pheromones/${id}`);
        },
      },
    );
    const mine = got.filter((e) => e.event === 'pheromone' && e.data.id === id);
    expect(mine.map((e) => e.data.event ?? 'gone')).toEqual(['emitted', 'claimed', 'removed', 'gone']);
    expect(mine[1]!.data.claimedBy).toBe('http:admin');
  });
});

describe('event stream limits', () => {
  it('writes a replay larger than the client buffer as the client reads it', async () => {
    const g = await gw.setup();
    const small = await startGateway({
      bus: g.bus,
      log: pino({ level: 'silent' }),
      port: 0,
      maxEventBufferBytes: 2048,
      maxStreamsPerToken: 1,
      metrics: false,
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 30; i++)
        ids.push(
          (await g.http('POST', '/api/tasks', { body: { title: `replayed ${i} ${'x'.repeat(150)}` } })).body
            .task.id,
        );
      for (let round = 0; round < 2; round++) {
        const got = await readEvents(
          `${small.url}/api/events?types=task`,
          g.tokens.read,
          (ev) => ids.every((id) => taskEvents(ev, id).length > 0),
          {
            lastEventId: '0.0.0.0',
          },
        );
        expect(got.filter((e) => e.event === 'task').map((e) => e.data.id)).toEqual(ids);
      }
    } finally {
      await small.close();
    }
  });

  it('ends the streams of a token when it is revoked', async () => {
    const g = await gw.setup();
    const t = await g.token('read');
    const ac = new AbortController();
    const res = await fetch(`${g.url}/api/events`, {
      headers: { authorization: `Bearer ${t.token}` },
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    expect((await g.http('DELETE', `/api/tokens/${t.id}`)).status).toBe(200);
    const deadline = Date.now() + 10_000;
    let ended = false;
    while (!ended && Date.now() < deadline) ended = (await reader.read()).done;
    ac.abort();
    expect(ended).toBe(true);
  });

  it('caps the streams one token holds open; others are not affected', async () => {
    const g = await gw.setup();
    const small = await startGateway({
      bus: g.bus,
      log: pino({ level: 'silent' }),
      port: 0,
      maxStreamsPerToken: 1,
      metrics: false,
    });
    const ac = new AbortController();
    try {
      const first = await fetch(`${small.url}/api/events`, {
        headers: { authorization: `Bearer ${g.tokens.read}` },
        signal: ac.signal,
      });
      expect(first.status).toBe(200);
      const second = await fetch(`${small.url}/api/events`, {
        headers: { authorization: `Bearer ${g.tokens.read}` },
      });
      expect(second.status).toBe(429);
      expect(((await second.json()) as { code: string }).code).toBe('rate_limited');
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
      const other = await readEvents(`${small.url}/api/events`, g.tokens.admin, (ev) => ev.length > 0);
      expect(other[0]!.event).toBe('ready');
      ac.abort();
      // Its slot is free once the first stream is gone.
      const again = await eventually(() =>
        readEvents(`${small.url}/api/events`, g.tokens.read, (ev) => ev.length > 0),
      );
      expect(again[0]!.event).toBe('ready');
    } finally {
      ac.abort();
      await small.close();
    }
  });
});
