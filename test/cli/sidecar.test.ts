/**
 * `agentcom sidecar` and `agentcom task complete|fail|progress` as a user runs them: exit codes and
 * messages for bad flags, missing or invalid config, unknown tasks, and the files they write.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarPaths, type TaskFile } from '../../src/agent/sidecar/files.js';
import { runCli } from '../support/cli.js';

describe('agentcom sidecar (config errors)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentcom-cli-sidecar-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('without --config: exit 2 and how to give it', async () => {
    const r = await runCli(['sidecar'], { env: { AGENTCOM_SIDECAR_CONFIG: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--config <file>');
  });

  it('a missing config file: exit 3', async () => {
    const r = await runCli(['sidecar', '--config', join(dir, 'nope.json')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('cannot read sidecar config');
  });

  it('an invalid config: exit 2 naming the field', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(
      file,
      JSON.stringify({ v: 1, agentId: 'has space', nats: { servers: 'nats://x:1' }, hello: {} }),
    );
    const r = await runCli(['sidecar', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('at agentId: agent id must be');
  });
});

describe('agentcom task complete|fail|progress', () => {
  let dir: string;
  let paths: ReturnType<typeof sidecarPaths>;
  const taskId = 't-cli-1';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentcom-cli-report-'));
    paths = sidecarPaths(dir);
    await mkdir(paths.tasksDir, { recursive: true });
    await mkdir(paths.resultsDir, { recursive: true });
    const file: TaskFile = {
      v: 1,
      agentId: 'a1' as TaskFile['agentId'],
      taskId: taskId as TaskFile['taskId'],
      generation: 4,
      task: {
        title: 't',
        description: '',
        priority: 'normal',
        queue: 'default',
        capabilities: [],
      } as unknown as TaskFile['task'],
      receivedAt: 1,
      resultFile: paths.resultFile(taskId),
      progressFile: paths.progressFile(taskId),
    };
    await writeFile(paths.taskFile(taskId), JSON.stringify(file));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('complete writes the result file stamped with the task file’s generation', async () => {
    const r = await runCli(['task', 'complete', taskId, '--result', '{"n":1}', '--tokens', '12'], {
      env: { AGENTCOM_SIDECAR_DIR: dir },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('the sidecar relays it');
    expect(JSON.parse(await readFile(paths.resultFile(taskId), 'utf8'))).toEqual({
      v: 1,
      type: 'completed',
      generation: 4,
      result: { n: 1 },
      tokensUsed: 12,
    });
  });

  it('fail --no-retry and progress (seq rises by one per call)', async () => {
    const f = await runCli(['task', 'fail', taskId, '--message', 'boom', '--no-retry', '--sidecar-dir', dir]);
    expect(f.code).toBe(0);
    expect(JSON.parse(await readFile(paths.resultFile(taskId), 'utf8'))).toMatchObject({
      type: 'failed',
      error: { message: 'boom' },
      retryable: false,
    });
    for (const seq of [1, 2]) {
      const p = await runCli(['task', 'progress', taskId, '--pct', '50', '--sidecar-dir', dir, '--json']);
      expect(p.code).toBe(0);
      expect(p.json()).toMatchObject({ seq });
    }
  });

  it.each([
    [['task', 'complete', taskId, '--result', '{nope'], 2, 'not JSON'],
    [['task', 'complete', 'unknown-task'], 3, 'is not held by the sidecar'],
    [['task', 'complete', 'bad id!'], 2, 'not a task id'],
    [['task', 'fail', taskId], 2, "required option '--message <text>'"],
    [['task', 'progress', taskId, '--pct', '150'], 2, 'pct'],
    [['task', 'complete', taskId, '--tokens', '-1'], 2, '--tokens'],
    [['task', 'complete', taskId, '--wait', '--timeout', '300'], 69, 'is it running?'],
  ])('%j: exit %i', async (args, code, message) => {
    const r = await runCli(args as string[], { env: { AGENTCOM_SIDECAR_DIR: dir } });
    expect(r.stderr).toContain(message);
    expect(r.code).toBe(code);
  });

  it('without a sidecar directory: exit 2 and how to give it', async () => {
    const r = await runCli(['task', 'complete', taskId], { env: { AGENTCOM_SIDECAR_DIR: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--sidecar-dir');
  });
});
