/**
 * @module agent/sidecar/wakers
 * Runs the configured wake command (e.g. `openclaw cron wake --mode now`) when work arrives, as an
 * OS-process child of the sidecar's `wakers` dynamic supervisor, which stops every wake command
 * when the sidecar stops. Children are `temporary`: the retry policy is here, because it depends on
 * the task: a wake that fails (non-zero exit or signal) is retried after 1 s, 2 s, 4 s ... 60 s only
 * while the task is still held; one stopped at its timeout is not retried (it would hang again).
 * After `wake.maxFailures` failures in a row it gives up on the task and says why (`onGiveUp`: the
 * exit code or signal and the end of stderr), so the sidecar can report the task failed instead of
 * holding it until the hub's stuck timeout. Finishing or cancelling a task stops its wake and its
 * retries. At most one wake runs per task, so waking again while one runs is a no-op.
 *
 * Direct messages (`messages.wakeOnDirect`, agent/sidecar/mail.ts) wake the agent too, with
 * `AGENTCOM_WAKE_REASON=message`: at most one such wake runs at a time; a direct message arriving
 * while it runs starts one more after it ends (the running session may have looked already). A
 * failed message wake is logged, not retried: the messages stay in their directory for the next.
 */
import { delimiter } from 'node:path';
import type { Logger } from 'pino';
import { exponentialDelay } from '../../runtime/backoff.js';
import type { DynamicSupervisor } from '../../runtime/dynamic-supervisor.js';
import { describeReason, isNormalExit, type Pid, processChild, type Registry } from '../../runtime/index.js';
import { AGENTCOM_BIN_DIR } from '../install-dir.js';
import type { ResolvedSidecarConfig } from '../sidecar-config.js';
import { SIDECAR_ENV, type SidecarPaths } from './files.js';

export const WAKERS_NAME = 'wakers';

/** Waits before retrying a failed wake command: 1 s, 2 s, 4 s ... 60 s (no jitter: a local command). */
const RETRY = { min: 1_000, max: 60_000 };
/** How much of a failed wake command's stderr is kept for the report. */
const STDERR_TAIL_CHARS = 2_000;

/** Why the sidecar stopped waking the agent for a task. */
export interface WakeGiveUp {
  attempts: number;
  /** The last failure: the exit code and signal, or why it did not start. */
  exitCode: number | null;
  signal: string | null;
  reason: string;
  /** The end of the last attempt's stderr. */
  stderrTail: string;
}

interface WakeState {
  pid: Pid | undefined;
  failures: number;
  retry: NodeJS.Timeout | undefined;
  timeout: NodeJS.Timeout | undefined;
  stderr: string;
}

export class Wakers {
  private readonly tasks = new Map<string, WakeState>();
  private disposed = false;
  /** The message wake: running (or starting), and whether another is due when it ends. */
  private readonly mail: {
    running: boolean;
    again: boolean;
    file: string;
    dir: string;
    timeout: NodeJS.Timeout | undefined;
  } = { running: false, again: false, file: '', dir: '', timeout: undefined };

  constructor(
    private readonly config: ResolvedSidecarConfig,
    private readonly paths: SidecarPaths,
    private readonly registry: Registry,
    private readonly log: Logger,
    /** Whether the task is still held (a retry for a finished task is skipped). */
    private readonly isHeld: (taskId: string) => boolean,
    /** The wake command failed `maxFailures` times in a row for this task: no more retries. */
    private readonly onGiveUp: (taskId: string, why: WakeGiveUp) => void = () => {},
  ) {}

  /** Wake the agent for this task (no-op without a wake command, or while one runs for it). */
  async wake(taskId: string): Promise<void> {
    if (!this.config.wake || this.disposed) return;
    const state = this.tasks.get(taskId) ?? {
      pid: undefined,
      failures: 0,
      retry: undefined,
      timeout: undefined,
      stderr: '',
    };
    this.tasks.set(taskId, state);
    if (state.pid?.alive || state.retry) return;
    await this.launch(taskId, state);
  }

