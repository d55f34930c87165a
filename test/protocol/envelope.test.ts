import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decodePayload, encodePayload, versioned } from '../../src/protocol/envelope.js';
import { AgentComError } from '../../src/protocol/errors.js';
import {
  childTraceparent,
  formatTraceparent,
  newTraceparent,
  parseTraceparent,
} from '../../src/protocol/headers.js';

const S = versioned(1, { name: z.string().min(1), n: z.number().int().optional() });
const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

describe('decodePayload()', () => {
  it('returns the validated value', () => {
    expect(decodePayload(S, enc({ v: 1, name: 'x', n: 2 }))).toEqual({
      ok: true,
      value: { v: 1, name: 'x', n: 2 },
    });
  });
  it('answers invalid_payload for malformed JSON', () => {
    const r = decodePayload(S, enc('{not json'));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('invalid_payload');
  });
  it('answers invalid_payload with the offending path for a schema violation', () => {
    const r = decodePayload(S, enc({ v: 1, name: '' }));
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_payload', path: ['name'] } });
  });
  it('answers unsupported_version for another v', () => {
    const r = decodePayload(S, enc({ v: 2, name: 'x' }));
    expect(r).toMatchObject({ ok: false, error: { code: 'unsupported_version', path: ['v'] } });
  });
  it('answers invalid_payload when v is missing', () => {
    expect(decodePayload(S, enc({ name: 'x' }))).toMatchObject({
      ok: false,
      error: { code: 'invalid_payload' },
    });
  });
  it('answers payload_too_large before parsing', () => {
    const r = decodePayload(S, enc({ v: 1, name: 'x'.repeat(100) }), 50);
    expect(r).toMatchObject({ ok: false, error: { code: 'payload_too_large' } });
  });
});

describe('encodePayload()', () => {
  it('throws typed errors for invalid and oversized payloads', () => {
    expect(() => encodePayload(S, { v: 1, name: '' })).toThrow(AgentComError);
    try {
      encodePayload(S, { v: 1, name: 'y'.repeat(200) }, 64);
      expect.unreachable();
    } catch (err) {
      expect((err as AgentComError).code).toBe('payload_too_large');
    }
  });
  it('round-trips through decodePayload', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.option(fc.integer(), { nil: undefined }), (name, n) => {
        const value = n === undefined ? { v: 1 as const, name } : { v: 1 as const, name, n };
        expect(decodePayload(S, encodePayload(S, value))).toEqual({ ok: true, value });
      }),
    );
  });
});

describe('traceparent', () => {
  it('creates valid root traces and children on the same trace', () => {
    const root = newTraceparent();
    const p = parseTraceparent(root);
    expect(p).not.toBeNull();
    const child = parseTraceparent(childTraceparent(root));
    expect(child?.traceId).toBe(p?.traceId);
    expect(child?.parentId).not.toBe(p?.parentId);
    expect(child?.flags).toBe(p?.flags);
  });
  it('parses the W3C example and rejects invalid values', () => {
    const ex = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(parseTraceparent(ex)).toEqual({
      version: '00',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentId: '00f067aa0ba902b7',
      flags: '01',
    });
    expect(formatTraceparent(parseTraceparent(ex)!)).toBe(ex);
    for (const bad of [
      '',
      'garbage',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      `${ex}-extra`,
    ]) {
      expect(parseTraceparent(bad)).toBeNull();
    }
  });
  it('starts a new root when the parent is invalid', () => {
    expect(parseTraceparent(childTraceparent('nonsense'))).not.toBeNull();
  });
  it('never produces an unparsable id', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 50 }), (k) => {
        let t = newTraceparent();
        for (let i = 0; i < k; i++) t = childTraceparent(t);
        expect(parseTraceparent(t)).not.toBeNull();
      }),
    );
  });
});
