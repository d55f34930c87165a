/**
 * @module field
 * The stigmergy field (seed 001): pheromones, typed signals agents emit into a shared environment,
 * observe by pattern (pushed, never polled), claim atomically (first responder wins) and let expire.
 *
 * A pheromone lives in the `<p>_field` bucket under the key `<id>.<type>` (the type's dots are key
 * levels), so a NATS key filter selects by type: {@link patternKeyFilter}. Every change is one
 * compare-and-set write by the hub holding the lease, then one audit event on
 * `<p>.field.audit.<id>.<type>` (stream `<P>_FIELD`). Names follow the seed's, in this protocol's
 * camelCase: `claimedBy`/`claimedAt` are the seed's `claimed_by`/`claimed_at`; `ttl` is in seconds
 * as in the seed. Imports zod only.
 */
import { z } from 'zod';
import { DURATION_PATTERN, parseDurationMs } from './duration.js';
import { AgentIdSchema, QueueNameSchema, TaskIdSchema } from './ids.js';
import { EpochMsSchema, PrioritySchema } from './task.js';

const TYPE_TOKEN = /^[A-Za-z0-9_-]{1,32}$/;
export const TYPE_MAX_TOKENS = 8;
export const PAYLOAD_MAX_JSON = 64 * 1024;
/** The longest ttl: a year. */
export const TTL_MAX_S = 366 * 86_400;

export const PheromoneTypeSchema = z
  .string()
  .max(200)
  .refine((t) => {
    const parts = t.split('.');
    return parts.length <= TYPE_MAX_TOKENS && parts.every((p) => TYPE_TOKEN.test(p));
  }, `type must be 1-${TYPE_MAX_TOKENS} dot-separated tokens of A-Z a-z 0-9 _ - (e.g. request.code.review)`)
  .describe('Dotted type, e.g. `request.code.review`, `error.timeout`, `completion.review`.');

export const PheromoneIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'pheromone id must be 1-64 characters of A-Z a-z 0-9 _ -')
  .describe('The pheromone’s id (assigned by the hub).');

/**
 * A subscription pattern. The seed's patterns map onto NATS subject wildcards: `*` alone means
 * every type; otherwise each dot-separated token is a literal, `*` (exactly one token) or, last,
 * `>` (one or more tokens). So `error.*` matches `error.timeout` but not `error.db.timeout` (write
 * `error.>` for that), and `*.completion` matches `task.completion`. A glob would let `*` span dots;
 * NATS tokens do not, and the server filters by them.
 */
export const PheromonePatternSchema = z
  .string()
  .max(200)
  .refine((p) => {
    const parts = p.split('.');
    return (
      parts.length <= TYPE_MAX_TOKENS &&
      parts.every((t, i) => t === '*' || (t === '>' && i === parts.length - 1) || TYPE_TOKEN.test(t))
    );
  }, 'pattern must be dot-separated tokens, each a type token, * (one token) or, last, > (one or more); * alone is every type')
  .describe('Which types: `*` (all), `error.*`, `*.completion`, `request.>`.');

/** A pattern as a NATS filter over the type's tokens. */
export function patternTypeFilter(pattern: string): string {
  return pattern === '*' ? '>' : pattern;
}

/** The key filter in the `<p>_field` bucket (keys are `<id>.<type>`) for a pattern. */
export function patternKeyFilter(pattern: string): string {
  return `*.${patternTypeFilter(pattern)}`;
}

/** Whether `type` matches `pattern` (the same rule the server applies to key filters). */
export function typeMatches(type: string, pattern: string): boolean {
  if (pattern === '*' || pattern === '>') return true;
  const t = type.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length || (p[i] !== '*' && p[i] !== t[i])) return false;
  }
  return t.length === p.length;
}

/** A ttl: seconds (the seed's unit, fractions allowed), or a duration such as "30s" or "4h". */
export const TtlSchema = z
  .union([
    z.number().positive().max(TTL_MAX_S),
    z
      .string()
      .max(32)
      .regex(DURATION_PATTERN, 'must be seconds, or a duration such as 30s, 10m or 4h')
      .refine((s) => {
        const ms = parseDurationMs(s) ?? 0;
        return ms > 0 && ms <= TTL_MAX_S * 1000;
      }, 'must be more than 0 and at most 366 days'),
  ])
  .describe('Time to live: seconds (as in seed 001) or a duration ("30s", "4h"). Absent or null: permanent.');

/** A ttl in ms. */
export function ttlMs(ttl: number | string): number {
  return typeof ttl === 'number' ? Math.round(ttl * 1000) : (parseDurationMs(ttl) ?? 0);
}

export const PayloadSchema = z
  .record(z.string(), z.unknown())
  .refine((m) => JSON.stringify(m).length <= PAYLOAD_MAX_JSON, {
    message: `payload must serialize to at most ${PAYLOAD_MAX_JSON} characters`,
  })
  .describe('Signal-specific JSON object (at most 64 KiB serialized).');

export const FIELD_EVENTS = ['emitted', 'claimed', 'released', 'expired', 'removed', 'promoted'] as const;
export const FieldEventSchema = z.enum(FIELD_EVENTS);
export type FieldEvent = z.infer<typeof FieldEventSchema>;