  /** Stop this task's wake command and its retries. */
  async stop(taskId: string): Promise<void> {
    const state = this.tasks.get(taskId);
    if (!state) return;
    this.tasks.delete(taskId);
    clearTimeout(state.retry);
    clearTimeout(state.timeout);
    const sup = this.supervisor();
    if (state.pid?.alive && sup) await sup.terminateChild(state.pid);
  }

  /**
   * Wake the agent for its mail: `messageFile` is the direct message that arrived, in
   * `messagesDir`. No-op without a wake command; while a message wake runs, one more follows it.
   */
  async wakeForMail(messageFile: string, messagesDir: string): Promise<void> {
    if (!this.config.wake || this.disposed) return;
    this.mail.file = messageFile;
    this.mail.dir = messagesDir;
    if (this.mail.running) {
      this.mail.again = true;
      return;
    }
    await this.launchMail();
  }

  private async launchMail(): Promise<void> {
    const wake = this.config.wake;
    const sup = this.supervisor();
    if (!wake || this.disposed) return;
    if (!sup) {
      this.log.warn({ phase: 'wake', reason: 'message' }, 'wakers supervisor not running; wake skipped');
      return;
    }
    this.mail.running = true;
    this.mail.again = false;
    const [command, ...args] = wake.command as [string, ...string[]];
    const env: Record<string, string> = {
      ...wake.env,
      PATH: [AGENTCOM_BIN_DIR, wake.env?.PATH ?? process.env.PATH ?? ''].filter(Boolean).join(delimiter),
      [SIDECAR_ENV.agentId]: this.config.agentId,
      [SIDECAR_ENV.workDir]: this.paths.workDir,
      [SIDECAR_ENV.wakeReason]: 'message',
      [SIDECAR_ENV.messagesDir]: this.mail.dir,
      [SIDECAR_ENV.messageFile]: this.mail.file,
    };
    const ended = () => {
      clearTimeout(this.mail.timeout);
      this.mail.running = false;
      if (this.mail.again && !this.disposed) void this.launchMail();
    };
    const r = await sup.startChild(
      processChild(
        'wake-messages',
        { command, args, env, cwd: wake.cwd ?? this.paths.workDir, logLines: 'info' },
        { restart: 'temporary', shutdown: 5_000 },
      ),
    );
    if (!r.ok || !r.value.pid) {
      this.log.error(
        { phase: 'wake', reason: 'message', error: r.ok ? 'ignored' : r.error },
        'wake command did not start',
      );
      ended();
      return;
    }
    const pid = r.value.pid;
    this.log.info({ phase: 'wake', reason: 'message', command, pid: pid.id }, 'wake command started');
    this.mail.timeout = setTimeout(() => {
      this.log.warn(
        { phase: 'wake', reason: 'message', timeout_ms: wake.timeoutMs },
        'wake command timed out; stopping it',
      );
      void sup.terminateChild(pid);
    }, wake.timeoutMs);
    this.mail.timeout.unref();
    pid.onExit((_p, reason) => {
      if (!isNormalExit(reason))
        this.log.warn(
          { phase: 'wake', reason: 'message', exit: describeReason(reason) },
          'wake command for a message failed (not retried: the messages stay in their directory)',
        );
      ended();
    });
  }

  /** Forget timers and retries (the supervisor stops the processes themselves). */
  dispose(): void {
    this.disposed = true;
    clearTimeout(this.mail.timeout);
    for (const s of this.tasks.values()) {
      clearTimeout(s.retry);
      clearTimeout(s.timeout);
    }
    this.tasks.clear();
  }

