/**
 * @module errors
 * Wire error codes: the one table every boundary (NATS API replies, CLI exit messages, DLQ reasons)
 * draws from. A structured error is `{ code, message, path? }`; `path` points at the offending
 * field for validation errors.
 */
import { z } from 'zod';

export const ERROR_CODES = {
  /** The payload is not JSON, or fails its zod schema. */
  INVALID_PAYLOAD: 'invalid_payload',
  /** The payload's `v` is not a schema version this side understands. */
  UNSUPPORTED_VERSION: 'unsupported_version',
  /** The payload exceeds the size limit for its subject. */
  PAYLOAD_TOO_LARGE: 'payload_too_large',
  /** The referenced task, agent or message does not exist. */
  NOT_FOUND: 'not_found',
  /** A compare-and-set lost to a concurrent writer. */
  CONFLICT: 'conflict',
  /** A report carried a generation older than the task's current one. */
  STALE_GENERATION: 'stale_generation',
  /** The operation is not allowed in the entity's current state. */
  INVALID_STATE: 'invalid_state',
  /** The sender is not the party the operation belongs to (e.g. another agent's task). */
  FORBIDDEN: 'forbidden',
  /** No credentials, or credentials that are not valid (HTTP: a missing, unknown or revoked bearer token). */
  UNAUTHORIZED: 'unauthorized',
  /** A duplicate of something already applied; nothing was changed. */
  DUPLICATE: 'duplicate',
  /** The hub or NATS could not be reached in time. */
  UNAVAILABLE: 'unavailable',
  TIMEOUT: 'timeout',
  /**
   * The sender is over one of its limits (rate or backlog; docs/security.md, "Rate limits"); nothing was
   * applied. Try again after `retryAfterMs`.
   */
  RATE_LIMITED: 'rate_limited',
  /**
   * The agent is suspended for repeated invalid traffic (docs/security.md, "Suspension") until `retryAfterMs`
   * has passed or an operator runs `agentcom agent restore`.
   */
  SUSPENDED: 'suspended',
  /** A handler failed more times than allowed. */
  MAX_DELIVERIES: 'max_deliveries',
  INTERNAL: 'internal',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/**
 * The status of each wire code: HTTP's, which the API service also sends as its numeric
 * `Nats-Service-Error-Code`, so a NATS client and an HTTP client see one number for one outcome.
 */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  invalid_payload: 400,
  unsupported_version: 400,
  payload_too_large: 413,
  not_found: 404,
  conflict: 409,
  stale_generation: 409,
  invalid_state: 409,
  forbidden: 403,
  unauthorized: 401,
  duplicate: 409,
  unavailable: 503,
  timeout: 504,
  rate_limited: 429,
  suspended: 403,
  max_deliveries: 500,
  internal: 500,
};

export const ErrorCodeSchema = z.enum(Object.values(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]);

export const WireErrorSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
  path: z.array(z.union([z.string(), z.number()])).optional(),
  retryAfterMs: z
    .int()
    .nonnegative()
    .optional()
    .describe('With rate_limited and suspended: when to try again, ms from now.'),
});
export type WireError = z.infer<typeof WireErrorSchema>;

/** A typed error carrying a wire code; thrown only at boundaries, returned as a value elsewhere. */
export class AgentComError extends Error {
  readonly code: ErrorCode;
  readonly path: (string | number)[] | undefined;
  /** With `rate_limited` and `suspended`: when to try again, ms from now. */
  readonly retryAfterMs: number | undefined;
  constructor(
    code: ErrorCode,
    message: string,
    opts: { path?: (string | number)[]; cause?: unknown; retryAfterMs?: number } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AgentComError';
    this.code = code;
    this.path = opts.path;
    this.retryAfterMs = opts.retryAfterMs;
  }
  toWire(): WireError {
    const w: WireError = { code: this.code, message: this.message };
    if (this.path) w.path = this.path;
    if (this.retryAfterMs !== undefined) w.retryAfterMs = this.retryAfterMs;
    return w;
  }
  static fromWire(w: WireError): AgentComError {
    return new AgentComError(w.code, w.message, {
      ...(w.path ? { path: w.path } : {}),
      ...(w.retryAfterMs !== undefined ? { retryAfterMs: w.retryAfterMs } : {}),
    });
  }
}

/** The first zod issue as a structured error (code `invalid_payload`, with the offending path). */
export function fromZodError(err: z.ZodError, what = 'payload'): AgentComError {
  const issue = err.issues[0];
  const path = (issue?.path ?? []).map((p) => (typeof p === 'number' ? p : String(p)));
  const where = path.length ? ` at ${path.join('.')}` : '';
  return new AgentComError(
    ERROR_CODES.INVALID_PAYLOAD,
    `invalid ${what}${where}: ${issue?.message ?? 'unknown'}`,
    {
      path,
    },
  );
}
