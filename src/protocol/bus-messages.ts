/**
 * @module bus-messages
 * Messages the bus itself handles that are not AgentCom payloads: the JetStream max-deliveries
 * advisory (server format, captured in `<P>_ADVISORIES`) and the connection status events the
 * bus exposes to actors.
 */
import { z } from 'zod';

/** `io.nats.jetstream.advisory.v1.max_deliver` as sent by nats-server 2.9 (no consumer_seq). */
export const MaxDeliveriesAdvisorySchema = z.object({
  type: z.string(),
  id: z.string().optional(),
  timestamp: z.string().optional(),
  stream: z.string(),
  consumer: z.string(),
  stream_seq: z.number().int().positive(),
  deliveries: z.number().int().nonnegative(),
});
export type MaxDeliveriesAdvisory = z.infer<typeof MaxDeliveriesAdvisorySchema>;

/** Connection status events, as delivered to `bus.onStatus` listeners. */
export const ConnectionEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('disconnect'), server: z.string() }),
  z.object({ type: z.literal('reconnecting') }),
  z.object({ type: z.literal('lame_duck') }),
  z.object({ type: z.literal('slow_consumer'), sub: z.string() }),
  z.object({ type: z.literal('reconnect'), server: z.string() }),
  z.object({ type: z.literal('error'), message: z.string() }),
  z.object({ type: z.literal('closed'), message: z.string().optional() }),
]);
export type ConnectionEvent = z.infer<typeof ConnectionEventSchema>;
