/**
 * What a chaos run records, one JSON object per line, in the order the runner saw it. Times are
 * epoch ms on the one machine every process runs on. The task records read at the end (their
 * `history`: every applied transition with its generation, actor and time) complete it: what the
 * hub applied is there, what it refused is in the `refused` events taken from its log.
 */
import type { Fault } from './schedule.js';

export type HistoryEvent =
  /** The producer's submission was acknowledged (`taskId` from the hub's reply or the message id). */
  | { t: number; kind: 'submit'; key: string; taskId: string }
  /** A fault began (`phase: start`) or was undone (`end`: restarted, continued). */
  | { t: number; kind: 'fault'; phase: 'start' | 'end'; fault: Fault; target: string; skipped?: string }
  /** An agent process started work on an assignment (SDK handler start; sidecar assignment received). */
  | {
      t: number;
      kind: 'start';
      proc: string;
      agentId: string;
      session?: string;
      taskId: string;
      generation: number;
    }
  /** It finished it: reported the outcome, or stopped (aborted, cancelled by the hub). */
  | {
      t: number;
      kind: 'finish';
      proc: string;
      agentId: string;
      session?: string;
      taskId: string;
      generation: number;
      outcome: 'completed' | 'failed' | 'aborted' | 'cancelled';
    }
  /** An agent was told one of its reports was refused. */
  | {
      t: number;
      kind: 'notice';
      proc: string;
      agentId: string;
      taskId: string;
      generation: number;
      code: string;
      stop: boolean;
    }
  /** A hub refused a report (from its log). */
  | {
      t: number;
      kind: 'refused';
      hub: string;
      agentId: string;
      taskId: string;
      generation: number;
      code: string;
    }
  /** A process exited (killed by a fault, or at the end). */
  | { t: number; kind: 'exit'; proc: string; signal: string | null; code: number | null };

export type HistoryKind = HistoryEvent['kind'];
