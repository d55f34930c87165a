/**
 * @module service
 * The request/reply API as a NATS micro service (`@nats-io/services`): discoverable with
 * `$SRV.PING|INFO|STATS` (`nats micro ls`), queue group `q` so several hubs share the load.
 * Endpoints are registered with a zod input schema and an async handler; they run from the
 * endpoint's iterator (service callbacks run inside the socket read and must not be async).
 * Replies are JSON. Invalid input and handler failures are answered as a typed error body
 * `{ code, message, path? }` plus the `Nats-Service-Error` / `Nats-Service-Error-Code` headers;
 * a handler that throws an AgentComError keeps its code, anything else is `internal`.
 * {@link request} is the matching client: it rebuilds the error as an AgentComError.
 */
import { type Service, type ServiceMsg, Svcm } from '@nats-io/services';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { z } from 'zod';
import { decodePayload, utf8, validatePayload } from '../protocol/envelope.js';
import {
  AgentComError,
  ERROR_CODES,
  ERROR_STATUS,
  type WireError,
  WireErrorSchema,
} from '../protocol/errors.js';
import { childTraceparent, HEADERS } from '../protocol/headers.js';
import { API_ENDPOINTS, type ApiEndpoint } from '../protocol/subjects.js';
import type { Bus } from './connection.js';

export interface RequestContext {
  subject: string;
  correlationId: string | null;
  traceparent: string | null;
  header(name: string): string | undefined;
}

export interface EndpointDef<I, O> {
  input: z.ZodType<I>;
  /** Validates replies too (a wrong reply becomes an `internal` error instead of reaching clients). */
  output?: z.ZodType<O>;
  handler: (input: I, ctx: RequestContext) => Promise<O> | O;
  description?: string;
}

export interface AgentcomService {
  readonly service: Service;
  /** Registers `<prefix>.api.<endpoint>` (e.g. `task.submit`). */
  addEndpoint<I, O>(endpoint: ApiEndpoint | string, def: EndpointDef<I, O>): void;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  /** Semver (default 0.1.0). */
  version?: string;
  description?: string;
  /** Queue group (default `q`); '' = every instance answers. */
  queue?: string;
  metadata?: Record<string, string>;
}

const decoder = new TextDecoder();

