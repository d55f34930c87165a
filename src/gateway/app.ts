/**
 * @module gateway/app
 * The HTTP gateway (docs/gateway.md): fastify serving the route table (routes/*.ts) over the hub's
 * NATS API, with bearer-token auth and roles, per-token rate limits (429 with Retry-After), body
 * size limits (413), the event stream, health, `/metrics` and the OpenAPI document. It is a NATS
 * client like any other: it holds no state of record, so several gateways can serve one hub,
 * beside a hub or alone.
 *
 * Every error is the protocol's structured error `{ code, message, path? }` with the status of its
 * code (protocol/errors.ts ERROR_STATUS): validation 400, no or bad token 401, role or agent 403,
 * not found 404, state conflicts 409, body too large 413, rate 429, hub unreachable 503/504.
 */
import { randomUUID } from 'node:crypto';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { LEASE_KEY } from '../../actors/leader/index.js';
import type { Bus } from '../bus/connection.js';
import { HubClient } from '../bus/hub-client.js';
import { openKv } from '../bus/kv.js';
import { validatePayload } from '../protocol/envelope.js';
import { AgentComError, ERROR_CODES, ERROR_STATUS, type WireError } from '../protocol/errors.js';
import type { RateLimit } from '../protocol/limits.js';
import { LeaseSchema } from '../protocol/registration.js';
import { KeyedRateLimiter } from '../runtime/rate-limit.js';
import type { ChannelFeedOptions } from './channel-feed.js';
import { EventHub } from './events.js';
import { createGatewayMetrics, type GatewayMetricsOptions } from './metrics.js';
import { buildOpenApi } from './openapi.js';
import { callHub, type Principal, type RouteDef, withVersion } from './route.js';
import { agentRelayRoutes, Mailboxes } from './routes/agent-relay.js';
import { agentRoutes } from './routes/agents.js';
import { registerDashboard } from './routes/dashboard.js';
import { EventsQuerySchema, serveEvents } from './routes/events.js';
import { hubRoutes } from './routes/hub.js';
import {
  INSPECT_ROLES,
  INSPECT_URL,
  InspectQuerySchema,
  InspectSockets,
  type InspectSocketsOptions,
  mountInspect,
} from './routes/inspect.js';
import { messageRoutes } from './routes/messages.js';
import { dlqRoutes, fieldRoutes, scheduleRoutes } from './routes/operations.js';
import { seriesRoutes } from './routes/series.js';
import { taskRoutes } from './routes/tasks.js';
import { tokenRoutes } from './routes/tokens.js';
import { TokenVerifier } from './tokens.js';

export interface GatewayOptions {
  bus: Bus;
  log: Logger;
  /** Largest request body, bytes (default 1 MiB; a task body is at most 256 KiB). */
  bodyLimit?: number;
  /** How long a hub API call may take before 504 (default 5 s). */
  hubTimeoutMs?: number;
  /** Requests per second of a token without its own `rate` (default 50/s, burst 100). */
  defaultRate?: RateLimit;
  /** Requests per second per client address without a valid token (default 5/s, burst 20). */
  anonymousRate?: RateLimit;
  /** Events kept for resumption (default 10,000). */
  eventRing?: number;
  /** A stream client with this much unsent is disconnected (default 1 MiB). */
  maxEventBufferBytes?: number;
  /** The event stream's channel follow (`?channels=`): how long it outlives its last client. */
  channelFeed?: ChannelFeedOptions;
  /** Event streams one token may hold open at once on this gateway (default 16). */
  maxStreamsPerToken?: number;
  /** `/metrics` (metrics.ts) with these options, or false for none (404). Default on. */
  metrics?: GatewayMetricsOptions | false;
  /** The inspection WebSocket (`/api/inspect`): listen TTL, buffer bound, sockets per token. */
  inspect?: Omit<InspectSocketsOptions, 'bus' | 'log'>;
}

