/**
 * @module envelope
 * Payload conventions shared by every subject: a payload is one JSON object with a `v` field (its
 * schema version), validated by zod, and no larger than a size limit. `decodePayload` never
 * throws: it returns the value or a structured wire error, so a consumer can dead-letter a bad
 * message with its reason instead of crashing. Outcomes: size over the limit -> `payload_too_large`;
 * not JSON or failing the schema -> `invalid_payload` (with the offending path); a `v` that is
 * present but not the schema's version -> `unsupported_version`.
 */
import { z } from 'zod';
import { AgentComError, ERROR_CODES, fromZodError, type WireError } from './errors.js';

/** Default payload size limit (bytes of encoded JSON). nats-server's own default max is 1 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024;

/** A zod object schema for version `version` of a payload: `{ v: version, ...shape }`. */
export function versioned<V extends number, S extends z.ZodRawShape>(version: V, shape: S) {
  return z.object({
    v: z.literal(version).describe('Schema version of this payload'),
    ...shape,
  });
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: WireError };

const decoder = new TextDecoder();
/**
 * UTF-8 bytes of JSON text. `Buffer.from` rather than `TextEncoder.encode`: on Node 20 the latter
 * allocates a fresh ArrayBuffer per call, 2-4 times slower for what the hub encodes per task
 * (`npx tsx bench/encode.ts`, three runs: 2.3-3.2 against 0.8-1.1 µs for a 1.4 KB record, 0.9-1.3
 * against 0.2-0.3 µs for an 81-byte command line), where Buffer.from slices a pool.
 * `JSON.stringify` gives undefined for undefined (and functions): no bytes, as TextEncoder gave.
 */
export const utf8 = (text: string | undefined): Uint8Array => Buffer.from(text ?? '', 'utf8');

/** Validates a value against its schema; an issue at `v` maps to `unsupported_version`. */
export function validatePayload<T>(schema: z.ZodType<T>, value: unknown, what = 'payload'): DecodeResult<T> {
  let r: z.ZodSafeParseResult<T>;
  try {
    r = schema.safeParse(value);
  } catch (err) {
    // A refine measuring a free-form field with JSON.stringify overflows on a value nested deeper
    // than the stack: a payload must not be able to crash its receiver.
    if (!(err instanceof RangeError)) throw err;
    return {
      ok: false,
      error: { code: ERROR_CODES.INVALID_PAYLOAD, message: `${what} is nested too deeply` },
    };
  }
  if (r.success) return { ok: true, value: r.data };
  const versionIssue = r.error.issues.find((i) => i.path.length === 1 && i.path[0] === 'v');
  if (
    versionIssue &&
    typeof value === 'object' &&
    value !== null &&
    (value as { v?: unknown }).v !== undefined
  ) {
    return {
      ok: false,
      error: {
        code: ERROR_CODES.UNSUPPORTED_VERSION,
        message: `unsupported ${what} version ${JSON.stringify((value as { v?: unknown }).v)}: ${versionIssue.message}`,
        path: ['v'],
      },
    };
  }
  return { ok: false, error: fromZodError(r.error, what).toWire() };
}

/** Decodes and validates a received payload. Never throws. */
export function decodePayload<T>(
  schema: z.ZodType<T>,
  data: Uint8Array,
  maxBytes = DEFAULT_MAX_PAYLOAD_BYTES,
): DecodeResult<T> {
  if (data.length > maxBytes) {
    return {
      ok: false,
      error: {
        code: ERROR_CODES.PAYLOAD_TOO_LARGE,
        message: `payload is ${data.length} bytes, limit ${maxBytes}`,
      },
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(data));
  } catch (err) {
    return {
      ok: false,
      error: { code: ERROR_CODES.INVALID_PAYLOAD, message: `payload is not JSON: ${(err as Error).message}` },
    };
  }
  return validatePayload(schema, json);
}

/**
 * Parses the JSON text of a file (a config, a registry) and validates it; `label` names the file in
 * the errors. @throws AgentComError `invalid_payload` (not JSON, or fails the schema, with the path).
 */
export function parseJsonText<T>(schema: z.ZodType<T>, text: string, label: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, `${label} is not JSON: ${(err as Error).message}`);
  }
  let parsed: z.ZodSafeParseResult<T>;
  try {
    parsed = schema.safeParse(json);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, `${label} is nested too deeply`);
  }
  if (!parsed.success) throw fromZodError(parsed.error, label);
  return parsed.data;
}

/**
 * Validates and encodes a payload for sending.
 * @throws AgentComError `invalid_payload` / `unsupported_version` / `payload_too_large`.
 */
export function encodePayload<T>(
  schema: z.ZodType<T>,
  value: T,
  maxBytes = DEFAULT_MAX_PAYLOAD_BYTES,
): Uint8Array {
  const r = validatePayload(schema, value);
  if (!r.ok) throw AgentComError.fromWire(r.error);
  const bytes = utf8(JSON.stringify(r.value));
  if (bytes.length > maxBytes) {
    throw new AgentComError(
      ERROR_CODES.PAYLOAD_TOO_LARGE,
      `payload is ${bytes.length} bytes, limit ${maxBytes}`,
    );
  }
  return bytes;
}

/**
 * Encodes a value its sender's own typed code produced, without re-validating it (hot paths); the
 * size limit still applies. Receivers always validate.
 * @throws AgentComError `payload_too_large`.
 */
export function encodeTrusted(value: unknown, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES): Uint8Array {
  const bytes = utf8(JSON.stringify(value));
  if (bytes.length > maxBytes) {
    throw new AgentComError(
      ERROR_CODES.PAYLOAD_TOO_LARGE,
      `payload is ${bytes.length} bytes, limit ${maxBytes}`,
    );
  }
  return bytes;
}
