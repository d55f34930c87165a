/**
 * `agentcom task complete|fail|progress <task-id>`: an agent reporting on a task through its
 * sidecar. The command writes the result (or progress) file into the sidecar's work directory
 * (atomically), stamped with the generation from the task file, and the sidecar relays it with the
 * agent's own credentials; the agent needs no NATS access of its own. `--wait` waits until the
 * sidecar has relayed it. The work directory comes from `--sidecar-dir` or AGENTCOM_SIDECAR_DIR,
 * which the sidecar sets for its wake command.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  type ProgressFile,
  ProgressFileSchema,
  type ResultFileInput,
  ResultFileSchema,
  SIDECAR_ENV,
  type SidecarPaths,
  sidecarPaths,
  type TaskFile,
  TaskFileSchema,
} from '../agent/sidecar/files.js';
import { LocalQueueSchema } from '../agent/sidecar/local-queue.js';
import { AgentComError, ERROR_CODES, fromZodError } from '../protocol/errors.js';
import { TaskIdSchema } from '../protocol/ids.js';
import { writeFileAtomic } from '../runtime/atomic-file.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

interface CommonFlags {
  sidecarDir?: string;
  tokens?: string;
  wait?: boolean;
  timeout?: string;
  json?: boolean;
}

const usage = (message: string, path: string) =>
  new AgentComError(ERROR_CODES.INVALID_PAYLOAD, message, { path: [path] });

function common(cmd: Command): Command {
  return cmd
    .option('--sidecar-dir <dir>', `the sidecar's work directory (env ${SIDECAR_ENV.workDir})`)
    .option('--tokens <n>', 'LLM tokens used so far on this task')
    .option('--wait', 'wait until the sidecar has relayed it to the hub')
    .option('--timeout <ms>', 'with --wait: give up after this long (default 30000)')
    .option('--json', 'print the outcome as JSON');
}

export function registerTaskReportCommands(task: Command): void {
  common(
    task
      .command('complete <task-id>')
      .description('report a task done (through the sidecar)')
      .option('--result <json>', 'the result as JSON')
      .option('--result-file <file>', 'read the JSON result from a file'),
  ).action((id: string, flags: CommonFlags & { result?: string; resultFile?: string }) =>
    runCommand('task complete', flags, async (out) => {
      if (flags.result !== undefined && flags.resultFile !== undefined)
        throw usage('give --result or --result-file, not both', 'result');
      const text = flags.resultFile !== undefined ? await readText(flags.resultFile) : flags.result;
      const result = text === undefined ? null : parseJson(text, flags.resultFile ? 'resultFile' : 'result');
      await writeResult(out, id, flags, (generation) => ({
        v: 1,
        type: 'completed',
        generation,
        result,
        ...tokens(flags),
      }));
      return undefined;
    }),
  );

  common(
    task
      .command('fail <task-id>')
      .description('report a task failed (through the sidecar); it is retried unless --no-retry')
      .requiredOption('--message <text>', 'what went wrong')
      .option('--code <code>', "a machine-readable code (default 'agent_error')")
      .option('--no-retry', 'fail for good instead of retrying with backoff'),
  ).action((id: string, flags: CommonFlags & { message: string; code?: string; retry: boolean }) =>
    runCommand('task fail', flags, async (out) => {
      await writeResult(out, id, flags, (generation) => ({
        v: 1,
        type: 'failed',
        generation,
        error: { message: flags.message, ...(flags.code ? { code: flags.code } : {}) },
        retryable: flags.retry,
        ...tokens(flags),
      }));
      return undefined;
    }),
  );

  common(
    task
      .command('progress <task-id>')
      .description('report progress on a task (through the sidecar); resets its stuck timer')
      .option('--pct <n>', 'percent complete, 0-100')
      .option('--message <text>', 'a short status line'),
  ).action((id: string, flags: CommonFlags & { pct?: string; message?: string }) =>
    runCommand('task progress', flags, async (out) => {
      const { paths, taskFile } = await locate(id, flags);
      const previous = await readProgress(paths.progressFile(taskFile.taskId));
      const candidate = {
        v: 1,
        generation: taskFile.generation,
        seq: (previous?.generation === taskFile.generation ? previous.seq : 0) + 1,
        ...(flags.pct === undefined ? {} : { pct: Number(flags.pct) }),
        ...(flags.message === undefined ? {} : { message: flags.message }),
        ...tokens(flags),
      };
      const parsed = ProgressFileSchema.safeParse(candidate);
      if (!parsed.success) throw fromZodError(parsed.error, 'progress');
      await writeFileAtomic(paths.progressFile(taskFile.taskId), `${JSON.stringify(parsed.data)}\n`);
      if (flags.wait) await waitRelayed(out, paths, taskFile.taskId, 'progress', flags, parsed.data.seq);
      out.result(
        { taskId: taskFile.taskId, generation: taskFile.generation, seq: parsed.data.seq },
        `progress ${parsed.data.seq} written for ${taskFile.taskId}`,
      );
      return undefined;
    }),
  );
}

function tokens(flags: CommonFlags): { tokensUsed?: number } {
  if (flags.tokens === undefined) return {};
  const n = Number(flags.tokens);
  if (!Number.isInteger(n) || n < 0)
    throw usage(`--tokens must be a whole number >= 0, got ${flags.tokens}`, 'tokens');
  return { tokensUsed: n };
}

async function locate(id: string, flags: CommonFlags): Promise<{ paths: SidecarPaths; taskFile: TaskFile }> {
  const taskId = TaskIdSchema.safeParse(id);
  if (!taskId.success) throw usage(`not a task id: ${JSON.stringify(id)}`, 'taskId');
  const dir = flags.sidecarDir ?? process.env[SIDECAR_ENV.workDir];
  if (!dir)
    throw usage(
      `give the sidecar's work directory: --sidecar-dir <dir> (or ${SIDECAR_ENV.workDir})`,
      'sidecarDir',
    );
  const paths = sidecarPaths(dir);
  let text: string;
  try {
    text = await readFile(paths.taskFile(taskId.data), 'utf8');
  } catch {
    throw new AgentComError(
      ERROR_CODES.NOT_FOUND,
      `task ${taskId.data} is not held by the sidecar at ${dir} (no task file)`,
    );
  }
  const parsed = TaskFileSchema.safeParse(parseJson(text, 'taskFile'));
  if (!parsed.success) throw fromZodError(parsed.error, `task file of ${taskId.data}`);
  return { paths, taskFile: parsed.data };
}

async function writeResult(
  out: Output,
  id: string,
  flags: CommonFlags,
  build: (generation: number) => ResultFileInput,
): Promise<void> {
  const { paths, taskFile } = await locate(id, flags);
  const parsed = ResultFileSchema.safeParse(build(taskFile.generation));
  if (!parsed.success) throw fromZodError(parsed.error, 'result');
  await writeFileAtomic(paths.resultFile(taskFile.taskId), `${JSON.stringify(parsed.data)}\n`);
  if (flags.wait) await waitRelayed(out, paths, taskFile.taskId, 'result', flags);
  out.result(
    {
      taskId: taskFile.taskId,
      generation: taskFile.generation,
      type: parsed.data.type,
      relayed: flags.wait === true,
    },
    flags.wait
      ? `${parsed.data.type}: relayed to the hub for ${taskFile.taskId}`
      : `${parsed.data.type}: written for ${taskFile.taskId}; the sidecar relays it`,
  );
}

/** Waits until the sidecar consumed the file: a result file disappears; progress is recorded in queue.json. */
async function waitRelayed(
  out: Output,
  paths: SidecarPaths,
  taskId: string,
  kind: 'result' | 'progress',
  flags: CommonFlags,
  seq = 0,
): Promise<void> {
  const timeoutMs = flags.timeout === undefined ? 30_000 : Number(flags.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw usage(`--timeout must be a positive number of ms`, 'timeout');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    out.progress(`waiting for the sidecar to relay the ${kind} of ${taskId}...`);
    if (
      kind === 'result' ? !existsSync(paths.resultFile(taskId)) : await progressRelayed(paths, taskId, seq)
    ) {
      if (kind === 'result' && existsSync(paths.taskFile(taskId)))
        throw new AgentComError(
          ERROR_CODES.INVALID_STATE,
          `the sidecar did not accept the result of ${taskId}; see ${paths.rejectedDir}`,
        );
      return;
    }
    if (Date.now() > deadline)
      throw new AgentComError(
        ERROR_CODES.TIMEOUT,
        `the sidecar did not relay the ${kind} of ${taskId} within ${timeoutMs} ms; is it running?`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function progressRelayed(paths: SidecarPaths, taskId: string, seq: number): Promise<boolean> {
  try {
    const q = LocalQueueSchema.safeParse(JSON.parse(await readFile(paths.queueFile, 'utf8')));
    if (!q.success) return false;
    const t = q.data.tasks.find((x) => x.taskId === taskId);
    return !t || t.progressSeq >= seq;
  } catch {
    return false;
  }
}

async function readProgress(path: string): Promise<ProgressFile | undefined> {
  try {
    const r = ProgressFileSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new AgentComError(ERROR_CODES.NOT_FOUND, `cannot read ${path}: ${(err as Error).message}`);
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw usage(
      `--${path === 'resultFile' ? 'result-file' : path} is not JSON: ${(err as Error).message}`,
      path,
    );
  }
}
