/**
 * The hub's rules end to end: fencing of stale reports, accept timeouts, retries and dead letters,
 * deadlines, delayed tasks, capability and queue routing, the request/reply API, bad input, and the
 * retention of finished tasks.
 */
import { describe, expect, it } from 'vitest';
import { publish, publishRaw } from '../../src/bus/publish.js';
import { request } from '../../src/bus/service.js';
import { ReportSchema } from '../../src/protocol/agent.js';
import {
  AgentListReplySchema,
  TaskListReplySchema,
  TaskReplySchema,
  TaskStatsReplySchema,
} from '../../src/protocol/api.js';
import { DlqListResponseSchema } from '../../src/protocol/dlq.js';
import { AgentComError } from '../../src/protocol/errors.js';
import { eventually } from '../support/eventually.js';
import { type TestClient, timesEntered, useHubHarness } from '../support/hub.js';
import type { SimAgentConfig } from '../support/sim-agents.js';

describe('hub rules', () => {
  const h = useHubHarness('r');
  let c: TestClient;
  const setup = async (...agentConfigs: Omit<SimAgentConfig, 'url' | 'prefix'>[]) => {
    c = await h.setup(agentConfigs);
  };
  const api = <O>(endpoint: string, input: unknown, schema: import('zod').ZodType<O>) =>
    request(c.bus, endpoint, input, schema, { timeoutMs: 10_000 });

  it('an unaccepted assignment is reclaimed after the accept timeout; the late, stale report is refused', async () => {
    await setup({ agentId: 'silent', capabilities: ['x'], mode: 'silent' });
    const id = await c.submit({ title: 'needs x', capabilities: ['x'], maxRetries: 20 });
    const first = await c.settle([id], ['assigned']);
    expect(first[0]!.assignee).toBe('silent');
    expect(first[0]!.generation).toBe(1);
    // Not accepted within 3 s: reclaimed (generation raised) and requeued; with nobody else able
    // to take it, it may go straight back to the same agent.
    const back = await eventually(
      async () => {
        const t = (await c.task(id))!;
        if (t.generation < 2) throw new Error(`generation ${t.generation}`);
        return t;
      },
      { timeout: 15_000 },
    );
    expect(back.history.some((h) => h.to === 'queued' && h.reason?.includes('accept_timeout'))).toBe(true);
    // The silent agent finally reports completion for generation 1: refused, never applied.
    await publish(c.bus, c.bus.names.subjects.agentReport('silent'), ReportSchema, {
      v: 1,
      type: 'completed',
      taskId: id as never,
      generation: 1,
      at: Date.now(),
      result: 'late',
    });
    await h.addAgent({ agentId: 'worker', capabilities: ['x'] });
    const [done] = await c.settle([id]);
    expect(done!.assignee).toBe('worker');
    expect(done!.result).not.toBe('late');
    expect(timesEntered(done!, 'done')).toBe(1);
  });

  it('a task that keeps failing is retried with backoff, then dead-lettered; retry revives it', async () => {
    await setup({ agentId: 'flaky', failTimes: 3 });
    const id = await c.submit({ title: 'fails', maxRetries: 2, backoff: { baseMs: 50, maxMs: 200 } });
    const [dead] = await c.settle([id], ['dead'], 20_000);
    expect(dead!.retryCount).toBe(2);
    expect(dead!.error?.message).toContain('attempt 3 fails');
    expect(h.agents[0]!.events.filter((e) => e.event === 'failed' && e.taskId === id)).toHaveLength(3);
    // Manual retry through the API: a fresh budget; the 4th attempt succeeds.
    const r = await api('task.retry', { v: 1, id }, TaskReplySchema);
    expect(r.task.status).toBe('queued');
    const [done] = await c.settle([id]);
    expect(done!.retryCount).toBe(0);
  });

  it('a task past its completeBy deadline fails with timeout and its agent is told to stop', async () => {
    await setup({ agentId: 'slow', workMs: 10_000 });
    const id = await c.submit({ title: 'too slow', completeBy: Date.now() + 800 });
    const [failed] = await c.settle([id], ['failed'], 15_000);
    expect(failed!.error?.code).toBe('timeout');
    await h.agents[0]!.waitFor('aborted', (ev) => ev.some((e) => e.event === 'aborted' && e.taskId === id));
  });

  it('a delayed task is not assigned before notBefore', async () => {
    await setup({ agentId: 'a1' });
    const notBefore = Date.now() + 1_000;
    const id = await c.submit({ title: 'later', notBefore });
    const [done] = await c.settle([id]);
    expect(done!.assignedAt!).toBeGreaterThanOrEqual(notBefore);
  });

  it('a delay in human units counts from when the hub takes the submission in, over the bus and the API', async () => {
    await setup({ agentId: 'a1' });
    const before = Date.now();
    const viaBus = await c.submit({ title: 'in a second', delay: '1s' });
    const viaApi = (await api('task.submit', { v: 1, title: 'in 1.5 s', delay: 1_500 }, TaskReplySchema))
      .task;
    const after = Date.now();
    // The later of notBefore and the delay.
    const both = (
      await api(
        'task.submit',
        { v: 1, title: 'both', notBefore: after + 5_000, delay: '1s' },
        TaskReplySchema,
      )
    ).task;
    expect(both.notBefore).toBe(after + 5_000);
    expect(viaApi.notBefore).toBeGreaterThanOrEqual(before + 1_500);
    expect(viaApi.notBefore).toBeLessThanOrEqual(Date.now() + 1_500);
    const [bus, apiTask] = await c.settle([viaBus, viaApi.id]);
    expect(bus!.notBefore).toBeGreaterThanOrEqual(before + 1_000);
    expect(bus!.notBefore).toBeLessThanOrEqual(after + 1_000 + 1_000);
    expect(bus!.assignedAt!).toBeGreaterThanOrEqual(bus!.notBefore!);
    expect(apiTask!.assignedAt!).toBeGreaterThanOrEqual(apiTask!.notBefore!);
    // Not a duration: refused at the boundary with the offending field named.
    const bad = await api('task.submit', { v: 1, title: 'x', delay: '4 hours' }, TaskReplySchema).catch(
      (e) => e,
    );
    expect(bad).toMatchObject({ code: 'invalid_payload', path: ['delay'] });
  });

  it('routes by capability subset and by queue; work nobody can do waits', async () => {
    await setup(
      { agentId: 'gpu', capabilities: ['gpu', 'python'], queues: ['cognition'] },
      { agentId: 'plain', capabilities: [], queues: ['default', 'social'] },
    );
    const gpuTask = await c.submit({ title: 'train', capabilities: ['gpu'], queue: 'cognition' as never });
    const social = await c.submit({ title: 'gossip', queue: 'social' as never });
    const nobody = await c.submit({ title: 'gpu in default', capabilities: ['gpu'] });
    const [a, b] = await c.settle([gpuTask, social]);
    expect(a!.assignee).toBe('gpu');
    expect(b!.assignee).toBe('plain');
    expect((await c.task(nobody))!.status).toBe('queued');
  });

  it('serves the request/reply API: idempotent submit, get, list, stats, cancel, agent list, typed errors', async () => {
    await setup({ agentId: 'a1', capabilities: ['y'] });
    const sub = { v: 1, title: 'via api', idempotencyKey: 'key-1', capabilities: ['never-available'] };
    const one = await api('task.submit', sub, TaskReplySchema);
    const two = await api('task.submit', sub, TaskReplySchema);
    expect(two.task.id).toBe(one.task.id);
    const got = await api('task.get', { v: 1, id: one.task.id }, TaskReplySchema);
    expect(got.task.title).toBe('via api');
    const list = await api('task.list', { v: 1, status: ['queued'] }, TaskListReplySchema);
    expect(list.tasks.map((t) => t.id)).toContain(one.task.id);
    const stats = await api('task.stats', { v: 1 }, TaskStatsReplySchema);
    expect(stats.byStatus.queued).toBeGreaterThanOrEqual(1);
    expect(stats.scheduler?.leader).toBe(true);
    const cancelled = await api('task.cancel', { v: 1, id: one.task.id, reason: 'test' }, TaskReplySchema);
    expect(cancelled.task.status).toBe('cancelled');
    const agentsList = await eventually(async () => {
      const l = await api('agent.list', { v: 1 }, AgentListReplySchema);
      if (!l.agents[0]?.online) throw new Error('agent not online yet');
      return l;
    });
    expect(agentsList.agents.map((a) => a.id)).toEqual(['a1']);
    expect(agentsList.agents[0]!.hello.capabilities).toEqual(['y']);
    // Typed errors: unknown task, invalid input (with the offending path).
    await expect(api('task.get', { v: 1, id: 'nope' }, TaskReplySchema)).rejects.toMatchObject({
      code: 'not_found',
    });
    const bad = await api('task.submit', { v: 1, title: '' }, TaskReplySchema).catch((e: AgentComError) => e);
    expect(bad).toBeInstanceOf(AgentComError);
    expect((bad as AgentComError).code).toBe('invalid_payload');
    expect((bad as AgentComError).path).toEqual(['title']);
    await expect(api('task.submit', { v: 2, title: 'x' }, TaskReplySchema)).rejects.toMatchObject({
      code: 'unsupported_version',
    });
  });

  it('keeps at most AGENTCOM_RETENTION_COUNT finished tasks, the oldest go first; a removed task is unknown', async () => {
    c = await h.setup([{ agentId: 'a1' }], { retentionCount: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await c.submit({ title: `t${i}`, idempotencyKey: `retained-${i}` });
      await c.settle([id]);
      ids.push(id);
    }
    await eventually(async () => {
      const present = await Promise.all(ids.map(async (id) => (await c.task(id)) !== null));
      expect(present).toEqual([false, false, false, true, true]);
    });
    // The hub forgets a task once the server has answered its removal: a moment after the above.
    await eventually(async () =>
      expect((await api('task.stats', { v: 1 }, TaskStatsReplySchema)).byStatus.done).toBe(2),
    );
    await expect(api('task.get', { v: 1, id: ids[0] }, TaskReplySchema)).rejects.toMatchObject({
      code: 'not_found',
    });
    // A late report about a removed task is refused (not found) and changes nothing.
    await publish(c.bus, c.bus.names.subjects.agentReport('a1'), ReportSchema, {
      v: 1,
      type: 'completed',
      taskId: ids[0] as never,
      generation: 1,
      at: Date.now(),
      result: 'late',
    });
    // Handled (acked, so gone from the work-queue stream) before the key is used again.
    await eventually(async () =>
      expect((await c.bus.jsm.streams.info(c.bus.names.streams.reports)).state.messages).toBe(0),
    );
    // Its idempotency key makes a new task once the old one is gone.
    const again = await api(
      'task.submit',
      { v: 1, title: 'again', idempotencyKey: 'retained-0' },
      TaskReplySchema,
    );
    expect(again.task.id).toBe(ids[0]);
    expect(again.task.title).toBe('again');
    const [done] = await c.settle([ids[0]!]);
    expect(done!.result).not.toBe('late');
    expect(timesEntered(done!, 'done')).toBe(1);
  });

  it('a malformed submission is dead-lettered with its reason, and the intake keeps going', async () => {
    c = await h.setup([{ agentId: 'a1' }], {
      dlqMaxAgeMs: 3_600_000,
      dlqMaxMsgs: 500,
      dlqMaxBytes: 1_000_000,
    });
    // The hub bounds the DLQ as configured.
    const dlqConfig = (await c.bus.jsm.streams.info(c.bus.names.streams.dlq)).config;
    expect([dlqConfig.max_age, dlqConfig.max_msgs, dlqConfig.max_bytes, dlqConfig.discard]).toEqual([
      3_600_000 * 1_000_000,
      500,
      1_000_000,
      'old',
    ]);
    await publishRaw(c.bus, c.bus.names.subjects.taskSubmit, new TextEncoder().encode('{not json'), {
      msgId: 'bad-1',
    });
    await publishRaw(c.bus, c.bus.names.subjects.taskSubmit, new TextEncoder().encode('{"v":1}'), {
      msgId: 'bad-2',
    });
    const ok = await c.submit({ title: 'fine' });
    await c.settle([ok]);
    const dlq = await eventually(async () => {
      const l = await api('dlq.list', { v: 1 }, DlqListResponseSchema);
      if (l.items.length < 2) throw new Error(`${l.items.length} dead letters`);
      return l;
    });
    const reasons = dlq.items.map((r) => r.reason.code).sort();
    expect(reasons).toEqual(['invalid_payload', 'invalid_payload']);
    expect(dlq.items.map((r) => r.msg_id).sort()).toEqual(['bad-1', 'bad-2']);
  });
});
