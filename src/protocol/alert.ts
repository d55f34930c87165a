/**
 * @module alert
 * Alerting (docs/operations.md, "Alerts"): the rules, their configuration (config bucket, key
 * `alerts`; absent, the defaults apply; every hub follows a change at once), the state of each rule
 * (bucket `<p>_alerts`, key `rule.<name>`, written compare-and-set by the hub holding the lease and
 * by `alert.ack`), the event published on `<p>.alert.<rule>` and POSTed to webhooks, and the API's
 * requests and replies. Schemas only: what each rule measures is actors/alerts/conditions.ts, the
 * firing, cooldown and acknowledgement rules are actors/alerts/state.ts.
 *
 * Not guaranteed: an event may be delivered twice (a new leader redelivers what the last one had
 * not finished delivering); its `id` is the same both times, so receivers can drop the copy.
 */
import { z } from 'zod';
import { EpochMsSchema } from './task.js';

// --- Rules ---

export const ALERT_RULES = [
  'queue_growing',
  'high_failure_rate',
  'stuck_tasks',
  'no_agents_online',
  'high_error_rate',
  'unservable_tasks',
] as const;
export const AlertRuleSchema = z
  .enum(ALERT_RULES)
  .describe(
    'queue_growing, high_failure_rate, stuck_tasks, no_agents_online, high_error_rate, unservable_tasks.',
  );
export type AlertRule = z.infer<typeof AlertRuleSchema>;

export const AlertSeveritySchema = z.enum(['info', 'warning', 'critical']).describe('How urgent.');
export type AlertSeverity = z.infer<typeof AlertSeveritySchema>;

const MAX_MS = 7 * 86_400_000;
const ms = (min: number, what: string) => z.int().min(min).max(MAX_MS).describe(what);

/** What every rule has. Defaults differ per rule, so they are filled in by {@link RULE_DEFAULTS}. */
const common = {
  enabled: z.boolean().describe('Whether the rule is evaluated (a disabled rule that was firing resolves).'),
  forMs: ms(0, 'How long the condition must hold before the rule fires, ms (0: at the first sample).'),
  cooldownMs: ms(
    100,
    'While the condition keeps holding, a firing rule notifies again at most once per this long, ms; a rule that resolves and fires again within it waits for the rest of it.',
  ),
  severity: AlertSeveritySchema,
};

const RULE_SHAPES = {
  queue_growing: z.strictObject({
    ...common,
    growthTasks: z
      .int()
      .min(1)
      .describe('Fires when the number of queued tasks rose by at least this many over `windowMs`.'),
    windowMs: ms(1_000, 'The window over which the growth is measured, ms.'),
  }),
  high_failure_rate: z.strictObject({
    ...common,
    failureRatio: z
      .number()
      .gt(0)
      .max(1)
      .describe(
        'Fires when failed and dead tasks are at least this share (0-1] of the tasks finished (done, failed, dead) within `windowMs`.',
      ),
    minFinished: z
      .int()
      .min(1)
      .describe('Not evaluated while fewer tasks than this finished within the window.'),
    windowMs: ms(1_000, 'The window, ms.'),
  }),
  stuck_tasks: z.strictObject({
    ...common,
    minTasks: z.int().min(1).describe('Fires when at least this many tasks are stuck.'),
    noProgressMs: ms(
      1_000,
      'A working task is stuck after this long without a sign of life (accepted, progress), ms.',
    ),
    assignedMs: ms(1_000, 'An assigned task is stuck when its agent has not accepted it for this long, ms.'),
  }),
  no_agents_online: z.strictObject({
    ...common,
    minQueued: z
      .int()
      .min(0)
      .describe('Fires when no agent is online while at least this many tasks are queued (0: always).'),
  }),
  high_error_rate: z.strictObject({
    ...common,
    deadLettersPerMinute: z
      .number()
      .gt(0)
      .describe(
        'Fires when messages reach the dead-letter queue (poison or invalid traffic, handlers out of retries) at this rate or more, per minute over `windowMs`.',
      ),
    windowMs: ms(1_000, 'The window, ms.'),
  }),
  unservable_tasks: z.strictObject({
    ...common,
    minTasks: z
      .int()
      .min(1)
      .describe(
        'Fires when at least this many due queued tasks need a queue and capabilities that no online agent offers (only while some agent is online: with none, no_agents_online says so).',
      ),
  }),
} as const;

