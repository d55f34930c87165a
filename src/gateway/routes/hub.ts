/**
 * @module gateway/routes/hub
 * The hub as a whole: seed 002's dashboard state (one call with what a dashboard opens on),
 * pausing and resuming intake and assignment, and the settings changed at runtime (timeouts).
 * Changes are recorded as made by `http:<token name>`.
 */
import { z } from 'zod';
import { openLimitsKv } from '../../bus/live-limits.js';
import {
  AlertConfigReplySchema,
  AlertConfigSchema,
  AlertListReplySchema,
  AlertReplySchema,
  AlertRuleSchema,
} from '../../protocol/alert.js';
import { AgentListReplySchema, TaskListReplySchema, TaskStatsReplySchema } from '../../protocol/api.js';
import { ControlSchema } from '../../protocol/control.js';
import { DlqListResponseSchema } from '../../protocol/dlq.js';
import { FieldStatsReplySchema } from '../../protocol/field.js';
import { LIMITS_KEY, LimitsSchema } from '../../protocol/limits.js';
import { ConfigReplySchema, ConfigSetRequestSchema } from '../../protocol/runtime-config.js';
import { forward, type RouteDef, route } from '../route.js';

const byToken = (ctx: { principal: { name: string } }) => `http:${ctx.principal.name}`.slice(0, 100);

const PauseBodySchema = z
  .object({
    intake: z.boolean().optional().describe('This part (with neither named: both).'),
    assignment: z.boolean().optional(),
    reason: z.string().min(1).max(500).optional(),
  })
  .describe('Which parts of the hub, and why.');

const controlRoute = (op: 'pause' | 'resume', summary: string) =>
  forward({
    method: 'POST',
    url: `/api/hub/${op}`,
    tag: 'hub',
    summary,
    roles: [],
    body: PauseBodySchema.optional(),
    reply: ControlSchema,
    endpoint: `hub.${op}`,
    input: (ctx) => ({ v: 1, ...(ctx.body ?? {}), by: byToken(ctx) }),
  });

const DashboardStateSchema = z
  .object({
    v: z.literal(1),
    at: z.int().describe('When it was read (epoch ms).'),
    cursor: z.string().describe('Event-stream id of this state: pass as Last-Event-ID to follow it.'),
    tasks: TaskStatsReplySchema.nullable(),
    recent: TaskListReplySchema.shape.tasks.nullable().describe('The 20 newest tasks.'),
    agents: AgentListReplySchema.nullable(),
    dlq: z.object({ oldest: DlqListResponseSchema.shape.items, more: z.boolean() }).nullable(),
    field: FieldStatsReplySchema.nullable(),
  })
  .describe('GET /api/dashboard/state: each part null when the hub did not answer for it.');

