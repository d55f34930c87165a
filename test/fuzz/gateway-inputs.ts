/**
 * Inputs for the gateway fuzzer (gateway-run.ts): HTTP requests drawn from the gateway's own OpenAPI
 * document (every operation, no hand list; the few routes the document leaves out are added in
 * {@link EXTRA_OPERATIONS}), each request a pure function of `(seed, index)` so one request can be
 * drawn again alone. Each request carries the outcome the gateway owes it, predicted by walking the
 * gateway's pipeline in its order (route -> body parse -> token -> role -> params -> query -> body
 * -> handler) with the document's JSON Schemas; a stage this module cannot decide for sure (a
 * keyword it does not evaluate, a percent-encoded static segment) makes every later outcome
 * acceptable as long as it is a structured error or the documented success.
 * Families: wrong or missing path parameters (huge, unicode, `..`, `%00`, NATS wildcards), junk
 * query strings, bodies that are not JSON, truncated, retyped, deeply nested, oversized or carry
 * prototype keys, wrong content types, missing, garbage, expired, revoked or forged tokens of every
 * role, wrong methods, odd headers (Last-Event-ID, Correlation-Id), and raw bytes that are not HTTP.
 */
import { z } from 'zod';
import { EventsQuerySchema } from '../../src/gateway/routes/events.js';

// ---------------------------------------------------------------------------------------------
// A seeded generator: one stream per (seed, index)

function mix32(x: number): number {
  let t = (x + 0x9e3779b9) | 0;
  t = Math.imul(t ^ (t >>> 16), 0x21f0aaad);
  t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
  return (t ^ (t >>> 15)) >>> 0;
}

/** sfc32, seeded from (seed, index): request `index` of a run is the same whatever came before. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;
  constructor(seed: number, index: number) {
    this.a = mix32(seed);
    this.b = mix32(index ^ 0x5bd1e995);
    this.c = mix32(seed + Math.imul(index, 0x27d4eb2d));
    for (let i = 0; i < 12; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** [0, 1) */
  next(): number {
    return this.u32() / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  weighted<T>(table: readonly (readonly [number, T])[]): T {
    const total = table.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of table) {
      r -= w;
      if (r < 0) return v;
    }
    return table[table.length - 1]![1];
  }
  str(alphabet: string, len: number): string {
    let s = '';
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(this.next() * alphabet.length)];
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON Schema (the subset zod emits): a conforming value, and whether a value conforms

export interface Schema {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  propertyNames?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  [k: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** true: conforms; false: refused; null: cannot tell (a keyword not evaluated here). */
export type Verdict = boolean | null;

const ANNOTATIONS = new Set(['description', 'default', 'title', 'examples', '$comment', 'deprecated']);
const EVALUATED = new Set([
  'type',
  'const',
  'enum',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minItems',
  'maxItems',
  'items',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'anyOf',
  'oneOf',
  'allOf',
]);

const regexes = new Map<string, RegExp>();
const regex = (p: string) => {
  let r = regexes.get(p);
  if (!r) {
    r = new RegExp(p);
    regexes.set(p, r);
  }
  return r;
};

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function typeMatches(t: string, v: unknown): Verdict {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) return false;
      return Number.isSafeInteger(v) ? true : null;
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    default:
      return null;
  }
}

/** Equal JSON values (a value nested too deeply to write out equals no constant). */
function sameJson(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return a === b;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

/** Whether `v` conforms to `s`, as zod would decide for the schema it was written from. */
export function conforms(s: Schema, v: unknown): Verdict {
  let unsure = false;
  for (const k of Object.keys(s))
    if (!EVALUATED.has(k) && !ANNOTATIONS.has(k) && !k.startsWith('x-')) unsure = true;
  const fold = (r: Verdict): boolean => {
    if (r === null) unsure = true;
    return r !== false;
  };
  const branches = s.anyOf ?? s.oneOf;
  if (branches) {
    const rs = branches.map((b) => conforms(b, v));
    if (!rs.includes(true)) {
      if (!rs.includes(null)) return false;
      unsure = true;
    }
  }
  if (s.allOf) for (const b of s.allOf) if (!fold(conforms(b, v))) return false;
  if (s.const !== undefined && !sameJson(s.const, v)) return false;
  if (s.enum && !s.enum.some((e) => sameJson(e, v))) return false;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const rs = types.map((t) => typeMatches(t, v));
    if (!rs.includes(true)) {
      if (!rs.includes(null)) return false;
      unsure = true;
    }
  }
  if (typeof v === 'string') {
    if (s.minLength !== undefined && v.length < s.minLength) return false;
    if (s.maxLength !== undefined && v.length > s.maxLength) return false;
    if (s.pattern !== undefined && !regex(s.pattern).test(v)) return false;
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) return false;
    if (s.maximum !== undefined && v > s.maximum) return false;
    if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum) return false;
    if (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum) return false;
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) return false;
    if (s.maxItems !== undefined && v.length > s.maxItems) return false;
    if (s.items) for (const x of v) if (!fold(conforms(s.items, x))) return false;
  }
  if (typeOf(v) === 'object') {
    const o = v as Record<string, unknown>;
    const props = s.properties ?? {};
    for (const k of s.required ?? []) {
      if (Object.hasOwn(o, k)) continue;
      // `v` is filled in by the gateway (withVersion) and by the schedule spec's preprocess.
      if (k === 'v' && props.v?.const === 1) continue;
      return false;
    }
    for (const [k, x] of Object.entries(o)) {
      const p = props[k];
      if (p) {
        if (!fold(conforms(p, x))) return false;
      } else if (s.additionalProperties === false) return false;
      else if (typeof s.additionalProperties === 'object' && !fold(conforms(s.additionalProperties, x)))
        return false;
    }
  }
  return unsure ? null : true;
}

/**
 * A path or query parameter as the gateway reads it: a string (several for a repeated key) that its
 * zod schema coerces (`z.coerce.number()` -> `Number(x)`, lists split on commas).
 */