export type AlertRuleConfigs = { [R in AlertRule]: z.infer<(typeof RULE_SHAPES)[R]> };
export type AlertRuleConfig = AlertRuleConfigs[AlertRule];

const MINUTE = 60_000;
const COOLDOWN_MS = 15 * MINUTE;

/** The built-in configuration of each rule. */
export const RULE_DEFAULTS: Readonly<AlertRuleConfigs> = {
  queue_growing: {
    enabled: true,
    forMs: 0,
    cooldownMs: COOLDOWN_MS,
    severity: 'warning',
    growthTasks: 50,
    windowMs: 5 * MINUTE,
  },
  high_failure_rate: {
    enabled: true,
    forMs: 0,
    cooldownMs: COOLDOWN_MS,
    severity: 'critical',
    failureRatio: 0.5,
    minFinished: 10,
    windowMs: 15 * MINUTE,
  },
  stuck_tasks: {
    enabled: true,
    forMs: 0,
    cooldownMs: COOLDOWN_MS,
    severity: 'warning',
    minTasks: 1,
    noProgressMs: 10 * MINUTE,
    assignedMs: 2 * MINUTE,
  },
  no_agents_online: {
    enabled: true,
    forMs: MINUTE,
    cooldownMs: COOLDOWN_MS,
    severity: 'critical',
    minQueued: 1,
  },
  high_error_rate: {
    enabled: true,
    forMs: 0,
    cooldownMs: COOLDOWN_MS,
    severity: 'warning',
    deadLettersPerMinute: 5,
    windowMs: 5 * MINUTE,
  },
  unservable_tasks: {
    enabled: true,
    forMs: MINUTE,
    cooldownMs: COOLDOWN_MS,
    severity: 'warning',
    minTasks: 1,
  },
};

/** The field `agentcom alerts set <rule> --threshold` changes: the rule's main threshold. */
export const THRESHOLD_FIELD = {
  queue_growing: 'growthTasks',
  high_failure_rate: 'failureRatio',
  stuck_tasks: 'minTasks',
  no_agents_online: 'minQueued',
  high_error_rate: 'deadLettersPerMinute',
  unservable_tasks: 'minTasks',
} as const satisfies { [R in AlertRule]: keyof AlertRuleConfigs[R] };

// --- Webhooks ---

/** What `alert.config.get` shows instead of a webhook's secret; sent back in a set, it keeps the stored one. */
export const REDACTED_SECRET = '<redacted>';

export const WebhookSchema = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, hostname: z.regexes.hostname })
      .max(2_000)
      .describe('Where events are POSTed (http or https).'),
    secret: z
      .string()
      .min(8)
      .max(256)
      .optional()
      .describe(
        'Shared secret: each POST carries `X-AgentCom-Signature: sha256=<hex HMAC-SHA256 of the body>`. Never shown by alert.config.get.',
      ),
    rules: z
      .array(AlertRuleSchema)
      .min(1)
      .max(ALERT_RULES.length)
      .optional()
      .describe('Only events of these rules (absent: all).'),
  })
  .describe('A webhook receiving alert events as JSON POSTs.');
export type Webhook = z.infer<typeof WebhookSchema>;

export const DeliverySchema = z
  .strictObject({
    attempts: z.int().min(1).max(20).default(6).describe('POSTs per event and webhook before giving up.'),
    timeoutMs: z.int().min(100).max(60_000).default(5_000).describe('Timeout of each POST, ms.'),
    backoffMinMs: z.int().min(10).max(MAX_MS).default(1_000).describe('Delay before the first retry, ms.'),
    backoffMaxMs: z
      .int()
      .min(10)
      .max(MAX_MS)
      .default(60_000)
      .describe('Longest delay between retries, ms (each retry doubles it, minus up to 20% jitter).'),
  })
  .refine((d) => d.backoffMaxMs >= d.backoffMinMs, {
    message: 'backoffMaxMs must be >= backoffMinMs',
    path: ['backoffMaxMs'],
  })
  .describe(
    'Webhook delivery: a POST answered 2xx is delivered; any other answer, a timeout or a network error is retried with exponential backoff.',
  );
export type Delivery = z.infer<typeof DeliverySchema>;

// --- The configuration document ---

