/**
 * `agentcom task submit|list|get|cancel|retry|watch` as a user runs it: the real command in a child
 * process against a real hub (in this process) on a test nats-server. One hub for the file; each
 * test uses its own queue, so tests do not see each other's tasks. An in-process agent serves
 * `workq` (titles starting with "fail" fail for good; others complete).
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import type { TaskRecord } from '../../src/protocol/task.js';
import { runCli } from '../support/cli.js';
import { useCliHub } from '../support/cli-hub.js';
import { eventually, waitUntil } from '../support/eventually.js';

const h = useCliHub('clitask');
let worker: AgentClient;

const connectAgent = (agentId: string, queues: string[]) =>
  AgentClient.connect({
    connection: { servers: h.url, prefix: h.prefix },
    agentId,
    hello: { queues },
    logger: pino({ level: 'silent' }),
    helloTimeoutMs: 10_000,
  });

beforeAll(async () => {
  worker = await connectAgent('cli-worker', ['workq']);
  await worker.start(async (ctx) =>
    ctx.task.title.startsWith('fail')
      ? { type: 'failed', error: { code: 'boom', message: 'it broke' }, retryable: false }
      : { type: 'completed', result: { echoed: ctx.task.title }, tokensUsed: 3 },
  );
});

afterAll(async () => {
  await worker?.stop();
});

const cli = h.cli;
const UNREACHABLE = ['--nats-url', 'nats://127.0.0.1:1'];

/** A task on a queue nobody serves: it stays queued. */
const parked = (title: string, queue = 'parkq') => h.client.submit({ title, queue: queue as never });

async function record(id: string, statuses: string[]): Promise<TaskRecord> {
  return (await h.client.settle([id], statuses, 15_000))[0]!;
}

describe('task submit', () => {
  it('prints only the id on stdout and stores every flag; --json gives the record, idempotently', async () => {
    const before = Date.now();
    const r = await cli(
      'task',
      'submit',
      'write the docs',
      '--description',
      'all of them',
      '--priority',
      'high',
      '--queue',
      'submitq',
      '--capabilities',
      'docs, typescript',
      '--max-retries',
      '5',
      '--complete-by',
      '+2h',
      '--not-before',
      '2020-01-01T00:00:00Z',
      '--idempotency-key',
      'docs-1',
      '--metadata',
      '{"ticket":"ABC-1"}',
    );
    expect(r.stderr).toContain('submitted: high priority, queue submitq');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[A-Za-z0-9_-]+\n$/);
    const id = r.stdout.trim();
    const t = await record(id, ['queued']);
    expect(t).toMatchObject({
      title: 'write the docs',
      description: 'all of them',
      priority: 'high',
      queue: 'submitq',
      capabilities: ['docs', 'typescript'],
      maxRetries: 5,
      notBefore: Date.parse('2020-01-01T00:00:00Z'),
      idempotencyKey: 'docs-1',
      metadata: { ticket: 'ABC-1' },
    });
    expect(t.completeBy).toBeGreaterThanOrEqual(before + 2 * 3_600_000);
    expect(t.completeBy).toBeLessThan(Date.now() + 2 * 3_600_000);

    const again = await cli('task', 'submit', 'write the docs', '--idempotency-key', 'docs-1', '--json');
    expect(again.code).toBe(0);
    expect(again.json<{ v: number; task: TaskRecord }>()).toMatchObject({
      v: 1,
      task: { id, priority: 'high' },
    });
  });

  it('--wait follows the task to the end: the id alone on stdout, transitions on stderr', async () => {
    const r = await cli('task', 'submit', 'quick one', '--queue', 'workq', '--wait');
    expect(r.stderr).toMatch(/-> done/);
    expect(r.stderr).toContain('result {"echoed":"quick one"}');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[A-Za-z0-9_-]+\n$/);
    expect((await h.client.task(r.stdout.trim()))?.status).toBe('done');
  });

  it('refuses bad flags with exit 2 before connecting, naming the flag', async () => {
    const [priority, deadline, metadata, title] = await Promise.all([
      runCli(['task', 'submit', 'x', '--priority', 'asap', ...UNREACHABLE]),
      runCli(['task', 'submit', 'x', '--complete-by', 'tomorrow', ...UNREACHABLE]),
      runCli(['task', 'submit', 'x', '--metadata', '[1]', ...UNREACHABLE]),
      runCli(['task', 'submit', '', ...UNREACHABLE]),
    ]);
    expect(priority.stderr).toContain('--priority must be one of urgent, high, normal, low, got asap');
    expect(priority.code).toBe(2);
    expect(deadline.stderr).toContain('--complete-by must be an ISO 8601 time');
    expect(deadline.code).toBe(2);
    expect(metadata.stderr).toContain('--metadata must be a JSON object');
    expect(metadata.code).toBe(2);
    expect(title.stderr).toContain('<title>');
    expect(title.code).toBe(2);
  });

  it('exits 69 with a hint when NATS is unreachable, or when no hub answers on the prefix', async () => {
    const [noNats, noHub] = await Promise.all([
      runCli(['task', 'submit', 'x', ...UNREACHABLE]),
      runCli(['task', 'submit', 'x', '--nats-url', h.url, '--prefix', 'nohub', '--timeout', '2000']),
    ]);
    expect(noNats.stderr).toMatch(/cannot reach NATS at nats:\/\/127\.0\.0\.1:1 .*is the hub running\?/);
    expect(noNats.code).toBe(69);
    expect(noHub.stderr).toContain('no hub answers on NATS at');
    expect(noHub.stderr).toContain('prefix nohub');
    expect(noHub.code).toBe(69);
  });
});

