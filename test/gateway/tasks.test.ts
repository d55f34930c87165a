/**
 * The gateway's task API and auth over real HTTP against a live hub: seed 002's routes, every
 * failure status (validation 400, 401, 403, 404, 409, 413, 415, 429), and an agent that speaks
 * HTTP only completing tasks with an agent token.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/gateway.js';

const gw = useGateway('gwtasks');

describe('task routes', () => {
  it('submits, gets, lists with filters, cancels, retries and deletes', async () => {
    const g = await gw.setup();
    const made = await g.http('POST', '/api/tasks', {
      token: g.tokens.submitter,
      body: { title: 'write the report', priority: 'high', queue: 'cognition' },
    });
    expect(made.status).toBe(201);
    const id = made.body.task.id as string;
    expect(made.body.task).toMatchObject({ status: 'queued', priority: 'high', queue: 'cognition' });
    // Idempotent with a key: the same task again.
    const k1 = await g.http('POST', '/api/tasks', {
      token: g.tokens.submitter,
      body: { title: 'k', idempotencyKey: 'same-1' },
    });
    const k2 = await g.http('POST', '/api/tasks', {
      token: g.tokens.submitter,
      body: { title: 'k', idempotencyKey: 'same-1' },
    });
    expect(k2.body.task.id).toBe(k1.body.task.id);

    const got = await g.http('GET', `/api/tasks/${id}`, { token: g.tokens.read });
    expect(got.status).toBe(200);
    expect(got.body.task.title).toBe('write the report');

    const high = await g.http('GET', '/api/tasks?priority=high&status=queued,assigned', {
      token: g.tokens.read,
    });
    expect(high.status).toBe(200);
    expect(high.body.tasks.map((t: { id: string }) => t.id)).toEqual([id]);
    const repeated = await g.http('GET', '/api/tasks?status=queued&status=done&queue=cognition', {
      token: g.tokens.read,
    });
    expect(repeated.body.total).toBe(1);

    const stats = await g.http('GET', '/api/tasks/stats', { token: g.tokens.read });
    expect(stats.body.byStatus.queued).toBeGreaterThanOrEqual(2);

    const cancelled = await g.http('POST', `/api/tasks/${id}/cancel`, { body: { reason: 'not needed' } });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.task.status).toBe('cancelled');
    // Cancelling again changes nothing and says so with the same record.
    const again = await g.http('POST', `/api/tasks/${id}/cancel`);
    expect(again.status).toBe(200);
    expect(again.body.task.status).toBe('cancelled');
    const retried = await g.http('POST', `/api/tasks/${id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.task.status).toBe('queued');
    const retryQueued = await g.http('POST', `/api/tasks/${id}/retry`);
    expect(retryQueued.status).toBe(409);
    expect(retryQueued.body.code).toBe('invalid_state');
    const deleted = await g.http('DELETE', `/api/tasks/${id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body.task.status).toBe('cancelled');
  });

  it("keeps each token's idempotency keys its own, and names the token as submitter", async () => {
    const g = await gw.setup();
    const alice = await g.token('submitter', { name: 'alice' });
    const bob = await g.token('submitter', { name: 'bob' });
    const a = await g.http('POST', '/api/tasks', {
      token: alice.token,
      body: { title: 'alice private', idempotencyKey: 'job-1', submittedBy: 'someone-else' },
    });
    const b = await g.http('POST', '/api/tasks', {
      token: bob.token,
      body: { title: 'bob work', idempotencyKey: 'job-1' },
    });
    expect(b.status).toBe(201);
    expect(b.body.task.id).not.toBe(a.body.task.id);
    expect(b.body.task.title).toBe('bob work');
    expect(a.body.task.submittedBy).toBe('http:alice');
    const again = await g.http('POST', '/api/tasks', {
      token: alice.token,
      body: { title: 'alice private', idempotencyKey: 'job-1' },
    });
    expect(again.body.task.id).toBe(a.body.task.id);
  });

  it('answers bad requests with the structured error and the right status', async () => {
    const g = await gw.setup();
    const noTitle = await g.http('POST', '/api/tasks', { body: { priority: 'high' } });
    expect(noTitle.status).toBe(400);
    expect(noTitle.body).toMatchObject({ code: 'invalid_payload', path: ['body', 'title'] });
    const badQuery = await g.http('GET', '/api/tasks?limit=0');
    expect(badQuery.status).toBe(400);
    expect(badQuery.body.path).toEqual(['query', 'limit']);
    const badStatus = await g.http('GET', '/api/tasks?status=nope');
    expect(badStatus.status).toBe(400);
    const badId = await g.http('GET', '/api/tasks/not.a%20task');
    expect(badId.status).toBe(400);
    expect(badId.body.path?.[0]).toBe('params');
    const unknown = await g.http('GET', '/api/tasks/01JZZZZZZZZZZZZZZZZZZZZZZZ');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('not_found');
    const notJson = await g.http('POST', '/api/tasks', {
      raw: '{"title": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.status).toBe(400);
    expect(notJson.body.code).toBe('invalid_payload');
    const text = await g.http('POST', '/api/tasks', {
      raw: 'title=x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    expect(text.body.code).toBe('invalid_payload');
    const huge = await g.http('POST', '/api/tasks', {
      body: { title: 'big', description: 'x'.repeat(1_100_000) },
    });
    expect(huge.status).toBe(413);
    expect(huge.body.code).toBe('payload_too_large');
    const badUrl = await g.http('GET', '/api/tasks/%E0%A4%A');
    expect(badUrl.status).toBe(400);
    expect(badUrl.body.code).toBe('invalid_payload');
    const longId = await g.http('GET', `/api/tasks/${'x'.repeat(300)}`);
    expect(longId.status).toBe(400);
    expect(longId.body.code).toBe('invalid_payload');
    const deep = await g.http('POST', '/api/tasks', {
      raw: `{"title":"deep","metadata":{"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(deep.status).toBe(400);
    expect(deep.body.code).toBe('invalid_payload');
    const head = await g.http('HEAD', '/api/events');
    expect(head.status).toBe(404);
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(new URL(g.url).port), '127.0.0.1', () =>
        sock.write('GARBAGE / HTTP/9\r\n\r\n'),
      );
      let got = '';
      sock.on('data', (d) => {
        got += d;
      });
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'invalid_payload' });
    const noRoute = await g.http('GET', '/api/nothing-here');
    expect(noRoute.status).toBe(404);
    expect(noRoute.body.code).toBe('not_found');
    // Nothing of the above reached the queue.
    const all = await g.http('GET', '/api/tasks');
    expect(all.body.total).toBe(0);
  });

  it('refuses missing, unknown, revoked and expired tokens (401) and the wrong role (403)', async () => {
    const g = await gw.setup();
    const none = await g.http('GET', '/api/tasks', { token: null });
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('unauthorized');
    const garbage = await g.http('GET', '/api/tasks', { token: 'agc_nope' });
    expect(garbage.status).toBe(401);
    const forged = `${g.tokens.read.slice(0, -4)}AAAA`;
    expect((await g.http('GET', '/api/tasks', { token: forged })).status).toBe(401);
    const readOnly = await g.http('POST', '/api/tasks', { token: g.tokens.read, body: { title: 'x' } });
    expect(readOnly.status).toBe(403);
    expect(readOnly.body.code).toBe('forbidden');
    const submitterCancel = await g.http('POST', '/api/tasks/01JZZZZZZZZZZZZZZZZZZZZZZZ/cancel', {
      token: g.tokens.submitter,
    });
    expect(submitterCancel.status).toBe(403);

    const t = await g.token('read');
    expect((await g.http('GET', '/api/tasks', { token: t.token })).status).toBe(200);
    expect((await g.http('DELETE', `/api/tokens/${t.id}`)).status).toBe(200);
    await eventually(
      async () => expect((await g.http('GET', '/api/tasks', { token: t.token })).status).toBe(401),
      {
        timeout: 5_000,
      },
    );
    const listed = await g.http('GET', '/api/tokens');
    expect(JSON.stringify(listed.body)).not.toContain('hash');
    expect(listed.body.tokens.map((x: { id: string }) => x.id)).not.toContain(t.id);

    const short = await g.token('read', { ttlMs: 1_000 });
    expect((await g.http('GET', '/api/tasks', { token: short.token })).status).toBe(200);
    await eventually(async () => {
      const r = await g.http('GET', '/api/tasks', { token: short.token });
      expect(r.status).toBe(401);
      expect(r.body.message).toMatch(/expired/);
    });
  });

  it('limits each token to its rate (429 with Retry-After) without slowing another token', async () => {
    const g = await gw.setup();
    const slow = await g.token('read', { rate: { perSecond: 0.5, burst: 2 } });
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await g.http('GET', '/api/tasks', { token: slow.token })).status);
    expect(codes.slice(0, 2)).toEqual([200, 200]);
    expect(codes.slice(2)).toEqual([429, 429]);
    const limited = await g.http('GET', '/api/tasks', { token: slow.token });
    expect(limited.body.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another token is served as if nothing happened.
    for (let i = 0; i < 5; i++)
      expect((await g.http('GET', '/api/tasks', { token: g.tokens.read })).status).toBe(200);
  });
});
