/**
 * @module gateway/routes/tasks
 * Seed 002's task API over HTTP: submit, list (filtered by status, assignee, priority, queue),
 * get, and the admin's cancel, retry and delete; `PATCH /api/tasks/:id` is how an HTTP agent
 * accepts, reports progress on, completes or fails its assignment (routes/agents.ts relays it
 * as the agent's report).
 */
import { z } from 'zod';
import {
  TaskCancelRequestSchema,
  TaskListReplySchema,
  TaskReplySchema,
  TaskStatsReplySchema,
} from '../../protocol/api.js';
import { AgentComError, ERROR_CODES } from '../../protocol/errors.js';
import { AgentIdSchema, QueueNameSchema, TaskIdSchema } from '../../protocol/ids.js';
import { PrioritySchema, TaskStatusSchema, TaskSubmitSchema } from '../../protocol/task.js';
import { qInt, qList } from '../query.js';
import { forward, httpSubmitter, type RouteDef, route } from '../route.js';
import { ReportAckSchema, relayReport, TaskPatchSchema, taskPatchToReport } from './agent-relay.js';

const TaskParams = z.object({ id: TaskIdSchema });

const TaskListQuery = z.object({
  status: qList(TaskStatusSchema).optional(),
  assignee: AgentIdSchema.optional(),
  priority: PrioritySchema.optional(),
  queue: QueueNameSchema.optional(),
  limit: qInt(1, 1000).optional(),
  cursor: z.string().max(200).optional(),
});

export const taskRoutes: RouteDef[] = [
  forward({
    method: 'POST',
    url: '/api/tasks',
    tag: 'tasks',
    summary:
      'Submit a task; replies with its record. `idempotencyKey` is this token’s own (another token’s equal key names another task); `submittedBy` is `http:<token name>`.',
    roles: ['submitter'],
    body: TaskSubmitSchema,
    reply: TaskReplySchema,
    status: 201,
    errors: [409],
    // As the submitter `http-<token id>` (the hub's per-submitter endpoint): idempotency keys and
    // submission rates are the token's own, like an agent's, never shared between HTTP clients.
    endpoint: 'task.submit.http',
    input: (ctx) => ({ ...ctx.body, submittedBy: `http:${ctx.principal.name}`.slice(0, 64) }),
    endpointFor: (ctx) => `task.submit.${httpSubmitter(ctx.principal.id)}`,
  }),
  forward({
    method: 'GET',
    url: '/api/tasks',
    tag: 'tasks',
    summary: 'Tasks matching every filter, newest first, paged with `cursor`.',
    roles: ['read', 'submitter'],
    query: TaskListQuery,
    reply: TaskListReplySchema,
    endpoint: 'task.list',
  }),
  forward({
    method: 'GET',
    url: '/api/tasks/stats',
    tag: 'tasks',
    summary: 'Counts by status, queue and priority, and the scheduler’s state.',
    roles: ['read', 'submitter'],
    reply: TaskStatsReplySchema,
    endpoint: 'task.stats',
  }),
  route({
    method: 'GET',
    url: '/api/tasks/:id',
    tag: 'tasks',
    summary: 'One task record (an agent token: only a task it holds or last held).',
    roles: ['read', 'submitter', 'agent'],
    params: TaskParams,
    reply: TaskReplySchema,
    errors: [404],
    handler: async (ctx) => {
      const r = await ctx.call('task.get', { v: 1, id: ctx.params.id }, TaskReplySchema);
      // An agent sees its own work only; another's task is as good as absent to it.
      if (ctx.principal.role === 'agent' && r.task.assignee !== ctx.principal.agentId)
        throw new AgentComError(ERROR_CODES.NOT_FOUND, `task ${ctx.params.id} not found`);
      return r;
    },
  }),
  route({
    method: 'PATCH',
    url: '/api/tasks/:id',
    tag: 'tasks',
    summary:
      'An agent token: accept, report progress on, complete, fail, reject, block or unblock its assignment (`generation` from the assignment). Stored as the agent’s report; the hub applies it.',
    roles: ['agent'],
    params: TaskParams,
    body: TaskPatchSchema,
    reply: ReportAckSchema,
    status: 202,
    handler: async (ctx) => {
      const agentId = ctx.principal.agentId;
      if (!agentId) throw new AgentComError(ERROR_CODES.FORBIDDEN, 'only an agent token reports on a task');
      return relayReport(ctx.bus, agentId, taskPatchToReport(ctx.params.id, ctx.body));
    },
  }),
  forward({
    method: 'POST',
    url: '/api/tasks/:id/cancel',
    tag: 'tasks',
    summary: 'Cancel an unfinished task (the agent holding it is told to stop).',
    roles: [],
    params: TaskParams,
    body: TaskCancelRequestSchema.omit({ id: true, v: true }).optional(),
    reply: TaskReplySchema,
    errors: [404, 409],
    endpoint: 'task.cancel',
  }),
  forward({
    method: 'POST',
    url: '/api/tasks/:id/retry',
    tag: 'tasks',
    summary: 'Requeue a dead, failed or cancelled task with a fresh retry budget.',
    roles: [],
    params: TaskParams,
    reply: TaskReplySchema,
    errors: [404, 409],
    endpoint: 'task.retry',
  }),
  forward({
    method: 'DELETE',
    url: '/api/tasks/:id',
    tag: 'tasks',
    summary:
      'Cancel a task (seed 002’s admin delete): it ends as cancelled and stays listed until retention removes it.',
    roles: [],
    params: TaskParams,
    reply: TaskReplySchema,
    errors: [404, 409],
    endpoint: 'task.cancel',
    input: (ctx) => ({ v: 1, id: ctx.params.id, reason: `deleted over HTTP by ${ctx.principal.name}` }),
  }),
];