describe('task list', () => {
  it('prints a table, pages with --limit, and fetches every page with --all', async () => {
    const ids = [];
    for (const [i, priority] of (['low', 'urgent', 'normal'] as const).entries())
      ids.push(await h.client.submit({ title: `listed ${i}`, queue: 'listq' as never, priority }));
    await h.client.settle(ids, ['queued']);
    const [table, page, all] = await Promise.all([
      cli('task', 'list', '--queue', 'listq'),
      cli('task', 'list', '--queue', 'listq', '--limit', '2', '--json'),
      cli('task', 'list', '--queue', 'listq', '--limit', '2', '--all', '--json'),
    ]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+PRIORITY\s+QUEUE\s+ASSIGNEE\s+AGE\s+TITLE$/);
    // Newest first.
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([...ids].reverse());
    expect(lines[1]).toMatch(/queued\s+normal\s+listq\s+-\s+\d+s\s+listed 2$/);

    type Page = { tasks: TaskRecord[]; total: number; nextCursor: string | null };
    expect(page.code).toBe(0);
    expect(page.json<Page>().tasks).toHaveLength(2);
    expect(page.json<Page>().total).toBe(3);
    expect(page.json<Page>().nextCursor).not.toBeNull();
    expect(page.stderr).toBe('');
    expect(all.code).toBe(0);
    expect(
      all
        .json<Page>()
        .tasks.map((t) => t.id)
        .sort(),
    ).toEqual([...ids].sort());
    expect(all.json<Page>().nextCursor).toBeNull();
  });

  it('refuses an unknown status or a bad limit with exit 2', async () => {
    const [status, limit] = await Promise.all([
      cli('task', 'list', '--status', 'queued,sleeping'),
      cli('task', 'list', '--limit', '0'),
    ]);
    expect(status.stderr).toContain('--status: unknown status "sleeping"');
    expect(status.code).toBe(2);
    expect(limit.stderr).toContain('--limit must be an integer from 1 to 1000');
    expect(limit.code).toBe(2);
  });
});

