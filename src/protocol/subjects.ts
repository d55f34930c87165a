/**
 * @module subjects
 * Every NATS subject, stream, consumer, KV bucket and service name AgentCom uses, derived from one
 * prefix (default `agentcom`) so that two deployments can share a NATS account. No other module
 * spells a subject inline. Stream names are the upper-cased prefix plus a role (`AGENTCOM_SUBMIT`);
 * bucket names are `<prefix>_<role>`. Agent ids must already be valid tokens (see ids.ts).
 */

import { AGENT_MESSAGING_OPS } from './message.js';

export const DEFAULT_PREFIX = 'agentcom';

/** A prefix is one subject token that is also valid inside stream, bucket and service names. */
const PREFIX_RE = /^[A-Za-z0-9_-]{1,32}$/;

/** The endpoints of the request/reply API, relative to `<prefix>.api.` (dots are subject levels). */
export const API_ENDPOINTS = [
  'task.submit',
  'task.get',
  'task.list',
  'task.cancel',
  'task.retry',
  'task.stats',
  'agent.list',
  'agent.remove',
  'agent.restore',
  'agent.suspend',
  'dlq.list',
  'dlq.get',
  'dlq.replay',
  'dlq.purge',
  'schedule.create',
  'schedule.list',
  'schedule.get',
  'schedule.pause',
  'schedule.resume',
  'schedule.remove',
  'schedule.trigger',
  'field.emit',
  'field.get',
  'field.claim',
  'field.release',
  'field.remove',
  'field.promote',
  'field.list',
  'field.stats',
  'field.history',
  'field.observe',
  'field.observers',
  'hub.pause',
  'hub.resume',
  'hub.control',
  'config.get',
  'config.set',
  'alert.list',
  'alert.ack',
  'alert.config.get',
  'alert.config.set',
  // Messaging: every one of its endpoints is an agent's too (message.ts).
  ...AGENT_MESSAGING_OPS,
] as const;
export type ApiEndpoint = (typeof API_ENDPOINTS)[number];

/** The kinds of per-agent subjects, `<prefix>.agent.<agentId>.<kind>`. */
export const AGENT_SUBJECT_KINDS = ['inbox', 'report', 'heartbeat', 'hello', 'goodbye'] as const;
export type AgentSubjectKind = (typeof AGENT_SUBJECT_KINDS)[number];

export type Names = ReturnType<typeof names>;

/**
 * All names for one deployment.
 *
 * @example
 * const n = names();            // prefix 'agentcom'
 * n.subjects.taskSubmit         // 'agentcom.task.submit'
 * n.streams.submit              // 'AGENTCOM_SUBMIT'
 * n.consumers.agentInbox('a1')  // 'inbox-a1'
 * n.subjects.agent('a1', 'report') // 'agentcom.agent.a1.report'
 * @throws Error when the prefix is not a single safe token.
 */
