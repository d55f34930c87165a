/**
 * @module config
 * The hub's configuration: one zod schema that validates flags and environment together and
 * documents every option once (meaning, unit, default). Invalid configuration is reported as a
 * structured error before anything starts.
 */
import { z } from 'zod';
import { DEFAULT_DLQ_LIMITS } from '../bus/provision.js';
import { fromZodError } from '../protocol/errors.js';
import { MessageRetentionOverridesSchema } from '../protocol/message.js';
import { DEFAULT_DATA_DIR } from './hub-file.js';

const ms = (def: number, what: string) =>
  z.coerce.number().int().positive().default(def).describe(`${what} (ms)`);

export const HubConfigSchema = z.object({
  natsUrl: z
    .string()
    .regex(/^(nats|tls|ws|wss):\/\/[^\s]+$/, 'must be a nats:// (or tls://) URL')
    .optional()
    .describe('NATS server URL; when absent the hub spawns and supervises a local nats-server'),
  dataDir: z
    .string()
    .min(1)
    .default(DEFAULT_DATA_DIR)
    .describe(
      'directory for the embedded nats-server store, and hub.json, which tells the CLI how to reach this hub',
    ),
  natsPort: z.coerce
    .number()
    .int()
    .min(1)
    .max(65535)
    .default(4223)
    .describe('port of the embedded nats-server (4223, not 4222, so it never collides with a system one)'),
  prefix: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be lowercase letters, digits, _ or -')
    .default('agentcom')
    .describe('subject/stream/bucket prefix, so two deployments can share a NATS account'),
  hubId: z.string().min(1).max(64).optional().describe('this hub instance id (default: host-pid)'),
  authDir: z
    .string()
    .min(1)
    .optional()
    .describe(
      'auth directory (e.g. deploy/nats): NATS users and permissions; the hub connects with its hub.nk and runs the embedded server with its nats-server.conf. Absent: no authentication',
    ),
  http: z
    .enum(['on', 'off'])
    .default('on')
    .describe('the HTTP gateway (REST API, event stream, /metrics; docs/gateway.md) on every hub'),
  httpHost: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe('address the gateway binds (0.0.0.0 for every interface; it requires bearer tokens)'),
  httpPort: z.coerce
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(4280)
    .describe('port of the gateway (0: any free port); a port in use leaves this hub without one, logged'),
  heartbeatIntervalMs: ms(5_000, 'interval at which agents are expected to heartbeat'),
  missedBeats: z.coerce
    .number()
    .int()
    .min(1)
    .default(3)
    .describe('missed heartbeats before an agent is offline'),
  acceptTimeoutMs: ms(30_000, 'time an agent has to accept an assignment before it is reclaimed'),
  progressTimeoutMs: ms(300_000, 'time without progress after which a working task counts as stuck'),
  blockedTimeoutMs: ms(600_000, 'time a blocked task waits before it may be reassigned'),
  sweepIntervalMs: ms(1_000, 'safety-net sweep for stuck, overdue and timed-out tasks'),
  leaseTtlMs: ms(5_000, 'scheduler lease lifetime; another hub takes over after it expires'),
  retentionMs: ms(
    7 * 24 * 60 * 60_000,
    'how long a finished task (done, failed, dead, cancelled) is kept after it finished, default 7 days',
  ),
  retentionCount: z.coerce
    .number()
    .int()
    .min(1)
    .default(50_000)
    .describe('finished tasks kept at most; beyond it the oldest are removed first'),
  dlqMaxAgeMs: ms(DEFAULT_DLQ_LIMITS.maxAgeMs, 'age at which a dead letter is discarded, default 30 days'),
  dlqMaxMsgs: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_DLQ_LIMITS.maxMsgs)
    .describe('dead letters kept at most, default 100,000; past it the oldest go'),
  dlqMaxBytes: z.coerce
    .number()
    .int()
    .min(1)
    .optional()
    .describe(
      'size of the whole dead-letter queue in bytes, no default; nats-server reserves this much of its JetStream storage for the DLQ',
    ),
  statusIntervalMs: ms(5_000, 'period of the bus status gauge'),
  backupDir: z
    .string()
    .min(1)
    .optional()
    .describe('take scheduled backups of every stream and bucket into this directory (none without it)'),
  backupIntervalMs: ms(6 * 60 * 60_000, 'period of the scheduled backups, default 6 hours'),
  backupKeep: z.coerce
    .number()
    .int()
    .min(1)
    .default(7)
    .describe('scheduled backups kept; older ones are deleted'),
  replicas: z.coerce
    .number()
    .int()
    .refine((n) => n === 1 || n === 3 || n === 5, 'must be 1, 3 or 5')
    .default(1)
    .describe(
      'copies of every stream and bucket; 3 (or 5) on a nats-server cluster (deploy/nats/cluster), 1 on a single server',
    ),
  messageRetention: z
    .preprocess((v) => (typeof v === 'string' ? parseJsonOrSelf(v) : v), MessageRetentionOverridesSchema)
    .default({})
    .describe(
      'what messaging keeps per kind, as JSON, e.g. {"direct":{"maxMessages":100,"maxAgeMs":604800000}}; kinds and fields left out keep their defaults (docs/protocol.md §11d)',
    ),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** A JSON text's value, or the text itself when it is not JSON (the schema then says what is wrong). */
function parseJsonOrSelf(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

export type HubConfig = z.infer<typeof HubConfigSchema>;

/** Environment variable for each option (flags win over the environment). */
export const ENV_VARS: Record<keyof HubConfig, string> = {
  natsUrl: 'NATS_URL',
  dataDir: 'AGENTCOM_DATA_DIR',
  natsPort: 'AGENTCOM_NATS_PORT',
  prefix: 'AGENTCOM_PREFIX',
  hubId: 'AGENTCOM_HUB_ID',
  authDir: 'AGENTCOM_AUTH_DIR',
  http: 'AGENTCOM_HTTP',
  httpHost: 'AGENTCOM_HTTP_HOST',
  httpPort: 'AGENTCOM_HTTP_PORT',
  heartbeatIntervalMs: 'AGENTCOM_HEARTBEAT_INTERVAL_MS',
  missedBeats: 'AGENTCOM_MISSED_BEATS',
  acceptTimeoutMs: 'AGENTCOM_ACCEPT_TIMEOUT_MS',
  progressTimeoutMs: 'AGENTCOM_PROGRESS_TIMEOUT_MS',
  blockedTimeoutMs: 'AGENTCOM_BLOCKED_TIMEOUT_MS',
  sweepIntervalMs: 'AGENTCOM_SWEEP_INTERVAL_MS',
  leaseTtlMs: 'AGENTCOM_LEASE_TTL_MS',
  retentionMs: 'AGENTCOM_RETENTION_MS',
  retentionCount: 'AGENTCOM_RETENTION_COUNT',
  dlqMaxAgeMs: 'AGENTCOM_DLQ_MAX_AGE_MS',
  dlqMaxMsgs: 'AGENTCOM_DLQ_MAX_MSGS',
  dlqMaxBytes: 'AGENTCOM_DLQ_MAX_BYTES',
  statusIntervalMs: 'AGENTCOM_STATUS_INTERVAL_MS',
  backupDir: 'AGENTCOM_BACKUP_DIR',
  backupIntervalMs: 'AGENTCOM_BACKUP_INTERVAL_MS',
  backupKeep: 'AGENTCOM_BACKUP_KEEP',
  replicas: 'AGENTCOM_REPLICAS',
  messageRetention: 'AGENTCOM_MESSAGE_RETENTION',
  logLevel: 'AGENTCOM_LOG_LEVEL',
};

/** Merge environment and flags (flags win), validate, and return the config or a structured error. */
export function loadHubConfig(
  flags: Partial<Record<keyof HubConfig, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
): HubConfig {
  const raw: Record<string, unknown> = {};
  for (const [key, envName] of Object.entries(ENV_VARS)) {
    const fromEnv = env[envName];
    if (fromEnv !== undefined && fromEnv !== '') raw[key] = fromEnv;
  }
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) raw[key] = value;
  const parsed = HubConfigSchema.safeParse(raw);
  if (!parsed.success) throw fromZodError(parsed.error, 'hub configuration');
  return parsed.data;
}