export function hubRoutes(cursor: () => string): RouteDef[] {
  return [
    forward({
      method: 'GET',
      url: '/api/hub',
      tag: 'hub',
      summary: 'Whether intake and assignment run or are paused, since when, by whom and why.',
      roles: ['read', 'submitter'],
      reply: ControlSchema,
      endpoint: 'hub.control',
      input: () => ({ v: 1 }),
    }),
    controlRoute(
      'pause',
      'Pause intake (submissions wait, nothing lost; API submits get 503) and/or assignment.',
    ),
    controlRoute('resume', 'Resume intake and/or assignment; what waited is taken in and assigned at once.'),
    forward({
      method: 'GET',
      url: '/api/config',
      tag: 'hub',
      summary: 'The timeouts in force (and where each comes from), the limits and the control value.',
      roles: ['read'],
      reply: ConfigReplySchema,
      endpoint: 'config.get',
      input: () => ({ v: 1 }),
    }),
    forward({
      method: 'PATCH',
      url: '/api/config',
      tag: 'hub',
      summary:
        'Change timeouts at runtime (null: back to the hub’s own); nothing is stored unless all is valid.',
      roles: [],
      body: ConfigSetRequestSchema.omit({ by: true }),
      reply: ConfigReplySchema,
      endpoint: 'config.set',
      input: (ctx) => ({ ...ctx.body, by: byToken(ctx) }),
    }),
    route({
      method: 'GET',
      url: '/api/limits',
      tag: 'hub',
      summary: 'Per-agent rate limits and the suspension policy: the stored document (null: defaults).',
      roles: ['read'],
      reply: z.object({ v: z.literal(1), stored: LimitsSchema.nullable() }),
      handler: async (ctx) => ({
        v: 1 as const,
        stored: (await (await openLimitsKv(ctx.bus)).get(LIMITS_KEY))?.value ?? null,
      }),
    }),
    route({
      method: 'PUT',
      url: '/api/limits',
      tag: 'hub',
      summary: 'Replace the limits document (as `agentcom limits set`); every hub applies it at once.',
      roles: [],
      body: LimitsSchema,
      reply: z.object({ v: z.literal(1), stored: LimitsSchema }),
      handler: async (ctx) => {
        await (await openLimitsKv(ctx.bus)).put(LIMITS_KEY, ctx.body);
        ctx.log.info({ by: ctx.principal.name, phase: 'limits' }, 'limits replaced over HTTP');
        return { v: 1 as const, stored: ctx.body };
      },
    }),
    forward({
      method: 'GET',
      url: '/api/alerts',
      tag: 'alerts',
      summary: 'Every alert rule with its state: ok, firing or acknowledged, since when, its value.',
      roles: ['read', 'submitter'],
      reply: AlertListReplySchema,
      endpoint: 'alert.list',
      input: () => ({ v: 1 }),
    }),
    forward({
      method: 'POST',
      url: '/api/alerts/:rule/ack',
      tag: 'alerts',
      summary:
        'Acknowledge a firing rule: no more notifications until it resolves (409 when it is not firing).',
      roles: [],
      params: z.object({ rule: AlertRuleSchema }),
      reply: AlertReplySchema,
      errors: [409],
      endpoint: 'alert.ack',
      input: (ctx) => ({ v: 1, rule: ctx.params.rule, by: byToken(ctx).slice(0, 64) }),
    }),
    forward({
      method: 'GET',
      url: '/api/alerts/config',
      tag: 'alerts',
      summary: 'Thresholds, windows, cooldowns and webhooks in force (webhook secrets redacted).',
      roles: [],
      reply: AlertConfigReplySchema,
      endpoint: 'alert.config.get',
      input: () => ({ v: 1 }),
    }),
    forward({
      method: 'PUT',
      url: '/api/alerts/config',
      tag: 'alerts',
      summary:
        'Replace the alert configuration (a webhook secret sent back as "<redacted>" keeps the stored one).',
      roles: [],
      body: AlertConfigSchema,
      reply: AlertConfigReplySchema,
      endpoint: 'alert.config.set',
      input: (ctx) => ({ v: 1, config: ctx.body }),
    }),
    route({
      method: 'GET',
      url: '/api/dashboard/state',
      tag: 'hub',
      summary: 'What a dashboard opens on: task counts, the newest tasks, agents, dead letters, the field.',
      roles: ['read', 'submitter'],
      reply: DashboardStateSchema,
      handler: async (ctx) => {
        // The cursor first: events after it may already be in the parts read below, never missing.
        const at = Date.now();
        const c = cursor();
        const part = <T>(p: Promise<T>) => p.catch(() => null);
        const [tasks, recent, agents, dlq, field] = await Promise.all([
          part(ctx.call('task.stats', { v: 1 }, TaskStatsReplySchema)),
          part(ctx.call('task.list', { v: 1, limit: 20 }, TaskListReplySchema)),
          part(ctx.call('agent.list', { v: 1 }, AgentListReplySchema)),
          part(ctx.call('dlq.list', { v: 1, limit: 20 }, DlqListResponseSchema)),
          part(ctx.call('field.stats', { v: 1 }, FieldStatsReplySchema)),
        ]);
        return {
          v: 1 as const,
          at,
          cursor: c,
          tasks,
          recent: recent?.tasks ?? null,
          agents,
          dlq: dlq ? { oldest: dlq.items, more: dlq.next_after_seq !== null } : null,
          field,
        };
      },
    }),
  ];
}
