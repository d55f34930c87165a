/**
 * @module agent/sidecar/files
 * The sidecar's work directory: the contract between the sidecar and the agent it serves, which
 * may be any program (an LLM session, a script) on the same machine.
 *
 *   <workDir>/queue.json                   the sidecar's local queue (its state of record)
 *   <workDir>/tasks/<taskId>.json          one per held assignment, for the agent to read
 *   <workDir>/results/<taskId>.json        written by the agent (or `agentcom task complete|fail`)
 *   <workDir>/results/<taskId>.progress.json   written by `agentcom task progress`
 *   <workDir>/rejected/                    result files the sidecar could not use, with the reason
 *
 * Every file is written atomically (temp file, fsync, rename), so a reader never sees half of one.
 * A result file may carry the task file's `generation`; a result for another generation is stale.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { AssignedTaskSchema } from '../../protocol/agent.js';
import { AgentIdSchema, TaskIdSchema } from '../../protocol/ids.js';
import { TokensUsedSchema } from '../../protocol/task.js';

/** Env vars the sidecar sets for the wake command, and the CLI reads. */
export const SIDECAR_ENV = {
  agentId: 'AGENTCOM_AGENT_ID',
  workDir: 'AGENTCOM_SIDECAR_DIR',
  taskId: 'AGENTCOM_TASK_ID',
  taskFile: 'AGENTCOM_TASK_FILE',
  resultFile: 'AGENTCOM_RESULT_FILE',
} as const;

export interface SidecarPaths {
  workDir: string;
  queueFile: string;
  tasksDir: string;
  resultsDir: string;
  rejectedDir: string;
  taskFile(taskId: string): string;
  resultFile(taskId: string): string;
  progressFile(taskId: string): string;
}

export function sidecarPaths(workDir: string): SidecarPaths {
  const tasksDir = join(workDir, 'tasks');
  const resultsDir = join(workDir, 'results');
  return {
    workDir,
    queueFile: join(workDir, 'queue.json'),
    tasksDir,
    resultsDir,
    rejectedDir: join(workDir, 'rejected'),
    taskFile: (id) => join(tasksDir, `${id}.json`),
    resultFile: (id) => join(resultsDir, `${id}.json`),
    progressFile: (id) => join(resultsDir, `${id}.progress.json`),
  };
}

/** What a results/ file name refers to, or null for a file that is not ours (temp files, notes). */
export function parseResultFileName(name: string): { taskId: string; kind: 'result' | 'progress' } | null {
  const m = /^([A-Za-z0-9_-]{1,64})(\.progress)?\.json$/.exec(name);
  if (!m) return null;
  return { taskId: m[1] as string, kind: m[2] ? 'progress' : 'result' };
}

export const TaskFileSchema = z
  .object({
    v: z.literal(1),
    agentId: AgentIdSchema,
    taskId: TaskIdSchema,
    generation: z.int().nonnegative(),
    task: AssignedTaskSchema,
    receivedAt: z.int().nonnegative(),
    resultFile: z.string().describe('Where to write the result (atomically: temp file, then rename).'),
    progressFile: z.string().describe('Where to write progress updates.'),
  })
  .describe('An assignment handed to the agent by its sidecar (tasks/<taskId>.json).');
export type TaskFile = z.infer<typeof TaskFileSchema>;

const generation = z.int().nonnegative().optional().describe('The task file’s generation (recommended).');

export const ResultFileSchema = z
  .discriminatedUnion('type', [
    z.object({
      v: z.literal(1),
      type: z.literal('completed'),
      generation,
      result: z.unknown().describe('Any JSON (at most 256 KiB serialized).'),
      tokensUsed: TokensUsedSchema.optional(),
    }),
    z.object({
      v: z.literal(1),
      type: z.literal('failed'),
      generation,
      error: z.object({ code: z.string().min(1).max(64).optional(), message: z.string().max(4096) }),
      retryable: z.boolean().default(true),
      tokensUsed: TokensUsedSchema.optional(),
    }),
    z.object({
      v: z.literal(1),
      type: z.literal('rejected'),
      generation,
      reason: z.string().min(1).max(1000),
    }),
  ])
  .describe('The agent’s outcome for a task (results/<taskId>.json).');
export type ResultFile = z.infer<typeof ResultFileSchema>;
export type ResultFileInput = z.input<typeof ResultFileSchema>;

export const ProgressFileSchema = z
  .object({
    v: z.literal(1),
    generation,
    seq: z.int().positive().describe('Raised on every update; the sidecar relays each seq once.'),
    pct: z.number().min(0).max(100).optional(),
    message: z.string().max(1000).optional(),
    tokensUsed: TokensUsedSchema.optional(),
  })
  .describe('The agent’s latest progress on a task (results/<taskId>.progress.json).');
export type ProgressFile = z.infer<typeof ProgressFileSchema>;

/** Files bigger than this are not read (a result report is capped at 256 KiB anyway). */
export const MAX_RESULT_FILE_BYTES = 512 * 1024;
