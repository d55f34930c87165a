/**
 * @module gateway/routes/inspect
 * `GET /api/inspect?targets=agent.a1,hub.*` upgraded to a WebSocket that speaks the protocol of
 * `@statelyai/inspect`'s WebSocket inspector (docs/gateway.md, "Inspection"): one JSON text frame
 * per inspection event (`@xstate.actor`, `@xstate.event`, `@xstate.snapshot`), no envelope, the
 * bytes exactly as published on `<p>.inspect.<source>.<id>` (protocol/inspect.ts). So the package's
 * own `createWebSocketReceiver`, or the Stately inspector's bridge page pointed at this URL, reads it.
 *
 * While a socket is open the gateway listens for its targets: it publishes an InspectListen on
 * `<p>.inspecting` at once and every `ttlMs / 3` (one listener id per socket), and subscribes to
 * the targets' subjects. When the socket closes, the listen is no longer repeated, so publishers
 * detach once it expires. Frames from the client are ignored (as the Stately inspector server's
 * clients ignore what they are sent); a frame over 4 KiB closes the socket (1009).
 *
 * Auth is the other routes': a bearer token in `Authorization`, or, for browsers (whose WebSocket
 * cannot set headers), in the `token` query parameter; the header wins when both are given. A
 * token is never logged. Roles: read and admin for any target; an agent token for its own
 * `agent.<id>` and `sidecar.<id>` only. Refusals come before the upgrade, as HTTP errors (400, 401,
 * 403, 429). A socket whose client reads too slowly (more than `maxBufferedBytes` waiting) is
 * closed at once rather than buffered without limit; it reconnects when it can read again.
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Msg } from '@nats-io/nats-core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Bus } from '../../bus/connection.js';
import { publishCore } from '../../bus/subscribe.js';
import { decodePayload } from '../../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../../protocol/errors.js';
import {
  INSPECT_LISTEN_TTL_MS,
  InspectionEventSchema,
  InspectListenSchema,
  InspectTargetSchema,
} from '../../protocol/inspect.js';
import { qList } from '../query.js';
import type { Principal } from '../route.js';

export const INSPECT_URL = '/api/inspect';
/** Roles that may open it (admin always may); an agent token for its own targets only. */
export const INSPECT_ROLES = ['read', 'agent'] as const;

export const InspectQuerySchema = z.object({
  targets: qList(InspectTargetSchema).describe(
    'What to inspect: `<agent|hub|sidecar>.<id or *>`, comma-separated or repeated (e.g. `agent.a1,hub.*`); at most 20.',
  ),
  token: z
    .string()
    .max(200)
    .optional()
    .describe(
      'The bearer token, for clients that cannot set headers (a browser WebSocket); `Authorization: Bearer` wins when both are sent.',
    ),
});
export type InspectQuery = z.infer<typeof InspectQuerySchema>;

/** The part of a `ws` WebSocket this module uses (the package ships no types of its own). */
export interface InspectSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Uint8Array, opts: { binary: boolean }): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'close' | 'pong', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
}

export interface InspectSocketsOptions {
  bus: Bus;
  log: Logger;
  /** The listens' `ttlMs` (default 10 s; repeated every third of it). */
  listenTtlMs?: number;
  /** A socket with this many bytes unsent is closed (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Sockets one token may hold open at once on this gateway (default 8). */
  maxSocketsPerToken?: number;
  /** Between pings; a client that has not answered the last one is dropped (default 15 s). */
  pingIntervalMs?: number;
}

const WS_OPEN = 1;
/** The largest event forwarded (NATS's default max_payload). */
const MAX_EVENT_BYTES = 1024 * 1024;

/** Targets without repeats, and without `s.id` where `s.*` is asked for too (one copy of each event). */
export function normalizeTargets(targets: readonly string[]): string[] {
  const all = new Set(targets);
  return [...all].filter((t) => {
    const [source, id] = t.split('.') as [string, string];
    return id === '*' || !all.has(`${source}.*`);
  });
}