export const PheromoneSchema = z
  .object({
    v: z.literal(1),
    id: PheromoneIdSchema,
    type: PheromoneTypeSchema,
    selector: z
      .string()
      .max(256)
      .describe('Which targets the signal is for (free text, e.g. a CSS-like `file[name=main.py]`).'),
    payload: PayloadSchema,
    timestamp: EpochMsSchema.describe('When it was emitted (hub clock).'),
    source: z
      .string()
      .min(1)
      .max(64)
      .describe('Who emitted it, from the connection: the agent id, `hub`, or `task:<id>` for a completion.'),
    ttl: z.number().positive().nullable().describe('Time to live in seconds; null is permanent.'),
    expiresAt: EpochMsSchema.nullable().describe('timestamp + ttl; null for permanent pheromones.'),
    claimedBy: z.string().min(1).max(64).nullable().describe('Who holds the claim (seed: claimed_by).'),
    claimedAt: EpochMsSchema.nullable().describe('When the claim was taken (seed: claimed_at).'),
    taskId: TaskIdSchema.nullable().describe('The task it was promoted to, if any.'),
    event: FieldEventSchema.describe('The change this revision records (the audit event).'),
    eventAt: EpochMsSchema,
    eventBy: z.string().min(1).max(64).describe('Who caused the event: an agent id, `hub`, or an API label.'),
  })
  .describe(
    'A pheromone as stored (`<id>.<type>` in the field bucket) and audited. `expired` and `removed` are its last revision before its key is deleted.',
  );
export type Pheromone = z.infer<typeof PheromoneSchema>;

/** Who a trusted client acts as; on an agent's own subject the subject names it instead. */
const BySchema = z
  .string()
  .min(1)
  .max(64)
  .optional()
  .describe(
    'Trusted clients only: the label recorded as source or claimant (default `api`). Ignored on an agent’s subject.',
  );

export const FieldEmitRequestSchema = z
  .object({
    v: z.literal(1),
    by: BySchema,
    type: PheromoneTypeSchema,
    selector: z.string().max(256).default('').describe('Targeting (free text).'),
    payload: PayloadSchema.default({}),
    ttl: TtlSchema.nullable().optional(),
    idempotencyKey: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe(
        'A second emit of the same type with the same key from the same source returns the first pheromone (while it lives).',
      ),
  })
  .describe('field.emit: deposit a pheromone. The source is the caller (its subject), never the payload.');
export type FieldEmitRequest = z.infer<typeof FieldEmitRequestSchema>;
export type FieldEmitInput = z.input<typeof FieldEmitRequestSchema>;

export const FieldRefSchema = z
  .object({
    v: z.literal(1),
    id: PheromoneIdSchema,
    type: PheromoneTypeSchema.optional().describe('Its type, when known: saves the hub a lookup.'),
    by: BySchema,
  })
  .describe('field.get / field.claim / field.release / field.remove: which pheromone.');

export const FieldPromoteRequestSchema = z
  .object({
    v: z.literal(1),
    id: PheromoneIdSchema,
    queue: QueueNameSchema.optional().describe('The task’s queue (default "default").'),
    priority: PrioritySchema.optional(),
    title: z.string().min(1).max(200).optional().describe('Default: the pheromone’s type.'),
  })
  .describe(
    'field.promote: turn an unclaimed pheromone into a task (then claimed by `task:<id>`, `taskId` set); when the task is done the hub emits `completion.<type>` with its result.',
  );

export const PheromoneReplySchema = z
  .object({ v: z.literal(1), pheromone: PheromoneSchema })
  .describe('The pheromone after the operation.');

export const FieldClaimReplySchema = z
  .object({
    v: z.literal(1),
    claimed: z.boolean().describe('True when the caller holds the claim now (it won, or held it already).'),
    pheromone: PheromoneSchema,
  })
  .describe('field.claim: first responder wins; the others get claimed: false and the winner’s record.');

export const FieldListRequestSchema = z
  .object({
    v: z.literal(1),
    pattern: PheromonePatternSchema.default('*'),
    claimed: z.boolean().optional().describe('Only claimed (true) or unclaimed (false) pheromones.'),
    limit: z.int().min(1).max(1000).default(100),
    payloads: z
      .boolean()
      .optional()
      .describe('false: each record’s payload is sent as {} (a reader that needs none, a map, reads less).'),
  })
  .describe('field.list: active pheromones matching the pattern, newest first.');

export const FieldListReplySchema = z
  .object({
    v: z.literal(1),
    pheromones: z.array(PheromoneSchema),
    total: z.int().nonnegative().describe('Matching pheromones (all of them, beyond limit).'),
  })
  .describe('A page of active pheromones.');

export const FieldStatsReplySchema = z
  .object({
    v: z.literal(1),
    active: z.int().nonnegative().describe('Live pheromones nobody has claimed.'),
    claimed: z.int().nonnegative().describe('Live pheromones with a claim.'),
    expired: z.int().nonnegative().describe('Expiries in the audit trail (its retention bounds this).'),
    byType: z.record(z.string(), z.int().nonnegative()).describe('Live pheromones per type.'),
  })
  .describe('field.stats: the seed’s "3 active | 12 claimed | 5 expired".');