export function conformsParam(s: Schema, raw: string | string[] | undefined): Verdict {
  if (raw === undefined) return true;
  if (s.enum || s.const !== undefined) return Array.isArray(raw) ? false : conforms(s, raw);
  if (s.type === 'integer' || s.type === 'number') {
    const n = Number(raw);
    return Number.isFinite(n) ? conforms(s, n) : false;
  }
  if (s.type === 'array') {
    const items = (Array.isArray(raw) ? raw : [raw]).flatMap((x) => String(x).split(','));
    return conforms(s, items);
  }
  if (s.type === 'string') return Array.isArray(raw) ? false : conforms(s, raw);
  return null;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** The alphabet and lengths of a pattern of the form `^[class]{m,n}$`, if it is one. */
function simplePattern(p: string): { alphabet: string; min: number; max: number } | undefined {
  const m = /^\^\[((?:\\.|[^\]\\])+)\]\{(\d+)(?:,(\d+))?\}\$$/.exec(p);
  if (!m) return undefined;
  const cls = m[1]!.replace(/\\(.)/g, '$1');
  let alphabet = '';
  for (let i = 0; i < cls.length; i++) {
    if (cls[i + 1] === '-' && i + 2 < cls.length) {
      for (let c = cls.charCodeAt(i); c <= cls.charCodeAt(i + 2); c++) alphabet += String.fromCharCode(c);
      i += 2;
    } else alphabet += cls[i];
  }
  return { alphabet, min: Number(m[2]), max: m[3] !== undefined ? Number(m[3]) : Number(m[2]) };
}

const PATTERN_CANDIDATES = ['15m', '1h30m', '2s', '1000ms', '1d', 'fz', 'fz-1', 'a', 'x1'];

/** A fresh string for a pattern: ids made here start with `fz` where the alphabet allows. */
function stringFor(s: Schema, rng: Rng): string {
  const minL = s.minLength ?? 0;
  const maxL = s.maxLength ?? 40;
  if (s.pattern) {
    const simple = simplePattern(s.pattern);
    if (simple) {
      const lo = Math.max(simple.min, minL);
      const hi = Math.min(simple.max, maxL, Math.max(lo, 14));
      const len = rng.int(lo, hi);
      const prefix = /f/.test(simple.alphabet) && /z/.test(simple.alphabet) && len >= 3 ? 'fz' : '';
      return prefix + rng.str(simple.alphabet, len - prefix.length);
    }
    const fits = PATTERN_CANDIDATES.filter(
      (c) => regex(s.pattern!).test(c) && c.length >= minL && c.length <= maxL,
    );
    if (fits.length) return rng.pick(fits);
    return 'fz';
  }
  const text = `fuzz ${rng.str(ALNUM, rng.int(1, 12))}`;
  if (text.length > maxL) return text.slice(0, maxL);
  return text.length >= minL ? text : text + 'x'.repeat(minL - text.length);
}

function numberFor(s: Schema, rng: Rng, integer: boolean): number {
  let lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + (integer ? 1 : 0.5) : 0);
  const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : lo + 1000);
  if (lo > hi) lo = hi;
  const span = Math.min(hi - lo, 1000);
  const x = lo + rng.next() * span;
  return integer ? Math.min(hi, Math.ceil(x)) : x;
}

/** A small JSON value of any shape. */
export function anyJson(rng: Rng, depth = 0): Json {
  const kind = rng.int(0, depth > 2 ? 3 : 5);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.int(-1000, 1000);
    case 3:
      return rng.str(ALNUM, rng.int(0, 10));
    case 4:
      return Array.from({ length: rng.int(0, 3) }, () => anyJson(rng, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: rng.int(0, 3) }, () => [rng.str(ALNUM, rng.int(1, 6)), anyJson(rng, depth + 1)]),
      );
  }
}

/** A value that conforms to `s` (as far as the keywords here decide). */
export function sample(s: Schema, rng: Rng, depth = 0): Json {
  const branches = s.anyOf ?? s.oneOf;
  if (branches?.length) return sample({ ...rng.pick(branches) }, rng, depth);
  if (s.const !== undefined) return s.const as Json;
  if (s.enum) return rng.pick(s.enum) as Json;
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  const t = types.length
    ? rng.pick(types.filter((x) => x !== 'null').length ? types.filter((x) => x !== 'null') : types)
    : undefined;
  switch (t) {
    case 'string':
      return stringFor(s, rng);
    case 'integer':
      return numberFor(s, rng, true);
    case 'number':
      return numberFor(s, rng, false);
    case 'boolean':
      return rng.chance(0.5);
    case 'null':
      return null;
    case 'array': {
      const min = s.minItems ?? 0;
      const n = rng.int(min, Math.min(s.maxItems ?? min + 2, min + 2));
      return Array.from({ length: n }, () => (s.items ? sample(s.items, rng, depth + 1) : anyJson(rng)));
    }
    case 'object': {
      const o: Record<string, Json> = {};
      const req = new Set(s.required ?? []);
      for (const [k, p] of Object.entries(s.properties ?? {})) {
        if (k === 'v') {
          if (rng.chance(0.3)) o.v = 1;
          continue;
        }
        if (req.has(k) || (depth < 3 && rng.chance(0.3))) o[k] = sample(p, rng, depth + 1);
      }
      if (!s.properties && typeof s.additionalProperties === 'object') o[`k${rng.int(0, 9)}`] = anyJson(rng);
      return o;
    }
    default:
      return anyJson(rng);
  }
}