/** An agent token may inspect its own agent and sidecar only. */
export function authorizeTargets(p: Principal, targets: readonly string[]): void {
  if (p.role !== 'agent') return;
  const mine = new Set([`agent.${p.agentId}`, `sidecar.${p.agentId}`]);
  const other = targets.find((t) => !mine.has(t));
  if (other !== undefined)
    throw new AgentComError(
      ERROR_CODES.FORBIDDEN,
      `this token may inspect agent.${p.agentId} and sidecar.${p.agentId} only, not ${other}`,
      { path: ['query', 'targets'] },
    );
}

interface Session {
  readonly tokenId: string;
  close(code: number, reason: string): void;
  terminate(): void;
}

/** The inspection sockets of one gateway: their listens, subscriptions, caps and closing. */
export class InspectSockets {
  private readonly byToken = new Map<string, Set<Session>>();
  private readonly all = new Set<Session>();
  private readonly ttlMs: number;
  private readonly maxBuffered: number;
  private readonly maxPerToken: number;
  private readonly pingMs: number;

  constructor(private readonly opts: InspectSocketsOptions) {
    this.ttlMs = InspectListenSchema.shape.ttlMs.parse(opts.listenTtlMs ?? INSPECT_LISTEN_TTL_MS);
    this.maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
    this.maxPerToken = opts.maxSocketsPerToken ?? 8;
    this.pingMs = opts.pingIntervalMs ?? 15_000;
  }

  /** Sockets open now (all tokens). */
  get size(): number {
    return this.all.size;
  }

  /** Throws 429 when the token holds its cap of sockets already. */
  checkCap(p: Principal): void {
    const n = this.byToken.get(p.id)?.size ?? 0;
    if (n >= this.maxPerToken)
      throw new AgentComError(ERROR_CODES.RATE_LIMITED, `token ${p.name} has ${n} inspection sockets open`, {
        retryAfterMs: 5_000,
      });
  }

  /** Serves one upgraded socket until it closes. */
  serve(ws: InspectSocket, p: Principal, targets: readonly string[]): void {
    const { bus } = this.opts;
    const log = this.opts.log.child({ route: 'inspect', tokenId: p.id });
    // Checked again now that the socket is open: two upgrades may have passed the check at once.
    if ((this.byToken.get(p.id)?.size ?? 0) >= this.maxPerToken) {
      ws.close(1013, 'too many inspection sockets for this token');
      return;
    }
    const wanted = normalizeTargets(targets);
    const listener = `gw-${randomBytes(12).toString('hex')}`;
    let closed = false;
    let alive = true;
    let listenTimer: NodeJS.Timeout | undefined;
    let pingTimer: NodeJS.Timeout | undefined;
    let expiry: NodeJS.Timeout | undefined;
    const subs: { unsubscribe(): void }[] = [];
    const mine = this.byToken.get(p.id) ?? new Set<Session>();
    this.byToken.set(p.id, mine);

    const stop = () => {
      if (closed) return;
      closed = true;
      clearInterval(listenTimer);
      clearInterval(pingTimer);
      clearTimeout(expiry);
      for (const s of subs) {
        try {
          s.unsubscribe();
        } catch {
          // The connection is closed: nothing to unsubscribe from.
        }
      }
      this.all.delete(session);
      mine.delete(session);
      if (mine.size === 0 && this.byToken.get(p.id) === mine) this.byToken.delete(p.id);
      log.debug({ listener }, 'inspection socket closed');
    };
    const session: Session = {
      tokenId: p.id,
      close: (code, reason) => {
        stop();
        ws.close(code, reason);
        // A peer that does not answer the close handshake is cut off soon.
        setTimeout(() => ws.terminate(), 2_000).unref();
      },
      terminate: () => {
        stop();
        ws.terminate();
      },
    };
    this.all.add(session);
    mine.add(session);
    ws.on('close', stop);
    ws.on('error', (err) => {
      log.debug({ err: err.message, listener }, 'inspection socket error');
      session.terminate();
    });
    ws.on('pong', () => {
      alive = true;
    });

    const onEvent = (err: Error | null, m: Msg) => {
      if (err || closed || ws.readyState !== WS_OPEN) return;
      // Only events in the inspector's format go out (a receiver parses every frame as JSON, and a
      // text frame that is not UTF-8 is a protocol error), the bytes as they were published.
      if (!isUtf8(m.data) || !decodePayload(InspectionEventSchema, m.data, MAX_EVENT_BYTES).ok) {
        log.debug({ subject: m.subject }, 'not an inspection event: dropped');
        return;
      }
      ws.send(m.data, { binary: false });
      if (ws.bufferedAmount > this.maxBuffered) {
        log.info({ listener, buffered: ws.bufferedAmount }, 'inspection client too slow: closed');
        session.terminate();
      }
    };
    try {
      for (const t of wanted) {
        const [source, id] = t.split('.') as [string, string];
        subs.push(bus.nc.subscribe(bus.names.subjects.inspect(source, id), { callback: onEvent }));
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'inspection subscription failed');
      session.close(1011, 'NATS is not available');
      return;
    }
    // Subscribed first, so nothing published in answer to the listen is missed.
    const listen = () => {
      if (closed) return;
      try {
        publishCore(bus, bus.names.subjects.inspecting, InspectListenSchema, {
          v: 1,
          listener,
          targets: wanted,
          ttlMs: this.ttlMs,
        });
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'inspection listen not published');
      }
    };
    listen();
    listenTimer = setInterval(listen, Math.floor(this.ttlMs / 3));
    pingTimer = setInterval(() => {
      if (!alive) return session.terminate();
      alive = false;
      ws.ping();
    }, this.pingMs);
    if (p.expiresAt !== null)
      expiry = setTimeout(
        () => session.close(1008, 'token expired'),
        Math.min(2 ** 31 - 1, Math.max(0, p.expiresAt - Date.now())),
      );
    log.debug({ listener, targets: wanted }, 'inspection socket open');
  }

  /** Closes the sockets of a token (revoked). */
  endToken(tokenId: string): void {
    for (const s of [...(this.byToken.get(tokenId) ?? [])]) s.close(1008, 'token revoked');
  }

  /** Closes every socket (the gateway is closing). */
  closeAll(): void {
    for (const s of [...this.all]) s.terminate();
  }
}

