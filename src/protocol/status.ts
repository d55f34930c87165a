/**
 * @module status
 * The bus status gauge published every few seconds on `<prefix>.status.bus` (core NATS, best
 * effort: `nats sub agentcom.status.bus` is a live gauge). Counts come from JetStream stream and
 * consumer info; `local` holds the publishing process's own in-memory counters and latencies.
 */
import { z } from 'zod';
import { versioned } from './envelope.js';

export const LatencySummarySchema = z.object({
  count: z.number().int().nonnegative(),
  p50_ms: z.number().nonnegative(),
  p99_ms: z.number().nonnegative(),
  max_ms: z.number().nonnegative(),
});
export type LatencySummary = z.infer<typeof LatencySummarySchema>;

export const BusCountersSchema = z.object({
  published: z.number().int().nonnegative(),
  publish_retries: z.number().int().nonnegative(),
  publish_duplicates: z.number().int().nonnegative(),
  publish_failures: z.number().int().nonnegative(),
  dispatched: z.number().int().nonnegative(),
  acked: z.number().int().nonnegative(),
  nacked: z.number().int().nonnegative(),
  dead_lettered: z.number().int().nonnegative(),
  handler_errors: z.number().int().nonnegative(),
  publish_ms: LatencySummarySchema.describe('Publish call to PubAck'),
  publish_to_dispatch_ms: LatencySummarySchema.describe(
    'Stored in the stream to handed to a handler (1 in 4 messages sampled)',
  ),
  ack_ms: LatencySummarySchema.describe('Handed to a handler to ack/nak sent'),
});
export type BusCounters = z.infer<typeof BusCountersSchema>;

export const BusStatusSchema = versioned(1, {
  at: z.string().describe('ISO 8601 time of the sample'),
  prefix: z.string(),
  streams: z.array(
    z.object({
      name: z.string(),
      messages: z.number().int().nonnegative().describe('Depth: messages stored'),
      bytes: z.number().int().nonnegative(),
      consumers: z.number().int().nonnegative(),
    }),
  ),
  consumers: z.array(
    z.object({
      stream: z.string(),
      name: z.string(),
      pending: z.number().int().nonnegative().describe('Not yet delivered (num_pending)'),
      ack_pending: z.number().int().nonnegative().describe('Delivered, not yet acked'),
      redelivered: z.number().int().nonnegative(),
      waiting: z.number().int().nonnegative().describe('Pull requests waiting'),
    }),
  ),
  consumersOmitted: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe('Consumers left out of `consumers` (past its cap; those least behind), when any'),
  dlq: z.object({ messages: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }),
  local: BusCountersSchema.optional(),
}).describe('Bus status gauge');
export type BusStatus = z.infer<typeof BusStatusSchema>;

/** Event-loop delay over one publishing interval, ms (Node's `monitorEventLoopDelay`). */
export const EventLoopLagSchema = z.object({
  p50_ms: z.number().nonnegative(),
  p99_ms: z.number().nonnegative(),
  max_ms: z.number().nonnegative(),
  mean_ms: z.number().nonnegative(),
});

/**
 * One hub process's own gauge, published by every hub (leader or standby) on
 * `<prefix>.hub.<hubId>.stats` every status interval (core NATS, best effort). Counters count since
 * the hub process started (they survive restarts of its core; a new process starts at 0).
 */
export const HubStatsSchema = versioned(1, {
  hubId: z.string().min(1).max(64).describe('The publishing hub (its subject token is this id, sanitised)'),
  version: z.string().max(64).describe('Hub software version'),
  at: z.int().nonnegative().describe('Epoch ms of the sample, by the hub’s clock'),
  intervalMs: z.int().positive().describe('Publishing period, ms: a hub silent for a few periods is gone'),
  startedAt: z.int().nonnegative().describe('Epoch ms the hub process started counting'),
  leader: z.boolean().describe('Whether it holds the lease and runs the work tree now'),
  leaseAcquisitions: z.int().nonnegative().describe('Times this hub took the lease (became leader)'),
  supervisorRestarts: z
    .int()
    .nonnegative()
    .describe('Children restarted by any of its supervisors (supervision report `restarted`)'),
  supervisorEscalations: z
    .int()
    .nonnegative()
    .describe('Supervisors that exceeded their restart intensity and gave up'),
  busReconnects: z.int().nonnegative().describe('NATS reconnects of its bus connection'),
  busDisconnects: z.int().nonnegative().describe('NATS disconnects of its bus connection'),
  eventLoopLag: EventLoopLagSchema.describe('Event-loop delay over the last interval'),
  rssBytes: z.int().nonnegative().describe('Resident set size of the process'),
}).describe('Per-hub process gauge');
export type HubStats = z.infer<typeof HubStatsSchema>;
