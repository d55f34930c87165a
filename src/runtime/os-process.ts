/**
 * @module os-process
 * Supervises an external program as a child: spawn (command, args, env, cwd), an optional
 * readiness check that must pass before the start counts, stdout/stderr as lines (to listeners
 * and/or the logger). Exit mapping: code 0 -> `normal`; non-zero or an unrequested signal ->
 * `{ kind: 'exit', code, signal }` (abnormal); after our SIGTERM -> the requested reason; after our
 * SIGKILL -> `killed`. Stopping sends SIGTERM (or `stopSignal`), then SIGKILL after the shutdown timeout.
 * It does NOT kill grandchildren the program spawns itself (no process groups).
 * See docs/runtime.md §1.1.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { StartResult } from './child-spec.js';
import type { ExitReason } from './exit-reason.js';
import { Pid } from './pid.js';

export type LineListener = (line: string, stream: 'stdout' | 'stderr') => void;

export interface OsProcessOptions {
  command: string;
  args?: readonly string[];
  /** Merged over `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /**
   * Resolves when the program is ready (e.g. its port accepts connections). The start fails if it
   * rejects, if the program exits first, or after `readyTimeout` ms (default 30000).
   */
  ready?: (proc: OsProcessPid) => Promise<void>;
  readyTimeout?: number;
  /** Called for every output line. */
  onLine?: LineListener;
  /** Log every output line through the tree's logger at this level (default: not logged). */
  logLines?: 'trace' | 'debug' | 'info' | 'warn';
  /**
   * The signal that asks the program to stop (default SIGTERM), like systemd's KillSignal: some
   * programs treat SIGTERM as an error exit (nats-server exits 1 on SIGTERM, 0 on SIGINT).
   */
  stopSignal?: NodeJS.Signals;
}

const osSignals = constants.signals as Partial<Record<NodeJS.Signals, number>>;

export class OsProcessPid extends Pid {
  readonly kind = 'process';
  readonly child: ChildProcess;
  private requested: ExitReason | undefined = undefined;
  private lineListeners: LineListener[] = [];

  /** @internal */
  constructor(
    child: ChildProcess,
    private readonly stopSignal: NodeJS.Signals = 'SIGTERM',
  ) {
    super();
    this.child = child;
    child.once('exit', (code, signal) => this._exit(this.mapExit(code, signal)));
  }

  /** The OS process id (undefined only if the spawn failed). */
  get osPid(): number | undefined {
    return this.child.pid;
  }

  /** Observe output lines. Returns the unsubscribe function. */
  onLine(listener: LineListener): () => void {
    this.lineListeners.push(listener);
    return () => {
      this.lineListeners = this.lineListeners.filter((l) => l !== listener);
    };
  }

  /** @internal */
  _line(line: string, stream: 'stdout' | 'stderr'): void {
    for (const l of this.lineListeners) {
      try {
        l(line, stream);
      } catch {
        // A listener must not break output pumping (a full pipe would block the program).
      }
    }
  }

  override _shutdown(reason: ExitReason): void {
    if (!this.alive || this.requested) return;
    this.requested = reason;
    this.child.kill(this.stopSignal);
  }

  override _kill(): void {
    if (!this.alive) return;
    this.requested = 'killed';
    this.child.kill('SIGKILL');
  }

  private mapExit(code: number | null, signal: NodeJS.Signals | null): ExitReason {
    if (this.requested === 'killed') return 'killed';
    if (this.requested !== undefined) {
      // The program honoured our stop signal (died from it, or handled it and exited cleanly).
      if (signal === this.stopSignal || code === 0 || code === 128 + (osSignals[this.stopSignal] ?? 15))
        return this.requested;
      return { kind: 'exit', code, signal };
    }
    if (code === 0) return 'normal';
    return { kind: 'exit', code, signal };
  }
}

export async function startOsProcess(opts: OsProcessOptions, logger?: Logger): Promise<StartResult> {
  let child: ChildProcess;
  try {
    child = spawn(opts.command, opts.args ?? [], {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    return { kind: 'error', reason: e };
  }
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (e) => resolve(e));
  });
  if (spawned) return { kind: 'error', reason: spawned };
  const pid = new OsProcessPid(child, opts.stopSignal);
  const log = logger && opts.logLines ? logger : undefined;
  const pump = (stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr') => {
    if (!stream) return;
    // Always read the pipes, even with no listener: a full pipe would block the program.
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      opts.onLine?.(line, name);
      pid._line(line, name);
      log?.[opts.logLines!]({ actor: opts.command, phase: name, os_pid: child.pid, line }, 'process output');
    });
  };
  pump(child.stdout, 'stdout');
  pump(child.stderr, 'stderr');
  // Errors after spawn (e.g. EPIPE on kill) must not become uncaught exceptions.
  child.on('error', (e) =>
    logger?.warn({ actor: opts.command, phase: 'process_error', err: e }, 'process error'),
  );
  if (opts.ready) {
    const failure = await waitReady(pid, opts.ready, opts.readyTimeout ?? 30_000);
    if (failure !== undefined) {
      pid._kill();
      await pid.exited;
      return { kind: 'error', reason: failure };
    }
  }
  return { kind: 'ok', pid };
}

async function waitReady(
  pid: OsProcessPid,
  ready: (p: OsProcessPid) => Promise<void>,
  timeout: number,
): Promise<unknown | undefined> {
  let timer: NodeJS.Timeout | undefined;
  let unwatch: (() => void) | undefined;
  try {
    return await Promise.race([
      ready(pid).then(
        () => undefined,
        (e: unknown) => ({ kind: 'not_ready', error: e }),
      ),
      new Promise<unknown>((resolve) => {
        timer = setTimeout(() => resolve({ kind: 'ready_timeout', timeout }), timeout);
        unwatch = pid.onExit((_p, reason) => resolve({ kind: 'exited_before_ready', reason }));
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
    unwatch?.();
  }
}