export interface InspectRouteDeps {
  sockets: InspectSockets;
  /** The gateway's bearer-token check (with the token of the query when no header is sent). */
  authenticate(req: FastifyRequest, presented?: string): Promise<Principal>;
  /** The gateway's role check for this route. */
  authorize(p: Principal): void;
  /** Parses the query with {@link InspectQuerySchema}; errors name `query.<field>`. */
  parseQuery(value: unknown): InspectQuery;
}

/**
 * Mounts `GET /api/inspect` (after `@fastify/websocket` is registered). Everything is checked in a
 * preHandler, before the upgrade: a refusal is an ordinary HTTP error. A plain GET that passes is
 * told to upgrade (400).
 */
export function mountInspect(app: FastifyInstance, deps: InspectRouteDeps): void {
  const admitted = new WeakMap<FastifyRequest, { principal: Principal; targets: string[] }>();
  // Only this route upgrades: an upgrade request to another is answered as the error it is, not
  // accepted and closed (an unknown path is still 404).
  app.addHook('onRequest', (req, _reply, done) => {
    const url = req.routeOptions.url;
    if (req.ws && url !== undefined && url !== INSPECT_URL)
      return done(new AgentComError(ERROR_CODES.INVALID_PAYLOAD, `${url} is not a WebSocket endpoint`));
    done();
  });
  app.route({
    method: 'GET',
    url: INSPECT_URL,
    preHandler: async (req) => {
      const raw = (req.query as Record<string, unknown> | undefined)?.token;
      const principal = await deps.authenticate(req, typeof raw === 'string' ? raw : undefined);
      deps.authorize(principal);
      const query = deps.parseQuery(req.query);
      authorizeTargets(principal, query.targets);
      deps.sockets.checkCap(principal);
      admitted.set(req, { principal, targets: query.targets });
    },
    handler: async () => {
      throw new AgentComError(
        ERROR_CODES.INVALID_PAYLOAD,
        `GET ${INSPECT_URL} is a WebSocket: connect with a WebSocket client (Upgrade: websocket)`,
      );
    },
    wsHandler: (socket, req) => {
      const a = admitted.get(req as FastifyRequest);
      const ws = socket as unknown as InspectSocket;
      if (!a) return ws.close(1011, 'not admitted');
      deps.sockets.serve(ws, a.principal, a.targets);
    },
  });
}