/** Paths (property names) from `s` to a free-form value (schema `{}` or a record of `{}`). */
function freeFormPaths(s: Schema, path: string[] = [], out: string[][] = [], depth = 0): string[][] {
  if (depth > 4) return out;
  const branches = s.anyOf ?? s.oneOf;
  if (branches) for (const b of branches) freeFormPaths(b, path, out, depth + 1);
  for (const [k, p] of Object.entries(s.properties ?? {})) {
    const keys = Object.keys(p).filter((x) => !ANNOTATIONS.has(x));
    if (keys.length === 0 || (p.type === 'object' && !p.properties && p.additionalProperties !== false))
      out.push([...path, k]);
    else if (p.type === 'object' || p.anyOf || p.oneOf) freeFormPaths(p, [...path, k], out, depth + 1);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Operations: the OpenAPI document's, and the routes it leaves out

export interface Operation {
  /** `GET /api/tasks/{id}` */
  id: string;
  method: string;
  template: string;
  segments: (string | { param: string })[];
  pathParams: Record<string, Schema>;
  queryParams: Record<string, Schema>;
  body: Schema | undefined;
  /** Roles that may call it (admin included); empty: no token needed. */
  roles: string[];
  /** The documented success statuses. */
  success: number[];
  /** json: a JSON reply; sse: an event stream; text: `/metrics`. */
  kind: 'json' | 'sse' | 'text';
  /**
   * Changes state that is not the fuzzer's own (deletes, admin operations, a hello): only inputs the
   * gateway must refuse before acting, or path ids that name nothing, are sent to it.
   */
  invalidOnly: boolean;
}

type OpenApiOperation = {
  parameters?: { name: string; in: string; schema: Schema }[];
  requestBody?: { content?: Record<string, { schema: Schema }> };
  responses?: Record<string, unknown>;
  'x-roles'?: string[];
};

function operation(
  method: string,
  template: string,
  o: Omit<Operation, 'id' | 'method' | 'template' | 'segments' | 'invalidOnly'>,
): Operation {
  const segments = template.split('/').map((s) => (/^\{\w+\}$/.test(s) ? { param: s.slice(1, -1) } : s));
  const adminOnly = o.roles.length === 1 && o.roles[0] === 'admin';
  const invalidOnly = method !== 'GET' && (method === 'DELETE' || adminOnly || template.endsWith('/hello'));
  return { id: `${method} ${template}`, method, template, segments, invalidOnly, ...o };
}

/** Every operation of the document. */
export function operationsFrom(doc: {
  paths: Record<string, Record<string, OpenApiOperation>>;
}): Operation[] {
  const ops: Operation[] = [];
  for (const [template, byMethod] of Object.entries(doc.paths)) {
    for (const [m, o] of Object.entries(byMethod)) {
      const params = o.parameters ?? [];
      const success = Object.keys(o.responses ?? {})
        .map(Number)
        .filter((s) => s >= 200 && s < 300);
      ops.push(
        operation(m.toUpperCase(), template, {
          pathParams: Object.fromEntries(
            params.filter((p) => p.in === 'path').map((p) => [p.name, p.schema]),
          ),
          queryParams: Object.fromEntries(
            params.filter((p) => p.in === 'query').map((p) => [p.name, p.schema]),
          ),
          body: o.requestBody?.content?.['application/json']?.schema,
          roles: o['x-roles'] ?? ['admin'],
          success: success.length ? success : [200],
          kind: 'json',
        }),
      );
    }
  }
  return ops;
}

const eventsQuery = z.toJSONSchema(EventsQuerySchema, { io: 'input', unrepresentable: 'any' }) as Schema;

/**
 * Routes the gateway serves that the OpenAPI document does not list (app.ts mounts them beside the
 * route table): the event stream, `/metrics`, health and the document itself.
 */
export const EXTRA_OPERATIONS: Operation[] = [
  operation('GET', '/api/events', {
    pathParams: {},
    queryParams: eventsQuery.properties ?? {},
    body: undefined,
    roles: ['admin', 'read', 'submitter', 'agent'],
    success: [200],
    kind: 'sse',
  }),
  operation('GET', '/metrics', {
    pathParams: {},
    queryParams: {},
    body: undefined,
    roles: ['admin', 'read'],
    // 404 when the gateway runs without metrics.
    success: [200],
    kind: 'text',
  }),
  ...['/healthz', '/readyz', '/api/openapi.json'].map((p) =>
    operation('GET', p, {
      pathParams: {},
      queryParams: {},
      body: undefined,
      roles: [],
      success: [200],
      kind: 'json',
    }),
  ),
];

// ---------------------------------------------------------------------------------------------
// Routing as the gateway does it (find-my-way: per method, static before parametric)

export const MAX_PARAM_LENGTH = 200;
export const BODY_LIMIT = 1024 * 1024;
/** Node's `maxHeaderSize`: request line and headers. */
export const MAX_HEAD_BYTES = 16 * 1024;

export type Match =
  | { kind: 'op'; op: Operation; params: Record<string, string> }
  | { kind: 'none' }
  | { kind: 'bad-url' }
  | { kind: 'param-too-long'; op: Operation | undefined }
  | { kind: 'unsure' };

function decodeOr(s: string, f: (x: string) => string): string | undefined {
  try {
    return f(s);
  } catch {
    return undefined;
  }
}

export function matchRoute(ops: readonly Operation[], method: string, target: string): Match {
  const q = target.search(/[?#]/);
  const path = q < 0 ? target : target.slice(0, q);
  if (decodeOr(path, decodeURI) === undefined) return { kind: 'bad-url' };
  // No implicit HEAD routes (app.ts: `exposeHeadRoutes: false`): a HEAD is a method like any other.
  const candidates = ops.filter((o) => o.method === method);
  if (candidates.length === 0) return { kind: 'none' };
  const segs = path.split('/');
  const found: { op: Operation; params: Record<string, string>; shape: boolean[] }[] = [];
  let unsure = false;
  for (const op of candidates) {
    if (op.segments.length !== segs.length) continue;
    const params: Record<string, string> = {};
    const shape: boolean[] = [];
    let ok = true;
    for (let i = 0; i < segs.length && ok; i++) {
      const t = op.segments[i]!;
      const raw = segs[i]!;
      if (typeof t === 'string') {
        if (raw.includes('%') && decodeOr(raw, decodeURI) === t) unsure = true;
        ok = raw === t;
        shape.push(true);
      } else {
        const v = decodeOr(raw, decodeURIComponent);
        if (v === undefined) return { kind: 'bad-url' };
        params[t.param] = v;
        shape.push(false);
      }
    }
    if (ok) found.push({ op, params, shape });
  }
  if (unsure) return { kind: 'unsure' };
  // The router gives up on an over-long parameter even when no route would have matched in the end.
  if (found.length === 0)
    return segs.some((x) => (decodeOr(x, decodeURIComponent) ?? x).length > MAX_PARAM_LENGTH)
      ? { kind: 'param-too-long', op: undefined }
      : { kind: 'none' };
  // Static beats parametric at the first position where two matches differ.
  found.sort((a, b) => {
    for (let i = 0; i < a.shape.length; i++) if (a.shape[i] !== b.shape[i]) return a.shape[i] ? -1 : 1;
    return 0;
  });
  const best = found[0]!;
  const lengths = Object.values(best.params).map((v) => v.length);
  const rawLengths = segs
    .filter((_, i) => best.op.segments[i] && typeof best.op.segments[i] !== 'string')
    .map((s) => s.length);
  if (lengths.some((l) => l > MAX_PARAM_LENGTH)) return { kind: 'param-too-long', op: best.op };
  if (rawLengths.some((l) => l > MAX_PARAM_LENGTH)) return { kind: 'unsure' };
  return { kind: 'op', op: best.op, params: best.params };
}

/** A query string as fastify reads it (fast-querystring): repeated keys become arrays. */
export function parseQuery(qs: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  const dec = (s: string) => {
    const plus = s.replace(/\+/g, ' ');
    if (!plus.includes('%')) return plus;
    return decodeOr(plus, decodeURIComponent) || plus;
  };
  for (const part of qs.split('&')) {
    const eq = part.indexOf('=');
    const key = dec(eq < 0 ? part : part.slice(0, eq));
    if (eq < 0 && key.length === 0) continue;
    const value = eq < 0 ? '' : dec(part.slice(eq + 1));
    const cur = out[key];
    if (cur === undefined) out[key] = value;
    else if (Array.isArray(cur)) cur.push(value);
    else out[key] = [cur, value];
  }
  return out;
}

/** A JSON body as fastify's parser reads it (secure-json-parse: no `__proto__`, no `constructor.prototype`). */
export function parseJsonBody(bytes: Buffer): { ok: true; value: unknown } | { ok: false } {
  let text = new TextDecoder().decode(bytes);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false };
  }
  const stack: unknown[] = [value];
  while (stack.length) {
    const x = stack.pop();
    if (typeof x !== 'object' || x === null) continue;
    if (!Array.isArray(x)) {
      if (Object.hasOwn(x, '__proto__')) return { ok: false };
      const c = (x as Record<string, unknown>).constructor;
      if (
        Object.hasOwn(x, 'constructor') &&
        typeof c === 'object' &&
        c !== null &&
        Object.hasOwn(c, 'prototype')
      )
        return { ok: false };
    }
    for (const v of Object.values(x)) stack.push(v);
  }
  return { ok: true, value };
}

/** How deeply a JSON text nests (brackets outside strings). */
function nesting(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') max = Math.max(max, ++depth);
    else if (c === ']' || c === '}') depth--;
  }
  return max;
}

// ---------------------------------------------------------------------------------------------
// Requests and their expected outcomes

export type TokenKind =
  | 'admin'
  | 'submitter'
  | 'read'
  | 'agent'
  | 'none'
  | 'empty'
  | 'scheme'
  | 'garbage'
  | 'expired'
  | 'revoked'
  | 'forged';

const VALID_KINDS = new Set<TokenKind>(['admin', 'submitter', 'read', 'agent']);

/** The bearer tokens the run made (gateway-run.ts) and the agent the agent token acts as. */
export interface FuzzTokens {
  admin: string;
  submitter: string;
  read: string;
  agent: string;
  expired: string;
  revoked: string;
  forged: string;
  agentId: string;
}

export interface FuzzContext {
  seed: number;
  ops: readonly Operation[];
  tokens: FuzzTokens;
  /** Ids, names and queues of real work and sentinels: never put in a request. */
  forbidden: ReadonlySet<string>;
}

/** Where a request must end: the pipeline stage that refuses it, or the handler. */
export type Stage =
  | 'route'
  | 'bad-url'
  | 'param-length'
  | 'body-parse'
  | 'public'
  | 'auth'
  | 'authorize'
  | 'params'
  | 'query'
  | 'body'
  | 'handler'
  | 'unsure'
  | 'transport';

export interface Expectation {
  stage: Stage;
  /** The statuses it may get; null: any structured error or the documented success. */
  statuses: number[] | null;
  /** The operation the gateway routes it to. */
  matched?: Operation;
}

export interface FuzzRequest {
  index: number;
  /** The operation it was drawn for (`by route` in the summary). */
  op: string;
  families: string[];
  method: string;
  /** Path and query, as sent. */
  target: string;
  headers: Record<string, string>;
  body?: Buffer;
  tokenKind: TokenKind;
  /** Sent from another loopback address (unauthenticated requests are limited per address). */
  anonymous: boolean;
  /** Bytes written to a socket as they are (not HTTP, or broken HTTP). */
  raw?: Buffer;
  /** The deepest nesting in the body. */
  depth: number;
  expect: Expectation;
}

const JUNK_SEGMENTS = [
  '',
  '.',
  '..',
  '%2e%2e',
  '%2E',
  '%00',
  'a%00b',
  '%2F',
  'a%2Fb',
  '*',
  '>',
  'a.b',
  'fz.*',
  'fz.>',
  '%2A',
  '%3E',
  '$SYS',
  '_INBOX.x',
  'fz%20x',
  '%20',
  '-',
  '_',
  'a'.repeat(65),
  'a'.repeat(150),
  'a'.repeat(260),
  'a'.repeat(1000),
  'a'.repeat(5000),
  '%zz',
  '%',
  '%E0%A4%A',
  '%C3%A9',
  '%F0%9F%99%82',
  encodeURIComponent('日本語'),
  encodeURIComponent('\u202eevil'),
  encodeURIComponent('é'.repeat(120)),
  encodeURIComponent('\u0000\u0001'),
  '-1',
  '0',
  '1e400',
  'NaN',
  'Infinity',
  '0x10',
  '1.5',
  '9'.repeat(30),
  '1e3',
  '%201',
  'null',
  'undefined',
  '__proto__',
  'constructor',
  'prototype',
  'stats',
  'history',
  '%73tats',
  'fz;x=1',
  encodeURIComponent("'; DROP TABLE tasks;--"),
  encodeURIComponent('$\u007bjndi:ldap://x}'),
  '..%2F..%2Fetc%2Fpasswd',
  '~',
  '!',
  '@',
];

const JUNK_VALUES: Json[] = [
  null,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  2 ** 53 + 2,
  '',
  ' ',
  'x'.repeat(5000),
  [],
  {},
  true,
  false,
  'é🙂',
  '\u0000',
  '__proto__',
  [[[]]],
  { a: { b: { c: 1 } } },
  '*',
  '>',
  'a.b.*',
  '1e400',
  'NaN',
  -0,
  [1, 'a', null],
];

const JUNK_KEYS = [
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '__defineGetter__',
  'then',
  '',
  ' ',
  'é',
  '$where',
  'a.b',
  'x'.repeat(300),
];

const JUNK_QUERY_VALUES = [
  '',
  'NaN',
  '-1',
  '0',
  '1e400',
  '99999999999999999999',
  '1.5',
  'true',
  'maybe',
  '\u0000',
  '日本',
  'x'.repeat(5000),
  ',,,',
  'a,b',
  '*',
  '>',
  ' 1',
  '0x10',
  'Infinity',
  '[]',
  '{}',
  'queued,nope',
  Array.from({ length: 25 }, () => 'queued').join(','),
];
/** Printable ASCII that goes into a query string unencoded. */
const RAW_QUERY_JUNK = ['%zz', '%', '+', 'a+b', ',,', '*', '>', '%00', '%2C', '&', '=', '=='];
const RAW_QUERY_TAILS = ['&&&', '=&=', '%zz=%zz', '+++=+++', ';', 'a=1;b=2', '&=', '==='];

const LAST_EVENT_IDS = [
  '',
  'x',
  '1.2',
  '1.2.3.4',
  '-1.-1.-1',
  '99999999999999999.0.0',
  '0.0.0',
  '1e3.1.1',
  '00000000000000001.1.1',
  '1.1.1 ',
  'ÿÿÿ',
  'a'.repeat(5000),
  '..',
  '%00',
  '9007199254740993.1.1',
];

const CORRELATION_IDS = ['', 'x'.repeat(200), 'a b', 'é', '../../', '\tx', 'fz-1', 'fz:1.2', '*', '>'];

const OTHER_METHODS = [
  'GET',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'HEAD',
  'PROPFIND',
  'SEARCH',
  'MKCOL',
  'PURGE',
  'LOCK',
  'TRACE',
];

const JSON_TYPES = [
  'application/json',
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'Application/JSON',
  'application/json;',
  ' application/json',
];
const OTHER_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/json-patch+json',
  'application/jsonx',
  '*/*',
  'text/json',
  'application/octet-stream',
];

