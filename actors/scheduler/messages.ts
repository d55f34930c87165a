/**
 * @module scheduler/messages
 * What the Scheduler accepts (casts, by its registered name). Every message is a hint that
 * something changed; the scheduler's state is derived, so a lost message only delays a decision
 * until the next change or sweep, it never loses a task.
 */
import type { AgentId, Capability, QueueName } from '../../src/protocol/ids.js';
import type { TaskChanged } from '../task-queue/index.js';

export type AgentUp = {
  type: 'agent_up';
  agentId: AgentId;
  capabilities: readonly Capability[];
  queues: readonly QueueName[];
  slots: number;
};

export type AgentDown = { type: 'agent_down'; agentId: AgentId; reason: string };

export type SchedulerStatsReply = {
  leader: boolean;
  ready: number;
  delayed: number;
  agents: number;
  open: number;
  assigned: number;
  refused: number;
};

export type SchedulerMessage =
  | TaskChanged
  | AgentUp
  | AgentDown
  | { type: 'tick' }
  | { type: 'stats'; reply?: (s: SchedulerStatsReply) => void };
