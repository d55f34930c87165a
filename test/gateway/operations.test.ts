/**
 * The gateway's operator routes over real HTTP against a live hub: agents (list, get, suspend,
 * remove, restore), the DLQ (list, show, replay, purge), schedules, the field, the dashboard
 * state, health and readiness, and the OpenAPI document against the routes actually served.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/gateway.js';
import { spawnSimAgent } from '../support/sim-agents.js';

const gw = useGateway('gwops');

describe('operator routes', () => {
  it('agents: list, one, suspend, remove and restore', async () => {
    const g = await gw.setup();
    const agent = await spawnSimAgent({ url: g.natsUrl, prefix: g.prefix, agentId: 'ops-a1', workMs: 10 });
    try {
      await eventually(async () => {
        const r = await g.http('GET', '/api/agents', { token: g.tokens.read });
        expect(r.body.agents.map((a: { id: string }) => a.id)).toContain('ops-a1');
      });
      const one = await g.http('GET', '/api/agents/ops-a1', { token: g.tokens.read });
      expect(one.body.agent).toMatchObject({ id: 'ops-a1', online: true });
      // Its latest heartbeat (or hello), from the hub's clock: recent, and newer after a beat.
      const seen: number = one.body.agent.lastHeartbeat;
      expect(Math.abs(Date.now() - seen)).toBeLessThan(60_000);
      await eventually(async () =>
        expect((await g.http('GET', '/api/agents/ops-a1')).body.agent.lastHeartbeat).toBeGreaterThan(seen),
      );
      expect((await g.http('GET', '/api/agents/nobody')).status).toBe(404);
      expect((await g.http('POST', '/api/agents/nobody/suspend', { body: { forMs: 60_000 } })).status).toBe(
        404,
      );
      expect((await g.http('POST', '/api/agents/ops-a1/suspend', { body: { forMs: 10 } })).status).toBe(400);
      expect(
        (
          await g.http('POST', '/api/agents/ops-a1/suspend', {
            token: g.tokens.read,
            body: { forMs: 60_000 },
          })
        ).status,
      ).toBe(403);
      const s = await g.http('POST', '/api/agents/ops-a1/suspend', {
        body: { forMs: 60_000, reason: 'maintenance' },
      });
      expect(s.status).toBe(200);
      expect(s.body.suspension).toMatchObject({ agentId: 'ops-a1', reason: 'maintenance' });
      await eventually(async () => {
        const r = await g.http('GET', '/api/agents');
        expect(r.body.suspended.map((x: { agentId: string }) => x.agentId)).toContain('ops-a1');
      });
      const restored = await g.http('POST', '/api/agents/ops-a1/restore');
      expect(restored.body).toMatchObject({ restored: true, unsuspended: true });
      await eventually(
        async () => expect((await g.http('GET', '/api/agents/ops-a1')).body.agent?.online).toBe(true),
        {
          timeout: 15_000,
        },
      );
      const removed = await g.http('DELETE', '/api/agents/ops-a1');
      expect(removed.body).toMatchObject({ id: 'ops-a1', alreadyRemoved: false });
      expect((await g.http('DELETE', '/api/agents/ops-a1')).body.alreadyRemoved).toBe(true);
    } finally {
      await agent.kill();
    }
  });

  it('the DLQ: list, show, replay and purge', async () => {
    const g = await gw.setup();
    await g.bus.js.publish(g.bus.names.subjects.taskSubmit, 'this is not json');
    let seq = 0;
    await eventually(async () => {
      const r = await g.http('GET', '/api/dlq', { token: g.tokens.read });
      expect(r.body.items.length).toBe(1);
      seq = r.body.items[0].seq;
    });
    const one = await g.http('GET', `/api/dlq/${seq}`, { token: g.tokens.read });
    expect(one.body).toMatchObject({ seq, payload: 'this is not json', reason: { code: 'invalid_payload' } });
    expect((await g.http('GET', '/api/dlq/999999', { token: g.tokens.read })).status).toBe(404);
    expect((await g.http('GET', '/api/dlq/zero', { token: g.tokens.read })).status).toBe(400);
    expect((await g.http('POST', `/api/dlq/${seq}/replay`, { token: g.tokens.read })).status).toBe(403);
    const replayed = await g.http('POST', `/api/dlq/${seq}/replay?keep=true`);
    expect(replayed.status).toBe(200);
    // Replayed, still invalid: dead-lettered again; the kept one is there too.
    await eventually(async () => expect((await g.http('GET', '/api/dlq')).body.items.length).toBe(2));
    expect((await g.http('DELETE', `/api/dlq/${seq}`)).body.purged).toBe(1);
    expect((await g.http('DELETE', '/api/dlq')).body.purged).toBe(1);
    expect((await g.http('GET', '/api/dlq')).body.items).toEqual([]);
  });

  it('schedules and the field', async () => {
    const g = await gw.setup();
    const spec = {
      name: 'nightly',
      cron: '0 3 * * *',
      timezone: 'UTC',
      action: { type: 'task', task: { title: 'nightly report' } },
    };
    const made = await g.http('POST', '/api/schedules', { body: { spec } });
    expect(made.status).toBe(201);
    expect(made.body.schedule.spec.name).toBe('nightly');
    expect((await g.http('POST', '/api/schedules', { body: { spec } })).status).toBe(409);
    expect(
      (await g.http('POST', '/api/schedules', { body: { spec: { ...spec, cron: 'not cron' } } })).status,
    ).toBe(400);
    expect((await g.http('GET', '/api/schedules', { token: g.tokens.read })).body.schedules).toHaveLength(1);
    expect((await g.http('POST', '/api/schedules/nightly/pause')).body.schedule.spec.paused).toBe(true);
    expect((await g.http('POST', '/api/schedules/nightly/resume')).body.schedule.spec.paused).toBe(false);
    const fired = await g.http('POST', '/api/schedules/nightly/trigger');
    expect(fired.body.taskId).toBeTruthy();
    expect((await g.http('GET', `/api/tasks/${fired.body.taskId}`)).body.task.title).toBe('nightly report');
    expect((await g.http('DELETE', '/api/schedules/nightly')).status).toBe(200);
    expect((await g.http('GET', '/api/schedules/nightly')).status).toBe(404);

    const emitted = await g.http('POST', '/api/pheromones', {
      token: g.tokens.submitter,
      body: { type: 'bug.found', payload: { file: 'a.ts' }, ttl: 600 },
    });
    expect(emitted.status).toBe(201);
    const p = emitted.body.pheromone;
    expect(p.source).toBe('http:submitter');
    const listed = await g.http('GET', '/api/pheromones?pattern=bug.*&claimed=false', {
      token: g.tokens.read,
    });
    expect(listed.body.pheromones.map((x: { id: string }) => x.id)).toEqual([p.id]);
    expect((await g.http('GET', '/api/pheromones?claimed=maybe')).status).toBe(400);
    const claim = await g.http('POST', `/api/pheromones/${p.id}/claim`, { token: g.tokens.submitter });
    expect(claim.body).toMatchObject({ claimed: true, pheromone: { claimedBy: 'http:submitter' } });
    const second = await g.http('POST', `/api/pheromones/${p.id}/claim`);
    expect(second.body.claimed).toBe(false);
    expect(
      (await g.http('POST', `/api/pheromones/${p.id}/release`, { token: g.tokens.submitter })).status,
    ).toBe(200);
    expect((await g.http('GET', '/api/pheromones/stats')).body.active).toBe(1);
    expect((await g.http('GET', `/api/pheromones/${p.id}`)).body.pheromone.claimedBy).toBeNull();
    expect((await g.http('DELETE', `/api/pheromones/${p.id}`)).status).toBe(200);
    expect((await g.http('GET', `/api/pheromones/${p.id}`)).status).toBe(404);
    const history = await g.http('GET', '/api/pheromones/history?pattern=bug.>');
    expect(history.body.events.map((e: { event: string }) => e.event)).toEqual([
      'emitted',
      'claimed',
      'released',
      'removed',
    ]);
  });

  it('dashboard state, health and readiness', async () => {
    const g = await gw.setup();
    await g.http('POST', '/api/tasks', { body: { title: 'on the board' } });
    const state = await g.http('GET', '/api/dashboard/state', { token: g.tokens.read });
    expect(state.status).toBe(200);
    expect(state.body.tasks.byStatus.queued).toBe(1);
    expect(state.body.recent[0].title).toBe('on the board');
    expect(state.body.cursor).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect((await g.http('GET', '/healthz', { token: null })).body).toEqual({ status: 'ok' });
    const ready = await g.http('GET', '/readyz', { token: null });
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toMatchObject({
      nats: { ok: true },
      jetstream: { ok: true },
      lease: { ok: true },
    });
  });

  it('serves the OpenAPI document of exactly the routes it serves', async () => {
    const g = await gw.setup();
    const doc = (await g.http('GET', '/api/openapi.json', { token: null })).body;
    expect(doc.openapi).toBe('3.1.0');
    // Valid against the OpenAPI 3.1 schema (the validator mutates what it checks: give it copies);
    // the same validator refuses a document with a broken operation.
    await SwaggerParser.validate(structuredClone(doc));
    const broken = structuredClone(doc);
    broken.paths['/api/tasks'].post.parameters = [{ name: 'limit' }];
    await expect(SwaggerParser.validate(broken)).rejects.toThrow();
    const ops = Object.entries(
      doc.paths as Record<string, Record<string, { responses: object; operationId: string }>>,
    ).flatMap(([path, methods]) =>
      Object.entries(methods).map(([m, op]) => ({ path, method: m.toUpperCase(), op })),
    );
    expect(ops.length).toBeGreaterThan(30);
    expect(new Set(ops.map((o) => o.op.operationId)).size).toBe(ops.length);
    const agent = await g.token('agent', { agentId: 'x1' });
    for (const { path, method, op } of ops) {
      // Every documented operation is served: without a token it is 401, never 404.
      const concrete = path.replace(/\{(\w+)\}/g, (_m, p: string) => (p === 'seq' ? '1' : 'x1'));
      const roles = (op as unknown as { 'x-roles': string[] })['x-roles'];
      if (roles.includes('anyone')) {
        expect((await g.http(method, concrete, { token: null })).status, `${method} ${path}`).toBe(200);
        continue;
      }
      expect(Object.keys(op.responses)).toContain('401');
      const r = await g.http(method, concrete, { token: null });
      expect([401, 429], `${method} ${path}`).toContain(r.status);
      // A role the document does not list is refused before anything of the request is read.
      if (!roles.includes('read'))
        expect(
          (await g.http(method, concrete, { token: g.tokens.read })).status,
          `read ${method} ${path}`,
        ).toBe(403);
      if (!roles.includes('agent'))
        expect(
          (await g.http(method, concrete, { token: agent.token })).status,
          `agent ${method} ${path}`,
        ).toBe(403);
    }
    expect(doc.paths['/api/tasks'].post.requestBody.content['application/json'].schema.required).toContain(
      'title',
    );
    expect(
      doc.paths['/api/tasks'].post.requestBody.content['application/json'].schema.required,
    ).not.toContain('v');
  });
});

describe('/metrics over HTTP', () => {
  it('is scraped with a read token and parses as the Prometheus text format', async () => {
    const g = await gw.setup();
    await g.http('POST', '/api/tasks', { body: { title: 'counted', queue: 'action', priority: 'urgent' } });
    expect((await g.http('GET', '/metrics', { token: null })).status).toBe(401);
    const r = await eventually(async () => {
      const res = await g.http('GET', '/metrics', { token: g.tokens.read });
      expect(res.status).toBe(200);
      expect(res.text).toMatch(/^agentcom_queue_depth\{queue="action",priority="urgent"\} 1$/m);
      return res;
    });
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const types = new Map<string, string>();
    for (const line of r.text.split('\n')) {
      const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (t) types.set(t[1]!, t[2]!);
      else if (line && !line.startsWith('#'))
        expect(line, 'a sample line').toMatch(
          /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+|NaN|[+-]Inf$/,
        );
    }
    expect(types.get('agentcom_queue_depth')).toBe('gauge');
    expect(types.get('agentcom_tasks_submitted_total')).toBe('counter');
    expect(types.get('agentcom_task_queued_to_assigned_seconds')).toBe('histogram');
  });
});

describe('hub control and runtime config over HTTP', () => {
  it('pauses and resumes intake; changes a timeout; refuses bad values', async () => {
    const g = await gw.setup();
    expect(
      (await g.http('POST', '/api/hub/pause', { token: g.tokens.read, body: { intake: true } })).status,
    ).toBe(403);
    const paused = await g.http('POST', '/api/hub/pause', { body: { intake: true, reason: 'upgrade' } });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({
      intake: 'paused',
      assignment: 'running',
      reason: 'upgrade',
      by: 'http:admin',
    });
    expect((await g.http('GET', '/api/hub', { token: g.tokens.read })).body.intake).toBe('paused');
    const refused = await g.http('POST', '/api/tasks', {
      token: g.tokens.submitter,
      body: { title: 'waits' },
    });
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('unavailable');
    expect((await g.http('POST', '/api/hub/resume')).body.intake).toBe('running');
    expect(
      (await g.http('POST', '/api/tasks', { token: g.tokens.submitter, body: { title: 'in' } })).status,
    ).toBe(201);

    const set = await g.http('PATCH', '/api/config', { body: { timeouts: { acceptTimeoutMs: '45s' } } });
    expect(set.status).toBe(200);
    expect(set.body.timeouts.acceptTimeoutMs).toMatchObject({ ms: 45_000, source: 'runtime' });
    const bad = await g.http('PATCH', '/api/config', { body: { timeouts: { acceptTimeoutMs: 5 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.path).toEqual(['body', 'timeouts', 'acceptTimeoutMs']);
    const unknown = await g.http('PATCH', '/api/config', { body: { timeouts: { nope: 1 } } });
    expect(unknown.status).toBe(400);
    expect(
      (await g.http('GET', '/api/config', { token: g.tokens.read })).body.timeouts.acceptTimeoutMs.ms,
    ).toBe(45_000);
  });
});
