/**
 * @module gateway/route
 * A route of the HTTP API as data: method, path, who may call it, the zod schemas of its path
 * parameters, query and body, the schema of its reply, and a handler. The same table mounts the
 * routes on fastify (app.ts) and writes the OpenAPI document (openapi.ts), so the document cannot
 * drift from what is served. Most routes forward to an endpoint of the hub's NATS API with the
 * protocol's own request and reply schemas ({@link forward}).
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Bus } from '../bus/connection.js';
import { request } from '../bus/service.js';
import type { TokenRecord, TokenRole } from '../protocol/token.js';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/** Who is calling: the verified token. */
export type Principal = TokenRecord;

export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  principal: Principal;
  bus: Bus;
  log: Logger;
  /** The request's correlation id (header `Correlation-Id`, or the request id). */
  correlationId: string;
  /** Calls an endpoint of the hub's API with this request's correlation id. */
  call<O>(endpoint: string, input: unknown, reply: z.ZodType<O>): Promise<O>;
  /** Aborted when the client goes away (long polls and streams stop early). */
  signal: AbortSignal;
}

export interface RouteDef<P = unknown, Q = unknown, B = unknown, R = unknown> {
  method: HttpMethod;
  /** fastify syntax: `/api/tasks/:id`. */
  url: string;
  summary: string;
  tag: string;
  /**
   * Roles that may call it (admin always may). An `agent` token may call a route listing `agent`
   * only for its own agent: routes with an `:agentId` parameter check it against the token.
   */
  roles: readonly TokenRole[];
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  reply: z.ZodType<R>;
  /** Success status (default 200). */
  status?: number;
  /** Error statuses it documents besides 400, 401, 403, 413, 429 and 5xx, which every route may send. */
  errors?: readonly number[];
  handler(ctx: RouteContext<P, Q, B>): Promise<R>;
}

/** Widens a typed route for the table (the table holds routes of many shapes). */
export function route<P, Q, B, R>(def: RouteDef<P, Q, B, R>): RouteDef {
  return def as unknown as RouteDef;
}

/** A hub API call with the gateway's timeout and the request's correlation id. */
export function callHub<O>(
  bus: Bus,
  endpoint: string,
  input: unknown,
  reply: z.ZodType<O>,
  correlationId: string,
  timeoutMs: number,
): Promise<O> {
  return request(bus, endpoint, input, reply, { timeoutMs, correlationId });
}

export interface ForwardDef<P, Q, B, R> extends Omit<RouteDef<P, Q, B, R>, 'handler'> {
  /** The hub API endpoint (`task.get`). */
  endpoint: string;
  /** The endpoint when it depends on the request (default `endpoint`). */
  endpointFor?: (ctx: RouteContext<P, Q, B>) => string;
  /** The endpoint's request; default `{ v: 1, ...query, ...body, ...params }`. */
  input?: (ctx: RouteContext<P, Q, B>) => unknown;
}

/** A route that forwards to a hub API endpoint; the endpoint's own schema validates the request. */
export function forward<P, Q, B, R>(def: ForwardDef<P, Q, B, R>): RouteDef {
  const { endpoint, endpointFor, input, ...rest } = def;
  return route<P, Q, B, R>({
    ...rest,
    handler: (ctx) =>
      ctx.call(
        endpointFor ? endpointFor(ctx) : endpoint,
        input
          ? input(ctx)
          : { v: 1, ...(ctx.query as object), ...(ctx.body as object), ...(ctx.params as object) },
        def.reply,
      ),
  });
}

/** A body that leaves out the protocol's `v` gets version 1 (HTTP clients need not send it). */
export function withVersion(body: unknown): unknown {
  return body && typeof body === 'object' && !Array.isArray(body) && !('v' in body)
    ? { v: 1, ...body }
    : body;
}

/**
 * The submitter a token submits as: its idempotency keys and submission rate are scoped to it. An
 * agent someone names `http-<that token id>` would share its scope; ids are random, so only on purpose.
 */
export const httpSubmitter = (tokenId: string): string => `http-${tokenId}`;