export function names(prefix: string = DEFAULT_PREFIX) {
  if (!PREFIX_RE.test(prefix)) {
    throw new Error(`invalid subject prefix ${JSON.stringify(prefix)}: use 1-32 of A-Z a-z 0-9 _ -`);
  }
  const p = prefix;
  const P = prefix.toUpperCase();
  const streams = {
    /** Task submissions (WorkQueue, file, dedupe window). */
    submit: `${P}_SUBMIT`,
    /** Assignments and cancels pushed to agents (WorkQueue, one durable per agent). */
    inbox: `${P}_INBOX`,
    /** Agent reports to the hub (WorkQueue). */
    reports: `${P}_REPORTS`,
    /** Dead letters (Limits). */
    dlq: `${P}_DLQ`,
    /** Captured max-deliveries advisories for the work-queue streams (WorkQueue). */
    advisories: `${P}_ADVISORIES`,
    /** The stigmergy field's audit trail: every emit, claim, release, expiry (Limits; field.ts). */
    field: `${P}_FIELD`,
    /** Agent messaging: direct, broadcast, channel and presence messages (Limits; message.ts). */
    messages: `${P}_MESSAGES`,
  } as const;
  const agent = (agentId: string, kind: AgentSubjectKind) => `${p}.agent.${agentId}.${kind}`;
  const agentAll = (kind: AgentSubjectKind) => `${p}.agent.*.${kind}`;
  const api = Object.fromEntries(API_ENDPOINTS.map((e) => [e, `${p}.api.${e}`])) as Record<
    ApiEndpoint,
    string
  >;
  return {
    prefix: p,
    subjects: {
      /** Everything of this deployment, for `nats sub`. */
      all: `${p}.>`,
      /** Submissions of trusted clients (hub and admin users); agents have their own subject. */
      taskSubmit: `${p}.task.submit`,
      /**
       * Submissions of one agent allowed to submit, optionally naming the queue (`.<queue>`, which
       * must be the payload's): the submitter is read from the subject, so an idempotency key is
       * scoped to it (task-id.ts) and its backlog is capped per subject; the queue token lets
       * permissions allow an agent some queues only.
       */
      taskSubmitAs: (submitter: string, queue?: string) =>
        queue === undefined ? `${p}.task.submit.${submitter}` : `${p}.task.submit.${submitter}.${queue}`,
      taskSubmitAll: `${p}.task.submit.*`,
      taskSubmitQueuedAll: `${p}.task.submit.*.*`,
      agent,
      agentAll,
      agentInbox: (agentId: string) => agent(agentId, 'inbox'),
      agentReport: (agentId: string) => agent(agentId, 'report'),
      agentHeartbeat: (agentId: string) => agent(agentId, 'heartbeat'),
      agentHello: (agentId: string) => agent(agentId, 'hello'),
      agentGoodbye: (agentId: string) => agent(agentId, 'goodbye'),
      busStatus: `${p}.status.bus`,
      /** Answered by every hub process while its connection is up (a standby probes the leader). */
      hubAlive: (hubId: string) => `${p}.hub.${hubId.replace(/[^A-Za-z0-9_-]/g, '_')}.alive`,
      /** Answered by every hub process at once (`agentcom doctor` lists the hubs and their clocks). */
      hubsAlive: `${p}.hubs.alive`,
      /** Each hub's own gauge (restarts, reconnects, event-loop lag, lease), every status interval. */
      hubStats: (hubId: string) => `${p}.hub.${hubId.replace(/[^A-Za-z0-9_-]/g, '_')}.stats`,
      hubStatsAll: `${p}.hub.*.stats`,
      event: (name: string) => `${p}.event.${name}`,
      eventAll: `${p}.event.>`,
      /** Dead letter of a message that failed on `stream`/`consumer`. */
      dlq: (stream: string, consumer: string) => `${p}.dlq.${stream}.${consumer}`,
      dlqAll: `${p}.dlq.>`,
      dlqOfStream: (stream: string) => `${p}.dlq.${stream}.*`,
      apiAll: `${p}.api.>`,
      apiPrefix: `${p}.api`,
      api,
      /** Audit event of one pheromone: `<p>.field.audit.<event>.<id>.<type>` (field.ts). */
      fieldAudit: (event: string, id: string, type: string) => `${p}.field.audit.${event}.${id}.${type}`,
      fieldAuditAll: `${p}.field.audit.>`,
      /** An alert fired or resolved: `<p>.alert.<rule>` (alert.ts). */
      alert: (rule: string) => `${p}.alert.${rule}`,
      alertAll: `${p}.alert.>`,
      /** Inspection events of one actor tree (inspect.ts): `<p>.inspect.<source>.<id>`. */
      inspect: (source: string, id: string) => `${p}.inspect.${source}.${id}`,
      inspectAll: `${p}.inspect.>`,
      /** Listeners asking for inspection events (inspect.ts), repeated while they listen. */
      inspecting: `${p}.inspecting`,
      /** Every stored message (message.ts): `<p>.msg.<kind>.<target>`. */
      msgAll: `${p}.msg.>`,
      /** Direct messages to one agent: its mailbox's own part. */
      msgDirect: (to: string) => `${p}.msg.direct.${to}`,
      msgBroadcast: `${p}.msg.broadcast`,
      msgChannel: (channel: string) => `${p}.msg.channel.${channel}`,
      /** An agent's presence messages (join, leave, status). */
      msgPresence: (agentId: string) => `${p}.msg.presence.${agentId}`,
      /** All messages of one kind (a filter). */
      msgKind: (kind: string) => (kind === 'broadcast' ? `${p}.msg.broadcast` : `${p}.msg.${kind}.*`),
      /** A messaging endpoint called by agent `agentId` (`<p>.api.<op>.<agentId>`, op e.g. `msg.send`). */
      apiMessagingAs: (op: string, agentId: string) => `${p}.api.${op}.${agentId}`,
      /**
       * A field endpoint called by agent `agentId` (`<p>.api.field.<op>.<id>[.<type>]`): the hub
       * takes the caller from the subject and, for emit and claim, the type its permissions allow.
       */
      apiFieldAs: (op: 'emit' | 'claim' | 'release' | 'observe', agentId: string, type?: string) =>
        type === undefined ? `${p}.api.field.${op}.${agentId}` : `${p}.api.field.${op}.${agentId}.${type}`,
      /** The `task.submit` endpoint of one agent allowed to submit (scoped like taskSubmitAs). */
      apiTaskSubmitAs: (submitter: string, queue?: string) =>
        queue === undefined
          ? `${p}.api.task.submit.${submitter}`
          : `${p}.api.task.submit.${submitter}.${queue}`,
    },
    streams,
    /** The work-queue streams whose max-deliveries advisories are captured. */
    workQueueStreams: [streams.submit, streams.inbox, streams.reports] as const,
    consumers: {
      /** Shared by all hubs on SUBMIT. */
      hubIntake: 'hub-intake',
      /** Shared by all hubs on REPORTS. */
      hubReports: 'hub-reports',
      /** One per agent on INBOX, filtered on that agent's inbox subject. */
      agentInbox: (agentId: string) => `inbox-${agentId}`,
      /** Moves captured advisories' messages into the DLQ. */
      dlqForwarder: 'dlq-forwarder',
    },
    buckets: {
      tasks: `${p}_tasks`,
      agents: `${p}_agents`,
      leases: `${p}_leases`,
      /** Deployment settings changed at runtime (key `limits`: protocol/limits.ts). */
      config: `${p}_config`,
      /** Schedules: `spec.<name>` (the operator's) and `state.<name>` (the lease holder's); schedule.ts. */
      schedules: `${p}_schedules`,
      /** Live pheromones, key `<id>.<type>` (field.ts). */
      field: `${p}_field`,
      /** Bearer tokens of the HTTP gateway, key `<id>` (token.ts); hashes only, never a secret. */
      tokens: `${p}_tokens`,
      /** Alerts: `rule.<name>` (their state: firing, acknowledged, last fired); alert.ts. */
      alerts: `${p}_alerts`,
      /** Messaging: `channel.<name>`, `member.<channel>.<agent>`, `cursor.<agent>` (message.ts). */
      messaging: `${p}_messaging`,
    },
    service: {
      /** Micro-service name: `$SRV.PING.<name>`. Service names may not contain dots. */
      name: p,
    },
  };
}

