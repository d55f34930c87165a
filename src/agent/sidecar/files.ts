/**
 * @module agent/sidecar/files
 * The sidecar's work directory: the contract between the sidecar and the agent it serves, which
 * may be any program (an LLM session, a script) on the same machine.
 *
 *   <workDir>/queue.json                   the sidecar's local queue (its state of record)
 *   <workDir>/tasks/<taskId>.json          one per held assignment, for the agent to read
 *   <workDir>/results/<taskId>.json        written by the agent (or `agentcom task complete|fail`)
 *   <workDir>/results/<taskId>.progress.json   written by `agentcom task progress`
 *   <workDir>/rejected/                    result files the sidecar could not use, with the reason
 *   <workDir>/notices/<taskId>.json        the hub refused a report about this task (why, and whether to stop)
 *
 * With `messages` in the config (agent/sidecar/mail.ts), its directory (default <workDir>/messages):
 *
 *   <dir>/<seq, 12 digits>.json            one incoming message (msg.message), on disk before it is acked
 *   <dir>/read/                            where the agent moves a message it has read (never rewritten)
 *   <dir>/outbox/<name>.json               a message for the sidecar to send (written by the agent)
 *   <dir>/outbox/sent/<name>.json          what it became once stored (the message, with its seq)
 *   <dir>/outbox/rejected/<name>.json.<time> + .reason.txt   one the hub refused, and why
 *
 * Every file is written atomically (temp file, fsync, rename), so a reader never sees half of one.
 * A result file may carry the task file's `generation`; a result for another generation is stale.
 */
import { join } from 'node:path';

/** Env vars the sidecar sets for the wake command, and the CLI reads. */
export const SIDECAR_ENV = {
  agentId: 'AGENTCOM_AGENT_ID',
  workDir: 'AGENTCOM_SIDECAR_DIR',
  taskId: 'AGENTCOM_TASK_ID',
  taskFile: 'AGENTCOM_TASK_FILE',
  resultFile: 'AGENTCOM_RESULT_FILE',
  /** Why the wake command runs: `task` (an assignment) or `message` (a direct message). */
  wakeReason: 'AGENTCOM_WAKE_REASON',
  /** The messages directory (with `messages` in the config). */
  messagesDir: 'AGENTCOM_MESSAGES_DIR',
  /** The file of the direct message that caused a `message` wake (the latest, when several did). */
  messageFile: 'AGENTCOM_MESSAGE_FILE',
} as const;

export interface SidecarPaths {
  workDir: string;
  queueFile: string;
  tasksDir: string;
  resultsDir: string;
  rejectedDir: string;
  noticesDir: string;
  taskFile(taskId: string): string;
  noticeFile(taskId: string): string;
  resultFile(taskId: string): string;
  progressFile(taskId: string): string;
}

export function sidecarPaths(workDir: string): SidecarPaths {
  const tasksDir = join(workDir, 'tasks');
  const resultsDir = join(workDir, 'results');
  return {
    workDir,
    queueFile: join(workDir, 'queue.json'),
    tasksDir,
    resultsDir,
    rejectedDir: join(workDir, 'rejected'),
    noticesDir: join(workDir, 'notices'),
    noticeFile: (id) => join(workDir, 'notices', `${id}.json`),
    taskFile: (id) => join(tasksDir, `${id}.json`),
    resultFile: (id) => join(resultsDir, `${id}.json`),
    progressFile: (id) => join(resultsDir, `${id}.progress.json`),
  };
}

/** What a results/ file name refers to, or null for a file that is not ours (temp files, notes). */
export function parseResultFileName(name: string): { taskId: string; kind: 'result' | 'progress' } | null {
  const m = /^([A-Za-z0-9_-]{1,64})(\.progress)?\.json$/.exec(name);
  if (!m) return null;
  return { taskId: m[1] as string, kind: m[2] ? 'progress' : 'result' };
}

export {
  type ProgressFile,
  ProgressFileSchema,
  type ResultFile,
  type ResultFileInput,
  ResultFileSchema,
  type TaskFile,
  TaskFileSchema,
} from '../../protocol/sidecar.js';

/** Files bigger than this are not read (a result report is capped at 256 KiB anyway). */
export const MAX_RESULT_FILE_BYTES = 512 * 1024;

export interface MessagePaths {
  dir: string;
  readDir: string;
  outboxDir: string;
  sentDir: string;
  rejectedDir: string;
  /** `<dir>/<seq>.json`, the seq zero-padded to 12 digits so that name order is seq order. */
  messageFile(seq: number): string;
  readFile(seq: number): string;
}

/** The name of a message's file: its seq zero-padded to 12 digits, so `ls` lists them in order. */
export function messageFileName(seq: number): string {
  return `${String(seq).padStart(12, '0')}.json`;
}

export function messagePaths(dir: string): MessagePaths {
  const outboxDir = join(dir, 'outbox');
  return {
    dir,
    readDir: join(dir, 'read'),
    outboxDir,
    sentDir: join(outboxDir, 'sent'),
    rejectedDir: join(outboxDir, 'rejected'),
    messageFile: (seq) => join(dir, messageFileName(seq)),
    readFile: (seq) => join(dir, 'read', messageFileName(seq)),
  };
}

/** An outbox file's name (the part before `.json`), or null for a file that is not one. */
export function parseOutboxFileName(name: string): string | null {
  const m = /^([A-Za-z0-9_.-]{1,128})\.json$/.exec(name);
  return m ? (m[1] as string) : null;
}
