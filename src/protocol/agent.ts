/**
 * @module agent
 * Wire schemas between an agent (or its sidecar) and the hub: hello, heartbeat, goodbye (agent ->
 * hub), the inbox (hub -> agent: assign, cancel) and task reports (agent -> hub). Every payload has
 * `v: 1`; the agent id is never in the payload, it comes from the NATS subject (which the agent's
 * credentials restrict). Schemas check shape only; whether a report is allowed is decided by the
 * task queue (generation fencing, assignee check).
 */
import { z } from 'zod';
import { ErrorCodeSchema } from './errors.js';
import { PheromonePatternSchema } from './field.js';
import { CapabilitySchema, type QueueName, QueueNameSchema, SessionIdSchema, TaskIdSchema } from './ids.js';
import {
  CompleteBySchema,
  DescriptionSchema,
  EpochMsSchema,
  MetadataSchema,
  NeededCapabilitiesSchema,
  PrioritySchema,
  TaskQueueFieldSchema,
  TitleSchema,
  TokensUsedSchema,
} from './task.js';

export const SLOTS_MAX = 64;
/** Most task ids a heartbeat lists as recently finished. */
export const FINISHED_MAX = 64;

const V = z.literal(1).describe('Schema version.');

// --- Agent -> hub: presence ---

export const AgentHelloSchema = z
  .object({
    v: V,
    capabilities: z
      .array(CapabilitySchema)
      .max(64)
      .default([])
      .describe('Capabilities the agent offers; it receives tasks whose needed capabilities are a subset.'),
    queues: z
      .array(QueueNameSchema)
      .min(1)
      .max(32)
      .default(['default' as QueueName])
      .describe('Named queues the agent serves.'),
    slots: z
      .int()
      .min(1)
      .max(SLOTS_MAX)
      .default(1)
      .describe('Concurrency: how many tasks the agent may hold at once (1-64).'),
    observes: z
      .array(PheromonePatternSchema)
      .max(32)
      .optional()
      .describe('Pheromone patterns the agent observes in the field (shown on the pheromone map).'),
    name: z.string().min(1).max(100).optional().describe('Display name.'),
    version: z.string().min(1).max(64).optional().describe('Agent or sidecar software version.'),
    session: SessionIdSchema.optional().describe(
      'This run of the agent process: new on every process start, the same across reconnects. A hello from a new session makes the hub redeliver at once what the previous one left unacknowledged in the inbox, and reclaim what it had accepted and this one does not hold.',
    ),
    holding: z
      .array(TaskIdSchema)
      .max(SLOTS_MAX)
      .optional()
      .describe(
        'Tasks this session holds (an agent that keeps assignments on disk lists them after a restart; a fresh process holds none).',
      ),
  })
  .describe('Sent by an agent when it connects (and again after any reconnect).');
export type AgentHello = z.infer<typeof AgentHelloSchema>;
export type AgentHelloInput = z.input<typeof AgentHelloSchema>;

export const HeartbeatSchema = z
  .object({
    v: V,
    at: EpochMsSchema.describe("Agent's clock when sent (informational; the hub uses its own clock)."),
    running: z
      .array(TaskIdSchema)
      .max(SLOTS_MAX)
      .optional()
      .describe(
        'Tasks the agent currently holds. An accepted assignment missing from it (and from `finished`) is reclaimed.',
      ),
    finished: z
      .array(TaskIdSchema)
      .max(FINISHED_MAX)
      .optional()
      .describe(
        'Tasks this session finished lately (outcome reported), newest last: their reports may still be on their way to the hub.',
      ),
    session: SessionIdSchema.optional().describe('The session that sends the beat (as in its hello).'),
  })
  .describe('Periodic liveness signal (default every 5 s; 3 missed beats = offline).');
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

export const GoodbyeSchema = z
  .object({
    v: V,
    reason: z.string().max(500).optional().describe('Why the agent is leaving.'),
    session: SessionIdSchema.optional().describe('The session that leaves (as in its hello).'),
  })
  .describe('Graceful disconnect: the agent goes offline at once and its tasks are reclaimed.');
export type Goodbye = z.infer<typeof GoodbyeSchema>;

// --- Hub -> agent: inbox ---

const GenerationSchema = z
  .int()
  .nonnegative()
  .describe('Assignment generation; echo it in every report about this task.');
const InboxTaskIdSchema = TaskIdSchema.describe('The task concerned.');

export const AssignedTaskSchema = z
  .object({
    title: TitleSchema,
    description: DescriptionSchema,
    priority: PrioritySchema,
    queue: TaskQueueFieldSchema,
    capabilities: NeededCapabilitiesSchema,
    metadata: MetadataSchema.optional(),
    completeBy: CompleteBySchema.optional(),
  })
  .describe('The parts of a task an agent needs to do it.');
export type AssignedTask = z.infer<typeof AssignedTaskSchema>;

export const InboxAssignSchema = z
  .object({
    v: V,
    type: z.literal('assign'),
    taskId: InboxTaskIdSchema,
    generation: GenerationSchema,
    task: AssignedTaskSchema,
  })
  .describe('A task pushed to the agent; reply with an `accepted` or `rejected` report.');