/** One rule's settings as stored: any of its fields; the rest are its defaults. */
const ruleOverride = <R extends AlertRule>(rule: R) =>
  RULE_SHAPES[rule].partial().optional().describe(`Settings of ${rule} (omitted fields: the defaults).`);

export const AlertConfigSchema = z
  .strictObject({
    v: z.literal(1).describe('Schema version.'),
    sampleIntervalMs: z
      .int()
      .min(100)
      .max(600_000)
      .default(5_000)
      .describe('How often the hub holding the lease samples the queue, the agents and the DLQ, ms.'),
    rules: z
      .strictObject({
        queue_growing: ruleOverride('queue_growing'),
        high_failure_rate: ruleOverride('high_failure_rate'),
        stuck_tasks: ruleOverride('stuck_tasks'),
        no_agents_online: ruleOverride('no_agents_online'),
        high_error_rate: ruleOverride('high_error_rate'),
        unservable_tasks: ruleOverride('unservable_tasks'),
      })
      .prefault({})
      .describe('Per rule: what differs from the defaults.'),
    webhooks: z
      .array(WebhookSchema)
      .max(16)
      .default([])
      .refine((w) => new Set(w.map((h) => h.url)).size === w.length, 'webhook urls must be distinct')
      .describe('Where events are POSTed.'),
    delivery: DeliverySchema.prefault({}),
  })
  .describe('Alert rules, thresholds, cooldowns and webhooks (config bucket, key `alerts`).');
export type AlertConfig = z.infer<typeof AlertConfigSchema>;
export type AlertConfigInput = z.input<typeof AlertConfigSchema>;

/** Config-bucket key of the alert configuration. */
export const ALERTS_KEY = 'alerts';

export const DEFAULT_ALERT_CONFIG: AlertConfig = AlertConfigSchema.parse({ v: 1 });

/** One rule's settings with its defaults filled in. */
export function ruleConfig<R extends AlertRule>(config: AlertConfig, rule: R): AlertRuleConfigs[R] {
  return { ...RULE_DEFAULTS[rule], ...(config.rules[rule] as Partial<AlertRuleConfigs[R]> | undefined) };
}

/** Every rule's settings with the defaults filled in. */
export function effectiveRules(config: AlertConfig): AlertRuleConfigs {
  return Object.fromEntries(ALERT_RULES.map((r) => [r, ruleConfig(config, r)])) as AlertRuleConfigs;
}

/** The configuration with every webhook secret replaced by {@link REDACTED_SECRET}. */
export function redactAlertConfig(config: AlertConfig): AlertConfig {
  return {
    ...config,
    webhooks: config.webhooks.map((w) => (w.secret ? { ...w, secret: REDACTED_SECRET } : w)),
  };
}

// --- State (bucket `<p>_alerts`, key `rule.<name>`) ---

export const alertStateKey = (rule: AlertRule): string => `rule.${rule}`;
export const ALERT_STATE_KEYS = 'rule.*';

export const AlertStatusSchema = z
  .enum(['ok', 'firing', 'acknowledged'])
  .describe(
    'ok (the condition does not hold, or holds for less than forMs), firing, acknowledged (firing, re-notification silenced until it resolves).',
  );
export type AlertStatus = z.infer<typeof AlertStatusSchema>;

export const AlertEventSchema = z
  .object({
    v: z.literal(1).describe('Schema version.'),
    id: z
      .string()
      .min(1)
      .max(128)
      .describe(
        'Unique per notification: `<rule>.<firing>.<n>` (the n-th notification of the rule’s firing-th episode) or `<rule>.<firing>.resolved`. A redelivery keeps it.',
      ),
    rule: AlertRuleSchema,
    status: z.enum(['firing', 'resolved']).describe('firing (first or repeated notification) or resolved.'),
    severity: AlertSeveritySchema,
    message: z.string().max(1_000).describe('What is wrong, for people.'),
    value: z.number().describe('What the rule measured (its unit is the threshold’s).'),
    threshold: z.number().describe('The threshold in force.'),
    firing: z.int().min(1).describe('Which episode of this rule (the state’s `firing` count).'),
    at: EpochMsSchema.describe('When the hub decided it.'),
  })
  .describe('An alert fired or resolved: published on `<p>.alert.<rule>` and POSTed to the webhooks.');
export type AlertEvent = z.infer<typeof AlertEventSchema>;

/** The most undelivered events a rule keeps (the oldest are dropped beyond). */
export const OUTBOX_MAX = 16;

