/**
 * @module gateway/routes/operations
 * The DLQ (list, show, replay, purge), schedules and the stigmergy field over HTTP: each route
 * forwards to the hub API endpoint of the same name with that endpoint's own schemas.
 */
import { z } from 'zod';
import { EmptyRequestSchema } from '../../protocol/api.js';
import {
  DlqListResponseSchema,
  DlqPurgeResponseSchema,
  DlqRecordSchema,
  DlqReplayResponseSchema,
} from '../../protocol/dlq.js';
import {
  FieldClaimReplySchema,
  FieldEmitRequestSchema,
  FieldHistoryReplySchema,
  FieldListReplySchema,
  FieldObserversReplySchema,
  FieldPromoteRequestSchema,
  FieldStatsReplySchema,
  PheromoneIdSchema,
  PheromonePatternSchema,
  PheromoneReplySchema,
  PheromoneTypeSchema,
} from '../../protocol/field.js';
import { AgentIdSchema } from '../../protocol/ids.js';
import {
  ScheduleListReplySchema,
  ScheduleNameSchema,
  ScheduleReplySchema,
  ScheduleSpecSchema,
  ScheduleTriggerReplySchema,
} from '../../protocol/schedule.js';
import { qBool, qInt } from '../query.js';
import { forward, type RouteDef, withVersion } from '../route.js';

const SeqParams = z.object({ seq: qInt(1, Number.MAX_SAFE_INTEGER) });
const StreamQuery = z.object({
  stream: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .optional(),
});

export const dlqRoutes: RouteDef[] = [
  forward({
    method: 'GET',
    url: '/api/dlq',
    tag: 'dlq',
    summary: 'Dead letters, oldest first, paged with `after_seq`.',
    roles: ['read'],
    query: StreamQuery.extend({
      after_seq: qInt(0, Number.MAX_SAFE_INTEGER).optional(),
      limit: qInt(1, 1000).optional(),
    }),
    reply: DlqListResponseSchema,
    endpoint: 'dlq.list',
  }),
  forward({
    method: 'GET',
    url: '/api/dlq/:seq',
    tag: 'dlq',
    summary: 'One dead letter with its original payload, headers and reason.',
    roles: ['read'],
    params: SeqParams,
    reply: DlqRecordSchema,
    errors: [404],
    endpoint: 'dlq.get',
  }),
  forward({
    method: 'POST',
    url: '/api/dlq/:seq/replay',
    tag: 'dlq',
    summary: 'Republish a dead letter to its original subject (then deleted unless `keep`).',
    roles: [],
    params: SeqParams,
    query: z.object({ keep: qBool.optional() }),
    reply: DlqReplayResponseSchema,
    errors: [404],
    endpoint: 'dlq.replay',
  }),
  forward({
    method: 'DELETE',
    url: '/api/dlq/:seq',
    tag: 'dlq',
    summary: 'Delete one dead letter.',
    roles: [],
    params: SeqParams,
    reply: DlqPurgeResponseSchema,
    endpoint: 'dlq.purge',
  }),
  forward({
    method: 'DELETE',
    url: '/api/dlq',
    tag: 'dlq',
    summary: 'Purge every dead letter (of `stream` when given).',
    roles: [],
    query: StreamQuery,
    reply: DlqPurgeResponseSchema,
    endpoint: 'dlq.purge',
  }),
];

const NameParams = z.object({ name: ScheduleNameSchema });
const scheduleOp = (op: 'pause' | 'resume', summary: string) =>
  forward({
    method: 'POST',
    url: `/api/schedules/:name/${op}`,
    tag: 'schedules',
    summary,
    roles: [],
    params: NameParams,
    reply: ScheduleReplySchema,
    errors: [404],
    endpoint: `schedule.${op}`,
  });

export const scheduleRoutes: RouteDef[] = [
  forward({
    method: 'GET',
    url: '/api/schedules',
    tag: 'schedules',
    summary: 'Every schedule with its progress and next slots.',
    roles: ['read', 'submitter'],
    reply: ScheduleListReplySchema,
    endpoint: 'schedule.list',
  }),
  forward({
    method: 'POST',
    url: '/api/schedules',
    tag: 'schedules',
    summary: 'Create a schedule (409 when the name exists, unless `replace`).',
    roles: [],
    body: z.object({ spec: z.preprocess(withVersion, ScheduleSpecSchema), replace: z.boolean().optional() }),
    reply: ScheduleReplySchema,
    status: 201,
    errors: [409],
    endpoint: 'schedule.create',
  }),
  forward({
    method: 'GET',
    url: '/api/schedules/:name',
    tag: 'schedules',
    summary: 'One schedule.',
    roles: ['read', 'submitter'],
    params: NameParams,
    reply: ScheduleReplySchema,
    errors: [404],
    endpoint: 'schedule.get',
  }),
  scheduleOp('pause', 'Pause a schedule (its slots are skipped until resumed).'),
  scheduleOp('resume', 'Resume a schedule (slots missed while paused are skipped).'),
  forward({
    method: 'POST',
    url: '/api/schedules/:name/trigger',
    tag: 'schedules',
    summary: 'Fire the schedule’s action once now, outside its slots.',
    roles: [],
    params: NameParams,
    reply: ScheduleTriggerReplySchema,
    errors: [404],
    endpoint: 'schedule.trigger',
  }),
  forward({
    method: 'DELETE',
    url: '/api/schedules/:name',
    tag: 'schedules',
    summary: 'Remove a schedule.',
    roles: [],
    params: NameParams,
    reply: z.object({ v: z.literal(1), name: z.string() }),
    errors: [404],
    endpoint: 'schedule.remove',
  }),
];

