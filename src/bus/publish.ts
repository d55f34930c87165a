/**
 * @module publish
 * Typed JetStream publish. The payload is validated and size-checked against its zod schema, sent
 * with a `Nats-Msg-Id` (generated when not given), a `Correlation-Id` (defaults to the message id:
 * a new flow) and a `traceparent` (a child of the given one, or a new root). Timeouts, no-responders
 * and disconnects are retried with the SAME message id, bounded, with exponential backoff and
 * jitter, so a retry after a lost PubAck is stored once and answered `duplicate: true`.
 * Publishes are independent promises: callers may keep thousands in flight; nothing is serialised.
 * Not retried: validation errors, expectation failures (`expect`), a closed or draining connection.
 * A stream refusing the message because the subject's backlog is full (`max_msgs_per_subject` with
 * `discard_new_per_subject`, JetStream error 10077) is thrown as an AgentComError `rate_limited`
 * with a retry-after: it is the sender's own limit (provision.ts DEFAULT_BACKLOGS).
 */
import { JetStreamApiError, type JetStreamPublishOptions, type StreamExpectations } from '@nats-io/jetstream';
import { type MsgHdrs, headers as natsHeaders } from '@nats-io/transport-node';
import type { z } from 'zod';
import { DEFAULT_MAX_PAYLOAD_BYTES, encodePayload } from '../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { childTraceparent, HEADERS, randomHex } from '../protocol/headers.js';
import { exponentialDelay } from '../runtime/backoff.js';
import type { Bus } from './connection.js';

export interface PublishOptions {
  /** Dedupe key (`Nats-Msg-Id`); default: a new random id. Reuse it to make a publish idempotent. */
  msgId?: string;
  /** Default: the message id. */
  correlationId?: string;
  /** Parent trace context; the message gets a child span (a new root when absent). */
  traceparent?: string;
  /** Extra headers (must not start with `Nats-`). */
  headers?: Record<string, string>;
  /** Optimistic concurrency checks, e.g. `{ lastSubjectSequence: 0 }` (never retried on failure). */
  expect?: Partial<StreamExpectations>;
  /** PubAck timeout per attempt, ms (default: the connection's apiTimeoutMs). */
  timeoutMs?: number;
  /** Attempts after the first on timeout/disconnect (default 5). */
  retries?: number;
  /** First retry delay, ms (default 100); doubles per attempt up to 2 s, minus up to half of it (jitter). */
  retryBaseMs?: number;
  /** Payload limit in bytes (default 256 KiB). */
  maxBytes?: number;
  /** @internal Headers to start from (DLQ copies, replays); the id headers are set on top. */
  baseHeaders?: MsgHdrs;
}

export interface PublishResult {
  stream: string;
  seq: number;
  /** True when the stream already held this message id (inside its duplicate window). */
  duplicate: boolean;
  msgId: string;
  correlationId: string;
  /** Attempts made (1 = no retry). */
  attempts: number;
}

const RETRY_MAX_DELAY_MS = 2_000;
/**
 * JetStream's "maximum messages per subject exceeded" (a full per-subject backlog). 10077 is also
 * the code of the stream-wide limits (messages, bytes), hence the description as well.
 */
const SUBJECT_BACKLOG_FULL = 10077;
const SUBJECT_BACKLOG_FULL_TEXT = 'maximum messages per subject exceeded';
/** How long a sender whose backlog is full is asked to wait: the hub drains one in well under this. */
export const BACKLOG_RETRY_AFTER_MS = 100;
/** A retry waits between half and all of its exponential delay. */
const RETRY_JITTER = { jitter: 0.5 };

/** Errors after which the same publish may be retried with the same message id. */
export function isRetryablePublishError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof JetStreamApiError) return err.status === 503;
  return (
    err.name === 'TimeoutError' ||
    err.name === 'JetStreamNotEnabled' ||
    err.name === 'NoResponders' ||
    err.name === 'RequestError'
  );
}

/** Validates `payload` with `schema` and publishes it. See the module header for guarantees. */
export function publish<T>(
  bus: Bus,
  subject: string,
  schema: z.ZodType<T>,
  payload: T,
  opts: PublishOptions = {},
): Promise<PublishResult> {
  let data: Uint8Array;
  try {
    data = encodePayload(schema, payload, opts.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES);
  } catch (err) {
    return Promise.reject(err);
  }
  return publishRaw(bus, subject, data, opts);
}