/** The max-deliveries advisory subject for one stream (all consumers): capture it in a stream. */
export function maxDeliveriesAdvisorySubject(stream: string, consumer = '*'): string {
  return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer}`;
}

/**
 * Splits `<prefix>.agent.<agentId>.<kind>`. The agent id of a report is always taken from the
 * subject (subject permissions make it unforgeable), never from the payload.
 */
export function parseAgentSubject(
  n: Names,
  subject: string,
): { agentId: string; kind: AgentSubjectKind } | null {
  const head = `${n.prefix}.agent.`;
  if (!subject.startsWith(head)) return null;
  const rest = subject.slice(head.length).split('.');
  if (rest.length !== 2) return null;
  const [agentId, kind] = rest as [string, string];
  if (!agentId || !(AGENT_SUBJECT_KINDS as readonly string[]).includes(kind)) return null;
  return { agentId, kind: kind as AgentSubjectKind };
}

/**
 * The submitter (and the queue, when the subject names one) of a submission subject:
 * `<p>.task.submit[.<agentId>[.<queue>]]` or the API's `<p>.api.task.submit[.<agentId>[.<queue>]]`.
 * `submitter` is null for the trusted subject; the result is undefined when the subject is neither.
 * Taken from the subject, never from the payload: permissions let an agent publish only on its own.
 */
export function parseSubmitSubject(
  n: Names,
  subject: string,
): { submitter: string | null; queue?: string } | undefined {
  for (const head of [n.subjects.taskSubmit, n.subjects.api['task.submit']]) {
    if (subject === head) return { submitter: null };
    if (!subject.startsWith(`${head}.`)) continue;
    const rest = subject.slice(head.length + 1).split('.');
    if (rest.length > 2 || rest.some((t) => t === '')) return undefined;
    return rest.length === 2 ? { submitter: rest[0]!, queue: rest[1]! } : { submitter: rest[0]! };
  }
  return undefined;
}

/** The stream of KV bucket `bucket` (the standard KV layout, ADR-8). */
export const kvStream = (bucket: string): string => `KV_${bucket}`;
/** The subject of `key` in KV bucket `bucket` (a filter when `key` holds wildcards). */
export const kvSubject = (bucket: string, key: string): string => `$KV.${bucket}.${key}`;

/**
 * The caller and type an agent's field subject names (`<p>.api.field.<op>.<agentId>[.<type>]`),
 * or undefined when `subject` is not one.
 */
export function parseFieldSubject(
  n: Names,
  op: 'emit' | 'claim' | 'release' | 'observe',
  subject: string,
): { agentId: string; type?: string } | undefined {
  const head = `${n.subjects.apiPrefix}.field.${op}.`;
  if (!subject.startsWith(head)) return undefined;
  const [agentId, ...type] = subject.slice(head.length).split('.');
  if (!agentId || type.some((t) => t === '')) return undefined;
  return type.length ? { agentId, type: type.join('.') } : { agentId };
}

/**
 * The caller a messaging subject names (`<p>.api.<op>.<agentId>`, op e.g. `msg.send`), or undefined
 * when `subject` is not `op`'s agent subject.
 */
export function parseMessagingSubject(n: Names, op: string, subject: string): string | undefined {
  const head = `${n.subjects.apiPrefix}.${op}.`;
  if (!subject.startsWith(head)) return undefined;
  const agentId = subject.slice(head.length);
  return /^[A-Za-z0-9_-]{1,64}$/.test(agentId) ? agentId : undefined;
}
