/**
 * @module dlq
 * The dead-letter record and the DLQ API payloads. A dead letter is stored in the `<P>_DLQ` stream
 * on `<prefix>.dlq.<stream>.<consumer>` with the ORIGINAL payload bytes as its data and the
 * metadata in `Agentcom-Dlq-*` headers (see headers.ts); `DlqRecord` is the JSON view of one such
 * message that the API returns. Replay republishes the original bytes to the original subject.
 */
import { z } from 'zod';
import { versioned } from './envelope.js';
import { WireErrorSchema } from './errors.js';

export const DlqRecordSchema = versioned(1, {
  seq: z.number().int().positive().describe('Sequence of the dead letter in the DLQ stream'),
  stream: z.string().describe('Stream the message was consumed from'),
  consumer: z.string().describe('Durable consumer that gave up on it'),
  stream_seq: z.number().int().nonnegative().describe('Sequence of the original in its stream'),
  subject: z.string().describe('Original subject (replay publishes here)'),
  msg_id: z.string().nullable().describe('Original Nats-Msg-Id, if any'),
  correlation_id: z.string().nullable(),
  deliveries: z.number().int().nonnegative().describe('Delivery count when it was dead-lettered'),
  reason: WireErrorSchema.describe(
    'Why: invalid_payload, unsupported_version, payload_too_large, max_deliveries, ...',
  ),
  dead_lettered_at: z.string().describe('ISO 8601 time'),
  headers: z.record(z.string(), z.array(z.string())).describe('Original headers (Nats-* ones included)'),
  size: z.number().int().nonnegative().describe('Original payload size in bytes'),
  payload: z.string().describe('Original payload: UTF-8 text, or base64 when payload_encoding is base64'),
  payload_encoding: z.enum(['utf8', 'base64']),
}).describe('One dead letter');
export type DlqRecord = z.infer<typeof DlqRecordSchema>;

/** A stream name as it appears in a DLQ subject token: no dots, wildcards or spaces. */
const StreamNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'stream name: 1-64 of A-Z a-z 0-9 _ -')
  .describe('A stream name, e.g. AGENTCOM_SUBMIT');
/** A stream sequence (a safe integer). */
const SeqSchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const DlqListRequestSchema = versioned(1, {
  stream: StreamNameSchema.optional().describe('Only dead letters from this stream'),
  after_seq: z
    .number()
    .int()
    .nonnegative()
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('Page start: DLQ sequences above this'),
  limit: z.number().int().min(1).max(1000).default(100).describe('Page size, default 100'),
}).describe('dlq.list request');
export type DlqListRequest = z.input<typeof DlqListRequestSchema>;

export const DlqListResponseSchema = versioned(1, {
  items: z.array(DlqRecordSchema),
  next_after_seq: z
    .number()
    .int()
    .nullable()
    .describe('Pass as after_seq for the next page; null at the end'),
}).describe('dlq.list response');
export type DlqListResponse = z.infer<typeof DlqListResponseSchema>;

export const DlqGetRequestSchema = versioned(1, { seq: SeqSchema }).describe('dlq.get request');

export const DlqReplayRequestSchema = versioned(1, {
  seq: SeqSchema.describe('DLQ sequence to replay'),
  keep: z.boolean().default(false).describe('Keep the dead letter after replaying (default: delete it)'),
}).describe('dlq.replay request');

export const DlqReplayResponseSchema = versioned(1, {
  seq: z.number().int().positive(),
  subject: z.string(),
  msg_id: z.string().describe('The fresh Nats-Msg-Id the replay was published with'),
  stream: z.string(),
  stream_seq: z.number().int().positive().describe('Sequence of the replayed copy'),
  duplicate: z.boolean(),
}).describe('dlq.replay response');
export type DlqReplayResponse = z.infer<typeof DlqReplayResponseSchema>;

export const DlqPurgeRequestSchema = versioned(1, {
  seq: SeqSchema.optional().describe('One dead letter; omit to purge all (of `stream`)'),
  stream: StreamNameSchema.optional().describe('With no seq: purge only dead letters from this stream'),
}).describe('dlq.purge request');

export const DlqPurgeResponseSchema = versioned(1, {
  purged: z.number().int().nonnegative(),
}).describe('dlq.purge response');