export const FieldHistoryRequestSchema = z
  .object({
    v: z.literal(1),
    pattern: PheromonePatternSchema.default('*'),
    since: EpochMsSchema.optional().describe('From this time (default: the start of the trail).'),
    until: EpochMsSchema.optional(),
    limit: z.int().min(1).max(1000).default(100),
    payloads: z
      .boolean()
      .optional()
      .describe('false: each record’s payload is sent as {} (a reader that needs none, a map, reads less).'),
  })
  .describe('field.history: audit events of matching types, oldest first.');

export const FieldHistoryReplySchema = z
  .object({
    v: z.literal(1),
    events: z.array(PheromoneSchema.extend({ seq: z.int().positive().describe('Audit stream sequence.') })),
    more: z.boolean().describe('More events match beyond limit (ask again with since after the last).'),
  })
  .describe('Audit events, oldest first.');

/** Observations one agent may hold at once (its consumers are named by slot, so a new one replaces the old). */
export const OBSERVE_SLOTS = 16;

export const FieldObserveRequestSchema = z
  .object({
    v: z.literal(1),
    pattern: PheromonePatternSchema,
    deliverSubject: z
      .string()
      .max(200)
      .regex(/^_INBOX(\.[A-Za-z0-9_-]+)+$/, 'deliverSubject must be a reply inbox subject (_INBOX.…)')
      .describe(
        "Where the server pushes the field's records: an agent's must be under its own `_INBOX.<id>.`.",
      ),
    slot: z
      .int()
      .min(0)
      .max(OBSERVE_SLOTS - 1)
      .default(0)
      .describe('Which of the caller’s observations this is (0-15); a new one in a slot replaces the old.'),
    startSeq: z
      .int()
      .positive()
      .optional()
      .describe(
        'Resume: deliver every record at or after this stream sequence (default: the live ones, then changes).',
      ),
  })
  .describe(
    'field.observe: have the server push the live pheromones matching `pattern`, then every change, to `deliverSubject` (a consumer on KV_<p>_field the hub creates; §11b).',
  );
export type FieldObserveRequest = z.infer<typeof FieldObserveRequestSchema>;

export const FieldObserveReplySchema = z
  .object({
    v: z.literal(1),
    consumer: z
      .string()
      .describe('The consumer delivering (removed by the server 30 s after nobody listens).'),
    startedAt: z
      .int()
      .nonnegative()
      .describe('The bucket’s last sequence when it was created: records at or below it were live before.'),
    heartbeatMs: z
      .int()
      .positive()
      .describe('The consumer’s idle heartbeat: silence longer than 3× this means resume.'),
  })
  .describe('The observation: what to expect on deliverSubject.');

/** Which types an agent may emit and claim (its permissions; `agentcom agent add --emit/--claim`). */
export const FieldGrantSchema = z.object({
  emit: z.array(PheromonePatternSchema).max(32).default([]),
  claim: z.array(PheromonePatternSchema).max(32).default([]),
});
export type FieldGrant = z.infer<typeof FieldGrantSchema>;

export const FieldObserversRequestSchema = z
  .object({
    v: z.literal(1),
    agent: AgentIdSchema.optional().describe('Only this agent’s observations.'),
    type: PheromoneTypeSchema.optional().describe('Only observations whose pattern matches this type.'),
    limit: z.int().min(1).max(1000).default(500),
  })
  .describe('field.observers: who observes the field, and which patterns.');

export const FieldObserverSchema = z
  .object({
    consumer: z.string().max(300).describe('The consumer on KV_<p>_field delivering the observation.'),
    agentId: z
      .string()
      .max(64)
      .nullable()
      .describe(
        'The observing agent (from the consumer’s name `fobs-<agent>-<slot>`); null for a trusted client.',
      ),
    slot: z
      .int()
      .min(0)
      .max(OBSERVE_SLOTS - 1)
      .nullable()
      .describe('The agent’s observation slot (0-15); null for a trusted client.'),
    pattern: z
      .string()
      .max(200)
      .describe('The pattern observed (from the consumer’s filter subject; `*` is every type).'),
    active: z
      .boolean()
      .describe(
        'Someone listens on its deliver subject now (false: it is removed 30 s after the last listener).',
      ),
    pending: z.int().nonnegative().describe('Records not yet delivered to it.'),
  })
  .describe('One observation of the field (a consumer field.observe made).');
export type FieldObserver = z.infer<typeof FieldObserverSchema>;

export const FieldObserversReplySchema = z
  .object({
    v: z.literal(1),
    observers: z
      .array(FieldObserverSchema)
      .describe('Sorted by agent, then slot; trusted clients’ observations last.'),
    total: z.int().nonnegative().describe('Matching observations (all of them, beyond limit).'),
    truncated: z
      .boolean()
      .describe('The hub stopped listing consumers at its scan bound: there may be more than total.'),
  })
  .describe('field.observers: the observations of the field (agent, slot, pattern).');
