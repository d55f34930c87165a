/**
 * @module dlq
 * The dead-letter queue: writing a dead letter, and the list / get / replay / purge API.
 * A dead letter is the original payload bytes published to `<prefix>.dlq.<stream>.<consumer>` in the
 * `<P>_DLQ` stream (Limits retention) with `Agentcom-Dlq-*` headers for the reason, original subject,
 * stream sequence and delivery count; original `Nats-*` headers are kept under
 * `Agentcom-Dlq-Orig-`. Its `Nats-Msg-Id` is `<stream>:<consumer>:<stream_seq>`, so the consumer
 * runner and the advisory forwarder can both try and the DLQ holds it once (10-minute window).
 * Callers must write the dead letter BEFORE `term()`: on work-queue streams term deletes the original.
 */
import type { StoredMsg } from '@nats-io/jetstream';
import { type MsgHdrs, headers as natsHeaders } from '@nats-io/transport-node';
import {
  DlqGetRequestSchema,
  type DlqListRequest,
  DlqListRequestSchema,
  type DlqListResponse,
  DlqListResponseSchema,
  DlqPurgeRequestSchema,
  DlqPurgeResponseSchema,
  type DlqRecord,
  DlqRecordSchema,
  DlqReplayRequestSchema,
  type DlqReplayResponse,
  DlqReplayResponseSchema,
} from '../protocol/dlq.js';
import { AgentComError, ERROR_CODES, type ErrorCode, type WireError } from '../protocol/errors.js';
import { DLQ_HEADERS, HEADERS } from '../protocol/headers.js';
import type { Bus } from './connection.js';
import { type PublishResult, publishRaw } from './publish.js';
import type { AgentcomService } from './service.js';

export interface DeadLetterInput {
  subject: string;
  headers: MsgHdrs | undefined;
  data: Uint8Array;
  stream: string;
  consumer: string;
  streamSeq: number;
  deliveries: number;
  reason: WireError;
}

/** The dedupe id of a dead letter: one per original message and consumer. */
export function deadLetterMsgId(stream: string, consumer: string, streamSeq: number): string {
  return `${stream}:${consumer}:${streamSeq}`;
}

