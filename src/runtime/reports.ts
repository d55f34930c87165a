/**
 * @module reports
 * Supervisor reports (OTP's progress, child_terminated, start_error, shutdown_error,
 * reached_max_restart_intensity, shutdown; plus restarted and restart_scheduled) delivered to
 * subscribers and logged with pino (fields `actor`, `phase`, `child_id`, `reason`). A listener
 * that throws is logged and otherwise ignored: it can never break a supervisor.
 * See docs/runtime.md §2.15.
 */
import type { Logger } from 'pino';
import type { ExitReason } from './exit-reason.js';
import { describeReason, isNormalExit } from './exit-reason.js';
import type { Pid } from './pid.js';

interface Base {
  /** The supervisor's registered name, or its pid as text. */
  readonly supervisor: string;
  /** The child's id (`undefined` for dynamic children). */
  readonly childId?: string | undefined;
}

export type SupervisorReport =
  /** A child started (at init, by startChild/restartChild, or by a restart). */
  | (Base & { readonly type: 'progress'; readonly pid: Pid })
  /** A child exited on its own (OTP reports it for permanent children, or any abnormal exit). */
  | (Base & { readonly type: 'child_terminated'; readonly pid: Pid; readonly reason: ExitReason })
  | (Base & { readonly type: 'start_error'; readonly reason: unknown })
  /** A child exited with an unexpected reason while being shut down. */
  | (Base & { readonly type: 'shutdown_error'; readonly pid: Pid; readonly reason: ExitReason })
  /** A restart succeeded: `pid` is the new incarnation. */
  | (Base & { readonly type: 'restarted'; readonly pid: Pid })
  /** A backoff restart is scheduled in `delay` ms (attempt is 0-based). */
  | (Base & { readonly type: 'restart_scheduled'; readonly delay: number; readonly attempt: number })
  | (Base & { readonly type: 'reached_max_restart_intensity' })
  /** A significant child ended the supervisor (autoShutdown). */
  | (Base & { readonly type: 'auto_shutdown' })
  /** The supervisor itself exited. */
  | (Base & { readonly type: 'shutdown'; readonly reason: ExitReason });

/** A report without its `supervisor` field (filled in by the emitting supervisor). */
export type ReportBody = SupervisorReport extends infer R
  ? R extends unknown
    ? Omit<R, 'supervisor'>
    : never
  : never;

export type ReportListener = (report: SupervisorReport) => void;

export class Reporter {
  private listeners: ReportListener[] = [];
  constructor(
    private readonly logger: Logger | undefined,
    initial?: ReportListener,
  ) {
    if (initial) this.listeners.push(initial);
  }

  subscribe(listener: ReportListener): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Cheap check so hot paths (100k dynamic starts) skip building reports nobody reads. */
  get quiet(): boolean {
    return this.listeners.length === 0 && !this.logger?.isLevelEnabled('debug');
  }

  emit(report: SupervisorReport): void {
    this.log(report);
    for (const l of this.listeners) {
      try {
        l(report);
      } catch (e) {
        this.logger?.warn(
          { actor: report.supervisor, phase: 'report_listener', err: e },
          'report listener threw',
        );
      }
    }
  }

  private log(r: SupervisorReport): void {
    const log = this.logger;
    if (!log) return;
    const fields: Record<string, unknown> = { actor: r.supervisor, phase: r.type, child_id: r.childId };
    if ('pid' in r) fields.pid = r.pid.toString();
    if ('reason' in r) fields.reason = describeReason(r.reason as ExitReason);
    switch (r.type) {
      case 'progress':
      case 'restarted':
        log.debug(fields, r.type === 'progress' ? 'child started' : 'child restarted');
        return;
      case 'child_terminated':
        if (isNormalExit(r.reason)) log.info(fields, 'child terminated');
        else log.error(fields, 'child terminated');
        return;
      case 'restart_scheduled':
        log.warn({ ...fields, delay: r.delay, attempt: r.attempt }, 'restart scheduled');
        return;
      case 'start_error':
      case 'shutdown_error':
      case 'reached_max_restart_intensity':
        log.error(fields, r.type.replaceAll('_', ' '));
        return;
      case 'auto_shutdown':
      case 'shutdown':
        log.info(fields, r.type === 'shutdown' ? 'supervisor exited' : 'auto shutdown');
        return;
    }
  }
}