export const InboxCancelSchema = z
  .object({
    v: V,
    type: z.literal('cancel'),
    taskId: InboxTaskIdSchema,
    generation: GenerationSchema,
    reason: z.string().max(500).describe('Why: cancelled by a user, reclaimed (timeout, stuck), overdue...'),
  })
  .describe('Stop working on this assignment; further reports about it will be refused.');
export const InboxNoticeSchema = z
  .object({
    v: V,
    type: z.literal('notice'),
    taskId: InboxTaskIdSchema,
    generation: GenerationSchema.describe('The generation of the refused report.'),
    report: z
      .enum(['accepted', 'rejected', 'progress', 'blocked', 'unblocked', 'completed', 'failed', 'recovering'])
      .describe('The type of the refused report.'),
    code: ErrorCodeSchema.describe('Why it was refused (docs/protocol.md §1).'),
    message: z.string().max(1000).describe('Human-readable reason.'),
    retryAfterMs: z
      .int()
      .nonnegative()
      .optional()
      .describe('With code rate_limited: the report was not applied; one sent after this many ms can be.'),
    stop: z
      .boolean()
      .describe(
        'True when the assignment is over for this agent (the task finished, was reclaimed or reassigned, or is unknown): stop working on it; nothing more about it will be applied.',
      ),
  })
  .describe('The hub refused one of your reports.');
export const InboxMessageSchema = z
  .discriminatedUnion('type', [InboxAssignSchema, InboxCancelSchema, InboxNoticeSchema])
  .describe('A message on the agent inbox (hub -> agent).');
export type InboxMessage = z.infer<typeof InboxMessageSchema>;
export type InboxAssign = z.infer<typeof InboxAssignSchema>;
export type InboxCancel = z.infer<typeof InboxCancelSchema>;
export type InboxNotice = z.infer<typeof InboxNoticeSchema>;

// --- Agent -> hub: reports ---

const reportBase = {
  v: V,
  taskId: InboxTaskIdSchema,
  generation: GenerationSchema,
  at: EpochMsSchema.describe("Agent's clock when the report was made (informational)."),
  session: SessionIdSchema.optional().describe('The session that makes the report (as in its hello).'),
};
const ReasonSchema = z.string().min(1).max(1000).describe('Free-text reason.');
const ReportTokensSchema = TokensUsedSchema.optional();

export const ReportAcceptedSchema = z
  .object({ ...reportBase, type: z.literal('accepted') })
  .describe('The agent took the assignment and starts working.');
export const ReportRejectedSchema = z
  .object({ ...reportBase, type: z.literal('rejected'), reason: ReasonSchema })
  .describe('The agent declines the assignment; the task is requeued and the agent flagged.');
export const ReportProgressSchema = z
  .object({
    ...reportBase,
    type: z.literal('progress'),
    pct: z.number().min(0).max(100).optional().describe('Percent complete, 0-100.'),
    message: z.string().max(1000).optional().describe('Short status line.'),
    tokensUsed: ReportTokensSchema,
  })
  .describe('Sign of life with optional progress; resets the stuck timer.');
export const ReportBlockedSchema = z
  .object({ ...reportBase, type: z.literal('blocked'), reason: ReasonSchema })
  .describe('The agent cannot proceed (waiting on something); may be reassigned after the blocked timeout.');
export const ReportUnblockedSchema = z
  .object({ ...reportBase, type: z.literal('unblocked') })
  .describe('The agent resumes a blocked task.');
export const ReportCompletedSchema = z
  .object({
    ...reportBase,
    type: z.literal('completed'),
    result: z.unknown().describe('The result (any JSON, at most 256 KiB serialized).'),
    tokensUsed: ReportTokensSchema,
  })
  .describe('The task is done.');
export const ReportFailedSchema = z
  .object({
    ...reportBase,
    type: z.literal('failed'),
    error: z
      .object({
        code: z.string().min(1).max(64).optional().describe("Machine-readable code (default 'agent_error')."),
        message: z.string().max(4096).describe('What went wrong.'),
      })
      .describe('The failure.'),
    retryable: z
      .boolean()
      .default(true)
      .describe('False: fail for good; true: retry with backoff if retries remain.'),
    tokensUsed: ReportTokensSchema,
  })
  .describe('The attempt failed.');
export const ReportRecoveringSchema = z
  .object({ ...reportBase, type: z.literal('recovering') })
  .describe('The sidecar restarted and found this task in its local queue; the hub confirms or cancels it.');

export const ReportSchema = z
  .discriminatedUnion('type', [
    ReportAcceptedSchema,
    ReportRejectedSchema,
    ReportProgressSchema,
    ReportBlockedSchema,
    ReportUnblockedSchema,
    ReportCompletedSchema,
    ReportFailedSchema,
    ReportRecoveringSchema,
  ])
  .describe('A report about one assignment (agent -> hub).');
export type Report = z.infer<typeof ReportSchema>;
export type ReportInput = z.input<typeof ReportSchema>;
export type ReportType = Report['type'];

/** Name -> schema, for the JSON Schema generator (spread together with TASK_SCHEMAS). */
export const AGENT_SCHEMAS = {
  AgentHello: AgentHelloSchema,
  Heartbeat: HeartbeatSchema,
  Goodbye: GoodbyeSchema,
  InboxMessage: InboxMessageSchema,
  Report: ReportSchema,
} as const;