/** Publishes a dead letter (retrying with the same id). Resolves once the DLQ stream stored it. */
export async function deadLetter(bus: Bus, input: DeadLetterInput): Promise<PublishResult> {
  const h = natsHeaders();
  let correlationId: string | undefined;
  let traceparent: string | undefined;
  if (input.headers) {
    for (const [k, vs] of input.headers) {
      const lower = k.toLowerCase();
      if (lower === HEADERS.CORRELATION_ID.toLowerCase()) correlationId = vs[0];
      else if (lower === HEADERS.TRACEPARENT) traceparent = vs[0];
      const name = lower.startsWith('nats-') ? `${DLQ_HEADERS.ORIGINAL_PREFIX}${k}` : k;
      if (lower === HEADERS.CORRELATION_ID.toLowerCase() || lower === HEADERS.TRACEPARENT) continue;
      for (const v of vs) h.append(name, v);
    }
  }
  h.set(DLQ_HEADERS.CODE, input.reason.code);
  h.set(DLQ_HEADERS.REASON, oneLine(input.reason.message));
  if (input.reason.path) h.set(DLQ_HEADERS.PATH, JSON.stringify(input.reason.path));
  h.set(DLQ_HEADERS.STREAM, input.stream);
  h.set(DLQ_HEADERS.CONSUMER, input.consumer);
  h.set(DLQ_HEADERS.STREAM_SEQ, String(input.streamSeq));
  h.set(DLQ_HEADERS.SUBJECT, input.subject);
  h.set(DLQ_HEADERS.DELIVERIES, String(input.deliveries));
  h.set(DLQ_HEADERS.AT, new Date().toISOString());
  const msgId = deadLetterMsgId(input.stream, input.consumer, input.streamSeq);
  const res = await publishRaw(bus, bus.names.subjects.dlq(input.stream, input.consumer), input.data, {
    msgId,
    correlationId: correlationId ?? msgId,
    ...(traceparent ? { traceparent } : {}),
    baseHeaders: h,
  });
  if (!res.duplicate) bus.metrics.deadLettered++;
  bus.log.warn(
    {
      msg_id: msgId,
      correlation_id: correlationId,
      stream: input.stream,
      consumer: input.consumer,
      stream_seq: input.streamSeq,
      subject: input.subject,
      deliveries: input.deliveries,
      code: input.reason.code,
      reason: input.reason.message,
      dlq_seq: res.seq,
      duplicate: res.duplicate,
    },
    'dead-lettered',
  );
  return res;
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(0, 1024);

// --- Reading ---

function headerMap(h: MsgHdrs | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!h) return out;
  for (const [k, vs] of h) out[k] = [...vs];
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
function isUtf8Text(data: Uint8Array): string | null {
  try {
    return strictUtf8.decode(data);
  } catch {
    return null;
  }
}

/** The JSON view of a stored dead letter. */
export function toDlqRecord(sm: StoredMsg): DlqRecord {
  const h = sm.header;
  const get = (k: string) => h?.get(k) || undefined;
  const original: Record<string, string[]> = {};
  for (const [k, vs] of Object.entries(headerMap(h))) {
    if (k.toLowerCase().startsWith('agentcom-dlq-')) {
      if (k.toLowerCase().startsWith(DLQ_HEADERS.ORIGINAL_PREFIX.toLowerCase())) {
        original[k.slice(DLQ_HEADERS.ORIGINAL_PREFIX.length)] = vs;
      }
      continue;
    }
    if (k.toLowerCase().startsWith('nats-')) continue; // the DLQ copy's own Nats-Msg-Id
    original[k] = vs;
  }
  const pathRaw = get(DLQ_HEADERS.PATH);
  const reason: WireError = {
    code: (get(DLQ_HEADERS.CODE) ?? ERROR_CODES.INTERNAL) as ErrorCode,
    message: get(DLQ_HEADERS.REASON) ?? '',
  };
  if (pathRaw) {
    try {
      reason.path = JSON.parse(pathRaw);
    } catch {
      // a malformed path header is not worth failing the listing
    }
  }
  const text = isUtf8Text(sm.data);
  const msgIdKey = Object.keys(original).find((k) => k.toLowerCase() === HEADERS.MSG_ID.toLowerCase());
  return {
    v: 1,
    seq: sm.seq,
    stream: get(DLQ_HEADERS.STREAM) ?? '',
    consumer: get(DLQ_HEADERS.CONSUMER) ?? '',
    stream_seq: Number(get(DLQ_HEADERS.STREAM_SEQ) ?? 0),
    subject: get(DLQ_HEADERS.SUBJECT) ?? '',
    msg_id: msgIdKey ? (original[msgIdKey]?.[0] ?? null) : null,
    correlation_id: get(HEADERS.CORRELATION_ID) ?? null,
    deliveries: Number(get(DLQ_HEADERS.DELIVERIES) ?? 0),
    reason,
    dead_lettered_at: get(DLQ_HEADERS.AT) ?? sm.time.toISOString(),
    headers: original,
    size: sm.data.length,
    payload: text ?? Buffer.from(sm.data).toString('base64'),
    payload_encoding: text === null ? 'base64' : 'utf8',
  };
}

async function getStored(bus: Bus, seq: number): Promise<StoredMsg | null> {
  return bus.jsm.direct.getMessage(bus.names.streams.dlq, { seq }).then(
    (sm) => (sm && sm.seq === seq ? sm : null),
    () => null,
  );
}

/**
 * A page stops growing past this many bytes of JSON, whatever `limit` says: dead letters carry their
 * payloads (up to 256 KiB each), and a reply must fit in one NATS message (1 MiB by default).
 */
export const DLQ_PAGE_MAX_BYTES = 512 * 1024;

/** Pages through the DLQ in sequence order (at most `limit` letters and about DLQ_PAGE_MAX_BYTES). */
export async function listDeadLetters(bus: Bus, req: Partial<DlqListRequest> = {}): Promise<DlqListResponse> {
  const limit = Math.min(1000, Math.max(1, req.limit ?? 100));
  const filter = req.stream ? bus.names.subjects.dlqOfStream(req.stream) : bus.names.subjects.dlqAll;
  const items: DlqRecord[] = [];
  let seq = (req.after_seq ?? 0) + 1;
  let bytes = 0;
  let full = false;
  while (items.length < limit) {
    let sm: StoredMsg | null;
    try {
      sm = await bus.jsm.direct.getMessage(bus.names.streams.dlq, { seq, next_by_subj: filter });
    } catch (err) {
      if ((err as { code?: number }).code === 404 || /not found/i.test(String(err))) break;
      throw err;
    }
    if (!sm) break;
    const rec = toDlqRecord(sm);
    const size = JSON.stringify(rec).length;
    // Always at least one letter per page, so paging moves on.
    if (items.length > 0 && bytes + size > DLQ_PAGE_MAX_BYTES) {
      full = true;
      break;
    }
    items.push(rec);
    bytes += size;
    seq = sm.seq + 1;
  }
  const last = items.at(-1);
  return { v: 1, items, next_after_seq: (items.length === limit || full) && last ? last.seq : null };
}

export async function getDeadLetter(bus: Bus, seq: number): Promise<DlqRecord | null> {
  const sm = await getStored(bus, seq);
  return sm ? toDlqRecord(sm) : null;
}

/**
 * Republishes a dead letter's original payload and headers to its original subject with a fresh
 * `Nats-Msg-Id` (deterministic per DLQ entry, so retrying a replay does not duplicate it), then
 * deletes the dead letter unless `keep`.
 * @throws AgentComError `not_found` when there is no dead letter `seq`.
 */
export async function replayDeadLetter(
  bus: Bus,
  seq: number,
  opts: { keep?: boolean } = {},
): Promise<DlqReplayResponse> {
  const sm = await getStored(bus, seq);
  if (!sm) throw new AgentComError(ERROR_CODES.NOT_FOUND, `no dead letter ${seq}`);
  const rec = toDlqRecord(sm);
  const h = natsHeaders();
  let traceparent: string | undefined;
  for (const [k, vs] of Object.entries(rec.headers)) {
    const lower = k.toLowerCase();
    if (lower.startsWith('nats-')) continue;
    if (lower === HEADERS.TRACEPARENT) {
      traceparent = vs[0];
      continue;
    }
    for (const v of vs) h.append(k, v);
  }
  const msgId = `dlq-replay:${bus.names.streams.dlq}:${seq}`;
  const res = await publishRaw(bus, rec.subject, sm.data, {
    msgId,
    correlationId: rec.correlation_id ?? msgId,
    ...(traceparent ? { traceparent } : {}),
    baseHeaders: h,
  });
  if (!opts.keep) await bus.jsm.streams.deleteMessage(bus.names.streams.dlq, seq, false).catch(() => false);
  bus.log.info(
    { dlq_seq: seq, subject: rec.subject, msg_id: msgId, correlation_id: rec.correlation_id, seq: res.seq },
    'dead letter replayed',
  );
  return {
    v: 1,
    seq,
    subject: rec.subject,
    msg_id: msgId,
    stream: res.stream,
    stream_seq: res.seq,
    duplicate: res.duplicate,
  };
}

/** Deletes one dead letter (`seq`), or all of them (optionally only those from `stream`). */
export async function purgeDeadLetters(
  bus: Bus,
  opts: { seq?: number; stream?: string } = {},
): Promise<{ v: 1; purged: number }> {
  const dlq = bus.names.streams.dlq;
  if (opts.seq !== undefined) {
    const ok = await bus.jsm.streams.deleteMessage(dlq, opts.seq, false).catch(() => false);
    return { v: 1, purged: ok ? 1 : 0 };
  }
  const r = await bus.jsm.streams.purge(
    dlq,
    opts.stream ? { filter: bus.names.subjects.dlqOfStream(opts.stream) } : undefined,
  );
  bus.log.info({ purged: r.purged, stream: opts.stream }, 'dlq purged');
  return { v: 1, purged: r.purged };
}

/** Registers `dlq.list`, `dlq.get`, `dlq.replay` and `dlq.purge` on the API service. */
export function registerDlqEndpoints(svc: AgentcomService, bus: Bus): void {
  svc.addEndpoint('dlq.list', {
    input: DlqListRequestSchema,
    output: DlqListResponseSchema,
    description: 'List dead letters (paged)',
    handler: (req) => listDeadLetters(bus, req),
  });
  svc.addEndpoint('dlq.get', {
    input: DlqGetRequestSchema,
    output: DlqRecordSchema,
    description: 'One dead letter with its payload',
    handler: async (req) => {
      const rec = await getDeadLetter(bus, req.seq);
      if (!rec) throw new AgentComError(ERROR_CODES.NOT_FOUND, `no dead letter ${req.seq}`);
      return rec;
    },
  });
  svc.addEndpoint('dlq.replay', {
    input: DlqReplayRequestSchema,
    output: DlqReplayResponseSchema,
    description: 'Republish a dead letter to its original subject',
    handler: (req) => replayDeadLetter(bus, req.seq, { keep: req.keep }),
  });
  svc.addEndpoint('dlq.purge', {
    input: DlqPurgeRequestSchema,
    output: DlqPurgeResponseSchema,
    description: 'Delete one dead letter, or all (of one stream)',
    handler: (req) =>
      purgeDeadLetters(bus, {
        ...(req.seq === undefined ? {} : { seq: req.seq }),
        ...(req.stream === undefined ? {} : { stream: req.stream }),
      }),
  });
}