export interface Gateway {
  readonly app: FastifyInstance;
  readonly routes: readonly RouteDef[];
  close(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const DEFAULT_RATE: RateLimit = { perSecond: 50, burst: 100 };
const ANONYMOUS_RATE: RateLimit = { perSecond: 5, burst: 20 };

/** The structured error a thrown value stands for. */
export function toWireError(err: unknown): WireError {
  if (err instanceof AgentComError) return err.toWire();
  const fe = err as FastifyError;
  if (fe?.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return { code: ERROR_CODES.PAYLOAD_TOO_LARGE, message: fe.message };
  if (typeof fe?.statusCode === 'number' && fe.statusCode < 500)
    return { code: ERROR_CODES.INVALID_PAYLOAD, message: fe.message };
  // A body nested deeper than the stack allows (a free-form field measured with JSON.stringify).
  if (err instanceof RangeError && /call stack/i.test(err.message))
    return { code: ERROR_CODES.INVALID_PAYLOAD, message: 'the body is nested too deeply' };
  // NATS or JetStream did not answer (a publish, a consumer, a bucket): the hub is unavailable.
  if (
    err instanceof Error &&
    /nats|jetstream|timeout|connection|closed|no responders/i.test(`${err.name} ${err.message}`)
  )
    return { code: ERROR_CODES.UNAVAILABLE, message: `NATS: ${err.message}` };
  return { code: ERROR_CODES.INTERNAL, message: 'internal error' };
}

function sendError(reply: FastifyReply, e: WireError, status = ERROR_STATUS[e.code] ?? 500): FastifyReply {
  if (e.retryAfterMs !== undefined)
    reply.header('retry-after', String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))));
  return reply.code(status).type('application/json').send(e);
}

/** Parses one part of a request with its schema; a failure names the part (`query.limit`). */
function parsePart<T>(schema: z.ZodType<T> | undefined, value: unknown, part: string): T {
  if (!schema) return undefined as T;
  const r = validatePayload(schema, value, part);
  if (!r.ok) throw AgentComError.fromWire({ ...r.error, path: [part, ...(r.error.path ?? [])] });
  return r.value;
}