/** Raw requests that are not well-formed HTTP (the gateway must not fall over). */
function rawRequests(t: FuzzTokens, rng: Rng): Buffer[] {
  const auth = `Authorization: Bearer ${t.admin}\r\n`;
  return [
    'FOO /api/tasks HTTP/1.1\r\nHost: x\r\n\r\n',
    'get /api/tasks HTTP/1.1\r\nHost: x\r\n\r\n',
    `GET /api/tasks HTTP/1.1\r\nHost: x\r\n${auth}Bad Header: y\r\n\r\n`,
    `GET /api/tasks HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    'hello there\r\n\r\n',
    'GET /api/tasks HTTP/9.9\r\nHost: x\r\n\r\n',
    `POST /api/tasks HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello`,
    `POST /api/tasks HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    `POST /api/tasks HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\nContent-Length: 3\r\nContent-Type: application/json\r\n\r\n0\r\n\r\n`,
    'GET /api/tasks\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    'GET /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
    `GET ${'/a'.repeat(10_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    `POST /api/tasks HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"title":"cut`,
    `GET /api/tasks/é HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
    `GET /api/tasks/a b HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
    `GET /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t.admin}\u0000\r\n\r\n`,
    `GET /api/tasks HTTP/1.1\nHost: x\n${auth.replace('\r\n', '\n')}\n`,
    `GET http://evil.example/api/tasks/stats HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
    `GET * HTTP/1.1\r\nHost: x\r\n\r\n`,
    Buffer.from(Array.from({ length: 256 }, () => rng.int(0, 255))).toString('latin1'),
  ].map((s) => Buffer.from(s, 'latin1'));
}

/** One mutation of an object body (in place on a copy). */
function mutate(value: Json, s: Schema, rng: Rng): { value: Json; family: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { value: rng.pick(JUNK_VALUES), family: 'retyped' };
  const o: Record<string, Json> = { ...value };
  const keys = Object.keys(o);
  const known = Object.keys(s.properties ?? {});
  const kind = rng.int(0, 6);
  if (kind === 0 && keys.length) {
    delete o[rng.pick(keys)];
    return { value: o, family: 'field-dropped' };
  }
  if (kind === 1 && (keys.length || known.length)) {
    o[rng.pick(known.length && rng.chance(0.5) ? known : keys.length ? keys : known)] = rng.pick(JUNK_VALUES);
    return { value: o, family: 'field-retyped' };
  }
  if (kind === 2) {
    o[rng.pick(JUNK_KEYS)] = rng.chance(0.5) ? rng.pick(JUNK_VALUES) : anyJson(rng);
    return { value: o, family: 'extra-field' };
  }
  if (kind === 3) {
    o.v = rng.pick<Json>([2, 0, '1', null, 1.5, -1]);
    return { value: o, family: 'version' };
  }
  if (kind === 4) {
    const strings = known.filter((k) => s.properties![k]!.type === 'string');
    if (strings.length) {
      const k = rng.pick(strings);
      const max = s.properties![k]!.maxLength ?? 1000;
      o[k] = rng.chance(0.7) ? 'y'.repeat(max + 1) : 'y'.repeat(300_000);
      return { value: o, family: 'huge-string' };
    }
  }
  if (kind === 5) {
    const nested = keys.filter((k) => typeof o[k] === 'object' && o[k] !== null && !Array.isArray(o[k]));
    const sub = nested.length ? rng.pick(nested) : undefined;
    const subSchema = sub ? s.properties?.[sub] : undefined;
    if (sub && subSchema) {
      const m = mutate(o[sub]!, subSchema, rng);
      o[sub] = m.value;
      return { value: o, family: `nested-${m.family}` };
    }
  }
  o[rng.pick(keys.length ? keys : ['x'])] = anyJson(rng);
  return { value: o, family: 'field-replaced' };
}

/** `[[[…]]]` `depth` deep, as text (JSON.stringify could not write it). */
const deepText = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth);

const DEPTHS = [10, 200, 900, 5_000, 30_000, 150_000];

/** Sets `path` (property names) in a copy of `o` to the marker `"@@DEEP@@"`. */
function setAt(o: Json, path: string[], leaf: Json): Json {
  if (path.length === 0) return leaf;
  const base = typeof o === 'object' && o !== null && !Array.isArray(o) ? { ...o } : {};
  base[path[0]!] = setAt(base[path[0]!] ?? {}, path.slice(1), leaf);
  return base;
}

interface Body {
  bytes?: Buffer;
  contentType?: string;
  family: string;
  depth: number;
}

function jsonBytes(v: Json): Buffer {
  return Buffer.from(JSON.stringify(v));
}

function bodyFor(op: Operation, rng: Rng): Body {
  const s = op.body;
  const ct = () => rng.pick(JSON_TYPES);
  if (!s) {
    // Routes without a body: usually none, sometimes junk (parsed, then ignored or refused).
    if (op.method === 'GET' || rng.chance(0.85)) return { family: 'no-body', depth: 0 };
    return rng.weighted<() => Body>([
      [3, () => ({ bytes: Buffer.from('{}'), contentType: ct(), family: 'stray-json', depth: 1 })],
      [2, () => ({ bytes: Buffer.from('{"a":'), contentType: ct(), family: 'stray-truncated', depth: 1 })],
      [
        2,
        () => ({
          bytes: Buffer.from('hello'),
          contentType: rng.pick(OTHER_TYPES),
          family: 'stray-text',
          depth: 0,
        }),
      ],
      [
        1,
        () => ({
          bytes: Buffer.alloc(BODY_LIMIT + 10, 0x20),
          contentType: 'application/json',
          family: 'stray-oversized',
          depth: 0,
        }),
      ],
    ])();
  }
  const valid = () => sample(s, rng);
  return rng.weighted<() => Body>([
    [14, () => ({ bytes: jsonBytes(valid()), contentType: ct(), family: 'valid', depth: 2 })],
    [
      36,
      () => {
        let v = valid();
        const fams: string[] = [];
        for (let i = rng.int(1, 3); i > 0; i--) {
          const m = mutate(v, s, rng);
          v = m.value;
          fams.push(m.family);
        }
        return { bytes: jsonBytes(v), contentType: ct(), family: `mutated:${fams[0]}`, depth: 3 };
      },
    ],
    [
      5,
      () => ({
        bytes: jsonBytes(rng.pick<Json>([[], [valid()], 'str', 1, null, true, 0])),
        contentType: ct(),
        family: 'wrong-top-type',
        depth: 2,
      }),
    ],
    [
      6,
      () => {
        const depth = rng.pick(DEPTHS);
        const paths = freeFormPaths(s);
        if (paths.length && rng.chance(0.75)) {
          const text = JSON.stringify(setAt(valid(), rng.pick(paths), '@@DEEP@@')).replace(
            '"@@DEEP@@"',
            rng.chance(0.5) ? deepText(depth) : `{"a":${deepText(depth)}}`,
          );
          return { bytes: Buffer.from(text), contentType: ct(), family: 'deep-free-form', depth };
        }
        return { bytes: Buffer.from(deepText(depth)), contentType: ct(), family: 'deep-top', depth };
      },
    ],
    [
      4,
      () => {
        const text = JSON.stringify(valid());
        const inject = rng.pick([
          '"__proto__":{"polluted":true}',
          '"constructor":{"prototype":{"polluted":true}}',
          '"__proto__":null',
          '"\\u005f_proto__":{"x":1}',
          '"constructor":1',
          '"prototype":{"x":1}',
        ]);
        const out = text === '{}' ? `{${inject}}` : text.replace(/^\{/, `{${inject},`);
        return { bytes: Buffer.from(out), contentType: ct(), family: 'prototype-keys', depth: 3 };
      },
    ],
    [
      8,
      () => ({
        bytes: Buffer.from(
          rng.pick([
            'title=x&queue=y',
            '<task><title>x</title></task>',
            'NaN',
            'undefined',
            "{'title':'x'}",
            '{title:"x"}',
            '{"title":"x",}',
            '[1,2',
            '{"a":1}{"b":2}',
            '\u0000\u0001',
            rng.str(ALNUM, rng.int(1, 50)),
            Buffer.from(Array.from({ length: rng.int(1, 200) }, () => rng.int(0, 255))).toString('latin1'),
          ]),
          'latin1',
        ),
        contentType: ct(),
        family: 'not-json',
        depth: 0,
      }),
    ],
    [
      8,
      () => {
        const text = JSON.stringify(valid());
        return {
          bytes: Buffer.from(text.slice(0, rng.int(1, Math.max(1, text.length - 1)))),
          contentType: ct(),
          family: 'truncated',
          depth: 2,
        };
      },
    ],
    [
      5,
      () => {
        let text = JSON.stringify(valid());
        const how = rng.int(0, 4);
        if (how === 0) {
          const at = rng.int(0, text.length);
          text = text.slice(0, at) + rng.pick(['"', '\\', '}', ',', '\u0000', '\uD800']) + text.slice(at);
        } else if (how === 1)
          text = text.replace(/\d+/, rng.pick(['1e99999', 'NaN', 'Infinity', '-', '01', '0x1']));
        else if (how === 2) text = `${text}${rng.pick(['garbage', ',', '}', ' {}', '\n\n'])}`;
        else if (how === 3) text = text.replace(/\}$/, `${text === '{}' ? '' : ','}"title":1,"title":"dup"}`);
        else text = `\ufeff${text}`;
        return { bytes: Buffer.from(text), contentType: ct(), family: 'text-mutated', depth: 2 };
      },
    ],
    [
      1,
      () => ({
        bytes: Buffer.from(JSON.stringify({ ...(valid() as object), pad: 'z'.repeat(BODY_LIMIT + 1024) })),
        contentType: ct(),
        family: 'oversized',
        depth: 2,
      }),
    ],
    [3, () => ({ bytes: Buffer.alloc(0), contentType: 'application/json', family: 'empty', depth: 0 })],
    [3, () => ({ family: 'absent', depth: 0 })],
    [
      6,
      () => ({
        bytes: jsonBytes(valid()),
        contentType: rng.pick(OTHER_TYPES),
        family: 'wrong-content-type',
        depth: 2,
      }),
    ],
    [2, () => ({ bytes: jsonBytes(valid()), family: 'no-content-type', depth: 2 })],
  ])();
}

/** A path value that names nothing real: an id drawn here, or junk. */
function pathValue(
  op: Operation,
  name: string,
  s: Schema,
  rng: Rng,
  t: FuzzTokens,
  kind: TokenKind,
): { raw: string; family: string } {
  if (rng.chance(0.35)) return { raw: rng.pick(JUNK_SEGMENTS), family: 'param-junk' };
  if (name === 'agentId' && kind === 'agent' && rng.chance(0.6))
    return { raw: t.agentId, family: 'param-own-agent' };
  if (s.type === 'integer') {
    // Reads may name small numbers (a dead letter may exist); changes only ids that cannot exist.
    const n =
      op.invalidOnly || rng.chance(0.5) ? rng.int(1_000_000_000_000, 9_000_000_000_000_000) : rng.int(1, 50);
    return { raw: String(n), family: 'param-valid' };
  }
  return { raw: encodeURIComponent(String(sample(s, rng))), family: 'param-valid' };
}

function queryFor(op: Operation, rng: Rng): { qs: string; family: string | undefined } {
  const parts: string[] = [];
  let family: string | undefined;
  const enc = encodeURIComponent;
  for (const [name, s] of Object.entries(op.queryParams)) {
    const r = rng.next();
    if (r < 0.45) continue;
    const value = () => {
      if (rng.chance(0.55)) {
        const v = sample(s, rng);
        return enc(Array.isArray(v) ? v.join(',') : String(v));
      }
      family = 'query-junk';
      return rng.chance(0.8) ? enc(rng.pick(JUNK_QUERY_VALUES)) : rng.pick(RAW_QUERY_JUNK);
    };
    const shape = rng.weighted([
      [80, 'plain'],
      [10, 'repeated'],
      [5, 'brackets'],
      [5, 'key-only'],
    ] as const);
    if (shape === 'repeated') {
      family = 'query-repeated';
      for (let i = rng.int(2, 5); i > 0; i--) parts.push(`${enc(name)}=${value()}`);
    } else if (shape === 'brackets') {
      family = 'query-brackets';
      parts.push(`${enc(name)}${rng.pick(['[]', '[0]', '[a]', '%5B%5D'])}=${value()}`);
    } else if (shape === 'key-only') {
      family = 'query-key-only';
      parts.push(enc(name));
    } else parts.push(`${enc(name)}=${value()}`);
  }
  if (rng.chance(0.15)) {
    family ??= 'query-extra-keys';
    for (let i = rng.int(1, 3); i > 0; i--)
      parts.push(
        `${enc(rng.pick([...JUNK_KEYS, '__proto__', 'a[b]', 'constructor[prototype][x]']))}=${enc(String(rng.pick(JUNK_QUERY_VALUES)))}`,
      );
  }
  if (rng.chance(0.03)) {
    family = 'query-many-keys';
    for (let i = rng.int(300, 1400); i > 0; i--) parts.push(`k${i}=${i}`);
  }
  if (rng.chance(0.02)) {
    family = 'query-raw-junk';
    parts.push(rng.pick(RAW_QUERY_TAILS));
  }
  return { qs: parts.join('&'), family };
}

function tokenHeader(kind: TokenKind, t: FuzzTokens, rng: Rng): string | undefined {
  switch (kind) {
    case 'admin':
    case 'submitter':
    case 'read':
    case 'agent': {
      const tok = t[kind];
      // Forms the gateway also takes: any case of the scheme, spaces around the token.
      return rng.chance(0.9)
        ? `Bearer ${tok}`
        : rng.pick([`bearer ${tok}`, `BEARER ${tok}`, `Bearer   ${tok}  `]);
    }
    case 'none':
      return undefined;
    case 'empty':
      return rng.pick(['Bearer ', 'Bearer', '', ' ']);
    case 'scheme':
      return rng.pick([
        'Basic dXNlcjpwYXNz',
        `Token ${t.admin}`,
        t.admin,
        `Bearer${t.admin}`,
        `Digest ${t.admin}`,
      ]);
    case 'garbage':
      return `Bearer ${rng.pick([
        'agc_',
        'agc_nope',
        `agc_${rng.str('abcdefghijklmnopqrstuvwxyz0123456789', 12)}_${rng.str(ALNUM, 43)}`,
        `agc_${rng.str('abcdefghijklmnopqrstuvwxyz0123456789', 12)}`,
        rng.str(ALNUM, rng.int(1, 80)),
        'a'.repeat(6000),
        'é'.repeat(10),
        `${t.admin}${t.admin}`,
        t.admin.toUpperCase(),
        `${t.admin.slice(0, -1)}`,
        `${t.admin} extra`,
        '*',
        '>',
        '../../',
      ])}`;
    case 'expired':
      return `Bearer ${t.expired}`;
    case 'revoked':
      return `Bearer ${t.revoked}`;
    case 'forged':
      return `Bearer ${t.forged}`;
  }
}

const TOKEN_KINDS: [number, TokenKind][] = [
  [22, 'admin'],
  [14, 'submitter'],
  [14, 'read'],
  [14, 'agent'],
  [7, 'none'],
  [2, 'empty'],
  [3, 'scheme'],
  [9, 'garbage'],
  [4, 'expired'],
  [4, 'revoked'],
  [4, 'forged'],
];

/** About how many bytes the request line and headers take (Node's limit is on them together). */
export function headBytes(r: Pick<FuzzRequest, 'method' | 'target' | 'headers'>): number {
  return (
    r.method.length +
    r.target.length +
    200 +
    Object.entries(r.headers).reduce((n, [k, v]) => n + k.length + v.length + 4, 0)
  );
}

/** The stages the gateway goes through, in its order, and where this request must stop. */
export function predict(
  ctx: FuzzContext,
  r: Pick<FuzzRequest, 'method' | 'target' | 'headers' | 'body' | 'tokenKind' | 'raw'>,
): Expectation {
  if (r.raw) return { stage: 'transport', statuses: null };
  // Node's HTTP parser refuses a head over 16 KiB before fastify sees the request (the gateway's
  // clientErrorHandler: 400; Node's own: 431).
  const head = headBytes(r);
  if (head > MAX_HEAD_BYTES + 2_000) return { stage: 'transport', statuses: [400, 431] };
  if (head > MAX_HEAD_BYTES - 2_000) return { stage: 'unsure', statuses: null };
  const m = matchRoute(ctx.ops, r.method, r.target);
  const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
  if (m.kind === 'none') return { stage: 'route', statuses: hasBody ? [404, 400, 413] : [404] };
  if (m.kind === 'bad-url') return { stage: 'bad-url', statuses: [400, 404] };
  // fastify's own refusals (frameworkErrors: 400), or no route.
  if (m.kind === 'param-too-long')
    return { stage: 'param-length', statuses: [400, 414, 404], ...(m.op ? { matched: m.op } : {}) };
  if (m.kind === 'unsure') return { stage: 'unsure', statuses: null };
  const op = m.op;
  const at = (stage: Stage, statuses: number[] | null): Expectation => ({ stage, statuses, matched: op });
  // fastify reads the body (when there is one) before any handler runs.
  let parsed: unknown;
  if (hasBody) {
    const media = (r.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (media !== 'application/json') return at('body-parse', [415]);
    if (r.body!.length > BODY_LIMIT) return at('body-parse', [413]);
    const p = parseJsonBody(r.body!);
    if (!p.ok) return at('body-parse', [400]);
    parsed = p.value;
  } else if (r.body !== undefined) return at('unsure', null);
  // /readyz costs JetStream requests: limited per address like unauthenticated requests.
  if (op.roles.length === 0) return at('public', op.template === '/readyz' ? [200, 503, 429] : [200]);
  if (!VALID_KINDS.has(r.tokenKind)) return at('auth', [401, 429]);
  const role = r.tokenKind;
  if (role !== 'admin' && !op.roles.includes(role)) return at('authorize', [403]);
  if (role === 'agent' && 'agentId' in op.pathParams && m.params.agentId !== ctx.tokens.agentId)
    return at('authorize', [403]);
  let unsure = false;
  const check = (v: Verdict, stage: Stage): Expectation | undefined => {
    if (v === false && !unsure) return at(stage, [400]);
    if (v === null) unsure = true;
    return undefined;
  };
  for (const [name, s] of Object.entries(op.pathParams)) {
    const e = check(conformsParam(s, m.params[name]), 'params');
    if (e) return e;
  }
  const q = r.target.indexOf('?');
  const query = parseQuery(q < 0 ? '' : r.target.slice(q + 1));
  for (const [name, s] of Object.entries(op.queryParams)) {
    const e = check(conformsParam(s, query[name]), 'query');
    if (e) return e;
  }
  if (op.body) {
    // The gateway reads `null` as no body, and fills in `v` (withVersion).
    const b = parsed ?? undefined;
    if (b === undefined) unsure = true;
    else {
      const withV =
        typeof b === 'object' && !Array.isArray(b) && !('v' in (b as object))
          ? { v: 1, ...(b as object) }
          : b;
      const e = check(conforms(op.body, withV), 'body');
      if (e) return e;
    }
  }
  if (unsure) return at('unsure', null);
  return at('handler', null);
}

/** Whether the request may be sent: an operation that changes others' state only refuses it, or names nothing. */
export function harmless(ctx: FuzzContext, r: FuzzRequest): boolean {
  const m = matchRoute(ctx.ops, r.method, r.target);
  if (m.kind === 'op') {
    for (const v of Object.values(m.params)) if (ctx.forbidden.has(v)) return false;
  }
  const op = r.expect.matched;
  // Routing this module cannot decide: it could be any operation, so only a request refused at the
  // token (or a read) goes out.
  if (!op) return r.expect.stage !== 'unsure' || !VALID_KINDS.has(r.tokenKind) || r.method === 'GET';
  if (!op.invalidOnly) return true;
  const refused = [
    'route',
    'bad-url',
    'param-length',
    'body-parse',
    'auth',
    'authorize',
    'params',
    'query',
    'body',
  ];
  if (refused.includes(r.expect.stage)) return true;
  if (r.expect.stage !== 'handler' || m.kind !== 'op') return false;
  // The handler may run when every path id names nothing: ids drawn here, numbers beyond any sequence.
  const names = Object.keys(op.pathParams);
  if (names.length === 0 || op.template.endsWith('/hello')) return false;
  return names.every((n) => {
    const v = m.params[n]!;
    if (op.pathParams[n]!.type === 'integer') return Number(v) >= 1e12 || !Number.isFinite(Number(v));
    return v.startsWith('fz') || v === ctx.tokens.agentId;
  });
}

/** Request `index` of the run with `ctx.seed`. */
export function makeRequest(ctx: FuzzContext, index: number): FuzzRequest {
  const rng = new Rng(ctx.seed, index);
  if (rng.chance(0.01)) {
    const raw = rng.pick(rawRequests(ctx.tokens, rng));
    return {
      index,
      op: 'RAW',
      families: ['raw'],
      method: 'RAW',
      target: '',
      headers: {},
      raw,
      tokenKind: 'none',
      anonymous: true,
      depth: 0,
      expect: { stage: 'transport', statuses: null },
    };
  }
  const op = rng.pick(ctx.ops);
  for (let attempt = 0; ; attempt++) {
    const families: string[] = [];
    let tokenKind = rng.weighted(TOKEN_KINDS);
    // Past a few draws that would change something real, fall back to no token (refused at auth).
    if (attempt >= 12) tokenKind = 'none';
    let method = op.method;
    if (rng.chance(0.08)) {
      method = rng.pick(OTHER_METHODS.filter((x) => x !== op.method));
      families.push('wrong-method');
    }
    const segs: string[] = [];
    for (const seg of op.segments) {
      if (typeof seg === 'string') segs.push(seg);
      else {
        const v = pathValue(op, seg.param, op.pathParams[seg.param]!, rng, ctx.tokens, tokenKind);
        segs.push(v.raw);
        if (v.family !== 'param-valid') families.push(v.family);
      }
    }
    let path = segs.join('/');
    if (rng.chance(0.05)) {
      families.push('path-mangled');
      path = rng.pick<(p: string) => string>([
        (p) => p.split('/').slice(0, -1).join('/') || '/',
        (p) => `${p}/x`,
        (p) => `${p}/`,
        (p) => p.replace('/api/', '/api//'),
        (p) => p.toUpperCase(),
        (p) => `/api/..${p}`,
        (p) => p.replace('/api', '/%61pi'),
        (p) => p.replace('/api', '/api/v1'),
        () => '/',
        () => '/api',
        (p) => `${p}%00`,
        (p) => `${p}/..`,
      ])(path);
    }
    const query = queryFor(op, rng);
    if (query.family) families.push(query.family);
    const target = query.qs ? `${path}?${query.qs}` : rng.chance(0.02) ? `${path}?` : path;
    const headers: Record<string, string> = {};
    const auth = tokenHeader(tokenKind, ctx.tokens, rng);
    if (auth !== undefined) headers.authorization = auth;
    if (tokenKind !== 'admin' && tokenKind !== 'submitter' && tokenKind !== 'read' && tokenKind !== 'agent')
      families.push(`token-${tokenKind}`);
    const body = bodyFor(op, rng);
    if (body.family !== 'no-body') families.push(`body-${body.family}`);
    if (body.contentType !== undefined) headers['content-type'] = body.contentType;
    if (op.kind === 'sse' ? rng.chance(0.5) : rng.chance(0.04)) {
      headers['last-event-id'] = rng.pick(LAST_EVENT_IDS);
      families.push('last-event-id');
    }
    if (rng.chance(0.08)) {
      headers['correlation-id'] = rng.pick(CORRELATION_IDS);
      families.push('correlation-id');
    }
    if (rng.chance(0.05)) {
      const [k, v] = rng.pick<[string, string]>([
        ['accept', 'text/html'],
        ['accept', 'application/xml'],
        ['accept', 'text/event-stream'],
        ['x-forwarded-for', '1.2.3.4'],
        ['user-agent', 'u'.repeat(4000)],
        ['content-encoding', 'gzip'],
        ['origin', 'http://evil.example'],
        ['x-http-method-override', 'DELETE'],
      ]);
      headers[k] = v;
      families.push(`header-${k}`);
    }
    const req: FuzzRequest = {
      index,
      op: op.id,
      families,
      method,
      target,
      headers,
      ...(body.bytes ? { body: body.bytes } : {}),
      tokenKind,
      anonymous: !VALID_KINDS.has(tokenKind) || op.roles.length === 0,
      depth: body.bytes ? nesting(body.bytes.toString('latin1')) : 0,
      expect: { stage: 'unsure', statuses: null },
    };
    req.expect = predict(ctx, req);
    if (harmless(ctx, req)) return req;
    if (attempt > 40) throw new Error(`request ${index}: no harmless draw for ${op.id}`);
  }
}