export const AlertStateSchema = z
  .object({
    v: z.literal(1).describe('Schema version.'),
    rule: AlertRuleSchema,
    status: AlertStatusSchema,
    pendingSince: EpochMsSchema.nullable().describe(
      'While ok: since when the condition has held (it fires after forMs); null when it does not hold.',
    ),
    since: EpochMsSchema.nullable().describe('When the current episode started firing; null while ok.'),
    lastNotifiedAt: EpochMsSchema.nullable().describe(
      'When a `firing` event was last sent (any episode): the cooldown counts from it.',
    ),
    notifications: z
      .int()
      .min(0)
      .describe('`firing` events sent in the current episode (a resolved event is sent only after one).'),
    value: z.number().nullable().describe('The last value measured (null: not measured yet).'),
    threshold: z.number().nullable().describe('The threshold in force at the last sample.'),
    message: z.string().max(1_000).describe('The last message.'),
    ackedBy: z.string().max(64).nullable().describe('Who acknowledged the current episode.'),
    ackedAt: EpochMsSchema.nullable(),
    firing: z.int().min(0).describe('Episodes so far: rises by one each time the rule starts firing.'),
    resolvedAt: EpochMsSchema.nullable().describe('When the last episode resolved.'),
    checkedAt: EpochMsSchema.nullable().describe('When this state was last written by a sample.'),
    outbox: z
      .array(AlertEventSchema)
      .max(OUTBOX_MAX)
      .describe(
        'Events decided but not yet delivered to every webhook; a hub that takes over delivers them.',
      ),
  })
  .describe('The state of one alert rule (bucket `<p>_alerts`, key `rule.<name>`).');
export type AlertState = z.infer<typeof AlertStateSchema>;

/** The state of a rule never evaluated. */
export function initialAlertState(rule: AlertRule): AlertState {
  return {
    v: 1,
    rule,
    status: 'ok',
    pendingSince: null,
    since: null,
    lastNotifiedAt: null,
    notifications: 0,
    value: null,
    threshold: null,
    message: '',
    ackedBy: null,
    ackedAt: null,
    firing: 0,
    resolvedAt: null,
    checkedAt: null,
    outbox: [],
  };
}

// --- API ---

export const AlertViewSchema = AlertStateSchema.omit({ outbox: true })
  .extend({
    enabled: z.boolean().describe('Whether the rule is evaluated now.'),
    severity: AlertSeveritySchema,
    cooldownMs: z.int().describe('The rule’s cooldown now, ms.'),
    undelivered: z.int().min(0).describe('Events still being delivered to webhooks.'),
  })
  .describe('One rule as `alert.list` shows it.');
export type AlertView = z.infer<typeof AlertViewSchema>;

export const AlertListReplySchema = z
  .object({ v: z.literal(1), alerts: z.array(AlertViewSchema) })
  .describe('Every rule, in rule order.');
export type AlertListReply = z.infer<typeof AlertListReplySchema>;

export const AlertAckRequestSchema = z
  .object({
    v: z.literal(1),
    rule: AlertRuleSchema,
    by: z.string().min(1).max(64).optional().describe('Who acknowledges (default "api").'),
  })
  .describe('Acknowledge a firing rule: no further notifications until it resolves.');
export type AlertAckRequest = z.infer<typeof AlertAckRequestSchema>;

export const AlertReplySchema = z.object({ v: z.literal(1), alert: AlertViewSchema }).describe('One rule.');

export const AlertConfigReplySchema = z
  .object({
    v: z.literal(1),
    config: AlertConfigSchema.describe('The configuration in force (webhook secrets redacted).'),
    rules: z
      .record(AlertRuleSchema, z.record(z.string(), z.unknown()))
      .describe('Every rule’s settings with the defaults filled in.'),
    stored: z.boolean().describe('Whether a configuration is stored (false: the defaults apply).'),
  })
  .describe('The alert configuration.');
export type AlertConfigReply = z.infer<typeof AlertConfigReplySchema>;

export const AlertConfigSetRequestSchema = z
  .object({
    v: z.literal(1),
    config: AlertConfigSchema.describe(
      'The whole document (it replaces the stored one). A webhook secret given as "<redacted>" keeps the stored secret of that url.',
    ),
  })
  .describe('Replace the alert configuration.');
export type AlertConfigSetRequest = z.input<typeof AlertConfigSetRequestSchema>;
