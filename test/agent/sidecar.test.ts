/**
 * The sidecar as a real process against a real hub and nats-server: it relays assignments to a wake
 * command and results back, keeps what it holds across its own SIGKILL (queue.json) and across a
 * hub and nats-server restart, refuses bad result files (moved to rejected/ with the reason),
 * follows cancels, and retries a failing wake command.
 */
import { mkdtemp, readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sidecarPaths } from '../../src/agent/sidecar/files.js';
import { LocalQueueSchema } from '../../src/agent/sidecar/local-queue.js';
import type { SidecarConfigInput } from '../../src/agent/sidecar-config.js';
import { connectBus } from '../../src/bus/connection.js';
import { request } from '../../src/bus/service.js';
import type { HubConfig } from '../../src/hub/config.js';
import type { HubHandle } from '../../src/hub/main.js';
import { TaskReplySchema } from '../../src/protocol/api.js';
import { runCli } from '../support/cli.js';
import { eventually, waitUntil } from '../support/eventually.js';
import { startTestHub, type TestClient, testClient, timesEntered } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';
import { type SidecarProcess, sidecarProcess } from '../support/sidecar-process.js';
import { spawnSimAgent } from '../support/sim-agents.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

// Sidecar processes start through tsx and some tests restart them: deadlines for a loaded machine.
describe('sidecar', { timeout: 90_000 }, () => {
  const nats = useNatsServer();
  let prefix: string;
  let dir: string;
  let hub: HubHandle | undefined;
  let client: TestClient | undefined;
  let sidecar: SidecarProcess | undefined;
  const agentId = 'side-1';

  beforeEach(async () => {
    prefix = uniqueName('sc').replace(/_/g, '-').toLowerCase();
    dir = await mkdtemp(join(tmpdir(), 'agentcom-sidecar-'));
  });
  afterEach(async () => {
    await sidecar?.kill();
    await client?.close().catch(() => {});
    await hub?.stop();
    sidecar = undefined;
    client = undefined;
    hub = undefined;
    // A wake command the killed sidecar started may still be writing in `dir` (ENOTEMPTY once
    // on CI): rm tries again.
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  });

  const setup = async (
    opts: { hub?: Partial<HubConfig>; wake?: string[] | null; slots?: number; wakeMaxFailures?: number } = {},
  ) => {
    hub = await startTestHub(nats.url, prefix, opts.hub);
    client = await testClient(nats.url, prefix);
    const config: SidecarConfigInput = {
      v: 1,
      agentId,
      nats: { servers: nats.url, prefix },
      hello: { capabilities: ['code'], slots: opts.slots ?? 2 },
      workDir: 'work',
      ...(opts.wake === null
        ? {}
        : {
            wake: {
              command: opts.wake ?? [process.execPath, fixture('wake-complete.mjs')],
              ...(opts.wakeMaxFailures ? { maxFailures: opts.wakeMaxFailures } : {}),
            },
          }),
    };
    const file = join(dir, 'sidecar.json');
    await writeFile(file, JSON.stringify(config));
    sidecar = sidecarProcess(file);
    await sidecar.start();
    return { paths: sidecarPaths(join(dir, 'work')), file };
  };

  /** The reasons of the result files moved to rejected/ (temp files of atomic writes skipped). */
  const rejectedReasons = async (paths: ReturnType<typeof sidecarPaths>) => {
    const names = (await readdir(paths.rejectedDir)).filter(
      (f) => !f.startsWith('.') && f.endsWith('.reason.txt'),
    );
    return Promise.all(names.map((f) => readFile(join(paths.rejectedDir, f), 'utf8')));
  };

  const queueFile = async (paths: ReturnType<typeof sidecarPaths>) =>
    LocalQueueSchema.parse(JSON.parse(await readFile(paths.queueFile, 'utf8')));

  it('relays assignments to the wake command and the results back to the hub', async () => {
    const { paths } = await setup();
    const ids = await Promise.all(
      ['one', 'two', 'three'].map((t) => client!.submit({ title: t, capabilities: ['code'] })),
    );
    const done = await client!.settle(ids);
    for (const t of done) {
      expect(t.assignee).toBe(agentId);
      expect(t.result).toEqual({ title: t.title, by: agentId });
      expect(t.tokensUsed).toBe(7);
      expect(timesEntered(t, 'done')).toBe(1);
    }
    // queue.json forgets a task just before its task file is removed: wait for both.
    await waitUntil(
      async () => (await queueFile(paths)).tasks.length === 0 && (await readdir(paths.tasksDir)).length === 0,
      'queue.json and tasks/ emptied',
    );
  });

  it('survives its own SIGKILL: what it held is reported as recovering and finished after the restart', async () => {
    // Presence tolerates the restart (no reclaim), so the hub keeps both assignments with the sidecar.
    const { paths } = await setup({ hub: { missedBeats: 60 } });
    const a = await client!.submit({ title: 'hold-a', capabilities: ['code'] });
    const b = await client!.submit({ title: 'hold-b', capabilities: ['code'] });
    await client!.settle([a, b], ['working']);
    // The hub can apply an `accepted` report before the sidecar stores the acceptance in queue.json
    // (it saves after the report is acknowledged): wait for the file, so that both are `recovering`.
    await waitUntil(
      async () => (await queueFile(paths)).tasks.filter((t) => t.state === 'accepted').length === 2,
      'both acceptances stored in queue.json',
    );
    await sidecar!.kill();

    // The assignments were on disk before they were acked.
    const held = await queueFile(paths);
    expect(held.tasks.map((t) => t.taskId).sort()).toEqual([a, b].sort());
    expect(held.tasks.every((t) => t.state === 'accepted')).toBe(true);

    // The agent finishes task a while its sidecar is down.
    const fileA = JSON.parse(await readFile(paths.taskFile(a), 'utf8'));
    await writeFile(
      paths.resultFile(a),
      JSON.stringify({ v: 1, type: 'completed', generation: fileA.generation, result: 'a-done' }),
    );

    const from = sidecar!.lines.length;
    await sidecar!.start();
    const [doneA] = await client!.settle([a]);
    expect(doneA!.result).toBe('a-done');
    await sidecar!.waitFor('reported held task', { task_id: b }, from);

    // Task b is finished by the agent through the CLI, which stamps the generation from the task file.
    const r = await runCli([
      'task',
      'complete',
      b,
      '--result',
      '{"ok":true}',
      '--sidecar-dir',
      paths.workDir,
      '--wait',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('relayed');
    const [doneB] = await client!.settle([b]);
    expect(doneB!.result).toEqual({ ok: true });
    for (const t of [doneA!, doneB!]) {
      expect(t.generation).toBe(1); // never reclaimed
      expect(timesEntered(t, 'done')).toBe(1);
    }
  });

  it('down longer than the presence timeout: the hub reclaims, the stale local state is cancelled, each task completes once', async () => {
    const { paths } = await setup({ wake: null, slots: 1 });
    const id = await client!.submit({ title: 'slow', capabilities: ['code'] });
    await client!.settle([id], ['working']);
    // The hub can apply the `accepted` report before the sidecar stores the acceptance in
    // queue.json (it saves after the report is acknowledged): wait for the file, so that the
    // restarted sidecar reports `recovering` (not `accepted` again) for the old generation.
    await waitUntil(
      async () => (await queueFile(paths)).tasks.some((t) => t.taskId === id && t.state === 'accepted'),
      'the acceptance stored in queue.json',
    );
    await sidecar!.kill();
    // Offline (missed beats) -> reclaimed: generation raised, a cancel waits in the inbox.
    await eventually(
      async () => {
        const t = await client!.task(id);
        if (!t || t.generation < 2 || t.status === 'working')
          throw new Error(`still ${t?.status}/${t?.generation}`);
      },
      { timeout: 15_000 },
    );
    const from = sidecar!.lines.length;
    await sidecar!.start();
    // It reassigns to the same (only) agent at the new generation; the old assignment is gone.
    await eventually(async () => {
      const q = await queueFile(paths);
      expect(q.tasks.map((t) => [t.taskId, t.generation])).toEqual([
        [id, (await client!.task(id))!.generation],
      ]);
    });
    // queue.json is written before the line is logged: wait for the line rather than read it now.
    await sidecar!.waitFor('assignment received', { task_id: id }, from);
    const r = await runCli(['task', 'complete', id, '--sidecar-dir', paths.workDir, '--wait', '--json']);
    expect(r.code).toBe(0);
    expect(r.json<{ type: string; relayed: boolean }>()).toMatchObject({ type: 'completed', relayed: true });
    const [done] = await client!.settle([id]);
    expect(timesEntered(done!, 'done')).toBe(1);
    // Its `recovering` for the old generation was refused: the notice is there for the agent to read.
    await eventually(async () => {
      const notice = JSON.parse(await readFile(paths.noticeFile(id), 'utf8'));
      expect(notice).toMatchObject({
        type: 'notice',
        taskId: id,
        report: 'recovering',
        code: 'stale_generation',
        stop: true,
      });
    });
  });

  it('a wake command that keeps failing: the task is reported failed with why, and moves to another agent', async () => {
    await setup({ wake: ['sh', '-c', 'echo "agent binary not found" >&2; exit 127'], wakeMaxFailures: 2 });
    const id = await client!.submit({
      title: 'needs a working agent',
      capabilities: ['code'],
      backoff: { baseMs: 10_000, maxMs: 10_000 },
      maxRetries: 5,
    });
    await sidecar!.waitFor('wake command keeps failing; giving the task up', { task_id: id }, 0, 30_000);
    const other = await spawnSimAgent({ url: nats.url, prefix, agentId: 'other-1', capabilities: ['code'] });
    try {
      const [done] = await client!.settle([id], ['done'], 30_000);
      expect(done!.assignee).toBe('other-1');
      const failure = done!.history.find((e) => e.by === agentId && e.to === 'queued');
      expect(failure?.reason).toMatch(
        /wake command exited with code 127 \(2 attempts\); stderr: agent binary not found/,
      );
      expect(done!.flaggedAgents).toContain(agentId);
    } finally {
      await other.kill();
    }
  });

  it('keeps its work across a hub and nats-server restart', async () => {
    const { paths } = await setup({ hub: { missedBeats: 60 } });
    const id = await client!.submit({ title: 'hold-across-restart', capabilities: ['code'] });
    await client!.settle([id], ['working']);
    await hub!.stop();
    hub = undefined;
    await nats.restart();
    const from = sidecar!.lines.length;
    hub = await startTestHub(nats.url, prefix, { missedBeats: 60 });
    await sidecar!.waitFor('nats reconnected', {}, from);
    const t = JSON.parse(await readFile(paths.taskFile(id), 'utf8'));
    await writeFile(
      paths.resultFile(id),
      JSON.stringify({ v: 1, type: 'completed', generation: t.generation, result: 1 }),
    );
    const [done] = await client!.settle([id], ['done'], 30_000);
    expect(done!.generation).toBe(t.generation);
    expect(timesEntered(done!, 'done')).toBe(1);
  });

  it('moves unusable result files to rejected/ with the reason, and never reports them', async () => {
    const { paths } = await setup({ wake: null });
    const id = await client!.submit({ title: 'careful', capabilities: ['code'] });
    await client!.settle([id], ['working']);
    const gen = JSON.parse(await readFile(paths.taskFile(id), 'utf8')).generation as number;

    const cases: [string, string, string][] = [
      [`${id}.json`, JSON.stringify({ v: 1, type: 'done!' }), 'invalid'],
      [
        `${id}.json`,
        JSON.stringify({ v: 1, type: 'completed', generation: gen + 5, result: 1 }),
        'stale: written for generation',
      ],
      [
        't-unknown-task.json',
        JSON.stringify({ v: 1, type: 'completed', result: 1 }),
        'not held by this sidecar',
      ],
      [`${id}.json`, '{"v":1,"type":"compl', 'not JSON'],
    ];
    for (const [i, [name, content, reason]] of cases.entries()) {
      // A half-written file is given time to settle; an old one is judged at once. Dated before
      // it appears (hidden names are ignored), so the sidecar never sees it young.
      const hidden = join(paths.resultsDir, `.${name}.tmp`);
      await writeFile(hidden, content);
      const old = new Date(Date.now() - 60_000);
      await utimes(hidden, old, old);
      await rename(hidden, join(paths.resultsDir, name));
      await eventually(
        async () => {
          const texts = await rejectedReasons(paths);
          expect(texts).toHaveLength(i + 1);
          expect(
            texts.some((t) => t.includes(reason)),
            reason,
          ).toBe(true);
          // A loaded CI machine once took over 10 s to see one of these files.
        },
        { timeout: 30_000 },
      );
    }
    expect((await client!.task(id))!.status).toBe('working');
    await writeFile(
      paths.resultFile(id),
      JSON.stringify({ v: 1, type: 'failed', error: { message: 'nope' }, retryable: false }),
    );
    const [failed] = await client!.settle([id], ['failed']);
    expect(failed!.error).toMatchObject({ message: 'nope' });
  });

  it('follows a cancel: the task file goes and the queue forgets it', async () => {
    const { paths } = await setup({ wake: null });
    const id = await client!.submit({ title: 'to-cancel', capabilities: ['code'] });
    await client!.settle([id], ['working']);
    const admin = await connectBus({ servers: nats.url, prefix, logger: pino({ level: 'silent' }) });
    try {
      await request(admin, 'task.cancel', { v: 1, id, reason: 'changed my mind' }, TaskReplySchema);
    } finally {
      await admin.drain();
    }
    await sidecar!.waitFor('assignment cancelled', { task_id: id });
    expect((await queueFile(paths)).tasks).toEqual([]);
    expect(await readdir(paths.tasksDir)).toEqual([]);
    // A result written afterwards is stale, not reported.
    await writeFile(paths.resultFile(id), JSON.stringify({ v: 1, type: 'completed', result: 1 }));
    await eventually(async () =>
      expect(await rejectedReasons(paths)).toEqual([expect.stringContaining('stale')]),
    );
    expect((await client!.task(id))!.status).toBe('cancelled');
  });

  it('retries a failing wake command with backoff until it succeeds', async () => {
    const marker = join(dir, 'failed-once');
    await setup({ wake: [process.execPath, fixture('wake-fail-once.mjs'), marker] });
    const id = await client!.submit({ title: 'flaky-wake', capabilities: ['code'] });
    const [done] = await client!.settle([id], ['done'], 20_000);
    expect(sidecar!.lines.some((l) => l.msg === 'wake command failed' && l.task_id === id)).toBe(true);
    expect(done!.result).toEqual({ title: 'flaky-wake', by: agentId });
  });
});
