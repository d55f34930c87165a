/**
 * The event stream over real HTTP: task events pushed as they happen, resumption with
 * Last-Event-ID (on the same gateway and on another one), `reset` for an unusable id, filters,
 * and an agent token confined to its own agent.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/index.js';
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
    expect(reset[0]!.id).toMatch(/^\d+\.\d+\.\d+$/);
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