describe('task get', () => {
  it('shows the record with its history; --json gives the API reply; an unknown id exits 3', async () => {
    const id = await parked('inspect me');
    await record(id, ['queued']);
    const [text, json, unknown, bad] = await Promise.all([
      cli('task', 'get', id),
      cli('task', 'get', id, '--json'),
      cli('task', 'get', 'tnosuchtask'),
      cli('task', 'get', 'not.an.id'),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^id\\s+${id}$`, 'm'));
    expect(text.stdout).toMatch(/^title\s+inspect me$/m);
    expect(text.stdout).toMatch(/^status\s+queued$/m);
    expect(text.stdout).toMatch(/^history:\n {2}\d\d:\d\d:\d\d\.\d{3} {2}submitted \(queued\) {2}gen 0/m);
    expect(json.json()).toMatchObject({ v: 1, task: { id, status: 'queued', queue: 'parkq' } });
    expect(unknown.stderr).toBe('agentcom task get: task tnosuchtask not found\n');
    expect(unknown.code).toBe(3);
    expect(bad.stderr).toContain('<id> is not a task id');
    expect(bad.code).toBe(2);
  });
});

describe('task cancel and retry', () => {
  it('cancels with a reason, retries the cancelled task, and refuses both in the wrong state (exit 4)', async () => {
    const id = await parked('cancel me');
    await record(id, ['queued']);
    const cancelled = await cli('task', 'cancel', id, '--reason', 'not needed');
    expect(cancelled.stdout).toBe(`cancelled ${id}\n`);
    expect(cancelled.code).toBe(0);
    const t = await record(id, ['cancelled']);
    expect(t.history.at(-1)).toMatchObject({ to: 'cancelled', reason: 'not needed' });

    const retried = await cli('task', 'retry', id);
    expect(retried.stdout).toContain(`requeued ${id} (queued`);
    expect(retried.code).toBe(0);
    await record(id, ['queued']);

    const done = await h.client.submit({ title: 'finish me', queue: 'workq' as never });
    await record(done, ['done']);
    const [cancelDone, retryQueued, cancelUnknown] = await Promise.all([
      cli('task', 'cancel', done),
      cli('task', 'retry', id),
      cli('task', 'cancel', 'tnosuchtask'),
    ]);
    expect(cancelDone.stderr).toMatch(/^agentcom task cancel: cannot cancel task \S+ in status done/);
    expect(cancelDone.code).toBe(4);
    expect(retryQueued.stderr).toContain('in status queued');
    expect(retryQueued.code).toBe(4);
    expect(cancelUnknown.code).toBe(3);
  });
});

describe('task watch', () => {
  it('prints each transition and progress as they happen, and exits 0 when the task is done', async () => {
    const id = await parked('watch me', 'watchq');
    await record(id, ['queued']);
    const watching = cli('task', 'watch', id);
    // The watch is a consumer on the tasks bucket's stream: start the work only once it exists,
    // so the transitions below are seen live rather than read back from the history.
    const kvStream = `KV_${h.client.bus.names.buckets.tasks}`;
    await waitUntil(async () => {
      for await (const c of h.client.bus.jsm.consumers.list(kvStream))
        if (c.config.filter_subject?.endsWith(`.${id}`)) return true;
      return false;
    }, 'the watch consumer');
    const agent = await connectAgent('cli-watch-agent', ['watchq']);
    try {
      await agent.start(async (ctx) => {
        await ctx.progress({ pct: 40, message: 'halfway there' });
        await eventually(async () => {
          if (!(await h.client.task(id))?.progress) throw new Error('progress not stored yet');
        });
        return { type: 'completed', result: { ok: true } };
      });
      const r = await watching;
      expect(r.stderr).toContain(`watching ${id}: watch me`);
      expect(r.code).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/submitted \(queued\) {2}gen 0/);
      expect(r.stdout).toMatch(/queued -> assigned {2}gen 1 {2}by hub/);
      expect(r.stdout).toMatch(/progress 40% halfway there/);
      expect(r.stdout).toMatch(/working -> done {2}gen 1 {2}by cli-watch-agent/);
      expect(lines.at(-1)).toMatch(/^done after \S+ by cli-watch-agent; result \{"ok":true\}$/);
      expect(r.stdout.indexOf('progress 40%')).toBeLessThan(r.stdout.indexOf('-> done'));
    } finally {
      await agent.stop();
    }
  });

  it('exits 1 for a failed task, 4 for a cancelled one, and 1 when --timeout-after passes first', async () => {
    const failing = await h.client.submit({ title: 'fail for good', queue: 'workq' as never });
    const cancelled = await parked('cancelled before watching');
    const waiting = await parked('never served');
    await record(failing, ['failed']);
    await record(waiting, ['queued']);
    await h.api.cancel(cancelled);
    const [failed, wasCancelled, timedOut, badDuration] = await Promise.all([
      cli('task', 'watch', failing),
      cli('task', 'watch', cancelled, '--json'),
      cli('task', 'watch', waiting, '--timeout-after', '500ms'),
      cli('task', 'watch', waiting, '--timeout-after', '10'),
    ]);
    expect(failed.stdout).toMatch(/failed after \S+: boom: it broke\n$/);
    expect(failed.code).toBe(1);
    expect(wasCancelled.json()).toMatchObject({ v: 1, task: { id: cancelled, status: 'cancelled' } });
    expect(wasCancelled.code).toBe(4);
    expect(timedOut.stderr).toContain(`gave up after 500ms: task ${waiting} is still queued`);
    expect(timedOut.code).toBe(1);
    expect(badDuration.stderr).toContain('--timeout-after must be a duration like 30s');
    expect(badDuration.code).toBe(2);
  });

  it('exits 3 for an unknown task and 69 when the hub is unreachable', async () => {
    const [unknown, unreachable] = await Promise.all([
      cli('task', 'watch', 'tnosuchtask'),
      runCli(['task', 'watch', 'tnosuchtask', ...UNREACHABLE]),
    ]);
    expect(unknown.stderr).toContain('task tnosuchtask not found');
    expect(unknown.code).toBe(3);
    expect(unreachable.stderr).toContain('is the hub running?');
    expect(unreachable.code).toBe(69);
  });
});
