/**
 * @module task
 * Wire schemas of a task: what a client submits (`TaskSubmit`) and the state of record the hub keeps
 * in KV, one key per task (`TaskRecord`, plain JSON). Every payload carries `v: 1`. Each field is
 * described once here; docs/schemas are generated from these descriptions. These schemas say what is
 * well formed, not what is allowed next: the transition rules live in actors/task-queue/state.ts.
 */
import { z } from 'zod';
import { durationField, durationFieldMs } from './duration.js';
import {
  AgentIdSchema,
  CapabilitySchema,
  type QueueName,
  QueueNameSchema,
  SessionIdSchema,
  TaskIdSchema,
} from './ids.js';

// --- Enumerations ---

export const PRIORITIES = ['urgent', 'high', 'normal', 'low'] as const;
export const PrioritySchema = z
  .enum(PRIORITIES)
  .describe('Scheduling lane: urgent > high > normal > low; FIFO within a lane.');
export type Priority = z.infer<typeof PrioritySchema>;

/** Lane rank, lower is scheduled first. */
export const PRIORITY_RANK: Readonly<Record<Priority, number>> = { urgent: 0, high: 1, normal: 2, low: 3 };

export const TASK_STATUSES = [
  'queued',
  'assigned',
  'working',
  'blocked',
  'done',
  'failed',
  'dead',
  'cancelled',
] as const;
export const TaskStatusSchema = z
  .enum(TASK_STATUSES)
  .describe(
    'queued (waiting, possibly delayed), assigned (pushed, not yet accepted), working, blocked, ' +
      'done, failed (non-retryable or deadline passed), dead (retries exhausted), cancelled.',
  );
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

/** Statuses a task leaves only through an explicit manual `retry`. */
export const TERMINAL_STATUSES = [
  'done',
  'failed',
  'dead',
  'cancelled',
] as const satisfies readonly TaskStatus[];
/** Statuses in which an agent holds the task (an assignment is open). */
export const ACTIVE_STATUSES = ['assigned', 'working', 'blocked'] as const satisfies readonly TaskStatus[];

export function isTerminal(status: TaskStatus): boolean {
  return (TERMINAL_STATUSES as readonly TaskStatus[]).includes(status);
}
export function isActive(status: TaskStatus): boolean {
  return (ACTIVE_STATUSES as readonly TaskStatus[]).includes(status);
}

// --- Field schemas (each described once, shared by submit, record and agent inbox) ---

export const TITLE_MAX = 200;
export const DESCRIPTION_MAX = 64 * 1024;
export const METADATA_MAX_JSON = 16 * 1024;
export const RESULT_MAX_JSON = 256 * 1024;
export const HISTORY_MAX = 50;
export const CAPABILITIES_MAX = 32;

/** Epoch milliseconds. */
export const EpochMsSchema = z.int().nonnegative().describe('Epoch milliseconds (UTC).');

export const TitleSchema = z.string().min(1).max(TITLE_MAX).describe('Short human title, 1-200 characters.');
export const DescriptionSchema = z
  .string()
  .max(DESCRIPTION_MAX)
  .describe('What to do, free text up to 64 KiB (65,536 characters).');
export const TaskQueueFieldSchema = QueueNameSchema.describe(
  'Named queue (seed 000: default, sensory, cognition, social, action, or any token). Only agents serving it receive the task.',
);
export const NeededCapabilitiesSchema = z
  .array(CapabilitySchema)
  .max(CAPABILITIES_MAX)
  .describe('Capabilities the task needs; an agent qualifies when it declares all of them (subset match).');
export const MaxRetriesSchema = z
  .int()
  .min(0)
  .max(100)
  .describe(
    'Automatic retries after the first attempt; after them the task is `dead` (listed by `agentcom dlq list`).',
  );
export const BackoffSchema = z
  .object({
    baseMs: z
      .int()
      .min(1)
      .max(86_400_000)
      .default(1000)
      .describe('First retry delay in ms (doubles per retry).'),
    maxMs: z.int().min(1).max(86_400_000).default(60_000).describe('Cap on the retry delay in ms.'),
  })
  .refine((b) => b.maxMs >= b.baseMs, { message: 'backoff.maxMs must be >= backoff.baseMs', path: ['maxMs'] })
  .describe('Exponential retry backoff: min(maxMs, baseMs * 2^(retry-1)), minus up to 20% jitter.');