/** Publishes already-encoded bytes with the same id/header/retry handling (no validation). */
export async function publishRaw(
  bus: Bus,
  subject: string,
  data: Uint8Array,
  opts: PublishOptions = {},
): Promise<PublishResult> {
  const msgId = opts.msgId ?? randomHex(24);
  const correlationId = opts.correlationId ?? msgId;
  const h = natsHeaders();
  // Nats-Msg-Id goes FIRST: nats-server 2.9 finds it by the first occurrence of the name anywhere
  // in the header block and ignores it when that occurrence is inside another header (e.g. a DLQ
  // copy's Agentcom-Dlq-Orig-Nats-Msg-Id), silently disabling dedupe.
  h.set(HEADERS.MSG_ID, msgId);
  if (opts.baseHeaders) for (const [k, vs] of opts.baseHeaders) for (const v of vs) h.append(k, v);
  h.set(HEADERS.CORRELATION_ID, correlationId);
  h.set(HEADERS.TRACEPARENT, childTraceparent(opts.traceparent));
  if (opts.headers) for (const k in opts.headers) h.set(k, opts.headers[k]!);
  // msgID is deliberately not passed: nats.js would re-set the header and move it to the end.
  const po: Partial<JetStreamPublishOptions> = { headers: h };
  if (opts.expect) po.expect = opts.expect;
  if (opts.timeoutMs) po.timeout = opts.timeoutMs;
  const retries = opts.retries ?? 5;
  const base = opts.retryBaseMs ?? 100;
  const { metrics, log } = bus;
  const t0 = performance.now();
  for (let attempt = 0; ; attempt++) {
    try {
      const ack = await bus.js.publish(subject, data, po);
      metrics.published++;
      metrics.publishLatency.record(performance.now() - t0);
      if (ack.duplicate) metrics.publishDuplicates++;
      if (log.isLevelEnabled('debug')) {
        log.debug(
          {
            msg_id: msgId,
            correlation_id: correlationId,
            subject,
            stream: ack.stream,
            seq: ack.seq,
            duplicate: ack.duplicate,
            attempts: attempt + 1,
          },
          'publish',
        );
      }
      return {
        stream: ack.stream,
        seq: ack.seq,
        duplicate: ack.duplicate,
        msgId,
        correlationId,
        attempts: attempt + 1,
      };
    } catch (err) {
      if (
        err instanceof JetStreamApiError &&
        err.code === SUBJECT_BACKLOG_FULL &&
        err.message.includes(SUBJECT_BACKLOG_FULL_TEXT)
      ) {
        metrics.publishFailures++;
        log.debug({ msg_id: msgId, subject }, 'publish refused: backlog full');
        throw new AgentComError(
          ERROR_CODES.RATE_LIMITED,
          `${subject} already holds as many unprocessed messages as it may; try again later`,
          { retryAfterMs: BACKLOG_RETRY_AFTER_MS, cause: err },
        );
      }
      if (attempt >= retries || !isRetryablePublishError(err) || bus.nc.isClosed()) {
        metrics.publishFailures++;
        log.warn(
          { err, msg_id: msgId, correlation_id: correlationId, subject, attempts: attempt + 1 },
          'publish failed',
        );
        throw err;
      }
      metrics.publishRetries++;
      const delay = exponentialDelay(attempt, { min: base, max: RETRY_MAX_DELAY_MS }, RETRY_JITTER);
      log.debug(
        { err, msg_id: msgId, subject, attempt: attempt + 1, delay_ms: Math.round(delay) },
        'publish retry',
      );
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** How long, in all, {@link waitForBacklog} waits by default. */
export const BACKLOG_WAIT_MS = 60_000;

/**
 * Runs a publish again, after the wait the refusal names, while the sender's backlog is full
 * (`rate_limited`), for up to `maxWaitMs` in all; any other error is thrown at once. `stop` ends
 * the waiting early (the client is closing).
 */
export async function waitForBacklog<T>(
  send: () => Promise<T>,
  opts: { maxWaitMs?: number; stop?: () => boolean } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.maxWaitMs ?? BACKLOG_WAIT_MS);
  for (;;) {
    try {
      return await send();
    } catch (err) {
      const wait =
        err instanceof AgentComError && err.code === ERROR_CODES.RATE_LIMITED ? err.retryAfterMs : undefined;
      if (wait === undefined || Date.now() + wait > deadline || opts.stop?.()) throw err;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
