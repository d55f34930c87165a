/**
 * @module scheduler
 * The Scheduler actor: assigns queued tasks to agents while this hub holds the scheduler lease.
 */
export { LEASE_KEY } from './lease.js';
export type { AgentDown, AgentUp, SchedulerMessage, SchedulerStatsReply } from './messages.js';
export { type SchedulerInput, SchedulerProcess } from './process.js';
