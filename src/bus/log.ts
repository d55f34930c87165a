/**
 * @module log
 * The bus's pino logger. Per-message events (publish, dispatch, ack, nak) are logged at `debug`
 * so they cost one level check when disabled; dead letters and recoveries at `warn`/`info`.
 */
import { type Logger, pino } from 'pino';

export type { Logger };

/** The default logger: level from `LOG_LEVEL` (default `info`), JSON to stdout. */
export function defaultLogger(): Logger {
  return pino({ level: process.env.LOG_LEVEL ?? 'info' }).child({ actor: 'bus' });
}