const IdParams = z.object({ id: PheromoneIdSchema });
/** Who a token acts as in the field's records (source, claimant). */
const byToken = (ctx: { principal: { name: string } }) => `http:${ctx.principal.name}`.slice(0, 64);

export const fieldRoutes: RouteDef[] = [
  forward({
    method: 'GET',
    url: '/api/pheromones',
    tag: 'field',
    summary: 'Live pheromones matching `pattern` (NATS wildcards over the type), newest first.',
    roles: ['read', 'submitter'],
    query: z.object({
      pattern: PheromonePatternSchema.optional(),
      claimed: qBool.optional(),
      limit: qInt(1, 1000).optional(),
      payloads: qBool.optional(),
    }),
    reply: FieldListReplySchema,
    endpoint: 'field.list',
  }),
  forward({
    method: 'GET',
    url: '/api/pheromones/stats',
    tag: 'field',
    summary: 'Active, claimed and expired counts, and live pheromones per type.',
    roles: ['read', 'submitter'],
    reply: FieldStatsReplySchema,
    endpoint: 'field.stats',
    input: () => EmptyRequestSchema.parse({ v: 1 }),
  }),
  forward({
    method: 'GET',
    url: '/api/pheromones/history',
    tag: 'field',
    summary: 'The audit trail of matching types, oldest first.',
    roles: ['read', 'submitter'],
    query: z.object({
      pattern: PheromonePatternSchema.optional(),
      since: qInt(0, Number.MAX_SAFE_INTEGER).optional(),
      until: qInt(0, Number.MAX_SAFE_INTEGER).optional(),
      limit: qInt(1, 1000).optional(),
      payloads: qBool.optional(),
    }),
    reply: FieldHistoryReplySchema,
    endpoint: 'field.history',
  }),
  forward({
    method: 'GET',
    url: '/api/pheromones/observers',
    tag: 'field',
    summary:
      'Who observes the field: each observation’s agent, slot and pattern (the consumers field.observe made), agents first.',
    roles: ['read', 'submitter'],
    query: z.object({
      agent: AgentIdSchema.optional(),
      type: PheromoneTypeSchema.optional(),
      limit: qInt(1, 1000).optional(),
    }),
    reply: FieldObserversReplySchema,
    endpoint: 'field.observers',
  }),
  forward({
    method: 'POST',
    url: '/api/pheromones',
    tag: 'field',
    summary: 'Emit a pheromone; its source is `http:<token name>`.',
    roles: ['submitter'],
    body: FieldEmitRequestSchema.omit({ v: true, by: true }),
    reply: PheromoneReplySchema,
    status: 201,
    endpoint: 'field.emit',
    input: (ctx) => ({ v: 1, ...ctx.body, by: byToken(ctx) }),
  }),
  forward({
    method: 'GET',
    url: '/api/pheromones/:id',
    tag: 'field',
    summary: 'One live pheromone.',
    roles: ['read', 'submitter'],
    params: IdParams,
    reply: PheromoneReplySchema,
    errors: [404],
    endpoint: 'field.get',
  }),
  forward({
    method: 'POST',
    url: '/api/pheromones/:id/claim',
    tag: 'field',
    summary: 'Claim a pheromone as `http:<token name>` (first responder wins).',
    roles: ['submitter'],
    params: IdParams,
    reply: FieldClaimReplySchema,
    errors: [404],
    endpoint: 'field.claim',
    input: (ctx) => ({ v: 1, id: ctx.params.id, by: byToken(ctx) }),
  }),
  forward({
    method: 'POST',
    url: '/api/pheromones/:id/release',
    tag: 'field',
    summary: 'Release this token’s claim.',
    roles: ['submitter'],
    params: IdParams,
    reply: PheromoneReplySchema,
    errors: [404, 409],
    endpoint: 'field.release',
    input: (ctx) => ({ v: 1, id: ctx.params.id, by: byToken(ctx) }),
  }),
  forward({
    method: 'POST',
    url: '/api/pheromones/:id/promote',
    tag: 'field',
    summary: 'Turn an unclaimed pheromone into a task.',
    roles: [],
    params: IdParams,
    body: FieldPromoteRequestSchema.omit({ v: true, id: true }).optional(),
    reply: PheromoneReplySchema,
    errors: [404, 409],
    endpoint: 'field.promote',
  }),
  forward({
    method: 'DELETE',
    url: '/api/pheromones/:id',
    tag: 'field',
    summary: 'Remove a pheromone from the field.',
    roles: [],
    params: IdParams,
    reply: PheromoneReplySchema,
    errors: [404],
    endpoint: 'field.remove',
    input: (ctx) => ({ v: 1, id: ctx.params.id, by: byToken(ctx) }),
  }),
];
