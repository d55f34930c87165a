/**
 * @module scheduler
 * The Scheduler actor: assigns queued tasks to agents (it runs only on the hub holding the lease).
 */
export type { AgentBeat, AgentDown, AgentUp, SchedulerMessage, SchedulerStatsReply } from './messages.js';
export { type SchedulerInput, SchedulerProcess } from './process.js';
