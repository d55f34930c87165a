/**
 * @module headers
 * NATS header names AgentCom reads and writes, and W3C Trace Context (`traceparent`) helpers.
 * Every bus message carries a `Nats-Msg-Id` (JetStream dedupe key) and a `Correlation-Id`
 * (the id that ties a request, its task and all its reports together); `traceparent` is optional
 * and propagated as a child span when present.
 */

export const HEADERS = {
  /** JetStream's dedupe key: the same id inside the stream's duplicate window is stored once. */
  MSG_ID: 'Nats-Msg-Id',
  /** Ties every message of one logical flow together (a submission, its task, its reports). */
  CORRELATION_ID: 'Correlation-Id',
  /** W3C Trace Context, `00-<trace-id>-<parent-id>-<flags>`. */
  TRACEPARENT: 'traceparent',
  TRACESTATE: 'tracestate',
  /** Set by the micro-service machinery on error replies (nats.js services convention). */
  SERVICE_ERROR: 'Nats-Service-Error',
  SERVICE_ERROR_CODE: 'Nats-Service-Error-Code',
} as const;

/** Headers stored on a dead letter next to the original payload. */
export const DLQ_HEADERS = {
  /** Wire error code (`invalid_payload`, `max_deliveries`, ...). */
  CODE: 'Agentcom-Dlq-Code',
  /** Human readable reason. */
  REASON: 'Agentcom-Dlq-Reason',
  /** Offending path for validation errors, JSON array. */
  PATH: 'Agentcom-Dlq-Path',
  STREAM: 'Agentcom-Dlq-Stream',
  CONSUMER: 'Agentcom-Dlq-Consumer',
  STREAM_SEQ: 'Agentcom-Dlq-Stream-Seq',
  SUBJECT: 'Agentcom-Dlq-Subject',
  DELIVERIES: 'Agentcom-Dlq-Deliveries',
  /** ISO time the message was dead-lettered. */
  AT: 'Agentcom-Dlq-At',
  /** Original `Nats-*` headers are kept under this prefix (they would act on the DLQ otherwise). */
  ORIGINAL_PREFIX: 'Agentcom-Dlq-Orig-',
} as const;

// --- W3C traceparent ---

export interface TraceParent {
  version: string;
  /** 32 lowercase hex chars, not all zero. */
  traceId: string;
  /** 16 lowercase hex chars, not all zero. */
  parentId: string;
  /** 2 hex chars; bit 0 is `sampled`. */
  flags: string;
}

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** Parses a `traceparent` header; null when absent or invalid (invalid ones are replaced, not kept). */
export function parseTraceparent(value: string | undefined | null): TraceParent | null {
  if (!value) return null;
  const m = TRACEPARENT_RE.exec(value.trim());
  if (!m) return null;
  const [, version, traceId, parentId, flags] = m as unknown as [string, string, string, string, string];
  if (version === 'ff' || traceId === ZERO_TRACE || parentId === ZERO_SPAN) return null;
  // Version 00 must not carry extra fields.
  if (version === '00' && value.trim().length !== 55) return null;
  return { version, traceId, parentId, flags };
}

export function formatTraceparent(t: TraceParent): string {
  return `${t.version}-${t.traceId}-${t.parentId}-${t.flags}`;
}

/** A new root trace (sampled). */
export function newTraceparent(): string {
  return `00-${randomHex(32)}-${randomHex(16)}-01`;
}

/** A child span of `parent` (same trace id, new parent id); a new root when `parent` is invalid. */
export function childTraceparent(parent: string | undefined | null): string {
  const t = parseTraceparent(parent);
  if (!t) return newTraceparent();
  return `00-${t.traceId}-${randomHex(16)}-${t.flags}`;
}

// Hex from a pooled random buffer: one getRandomValues call per 4 KiB instead of one per id,
// because ids are minted on the publish hot path.
const POOL_SIZE = 4096;
const pool = new Uint8Array(POOL_SIZE);
let poolPos = POOL_SIZE;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** `n` random lowercase hex chars (n even), from a pooled CSPRNG buffer. */
export function randomHex(n: number): string {
  const bytes = n >> 1;
  if (poolPos + bytes > POOL_SIZE) {
    crypto.getRandomValues(pool);
    poolPos = 0;
  }
  let s = '';
  for (let i = 0; i < bytes; i++) s += HEX[pool[poolPos++]!];
  // All-zero ids are invalid in W3C trace context; at 2^-64 odds they are not worth a branch.
  return s;
}
