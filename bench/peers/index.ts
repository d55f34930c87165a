/** Peer baselines for the hub benchmark (BullMQ, raw JetStream, JetStream pipeline), measured in-run. */

export { type BullmqRunOptions, runBullmq } from './bullmq.js';
export type {
  E2eOptions,
  E2eResult,
  LatencyOptions,
  LatencyResult,
  PeerResult,
  PeerRunOptions,
} from './common.js';
export { runJetstream } from './jetstream.js';
export { runJetstreamLog, runJetstreamMinimal, runJetstreamPipeline } from './jetstream-pipeline.js';
export { type NatsServer, natsServerVersion, startNatsServer } from './nats.js';
export { type RedisServer, redisServerVersion, startRedisServer } from './redis.js';
export {
  type Environment,
  environment,
  loadAverage,
  PEER_NAMES,
  type PeerName,
  type PeerSummary,
  rounded,
  runPeerSuite,
  type SuiteOptions,
  type SuiteResult,
} from './suite.js';