export async function createService(bus: Bus, opts: ServiceOptions = {}): Promise<AgentcomService> {
  const service = await new Svcm(bus.nc).add({
    name: bus.names.service.name,
    version: opts.version ?? '0.1.0',
    description: opts.description ?? 'AgentCom hub API',
    queue: opts.queue ?? 'q',
    ...(opts.metadata ? { metadata: opts.metadata } : {}),
  });
  const loops: Promise<void>[] = [];
  const iters: { stop(): void }[] = [];
  const log = bus.log;

  const respondError = (m: ServiceMsg, e: WireError) => {
    m.respondError(ERROR_STATUS[e.code] ?? 500, e.message.replace(/[\r\n]+/g, ' '), utf8(JSON.stringify(e)));
  };

  let unanswerable = 0;
  let unanswerableLoggedAt = 0;
  async function handle<I, O>(m: ServiceMsg, endpoint: string, def: EndpointDef<I, O>) {
    // A request comes with a reply inbox. A message pushed here by a JetStream consumer (reply
    // `$JS.ACK…`, or none with some ack policies) is no one's request: someone pointed a consumer's
    // deliver subject at the API. Nothing of it is acted on.
    if (!m.reply || m.reply.startsWith('$JS.')) {
      // Counted, and logged at most every 10 s: a flood of them must not become a flood of logs.
      unanswerable++;
      const now = Date.now();
      if (now - unanswerableLoggedAt >= 10_000) {
        unanswerableLoggedAt = now;
        log.warn(
          { endpoint, subject: m.subject, reply: m.reply ?? null, dropped: unanswerable },
          'api messages without a reply inbox dropped',
        );
      }
      return;
    }
    // The same checks as every other subject (size, JSON, version, schema); an empty body is `{}`.
    const input = m.data.length
      ? decodePayload(def.input, m.data)
      : validatePayload(def.input, {}, 'request');
    if (!input.ok) {
      respondError(m, input.error);
      return;
    }
    const ctx: RequestContext = {
      subject: m.subject,
      correlationId: m.headers?.get(HEADERS.CORRELATION_ID) || null,
      traceparent: m.headers?.get(HEADERS.TRACEPARENT) || null,
      header: (n) => m.headers?.get(n) || undefined,
    };
    try {
      let out: unknown = await def.handler(input.value, ctx);
      if (def.output) {
        const r = validatePayload(def.output, out, 'reply');
        if (!r.ok) throw new AgentComError(ERROR_CODES.INTERNAL, `invalid reply: ${r.error.message}`);
        out = r.value;
      }
      m.respond(utf8(JSON.stringify(out ?? null)));
    } catch (err) {
      if (err instanceof AgentComError) {
        respondError(m, err.toWire());
        if (err.code === ERROR_CODES.INTERNAL) log.error({ err, endpoint }, 'api handler failed');
      } else {
        log.error({ err, endpoint, correlation_id: ctx.correlationId }, 'api handler threw');
        respondError(m, {
          code: ERROR_CODES.INTERNAL,
          message: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  return {
    service,
    addEndpoint(endpoint, def) {
      const subject = `${bus.names.subjects.apiPrefix}.${endpoint}`;
      // Endpoint names are single tokens: task.submit -> task-submit, task.submit.> -> task-submit-as.
      const iter = service.addEndpoint(endpoint.replace(/\.[*>]$/, '.as').replace(/\./g, '-'), {
        subject,
        metadata: { description: def.description ?? '' },
      });
      iters.push(iter);
      loops.push(
        (async () => {
          for await (const m of iter) {
            // Not awaited: requests on one endpoint run concurrently.
            void handle(m, endpoint, def);
          }
        })(),
      );
    },
    async stop() {
      await service.stop();
      // The service does not end its endpoint iterators; end them so the loops finish.
      for (const it of iters) it.stop();
      await Promise.allSettled(loops);
    },
  };
}

/** Known endpoint names, for callers that build menus or validate CLI input. */
export const API_ENDPOINT_NAMES: readonly string[] = API_ENDPOINTS;

/**
 * Calls an API endpoint and returns the reply validated by `output`. `correlationId` and
 * `traceparent` (sent as a child span) are propagated as headers when given.
 * @throws AgentComError with the service's error code, `timeout`, `forbidden` (the credentials may
 *   not publish there), or `unavailable` (no responders).
 */
export async function request<I, O>(
  bus: Bus,
  endpoint: ApiEndpoint | string,
  input: I,
  output: z.ZodType<O>,
  opts: { timeoutMs?: number; correlationId?: string; traceparent?: string } = {},
): Promise<O> {
  // Headers only when there is something to propagate: a bare request stays header-free.
  let h: ReturnType<typeof natsHeaders> | undefined;
  if (opts.correlationId || opts.traceparent) {
    h = natsHeaders();
    if (opts.correlationId) h.set(HEADERS.CORRELATION_ID, opts.correlationId);
    if (opts.traceparent) h.set(HEADERS.TRACEPARENT, childTraceparent(opts.traceparent));
  }
  let reply: Awaited<ReturnType<typeof bus.nc.request>>;
  try {
    reply = await bus.nc.request(`${bus.names.subjects.apiPrefix}.${endpoint}`, JSON.stringify(input), {
      timeout: opts.timeoutMs ?? 5_000,
      ...(h ? { headers: h } : {}),
    });
  } catch (err) {
    const name = (err as Error).name;
    if (name === 'TimeoutError')
      throw new AgentComError(ERROR_CODES.TIMEOUT, `${endpoint}: timed out`, { cause: err });
    // nats.js wraps it (a RequestError whose cause is a PermissionViolationError): match the text.
    if (/permissions violation/i.test(String((err as Error).message)))
      throw new AgentComError(
        ERROR_CODES.FORBIDDEN,
        `${endpoint}: not permitted for these credentials (${(err as Error).message})`,
        {
          cause: err,
        },
      );
    throw new AgentComError(ERROR_CODES.UNAVAILABLE, `${endpoint}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (reply.headers?.get(HEADERS.SERVICE_ERROR_CODE)) {
    const parsed = WireErrorSchema.safeParse(safeJson(reply.data));
    if (parsed.success) throw AgentComError.fromWire(parsed.data);
    throw new AgentComError(
      ERROR_CODES.INTERNAL,
      reply.headers.get(HEADERS.SERVICE_ERROR) || 'service error',
    );
  }
  const r = validatePayload(output, safeJson(reply.data), 'reply');
  // A reply this side cannot read is not the caller's mistake (a hub of another version, say).
  if (!r.ok)
    throw new AgentComError(ERROR_CODES.INTERNAL, `${endpoint}: unexpected reply: ${r.error.message}`, {
      ...(r.error.path ? { path: r.error.path } : {}),
    });
  return r.value;
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
}
