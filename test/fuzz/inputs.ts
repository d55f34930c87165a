/**
 * Inputs for the fuzzer: for each inbound subject, a fast-check arbitrary of raw payloads drawn from
 * four families: random bytes, random JSON, a valid payload of the subject's zod schema mutated
 * (a field dropped, retyped or replaced by random JSON, an unknown field, another `v`, an oversized
 * string, deep nesting), and valid payloads unchanged. Whether an input is valid is decided by the
 * same `decodePayload` the hub uses, so every input has one documented outcome.
 */
import fc from 'fast-check';
import type { z } from 'zod';
import { DEFAULT_MAX_PAYLOAD_BYTES, decodePayload } from '../../src/protocol/envelope.js';

const encoder = new TextEncoder();

export interface FuzzInput {
  family: 'bytes' | 'json' | 'mutated' | 'valid';
  data: Uint8Array;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** One mutation of a valid object. */
function mutate(base: Record<string, Json>): fc.Arbitrary<Json> {
  const keys = Object.keys(base);
  const key = fc.constantFrom(...keys);
  return fc.oneof(
    key.map((k) => {
      const { [k]: _dropped, ...rest } = base;
      return rest;
    }),
    fc.tuple(key, fc.jsonValue() as fc.Arbitrary<Json>).map(([k, v]) => ({ ...base, [k]: v })),
    fc
      .tuple(key, fc.constantFrom<Json>(null, 0, -1, 1e308, '', [], {}, true, 'x'.repeat(5000)))
      .map(([k, v]) => ({ ...base, [k]: v })),
    fc
      .tuple(fc.string({ maxLength: 20 }), fc.jsonValue() as fc.Arbitrary<Json>)
      .map(([k, v]) => ({ ...base, [k]: v })),
    fc.constantFrom<Json>(2, 0, '1', null).map((v) => ({ ...base, v })),
    fc.constant({ ...base, big: 'y'.repeat(DEFAULT_MAX_PAYLOAD_BYTES + 1024) } as Json),
    fc.integer({ min: 50, max: 2000 }).map((depth) => {
      let v: Json = base;
      for (let i = 0; i < depth; i++) v = [v];
      return v;
    }),
    fc.constant([base] as Json),
  );
}

/** Raw payloads for a subject whose valid payloads are `valid` (at least one). */
export function payloads(valid: readonly Record<string, Json>[]): fc.Arbitrary<FuzzInput> {
  const json = (v: Json) => encoder.encode(JSON.stringify(v));
  return fc.oneof(
    {
      weight: 2,
      arbitrary: fc.uint8Array({ maxLength: 512 }).map((data) => ({ family: 'bytes' as const, data })),
    },
    {
      weight: 2,
      arbitrary: (fc.jsonValue() as fc.Arbitrary<Json>).map((v) => ({
        family: 'json' as const,
        data: json(v),
      })),
    },
    {
      weight: 5,
      arbitrary: fc
        .constantFrom(...valid)
        .chain(mutate)
        .map((v) => ({ family: 'mutated' as const, data: json(v) })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(...valid).map((v) => ({ family: 'valid' as const, data: json(v) })),
    },
  );
}

/** Draws `n` inputs with a seed (reproducible). */
export function draw(arb: fc.Arbitrary<FuzzInput>, n: number, seed: number): FuzzInput[] {
  return fc.sample(arb, { numRuns: n, seed });
}

/** The hub's verdict on an input: valid, or the wire error code it answers or dead-letters with. */
export function verdict<T>(
  schema: z.ZodType<T>,
  data: Uint8Array,
): { ok: true; value: T } | { ok: false; code: string } {
  const r = decodePayload(schema, data);
  return r.ok ? { ok: true, value: r.value } : { ok: false, code: r.error.code };
}
