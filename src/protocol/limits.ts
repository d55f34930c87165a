/**
 * @module limits
 * What one agent may send per second, and when its invalid traffic gets it suspended: the schema of
 * the hub's limits (docs/security.md, "Rate limits" and "Suspension"), with defaults, per-agent overrides and a whitelist.
 * The limits live in the config bucket (key `limits`, written by `agentcom limits set`) and every
 * hub follows changes at once; absent, the defaults apply.
 *
 * The rates apply to agents only. Trusted clients (hub and admin users) are not limited: they
 * hold full access by design.
 */
import { z } from 'zod';
import { AgentIdSchema } from './ids.js';

export const RateSchema = z
  .strictObject({
    perSecond: z.number().positive().max(1_000_000).describe('Sustained rate, per second.'),
    burst: z.int().min(1).max(1_000_000).describe('How many may arrive at once after a quiet period.'),
  })
  .describe('A token bucket: `burst` tokens, refilled at `perSecond`.');
export type RateLimit = z.infer<typeof RateSchema>;

const RatesSchema = z.strictObject({
  reports: RateSchema.describe(
    'Per agent: progress, blocked, unblocked and recovering reports. Reports that start or end an assignment (accepted, rejected, completed, failed) are never rate limited: at most one of each applies per assignment.',
  ),
  hellos: RateSchema.describe('Per agent: hellos (each provisions its inbox and writes its registration).'),
  submits: RateSchema.describe(
    'Per agent allowed to submit: task submissions, bus and API together (the API is refused beyond it, the bus deferred).',
  ),
  field: RateSchema.describe(
    'Per agent: stigmergy field emits, claims and releases (the API refuses beyond it with rate_limited).',
  ),
  observes: RateSchema.describe(
    'Per agent: field observations opened (each makes a consumer on the server; the SDK opens one per pattern, and again after a gap).',
  ),
  messages: RateSchema.describe(
    'Per agent: messaging requests (sends, mailbox reads and acks, channel changes); the API refuses beyond it with rate_limited.',
  ),
  refusals: RateSchema.describe(
    'Per agent: answers to its refused or malformed messages (inbox notices, dead letters). Beyond this rate they are dropped and only counted, so a flood cannot fill the inbox or the DLQ.',
  ),
});
export type Rates = z.infer<typeof RatesSchema>;
export type RateKind = keyof Rates;

export const DEFAULT_RATES: Rates = {
  reports: { perSecond: 50, burst: 200 },
  hellos: { perSecond: 1, burst: 10 },
  submits: { perSecond: 200, burst: 2_000 },
  refusals: { perSecond: 5, burst: 20 },
  field: { perSecond: 100, burst: 500 },
  observes: { perSecond: 1, burst: 32 },
  messages: { perSecond: 200, burst: 2_000 },
};

export const ViolationPolicySchema = z
  .strictObject({
    threshold: z
      .int()
      .min(1)
      .describe('Invalid messages within `windowMs` that suspend an agent (the original hub: 10 a minute).'),
    windowMs: z.int().min(1_000).describe('The sliding window in which violations are counted, ms.'),
    suspendMs: z.int().min(1_000).describe('First suspension, ms; each further one doubles it.'),
    maxSuspendMs: z.int().min(1_000).max(604_800_000).describe('Longest suspension, ms (at most 7 days).'),
  })
  .describe('When invalid traffic suspends an agent.');
export type ViolationPolicy = z.infer<typeof ViolationPolicySchema>;

export const DEFAULT_VIOLATION_POLICY: ViolationPolicy = {
  threshold: 10,
  windowMs: 60_000,
  suspendMs: 60_000,
  maxSuspendMs: 3_600_000,
};

export const LimitsSchema = z
  .object({
    v: z.literal(1).describe('Schema version.'),
    rates: RatesSchema.partial().default({}).describe('Defaults for every agent (omitted: built-in).'),
    overrides: z
      .record(AgentIdSchema, z.union([z.literal('unlimited'), RatesSchema.partial()]))
      .default({})
      .describe("Per agent: its own rates, or 'unlimited' (the whitelist)."),
    violations: ViolationPolicySchema.partial()
      .default({})
      .describe('Suspension policy (omitted: built-in).'),
    maxSubmitDeferMs: z
      .int()
      .min(0)
      .max(86_400_000)
      .optional()
      .describe(
        "How far ahead of its rate an agent's bus submissions are kept and deferred (default 60 s); beyond, they are refused and count as violations.",
      ),
  })
  .strict()
  .describe('Rate limits and the violation policy of a deployment (config bucket, key `limits`).');
export type Limits = z.infer<typeof LimitsSchema>;
export type LimitsInput = z.input<typeof LimitsSchema>;

export const DEFAULT_LIMITS: Limits = { v: 1, rates: {}, overrides: {}, violations: {} };
export const DEFAULT_MAX_SUBMIT_DEFER_MS = 60_000;

/** The rate of `kind` that applies to `agentId`; `null` when it is whitelisted. */
export function rateFor(limits: Limits, agentId: string, kind: RateKind): RateLimit | null {
  const o = (limits.overrides as Record<string, Limits['overrides'][keyof Limits['overrides']]>)[agentId];
  if (o === 'unlimited') return null;
  return o?.[kind] ?? limits.rates[kind] ?? DEFAULT_RATES[kind];
}

/** The suspension policy with the built-in defaults filled in. */
export function violationPolicy(limits: Limits): ViolationPolicy {
  return { ...DEFAULT_VIOLATION_POLICY, ...limits.violations };
}

/** Config-bucket key of the limits. */
export const LIMITS_KEY = 'limits';
/** Config-bucket key of one agent's suspension. */
export const suspensionKey = (agentId: string): string => `suspended.${agentId}`;
/** Matches every suspension key (KV watch filter). */
export const SUSPENSION_KEYS = 'suspended.*';

export const SuspensionSchema = z
  .object({
    v: z.literal(1).describe('Schema version.'),
    agentId: AgentIdSchema,
    at: z.int().nonnegative().describe('When it was suspended (epoch ms).'),
    until: z
      .int()
      .nonnegative()
      .describe('When the suspension ends by itself (epoch ms); `agentcom agent restore` ends it sooner.'),
    reason: z.string().max(500).describe('The last violation that counted.'),
    count: z.int().min(1).describe('Suspensions so far; each lasts twice the one before, up to the maximum.'),
  })
  .describe('An agent suspended for repeated invalid traffic (config bucket, key `suspended.<id>`).');
export type Suspension = z.infer<typeof SuspensionSchema>;