  private async launch(taskId: string, state: WakeState): Promise<void> {
    const wake = this.config.wake;
    const sup = this.supervisor();
    if (!wake) return;
    if (!sup) {
      this.log.warn({ task_id: taskId, phase: 'wake' }, 'wakers supervisor not running; wake skipped');
      return;
    }
    const [command, ...args] = wake.command as [string, ...string[]];
    const env: Record<string, string> = {
      ...wake.env,
      // A wake script that calls `agentcom task complete ...` finds this installation's command.
      PATH: [AGENTCOM_BIN_DIR, wake.env?.PATH ?? process.env.PATH ?? ''].filter(Boolean).join(delimiter),
      [SIDECAR_ENV.agentId]: this.config.agentId,
      [SIDECAR_ENV.workDir]: this.paths.workDir,
      [SIDECAR_ENV.wakeReason]: 'task',
      [SIDECAR_ENV.taskId]: taskId,
      [SIDECAR_ENV.taskFile]: this.paths.taskFile(taskId),
      [SIDECAR_ENV.resultFile]: this.paths.resultFile(taskId),
    };
    state.stderr = '';
    const onLine = (line: string, stream: 'stdout' | 'stderr') => {
      if (stream === 'stderr') state.stderr = `${state.stderr}${line}\n`.slice(-STDERR_TAIL_CHARS);
    };
    const r = await sup.startChild(
      processChild(
        `wake-${taskId}`,
        { command, args, env, cwd: wake.cwd ?? this.paths.workDir, logLines: 'info', onLine },
        { restart: 'temporary', shutdown: 5_000 },
      ),
    );
    if (!r.ok || !r.value.pid) {
      const error = r.ok ? 'ignored' : r.error;
      this.log.error({ task_id: taskId, phase: 'wake', error }, 'wake command did not start');
      this.failed(taskId, state, {
        exitCode: null,
        signal: null,
        reason: `did not start: ${JSON.stringify(error)}`,
      });
      return;
    }
    const pid = r.value.pid;
    state.pid = pid;
    this.log.info({ task_id: taskId, phase: 'wake', command, pid: pid.id }, 'wake command started');
    state.timeout = setTimeout(() => {
      this.log.warn(
        { task_id: taskId, phase: 'wake', timeout_ms: wake.timeoutMs },
        'wake command timed out; stopping it',
      );
      void sup.terminateChild(pid);
    }, wake.timeoutMs);
    state.timeout.unref();
    pid.onExit((_p, reason) => {
      clearTimeout(state.timeout);
      if (this.tasks.get(taskId) !== state) return; // stopped on purpose
      if (isNormalExit(reason)) {
        state.failures = 0;
        return;
      }
      this.log.warn(
        { task_id: taskId, phase: 'wake', reason: describeReason(reason) },
        'wake command failed',
      );
      const exit = typeof reason === 'object' && reason.kind === 'exit' ? reason : undefined;
      this.failed(taskId, state, {
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        reason: JSON.stringify(describeReason(reason)),
      });
    });
  }

  /** One more failure in a row: retry later, or give up at `maxFailures`. */
  private failed(taskId: string, state: WakeState, last: Omit<WakeGiveUp, 'attempts' | 'stderrTail'>): void {
    if (this.disposed || !this.isHeld(taskId)) {
      this.tasks.delete(taskId);
      return;
    }
    state.failures++;
    const max = this.config.wake?.maxFailures ?? 3;
    if (state.failures >= max) {
      this.tasks.delete(taskId);
      this.log.error(
        { task_id: taskId, phase: 'wake', attempts: state.failures, reason: last.reason },
        'wake command keeps failing; giving the task up',
      );
      this.onGiveUp(taskId, { ...last, attempts: state.failures, stderrTail: state.stderr });
      return;
    }
    const delay = exponentialDelay(state.failures - 1, RETRY);
    state.retry = setTimeout(() => {
      state.retry = undefined;
      if (this.tasks.get(taskId) === state && this.isHeld(taskId)) void this.launch(taskId, state);
    }, delay);
    state.retry.unref();
  }

  private supervisor(): DynamicSupervisor | undefined {
    const pid = this.registry.whereis(WAKERS_NAME);
    return pid?.alive ? (pid as DynamicSupervisor) : undefined;
  }
}
