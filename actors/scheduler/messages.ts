/**
 * @module scheduler/messages
 * What the Scheduler accepts (casts, by its registered name). Every message is a hint that
 * something changed; the scheduler's state is derived, so a lost message only delays a decision
 * until the next change or sweep, it never loses a task.
 */
import type { AgentId, Capability, QueueName, TaskId } from '../../src/protocol/ids.js';
import type { TaskChanged } from '../task-queue/index.js';

export type AgentUp = {
  type: 'agent_up';
  agentId: AgentId;
  capabilities: readonly Capability[];
  queues: readonly QueueName[];
  slots: number;
  /** The session of its latest hello, and what that session said it holds (when it said). */
  session?: string | undefined;
  holding?: readonly TaskId[] | undefined;
  /** Hub time of the hello. */
  at: number;
};

export type AgentDown = { type: 'agent_down'; agentId: AgentId; reason: string };

/** A heartbeat of the agent's live session that said what it holds. */
export type AgentBeat = {
  type: 'agent_beat';
  agentId: AgentId;
  session?: string | undefined;
  running: readonly TaskId[];
  finished: readonly TaskId[];
  /** Hub time of the beat. */
  at: number;
};

export type SchedulerStatsReply = {
  leader: boolean;
  ready: number;
  delayed: number;
  agents: number;
  open: number;
  assigned: number;
  refused: number;
  /**
   * How far behind now the hub has applied its agents' reports, in ms (null without a bus). Until
   * the first sample passes, the time since this scheduler started: a lower bound.
   */
  reportsLagMs: number | null;
  /** Safety-net sweeps run since this scheduler started. */
  sweeps: number;
};

export type SchedulerMessage =
  | TaskChanged
  | AgentUp
  | AgentDown
  | AgentBeat
  | { type: 'tick' }
  /** Sent by the scheduler to itself: every report sent before `through` is applied. */
  | { type: 'reports_read'; through: number }
  | { type: 'stats'; reply?: (s: SchedulerStatsReply) => void }
  /** Sent by the scheduler to itself when the control value or the timeout overrides change. */
  | { type: 'config_changed' }
  /**
   * call: replies true once this scheduler follows revision `revision` (or later) of config key
   * `key`, false when it does not within `timeoutMs` (or follows no config: started without a bus).
   */
  | {
      type: 'sync_config';
      key: 'control' | 'timeouts';
      revision: number;
      timeoutMs: number;
      reply?: (applied: boolean) => void;
    };
