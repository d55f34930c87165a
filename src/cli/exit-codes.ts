/**
 * @module cli/exit-codes
 * What the `agentcom` command's exit status means, so scripts can branch on it without parsing
 * text. One table, derived from the wire error codes (errors.ts); documented in docs/cli.md.
 */
import type { ErrorCode } from '../protocol/errors.js';

export const EXIT = {
  /** Done. */
  OK: 0,
  /** The operation failed (a smoke test that did not pass, an unexpected error). */
  FAILURE: 1,
  /** Bad flags, arguments, config or input file: nothing was attempted. */
  USAGE: 2,
  /** The task, agent, dead letter or file named does not exist. */
  NOT_FOUND: 3,
  /** Refused in the current state (cancel a finished task, a stale branch, a conflict). */
  REFUSED: 4,
  /** Not allowed: credentials rejected or the subject is not permitted. */
  FORBIDDEN: 5,
  /** The hub or NATS could not be reached in time. */
  UNAVAILABLE: 69,
  /** Over a rate limit: try again later (`EX_TEMPFAIL`; the error says after how long). */
  RATE_LIMITED: 75,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit status for a structured error's code. */
export function exitCodeFor(code: ErrorCode): ExitCode {
  switch (code) {
    case 'invalid_payload':
    case 'unsupported_version':
    case 'payload_too_large':
      return EXIT.USAGE;
    case 'not_found':
      return EXIT.NOT_FOUND;
    case 'conflict':
    case 'stale_generation':
    case 'invalid_state':
    case 'duplicate':
      return EXIT.REFUSED;
    case 'forbidden':
    case 'unauthorized':
    case 'suspended':
      return EXIT.FORBIDDEN;
    case 'rate_limited':
      return EXIT.RATE_LIMITED;
    case 'unavailable':
    case 'timeout':
      return EXIT.UNAVAILABLE;
    default:
      return EXIT.FAILURE;
  }
}
