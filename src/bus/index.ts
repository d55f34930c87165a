/**
 * @module bus
 * The NATS JetStream layer: connection, idempotent provisioning, typed publish with dedupe,
 * durable consumer runners (ack / retry / dead-letter, in-progress heartbeats), the DLQ, typed KV,
 * the micro-service machinery and the status gauge. The only code that imports `@nats-io/*`.
 */

export type { ConnectionEvent } from '../protocol/bus-messages.js';
export * from './backup.js';
export * from './connection.js';
export * from './consumer.js';
export * from './consumer-progress.js';
export * from './consumer-stall.js';
export * from './dlq.js';
export * from './dlq-forwarder.js';
export * from './kv.js';
export type { Logger } from './log.js';
export { defaultLogger } from './log.js';
export * from './metrics.js';
export * from './provision.js';
export * from './publish.js';
export * from './redeliver.js';
export * from './service.js';
export * from './status.js';
export * from './withdraw.js';