export type Backoff = z.infer<typeof BackoffSchema>;
export const CompleteBySchema = EpochMsSchema.describe(
  'Absolute deadline (epoch ms). Past it an unfinished task fails with error code `timeout`.',
);
export const NotBeforeSchema = EpochMsSchema.describe(
  'Not assigned before this time (epoch ms): delayed tasks, and the retry backoff of a requeued task.',
);
/** The longest `delay` a submission may ask for. */
export const MAX_DELAY_MS = 365 * 86_400_000;
export const DelaySchema = durationField(0, MAX_DELAY_MS).describe(
  'Not assigned before this long after the hub takes the submission in: ms, or a duration such as "4h" or "1h30m". With notBefore too, the later of the two.',
);
export type Delay = z.infer<typeof DelaySchema>;

/** A delay in ms (`DelaySchema` has checked it). */
export const delayMs: (delay: Delay) => number = durationFieldMs;

export const IdempotencyKeySchema = z
  .string()
  .min(1)
  .max(128)
  .describe('Client key; a second submit with the same key returns the first task instead of creating one.');
export const MetadataSchema = z
  .record(z.string(), z.unknown())
  .refine((m) => JSON.stringify(m).length <= METADATA_MAX_JSON, {
    message: `metadata must serialize to at most ${METADATA_MAX_JSON} characters`,
  })
  .describe('Opaque JSON object passed through to the agent (at most 16 KiB serialized).');
export const SubmittedBySchema = z.string().min(1).max(64).describe('Who submitted the task (free label).');
export const TokensUsedSchema = z
  .int()
  .nonnegative()
  .describe('LLM tokens used. In reports: cumulative for the current assignment. In the record: total.');

// --- TaskSubmit ---

export const TaskSubmitSchema = z
  .object({
    v: z.literal(1).describe('Schema version.'),
    title: TitleSchema,
    description: DescriptionSchema.default(''),
    priority: PrioritySchema.default('normal'),
    queue: TaskQueueFieldSchema.default('default' as QueueName),
    capabilities: NeededCapabilitiesSchema.default([]),
    maxRetries: MaxRetriesSchema.default(3),
    backoff: BackoffSchema.default({ baseMs: 1000, maxMs: 60_000 }),
    completeBy: CompleteBySchema.optional(),
    notBefore: NotBeforeSchema.optional(),
    delay: DelaySchema.optional(),
    idempotencyKey: IdempotencyKeySchema.optional(),
    metadata: MetadataSchema.optional(),
    submittedBy: SubmittedBySchema.optional(),
  })
  .describe('A new task, as sent by a client. Defaults apply to omitted fields.');
/** The parsed submit (defaults applied). */
export type TaskSubmit = z.infer<typeof TaskSubmitSchema>;
/** What a client may write (defaulted fields optional). */
export type TaskSubmitInput = z.input<typeof TaskSubmitSchema>;

// --- TaskRecord ---

/** Who caused a transition: 'hub' for hub decisions (timeouts, sweeps, API), else the agent id. */
export const ActorLabelSchema = z
  .string()
  .min(1)
  .max(64)
  .describe("Who caused it: 'hub', an agent id, or the API caller's label.");

export const HistoryEntrySchema = z
  .object({
    at: EpochMsSchema,
    from: TaskStatusSchema.nullable().describe('Status before (null for the submit that created the task).'),
    to: TaskStatusSchema,
    generation: z.int().nonnegative().describe('Task generation at the time of the transition.'),
    by: ActorLabelSchema,
    reason: z.string().max(500).optional().describe('Why, e.g. the reclaim reason or the failure message.'),
    agent: AgentIdSchema.optional().describe('On an assignment: the agent it went to.'),
  })
  .describe('One status transition.');
export type HistoryEntry = z.infer<typeof HistoryEntrySchema>;

export const TaskErrorSchema = z
  .object({
    code: z
      .string()
      .min(1)
      .max(64)
      .describe("Machine-readable code, e.g. 'timeout', 'rejected', 'agent_error'."),
    message: z.string().max(4096).describe('Human-readable message.'),
  })
  .describe('Why the last attempt failed.');