export async function buildGateway(opts: GatewayOptions): Promise<Gateway> {
  const { bus, log } = opts;
  const glog = log.child({ actor: 'gateway' });
  const timeoutMs = opts.hubTimeoutMs ?? 5_000;
  const streams = new Set<() => void>();
  /** The close of each open event stream, per token id (a revoked token's are ended). */
  const streamsOf = new Map<string, Set<() => void>>();
  // What is opened is closed again if a later step fails (a retried start must not leak).
  const opened: (() => unknown)[] = [];
  const inspectSockets = new InspectSockets({ ...opts.inspect, bus, log: glog });
  let tokens: TokenVerifier;
  let events: EventHub;
  let leases: Awaited<ReturnType<typeof openKv<z.infer<typeof LeaseSchema>>>>;
  let metrics: Awaited<ReturnType<typeof createGatewayMetrics>> | undefined;
  try {
    tokens = await TokenVerifier.open(bus, (id) => {
      for (const end of [...(streamsOf.get(id) ?? [])]) end();
      inspectSockets.endToken(id);
    });
    opened.push(() => tokens.stop());
    events = await EventHub.start(bus, {
      ...(opts.eventRing !== undefined ? { ringSize: opts.eventRing } : {}),
      ...(opts.channelFeed !== undefined ? { channels: opts.channelFeed } : {}),
    });
    opened.push(() => events.stop());
    leases = await openKv(bus, bus.names.buckets.leases, LeaseSchema);
    if (opts.metrics !== false) {
      const m = await createGatewayMetrics(
        { bus, hub: new HubClient(bus, timeoutMs), log, tasks: events },
        opts.metrics ?? {},
      );
      opened.push(() => m.stop());
      metrics = m;
    }
  } catch (err) {
    for (const close of opened.reverse()) await Promise.resolve(close()).catch(() => undefined);
    throw err;
  }
  const mailboxes = new Mailboxes(bus);

  const byToken = new Map<string, RateLimit>();
  const tokenLimiter = new KeyedRateLimiter((id) => byToken.get(id) ?? opts.defaultRate ?? DEFAULT_RATE);
  const anonLimiter = new KeyedRateLimiter(() => opts.anonymousRate ?? ANONYMOUS_RATE);

  const app = Fastify({
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    logger: false,
    // Closing does not wait for idle keep-alive connections (or open event streams) to time out.
    forceCloseConnections: true,
    genReqId: (req) => {
      const h = req.headers['correlation-id'];
      const id = Array.isArray(h) ? h[0] : h;
      return id && /^[\w.:-]{1,128}$/.test(id) ? id : randomUUID();
    },
    // Route ids and paths are matched exactly; a trailing slash is another path.
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    // Errors of the router itself (a malformed URL, a parameter over maxParamLength) are structured too.
    frameworkErrors: (err, _req, reply) => sendError(reply, toWireError(err), 400),
    // No implicit HEAD routes: a HEAD of the event stream would never end (its body is held back).
    exposeHeadRoutes: false,
    // Bytes Node's HTTP parser refuses get the structured error too, then the socket is closed.
    clientErrorHandler: (err, socket) => {
      if (!socket.writable) return socket.destroy();
      const huge = (err as NodeJS.ErrnoException).code === 'HPE_HEADER_OVERFLOW';
      const body = JSON.stringify({
        code: ERROR_CODES.INVALID_PAYLOAD,
        message: huge ? 'the request headers are too large' : 'malformed HTTP request',
      });
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  });

  // JSON only: a body of any other type is refused (415), not read as a string.
  app.removeContentTypeParser(['text/plain']);
  app.setErrorHandler((err, req, reply) => {
    const e = toWireError(err);
    if (e.code === ERROR_CODES.INTERNAL)
      glog.error(
        // The path only: a query may carry a token (the inspection WebSocket's), under any spelling
        // the query parser decodes (`%74oken=`), so none of it reaches the log.
        {
          err,
          method: req.method,
          url: req.url.split('?')[0],
          correlation_id: req.id,
        },
        'gateway route failed',
      );
    return sendError(
      reply,
      e,
      e.code === ERROR_CODES.INVALID_PAYLOAD && (err as FastifyError).statusCode === 415 ? 415 : undefined,
    );
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, {
      code: ERROR_CODES.NOT_FOUND,
      message: `no route ${req.method} ${req.url.split('?')[0]}`,
    }),
  );

  /**
   * Verifies the bearer token and spends one request of its rate: the principal, or throws.
   * `fromQuery`: a token a client sent in the query (the inspection WebSocket), used without a header.
   */
  async function authenticate(req: FastifyRequest, fromQuery?: string): Promise<Principal> {
    const now = Date.now();
    const h = req.headers.authorization;
    const presented =
      (typeof h === 'string' && /^Bearer /i.test(h) ? h.slice(7).trim() : undefined) ?? fromQuery;
    // Failed attempts, and looking up a token this gateway does not know, are limited per client
    // address: guessing costs the guesser (and its address), not the others or NATS.
    const limitAnonymous = () => {
      const wait = anonLimiter.take(req.ip, now);
      if (wait > 0)
        throw new AgentComError(ERROR_CODES.RATE_LIMITED, 'too many unauthenticated requests', {
          retryAfterMs: wait,
        });
    };
    let looked = false;
    const v = presented
      ? await tokens.verify(presented, now, () => {
          looked = true;
          limitAnonymous();
        })
      : undefined;
    if (!v?.ok) {
      if (!looked) limitAnonymous();
      const why = !presented
        ? 'a bearer token is required'
        : v?.reason === 'expired'
          ? 'the token has expired'
          : 'the token is not valid';
      throw new AgentComError(ERROR_CODES.UNAUTHORIZED, why);
    }
    const t = v.token;
    if (t.rate) byToken.set(t.id, t.rate);
    else byToken.delete(t.id);
    const wait = tokenLimiter.take(t.id, now);
    if (wait > 0)
      throw new AgentComError(ERROR_CODES.RATE_LIMITED, `token ${t.name} is over its rate`, {
        retryAfterMs: wait,
      });
    return t;
  }

  function authorize(
    p: Principal,
    def: { roles: readonly string[]; method: string; url: string },
    params?: unknown,
  ): void {
    if (p.role !== 'admin' && !def.roles.includes(p.role))
      throw new AgentComError(ERROR_CODES.FORBIDDEN, `a ${p.role} token may not ${def.method} ${def.url}`);
    // An agent token acts as its own agent only, checked before anything of the request is read.
    const agentId = (params as { agentId?: unknown } | undefined)?.agentId;
    if (p.role === 'agent' && agentId !== undefined && agentId !== p.agentId)
      throw new AgentComError(ERROR_CODES.FORBIDDEN, `this token acts as ${p.agentId} only`);
  }

  const routes: RouteDef[] = [
    ...taskRoutes,
    ...agentRoutes,
    ...agentRelayRoutes(mailboxes),
    ...dlqRoutes,
    ...scheduleRoutes,
    ...fieldRoutes,
    ...hubRoutes(() => events.cursor()),
    ...tokenRoutes,
    ...messageRoutes({ timeoutMs }),
    ...seriesRoutes(() => events.series),
  ];

  for (const def of routes) {
    app.route({
      method: def.method,
      url: def.url,
      handler: async (req, reply) => {
        const principal = await authenticate(req);
        authorize(principal, def, req.params);
        const params = parsePart(def.params, req.params, 'params');
        const query = parsePart(def.query, req.query, 'query');
        const body = parsePart(def.body, def.body ? withVersion(req.body ?? undefined) : undefined, 'body');
        const ac = new AbortController();
        // The response's close, not the request's: on Node 20 the request closes as soon as its body
        // is read. A response closed before it finished is a client that went away.
        reply.raw.on('close', () => {
          if (!reply.raw.writableFinished) ac.abort();
        });
        const out = await def.handler({
          params,
          query,
          body,
          principal,
          bus,
          log: glog,
          correlationId: req.id,
          call: (endpoint, input, replySchema) =>
            callHub(bus, endpoint, input, replySchema, req.id, timeoutMs),
          signal: ac.signal,
        });
        return reply.code(def.status ?? 200).send(out);
      },
    });
  }

  app.get('/api/events', async (req, reply) => {
    const principal = await authenticate(req);
    authorize(principal, { roles: ['read', 'submitter', 'agent'], method: 'GET', url: '/api/events' });
    const query = parsePart(EventsQuerySchema, req.query, 'query');
    const mine = streamsOf.get(principal.id) ?? new Set<() => void>();
    if (mine.size >= (opts.maxStreamsPerToken ?? 16))
      throw new AgentComError(
        ERROR_CODES.RATE_LIMITED,
        `token ${principal.name} has ${mine.size} event streams open`,
        { retryAfterMs: 5_000 },
      );
    streamsOf.set(principal.id, mine);
    await serveEvents(events, req, reply, query, principal, {
      maxBufferedBytes: opts.maxEventBufferBytes ?? 1024 * 1024,
      onClose: (fn) => {
        streams.add(fn);
        mine.add(fn);
        return () => {
          streams.delete(fn);
          mine.delete(fn);
          if (mine.size === 0 && streamsOf.get(principal.id) === mine) streamsOf.delete(principal.id);
        };
      },
    });
  });

  // The inspection WebSocket (routes/inspect.ts): checked like any route before it is upgraded.
  await app.register(fastifyWebsocket, {
    // Frames from the client are ignored; a large one closes its socket (1009).
    options: { maxPayload: 4096 },
    errorHandler: (_err, socket) => socket.terminate(),
  });
  mountInspect(app, {
    sockets: inspectSockets,
    authenticate,
    authorize: (p) => authorize(p, { roles: INSPECT_ROLES, method: 'GET', url: INSPECT_URL }),
    parseQuery: (q) => parsePart(InspectQuerySchema, q, 'query'),
  });

  app.get('/metrics', async (req, reply) => {
    const principal = await authenticate(req);
    authorize(principal, { roles: ['read'], method: 'GET', url: '/metrics' });
    if (!metrics) throw new AgentComError(ERROR_CODES.NOT_FOUND, 'metrics are not enabled on this gateway');
    return reply.type(metrics.contentType).send(await metrics.render());
  });

  const openapi = buildOpenApi(routes, {}, [
    {
      method: 'GET',
      url: '/api/events',
      summary:
        'The event stream (Server-Sent Events): task, agent, alert and pheromone events, resumable with Last-Event-ID; with `channels`, live channel posts as `message` events (docs/gateway.md).',
      tag: 'events',
      roles: ['read', 'submitter', 'agent'],
      query: EventsQuerySchema,
      contentType: 'text/event-stream',
      errors: [400, 401, 403, 429],
    },
    {
      method: 'GET',
      url: INSPECT_URL,
      summary:
        'Live XState inspection as a WebSocket in the protocol of @statelyai/inspect’s WebSocket inspector: one JSON text frame per inspection event of the targets, while the socket is open. The token may be sent as `?token=` (browsers cannot set headers). docs/gateway.md, "Inspection".',
      tag: 'events',
      roles: INSPECT_ROLES,
      query: InspectQuerySchema,
      contentType: 'application/json',
      websocket: true,
      errors: [400, 401, 403, 429],
    },
    {
      method: 'GET',
      url: '/metrics',
      summary: 'Prometheus metrics (text exposition format; docs/operations.md, "Metrics").',
      tag: 'hub',
      roles: ['read'],
      contentType: 'text/plain',
      errors: [401, 403, 404, 429],
    },
    {
      method: 'GET',
      url: '/healthz',
      summary: 'Liveness: the gateway process answers.',
      tag: 'hub',
      roles: [],
      public: true,
      contentType: 'application/json',
      errors: [],
    },
    {
      method: 'GET',
      url: '/readyz',
      summary:
        'Readiness: NATS connected, JetStream answering, a hub holding the lease (503 with the failing check).',
      tag: 'hub',
      roles: [],
      public: true,
      contentType: 'application/json',
      errors: [429, 503],
    },
    {
      method: 'GET',
      url: '/api/openapi.json',
      summary: 'This document.',
      tag: 'hub',
      roles: [],
      public: true,
      contentType: 'application/json',
      errors: [],
    },
  ]);
  app.get('/api/openapi.json', async () => openapi);

  app.get('/healthz', async () => ({ status: 'ok' }));
  registerDashboard(app);
  app.get('/readyz', async (req, reply) => {
    // Unauthenticated and two JetStream requests each: limited like any anonymous request.
    const wait = anonLimiter.take(req.ip, Date.now());
    if (wait > 0)
      throw new AgentComError(ERROR_CODES.RATE_LIMITED, 'too many readiness probes', { retryAfterMs: wait });
    const checks: Record<string, { ok: boolean; detail: string }> = {};
    checks.nats = bus.isClosed()
      ? { ok: false, detail: 'connection closed' }
      : { ok: true, detail: 'connected' };
    try {
      const info = await bus.jsm.getAccountInfo();
      checks.jetstream = { ok: true, detail: `${info.streams} streams` };
    } catch (err) {
      checks.jetstream = { ok: false, detail: (err as Error).message };
    }
    try {
      const lease = (await leases.get(LEASE_KEY))?.value;
      checks.lease =
        lease && lease.expiresAt > Date.now()
          ? { ok: true, detail: `held by ${lease.holder}` }
          : { ok: false, detail: lease ? `expired (last holder ${lease.holder})` : 'no hub holds the lease' };
    } catch (err) {
      checks.lease = { ok: false, detail: (err as Error).message };
    }
    const ok = Object.values(checks).every((c) => c.ok);
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks });
  });

  return {
    app,
    routes,
    async close() {
      for (const end of [...streams]) end();
      inspectSockets.closeAll();
      await app.close();
      await metrics?.stop();
      events.stop();
      tokens.stop();
    },
  };
}
