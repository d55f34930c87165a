/**
 * @module sidecar
 * The files between a sidecar and its agent (docs/protocol.md §13): the task file the sidecar
 * writes, and the result and progress files the agent writes. They are a contract like the wire
 * payloads (any language may write them), so their JSON Schemas are generated too. A result file
 * may carry the task file's `generation`; a result for another generation is stale.
 */
import { z } from 'zod';
import { AssignedTaskSchema } from './agent.js';
import { AgentIdSchema, TaskIdSchema } from './ids.js';
import { TokensUsedSchema } from './task.js';

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
