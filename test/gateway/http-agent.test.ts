/**
 * An agent that speaks HTTP only, with an agent token: hello, heartbeats, the inbox polled with a
 * cursor and acked, seed 002's PATCH to accept and complete. Its token acts as its agent only.
 */
import { describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { type GatewayHarness, useGateway } from '../support/gateway.js';

const gw = useGateway('gwagent');

/** A minimal HTTP agent: says hello, heartbeats while alive, and does what `work` says. */
async function httpAgent(g: GatewayHarness, agentId: string, slots = 1) {
  const { token } = await g.token('agent', { agentId });
  const call = (method: string, path: string, body?: unknown) =>
    g.http(method, `/api/agents/${agentId}${path}`, { token, ...(body !== undefined ? { body } : {}) });
  const hello = await call('POST', '/hello', { capabilities: ['http'], slots });
  expect(hello.status).toBe(200);
  expect(hello.body.ok).toBe(true);
  const holding = new Set<string>();
  const beat = setInterval(
    () => void call('POST', '/heartbeat', { at: Date.now(), running: [...holding] }),
    hello.body.heartbeatIntervalMs,
  );
  return { token, call, holding, stop: () => clearInterval(beat) };
}

describe('HTTP agents', () => {
  it('completes tasks over HTTP alone: poll, accept, ack, complete', async () => {
    const g = await gw.setup();
    const agent = await httpAgent(g, 'web-1');
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++)
        ids.push(
          (await g.http('POST', '/api/tasks', { body: { title: `http task ${i}`, capabilities: ['http'] } }))
            .body.task.id,
        );
      const done = new Set<string>();
      await eventually(
        async () => {
          const polled = await agent.call('GET', '/inbox?wait=1000&max=10');
          expect(polled.status).toBe(200);
          for (const m of polled.body.messages) {
            if (m.message.type === 'assign') {
              const { taskId, generation } = m.message;
              agent.holding.add(taskId);
              const accepted = await g.http('PATCH', `/api/tasks/${taskId}`, {
                token: agent.token,
                body: { action: 'accept', generation },
              });
              expect(accepted.status).toBe(202);
              const progress = await g.http('PATCH', `/api/tasks/${taskId}`, {
                token: agent.token,
                body: { action: 'progress', generation, pct: 50 },
              });
              expect(progress.status).toBe(202);
              const completed = await g.http('PATCH', `/api/tasks/${taskId}`, {
                token: agent.token,
                body: { action: 'complete', generation, result: { by: 'http' }, tokensUsed: 7 },
              });
              expect(completed.status).toBe(202);
              // Sent twice (a client retry): stored once.
              const dup = await g.http('PATCH', `/api/tasks/${taskId}`, {
                token: agent.token,
                body: { action: 'complete', generation, result: { by: 'http' }, tokensUsed: 7 },
              });
              expect(dup.body.duplicate).toBe(true);
              agent.holding.delete(taskId);
              done.add(taskId);
            }
            const acked = await agent.call('POST', '/inbox/ack', { upTo: m.seq });
            expect(acked.status).toBe(200);
          }
          expect(done.size).toBe(3);
        },
        { timeout: 30_000, interval: 50 },
      );
      await eventually(async () => {
        for (const id of ids) {
          const t = await g.http('GET', `/api/tasks/${id}`, { token: agent.token });
          expect(t.body.task).toMatchObject({
            status: 'done',
            assignee: 'web-1',
            result: { by: 'http' },
            tokensUsed: 7,
          });
        }
      });
      // Acking again is a no-op; the inbox is empty.
      expect((await agent.call('POST', '/inbox/ack', { upTo: 1_000_000 })).body.acked).toBe(0);
      expect((await agent.call('GET', '/inbox')).body.messages).toEqual([]);
      const me = await agent.call('GET', '');
      expect(me.body.agent).toMatchObject({ id: 'web-1', completed: 3 });
    } finally {
      agent.stop();
    }
  });

  it('a goodbye over HTTP reclaims the task of the agent at once', async () => {
    const g = await gw.setup({ acceptTimeoutMs: 60_000 });
    const agent = await httpAgent(g, 'web-2');
    try {
      const id = (await g.http('POST', '/api/tasks', { body: { title: 'needs an ack' } })).body.task.id;
      let first: { seq: number; deliveries: number } | undefined;
      await eventually(async () => {
        const p = await agent.call('GET', '/inbox?wait=1000');
        first = p.body.messages.find((m: { message: { taskId?: string } }) => m.message.taskId === id);
        expect(first).toBeDefined();
      });
      const generation = (await g.http('GET', `/api/tasks/${id}`)).body.task.generation;
      await g.http('PATCH', `/api/tasks/${id}`, {
        token: agent.token,
        body: { action: 'accept', generation },
      });
      agent.holding.add(id);
      await eventually(async () =>
        expect((await g.http('GET', `/api/tasks/${id}`)).body.task.status).toBe('working'),
      );
      expect((await agent.call('POST', '/goodbye', { reason: 'done for today' })).status).toBe(200);
      agent.stop();
      await eventually(async () => {
        const t = (await g.http('GET', `/api/tasks/${id}`)).body.task;
        expect(t.status).toBe('queued');
        expect(t.generation).toBeGreaterThan(generation);
      });
    } finally {
      agent.stop();
    }
  });

  it('a poll whose reply was lost shows the same messages again; ack up to moves on', async () => {
    const g = await gw.setup({ acceptTimeoutMs: 60_000 });
    const agent = await httpAgent(g, 'web-5', 2);
    try {
      const first = (await g.http('POST', '/api/tasks', { body: { title: 'one' } })).body.task.id;
      let seen: { seq: number; message: { taskId: string } }[] = [];
      await eventually(async () => {
        seen = (await agent.call('GET', '/inbox?wait=1000')).body.messages;
        expect(seen.map((m) => m.message.taskId)).toContain(first);
      });
      // The reply is "lost": the agent polls again and gets the same, while more work arrives.
      const second = (await g.http('POST', '/api/tasks', { body: { title: 'two' } })).body.task.id;
      await eventually(async () =>
        expect((await g.http('GET', `/api/tasks/${second}`)).body.task.assignee).toBe('web-5'),
      );
      const again = (await agent.call('GET', '/inbox?wait=1000')).body.messages;
      expect(again.map((m: { seq: number }) => m.seq)).toEqual(seen.map((m) => m.seq));
      expect((await agent.call('POST', '/inbox/ack', { upTo: seen[seen.length - 1]!.seq })).body.acked).toBe(
        seen.length,
      );
      await eventually(async () => {
        const next = (await agent.call('GET', '/inbox?wait=1000')).body.messages;
        expect(next.map((m: { message: { taskId: string } }) => m.message.taskId)).toContain(second);
      });
      // Progress reports are each stored (each its own id); a retried completion once.
      const gen = (await g.http('GET', `/api/tasks/${first}`)).body.task.generation;
      await g.http('PATCH', `/api/tasks/${first}`, {
        token: agent.token,
        body: { action: 'accept', generation: gen },
      });
      for (const pct of [10, 20])
        expect(
          (
            await g.http('PATCH', `/api/tasks/${first}`, {
              token: agent.token,
              body: { action: 'progress', generation: gen, pct },
            })
          ).body.duplicate,
        ).toBe(false);
      await eventually(async () =>
        expect((await g.http('GET', `/api/tasks/${first}`)).body.task.progress?.pct).toBe(20),
      );
    } finally {
      agent.stop();
    }
  });

  it('an agent token acts as its agent only', async () => {
    const g = await gw.setup();
    const a = await httpAgent(g, 'web-3');
    try {
      const other = await g.http('POST', '/api/agents/web-4/hello', { token: a.token, body: {} });
      expect(other.status).toBe(403);
      expect((await g.http('GET', '/api/agents/web-4/inbox', { token: a.token })).status).toBe(403);
      expect((await g.http('POST', '/api/agents/web-4/reports', { token: a.token, body: {} })).status).toBe(
        403,
      );
      // Another's task is invisible to it; operator routes are forbidden.
      const id = (
        await g.http('POST', '/api/tasks', { body: { title: 'not yours', capabilities: ['other'] } })
      ).body.task.id;
      expect((await g.http('GET', `/api/tasks/${id}`, { token: a.token })).status).toBe(404);
      expect((await g.http('GET', '/api/tasks', { token: a.token })).status).toBe(403);
      expect((await g.http('POST', '/api/tasks', { token: a.token, body: { title: 'x' } })).status).toBe(403);
      // A report on a task it does not hold is stored and refused by the hub: nothing changes.
      const forged = await g.http('PATCH', `/api/tasks/${id}`, {
        token: a.token,
        body: { action: 'complete', generation: 0, result: 1 },
      });
      expect(forged.status).toBe(202);
      const bad = await g.http('PATCH', `/api/tasks/${id}`, {
        token: a.token,
        body: { action: 'explode', generation: 0 },
      });
      expect(bad.status).toBe(400);
      const noReason = await g.http('PATCH', `/api/tasks/${id}`, {
        token: a.token,
        body: { action: 'reject', generation: 0 },
      });
      expect(noReason.status).toBe(400);
      expect(noReason.body.path).toEqual(['body', 'reason']);
      await eventually(async () =>
        expect((await g.http('GET', `/api/tasks/${id}`)).body.task.status).toBe('queued'),
      );
      // An operator's token may not PATCH (no agent to act as).
      expect(
        (await g.http('PATCH', `/api/tasks/${id}`, { body: { action: 'accept', generation: 0 } })).status,
      ).toBe(403);
    } finally {
      a.stop();
    }
  });
});
