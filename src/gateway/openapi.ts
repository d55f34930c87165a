/**
 * @module gateway/openapi
 * The OpenAPI 3.1 document of the gateway, written from the route table and the routes' zod
 * schemas (JSON Schema 2020-12, which OpenAPI 3.1 uses as is), so it always describes what is
 * served. Pure: routes in, document out.
 */
import { z } from 'zod';
import { ERROR_CODES, WireErrorSchema } from '../protocol/errors.js';
import type { RouteDef } from './route.js';

type Json = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _s, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
  return rest;
}

/** A request body's schema: `v` may be left out over HTTP (the gateway sends version 1). */
function bodySchema(schema: z.ZodType): Json {
  const s = jsonSchema(schema, 'input');
  const drop = (o: Json): Json =>
    Array.isArray(o.required) ? { ...o, required: (o.required as string[]).filter((k) => k !== 'v') } : o;
  if (Array.isArray(s.oneOf)) return { ...s, oneOf: (s.oneOf as Json[]).map(drop) };
  if (Array.isArray(s.anyOf)) return { ...s, anyOf: (s.anyOf as Json[]).map(drop) };
  return drop(s);
}

/** Path or query parameters from an object schema. */
function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] {
  if (!schema) return [];
  const s = jsonSchema(schema, 'input') as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, p]) => ({
    name,
    in: where,
    required: where === 'path' || (s.required ?? []).includes(name),
    ...(typeof p.description === 'string' ? { description: p.description } : {}),
    schema: p,
  }));
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid request (`invalid_payload`, `unsupported_version`)',
  401: 'No valid bearer token (`unauthorized`)',
  403: 'The token’s role or agent may not do this (`forbidden`, `suspended`)',
  404: 'Not found (`not_found`)',
  409: 'Refused in the current state (`conflict`, `invalid_state`, `stale_generation`, `duplicate`)',
  413: 'Body too large (`payload_too_large`)',
  415: 'Body is not JSON',
  429: 'Over the token’s rate (`rate_limited`); see Retry-After',
  503: 'The hub is not reachable (`unavailable`)',
  504: 'The hub did not answer in time (`timeout`)',
};

/**
 * A route served outside the table (a stream, a text format, a probe), described by hand: its
 * success is `contentType` rather than a JSON reply schema; `public` needs no token.
 */
export interface SpecialRoute {
  method: 'GET';
  url: string;
  summary: string;
  tag: string;
  roles: readonly string[];
  query?: z.ZodType;
  contentType: string;
  public?: boolean;
  /** A WebSocket: its success is `101 Switching Protocols`, and `contentType` is that of its frames. */
  websocket?: boolean;
  /** Statuses besides the success. */
  errors: readonly number[];
}

export function buildOpenApi(
  routes: readonly RouteDef[],
  info: { version?: string } = {},
  special: readonly SpecialRoute[] = [],
): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of special) {
    const responses: Record<string, Json> = r.websocket
      ? { '101': { description: `Switching Protocols: a WebSocket whose frames are ${r.contentType} text` } }
      : { '200': { description: 'Success', content: { [r.contentType]: { schema: {} } } } };
    for (const st of r.errors)
      responses[String(st)] = {
        description: STATUS_TEXT[st] ?? 'Error',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    paths[r.url] ??= {};
    paths[r.url]![r.method.toLowerCase()] = {
      operationId: `get${r.url.replace(/\/(\w)/g, (_m, c: string) => c.toUpperCase()).replace(/[^A-Za-z0-9]/g, '')}`,
      summary: r.summary,
      tags: [r.tag],
      'x-roles': r.public ? ['anyone'] : ['admin', ...r.roles],
      ...(r.public ? { security: [] } : {}),
      parameters: parameters(r.query, 'query'),
      responses,
    };
  }
  for (const r of routes) {
    const path = r.url.replace(/:(\w+)/g, '{$1}');
    const errors = [400, 401, 403, ...(r.errors ?? []), ...(r.body ? [413] : []), 429, 503, 504];
    const responses: Record<string, Json> = {
      [String(r.status ?? 200)]: {
        description: 'Success',
        content: { 'application/json': { schema: jsonSchema(r.reply, 'output') } },
      },
    };
    for (const s of [...new Set(errors)].sort())
      responses[String(s)] = {
        description: STATUS_TEXT[s] ?? 'Error',
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    paths[path] ??= {};
    paths[path]![r.method.toLowerCase()] = {
      operationId: `${r.method.toLowerCase()}${path
        .replace(/[{}]/g, '')
        .replace(/\/(\w)/g, (_m, c: string) => c.toUpperCase())
        .replace(/[^A-Za-z0-9]/g, '')}`,
      summary: r.summary,
      tags: [r.tag],
      'x-roles': ['admin', ...r.roles],
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
      ...(r.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: bodySchema(r.body) } } } }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'AgentCom gateway',
      version: info.version ?? '1',
      description:
        'The hub’s HTTP API (docs/gateway.md). Every error is `{ code, message, path? }` (docs/protocol.md). Authenticate with `Authorization: Bearer agc_…`.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          ...jsonSchema(WireErrorSchema, 'output'),
          'x-codes': Object.values(ERROR_CODES),
        },
      },
    },
    paths,
  };
}
