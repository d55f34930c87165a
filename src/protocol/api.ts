/**
 * @module api
 * Request and reply payloads of the hub's request/reply API (`<prefix>.api.<endpoint>`, a NATS
 * micro service). Task records travel as `TaskRecord`; errors as the service error headers plus a
 * `WireError` body. Listing is newest first and paged with an opaque cursor.
 */
import { z } from 'zod';
import { AgentHelloSchema } from './agent.js';
import { AgentIdSchema, QueueNameSchema, TaskIdSchema } from './ids.js';
import { SuspensionSchema } from './limits.js';
import {
  EpochMsSchema,
  PrioritySchema,
  TaskRecordSchema,
  TaskStatusSchema,
  TaskSubmitSchema,
} from './task.js';

export const TaskSubmitRequestSchema = TaskSubmitSchema.describe(
  'task.submit: a new task (same payload as the submit stream). Replies with the task record.',
);

export const TaskRefSchema = z
  .object({ v: z.literal(1), id: TaskIdSchema })
  .describe('task.get / task.retry: which task.');

export const TaskCancelRequestSchema = z
  .object({
    v: z.literal(1),
    id: TaskIdSchema,
    reason: z.string().max(500).optional().describe('Why (told to the agent holding the task).'),
  })
  .describe('task.cancel: cancel a task that is not finished.');

export const TaskReplySchema = z
  .object({ v: z.literal(1), task: TaskRecordSchema })
  .describe('The task record after the operation.');

export const TaskListRequestSchema = z
  .object({
    v: z.literal(1),
    status: z.array(TaskStatusSchema).optional().describe('Only these statuses.'),
    assignee: AgentIdSchema.optional().describe('Only tasks held (or last held) by this agent.'),
    priority: PrioritySchema.optional(),
    queue: QueueNameSchema.optional(),
    limit: z.int().min(1).max(1000).default(50).describe('Page size (1-1000, default 50).'),
    cursor: z.string().max(200).optional().describe('From the previous page’s `nextCursor`.'),
  })
  .describe('task.list: tasks matching every given filter, newest first.');
export type TaskListRequest = z.infer<typeof TaskListRequestSchema>;

export const TaskListReplySchema = z
  .object({
    v: z.literal(1),
    tasks: z.array(TaskRecordSchema),
    total: z.int().nonnegative().describe('Tasks matching the filters (all pages).'),
    nextCursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last.'),
  })
  .describe('A page of tasks.');
export type TaskListReply = z.infer<typeof TaskListReplySchema>;

export const QueueStatsSchema = z
  .object({
    queued: z
      .record(z.string(), z.int().nonnegative())
      .describe('Queued tasks per priority (delayed ones included; priorities with none absent).'),
    delayed: z.int().nonnegative().describe('Of those, tasks not yet eligible (notBefore in the future).'),
    oldestReadyAgeMs: z
      .int()
      .nonnegative()
      .describe(
        'How long the longest-waiting eligible task has waited since it became eligible (queued, or its delay or retry backoff ended), ms by the hub’s clock; 0 when none is eligible.',
      ),
  })
  .describe('The queued tasks of one named queue.');
export type QueueStats = z.infer<typeof QueueStatsSchema>;

export const TaskStatsReplySchema = z
  .object({
    v: z.literal(1),
    total: z.int().nonnegative(),
    byStatus: z.record(z.string(), z.int().nonnegative()).describe('Count per status.'),
    byQueue: z.record(z.string(), z.int().nonnegative()).describe('Open (not finished) tasks per queue.'),
    byPriority: z.record(z.string(), z.int().nonnegative()).describe('Queued tasks per priority.'),
    tokensUsed: z.int().nonnegative().describe('Sum over all tasks.'),
    queues: z
      .record(z.string(), QueueStatsSchema)
      .optional()
      .describe('Queued tasks per named queue (queues with no queued task are absent); older hubs omit it.'),
    scheduler: z
      .object({
        leader: z.boolean(),
        ready: z.int(),
        delayed: z.int(),
        agents: z.int(),
        reportsLagMs: z
          .int()
          .nonnegative()
          .nullable()
          .optional()
          .describe(
            'How far behind now this hub has applied its agents’ reports (ms; sampled once per sweep; until a first sample passes, the time since its scheduler started). Timeouts a report ends wait for it. Null when not followed; older hubs omit it.',
          ),
      })
      .nullable()
      .describe('This hub’s scheduler (null if unavailable).'),
  })
  .describe('task.stats: counts across the queue.');