export type TaskError = z.infer<typeof TaskErrorSchema>;

export const ProgressSchema = z
  .object({
    pct: z.number().min(0).max(100).optional().describe('Percent complete, 0-100.'),
    message: z.string().max(1000).optional().describe('Short status line.'),
  })
  .describe('Latest progress reported by the assignee.');
export type Progress = z.infer<typeof ProgressSchema>;

/** The report that closed an assignment, kept so a redelivered copy is recognised as a duplicate. */
export const LastReportSchema = z
  .object({
    type: z.enum(['completed', 'failed', 'rejected']).describe('Report type that ended the assignment.'),
    agentId: AgentIdSchema,
    generation: z.int().nonnegative(),
  })
  .describe('The assignment-ending report last applied (for duplicate detection).');
export type LastReport = z.infer<typeof LastReportSchema>;

export const TaskRecordSchema = z
  .object({
    v: z.literal(1).describe('Schema version.'),
    id: TaskIdSchema.describe('Task id (time-ordered).'),
    title: TitleSchema,
    description: DescriptionSchema,
    priority: PrioritySchema,
    queue: TaskQueueFieldSchema,
    capabilities: NeededCapabilitiesSchema,
    maxRetries: MaxRetriesSchema,
    backoff: BackoffSchema,
    completeBy: CompleteBySchema.optional(),
    notBefore: NotBeforeSchema.optional(),
    idempotencyKey: IdempotencyKeySchema.optional(),
    metadata: MetadataSchema.optional(),
    submittedBy: SubmittedBySchema.optional(),
    status: TaskStatusSchema,
    assignee: AgentIdSchema.nullable().describe(
      'Agent holding the open assignment; in done/failed/dead the last assignee; null when queued.',
    ),
    session: SessionIdSchema.optional().describe(
      'The agent session that last reported on the current assignment (accepted, progress...); a live session of the assignee that differs and does not hold the task means it was lost with its process.',
    ),
    generation: z
      .int()
      .nonnegative()
      .describe('Fencing token, raised on every assignment and every reclaim; older reports are refused.'),
    retryCount: z.int().nonnegative().describe('Automatic retries consumed (<= maxRetries).'),
    createdAt: EpochMsSchema,
    assignedAt: EpochMsSchema.nullable().describe('When the current/last assignment was made.'),
    acceptedAt: EpochMsSchema.nullable().describe('When the current/last assignee accepted.'),
    lastProgressAt: EpochMsSchema.nullable().describe(
      'Last sign of life from the assignee (accept, progress...).',
    ),
    blockedAt: EpochMsSchema.nullable().describe('When the task entered blocked (null unless blocked).'),
    completedAt: EpochMsSchema.nullable().describe('When the task reached a terminal status.'),
    result: z.unknown().describe('Result reported on completion (JSON), or null.'),
    error: TaskErrorSchema.nullable(),
    tokensUsed: TokensUsedSchema,
    assignmentTokens: z
      .int()
      .nonnegative()
      .describe(
        'Tokens reported so far by the current assignment (reports are cumulative, so redelivery is idempotent).',
      ),
    progress: ProgressSchema.nullable(),
    lastReport: LastReportSchema.nullable(),
    flaggedAgents: z
      .array(AgentIdSchema)
      .max(16)
      .describe(
        'Agents that did not finish this task: rejected it, failed it, let an assignment time out or get stuck (most recent last, at most 16). The scheduler gives the task to another eligible agent with a free slot when there is one.',
      ),
    history: z
      .array(HistoryEntrySchema)
      .max(HISTORY_MAX)
      .describe('Last 50 status transitions, oldest first.'),
  })
  .describe('The state of record of one task (KV value).');
export type TaskRecord = z.infer<typeof TaskRecordSchema>;

/** Name -> schema, for the JSON Schema generator. */
export const TASK_SCHEMAS = {
  Priority: PrioritySchema,
  TaskStatus: TaskStatusSchema,
  TaskSubmit: TaskSubmitSchema,
  TaskRecord: TaskRecordSchema,
  HistoryEntry: HistoryEntrySchema,
} as const;