export type TaskStatsReply = z.infer<typeof TaskStatsReplySchema>;

export const EmptyRequestSchema = z.object({ v: z.literal(1).optional() }).describe('No parameters.');

export const AgentListReplySchema = z
  .object({
    v: z.literal(1),
    agents: z.array(
      z.object({
        id: AgentIdSchema,
        online: z.boolean(),
        state: z.string().describe('AgentFSM state: offline, idle, assigned, working, blocked.'),
        hello: AgentHelloSchema,
        tasks: z.array(TaskIdSchema).describe('Tasks it holds now.'),
        completed: z.int().nonnegative().describe('Tasks completed this session.'),
        flags: z.int().nonnegative().describe('Rejections and accept timeouts.'),
        lastHeartbeat: EpochMsSchema.nullable()
          .optional()
          .describe(
            'Its latest heartbeat (or hello) the leading hub saw, epoch ms; null while offline. Older hubs omit it.',
          ),
      }),
    ),
    suspended: z
      .array(SuspensionSchema)
      .optional()
      .describe(
        'Agents suspended now for invalid traffic (docs/security.md, "Suspension"); not in `agents` meanwhile.',
      ),
  })
  .describe('agent.list: every registered agent, and the suspended ones.');
export type AgentListReply = z.infer<typeof AgentListReplySchema>;

export const AgentRefSchema = z
  .object({ v: z.literal(1), id: AgentIdSchema })
  .describe('agent.remove / agent.restore: which agent.');
export type AgentRef = z.infer<typeof AgentRefSchema>;

export const AgentRemoveReplySchema = z
  .object({
    v: z.literal(1),
    id: AgentIdSchema,
    alreadyRemoved: z.boolean().describe('It was removed before; nothing changed.'),
    tasks: z.array(TaskIdSchema).describe('Tasks it held; they are reclaimed now.'),
  })
  .describe(
    'agent.remove: the agent is forgotten (its tasks reclaimed at once) and its hellos are refused until it is restored.',
  );
export type AgentRemoveReply = z.infer<typeof AgentRemoveReplySchema>;

export const AgentRestoreReplySchema = z
  .object({
    v: z.literal(1),
    id: AgentIdSchema,
    restored: z.boolean().describe('False when the agent was neither removed nor suspended (nothing to do).'),
    unsuspended: z
      .boolean()
      .optional()
      .describe('True when this ended a suspension (docs/security.md, "Suspension"); it may hello at once.'),
  })
  .describe('agent.restore: a removed or suspended agent may hello again (it registers afresh).');
export type AgentRestoreReply = z.infer<typeof AgentRestoreReplySchema>;

export const AgentSuspendRequestSchema = z
  .object({
    v: z.literal(1),
    id: AgentIdSchema,
    forMs: z
      .int()
      .min(1_000)
      .max(604_800_000)
      .describe('How long, ms (1 s to 7 days); `agent.restore` ends it sooner.'),
    reason: z.string().min(1).max(500).default('suspended by an operator'),
  })
  .describe(
    'agent.suspend: the agent is forgotten at once on every hub (its tasks reclaimed) and its hellos are refused `suspended` until then.',
  );

export const AgentSuspendReplySchema = z
  .object({ v: z.literal(1), suspension: SuspensionSchema })
  .describe('The suspension in force.');
export type AgentSuspendReply = z.infer<typeof AgentSuspendReplySchema>;
