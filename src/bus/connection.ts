/**
 * @module connection
 * One NATS connection for a process, with JetStream handles, the deployment's names, a logger and
 * the shared metrics. It retries the first connect and reconnects forever (`maxReconnectAttempts`
 * -1). Status changes (disconnect, reconnecting, reconnect, error, closed) are delivered to
 * `onStatus` listeners. `drain()` is the only correct shutdown: it flushes pending acks before
 * closing (`ack()` then `close()` loses the ack). It does NOT buffer core publishes while
 * disconnected (nats.js drops them); use JetStream publish for anything that must land.
 */
import { readFileSync } from 'node:fs';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  type Authenticator,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
} from '@nats-io/transport-node';
import { z } from 'zod';
import './nats-patches.js';
import type { ConnectionEvent } from '../protocol/bus-messages.js';
import { DEFAULT_PREFIX, type Names, names } from '../protocol/subjects.js';
import { exponentialDelay } from '../runtime/backoff.js';
import { defaultLogger, type Logger } from './log.js';
import { BusMetrics } from './metrics.js';

export const BusConnectOptionsSchema = z.object({
  servers: z
    .union([z.string(), z.array(z.string()).min(1)])
    .default('nats://127.0.0.1:4222')
    .describe('NATS server URL(s), e.g. nats://127.0.0.1:4222 (default)'),
  name: z.string().optional().describe('Connection name shown in server monitoring'),
  prefix: z.string().default(DEFAULT_PREFIX).describe('Subject/stream/bucket prefix (default agentcom)'),
  user: z.string().optional().describe('Username (with pass)'),
  pass: z.string().optional(),
  token: z.string().optional().describe('Auth token'),
  nkeySeed: z.string().optional().describe('NKey user seed (SU...) for nkey auth'),
  credsFile: z.string().optional().describe('Path to a .creds file (JWT + seed)'),
  inboxPrefix: z
    .string()
    .regex(/^[^\s*>]+$/, 'no wildcards or whitespace')
    .optional()
    .describe(
      'Reply-inbox prefix (default _INBOX); an agent uses its own (permissions.agentInboxPrefix), the only subjects it may subscribe to',
    ),
  tls: z
    .object({
      caFile: z.string().optional(),
      certFile: z.string().optional(),
      keyFile: z.string().optional(),
      handshakeFirst: z.boolean().optional(),
    })
    .optional()
    .describe('TLS files; presence of this object enables TLS'),
  maxReconnectAttempts: z.number().int().default(-1).describe('-1 (default) reconnects forever'),
  reconnectTimeWaitMs: z.number().int().positive().default(500).describe('Between reconnect attempts, ms'),
  reconnectBackoff: z
    .object({
      minMs: z.number().int().positive().describe('Wait after the first failed reconnect, ms'),
      maxMs: z.number().int().positive().describe('Cap, ms'),
    })
    .optional()
    .describe(
      'Exponential reconnect waits instead of reconnectTimeWaitMs: retry at once, then min, 2*min ... max, each minus up to 20% random jitter (the sidecar uses 1 s ... 60 s)',
    ),
  pingIntervalMs: z.number().int().positive().default(20_000).describe('Client PING interval, ms'),
  timeoutMs: z.number().int().positive().default(5_000).describe('Connect timeout per attempt, ms'),
  apiTimeoutMs: z.number().int().positive().default(5_000).describe('JetStream API and PubAck timeout, ms'),
  asyncTraces: z
    .boolean()
    .default(false)
    .describe(
      'Capture a stack trace per request for timeout errors (nats.js default true); off by default: it was ~30% of publish CPU',
    ),
  waitOnFirstConnect: z
    .boolean()
    .default(true)
    .describe('Keep retrying the first connect instead of failing (default true)'),
});
export type BusConnectOptions = z.input<typeof BusConnectOptionsSchema> & {
  /** pino logger; default: {@link defaultLogger}. */
  logger?: Logger;
};

export type StatusListener = (event: ConnectionEvent) => void;

export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly names: Names;
  /** The reply-inbox prefix this connection subscribes under (`_INBOX`, or an agent's own). */
  readonly inboxPrefix: string;
  readonly log: Logger;
  readonly metrics: BusMetrics;
  /** Subscribe to connection status events; returns the unsubscribe function. */
  onStatus(listener: StatusListener): () => void;
  isClosed(): boolean;
  /** Flushes pending acks and publishes, then closes. Safe to call twice. */
  drain(): Promise<void>;
  /** Resolves when the connection is closed (by drain or permanently lost). */
  closed(): Promise<void>;
}

/** Connection options for nats.js from our schema (exported for tests and tools). */
export function toNatsOptions(o: z.output<typeof BusConnectOptionsSchema>): ConnectionOptions {
  const opts: ConnectionOptions = {
    // `nats://a:4222,nats://b:4222` (the NATS_URL convention) lists several servers.
    servers:
      typeof o.servers === 'string'
        ? o.servers
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : o.servers,
    maxReconnectAttempts: o.maxReconnectAttempts,
    reconnectTimeWait: o.reconnectTimeWaitMs,
    pingInterval: o.pingIntervalMs,
    timeout: o.timeoutMs,
    waitOnFirstConnect: o.waitOnFirstConnect,
    noAsyncTraces: !o.asyncTraces,
  };
  if (o.name) opts.name = o.name;
  if (o.user !== undefined) opts.user = o.user;
  if (o.pass !== undefined) opts.pass = o.pass;
  if (o.token !== undefined) opts.token = o.token;
  if (o.inboxPrefix !== undefined) opts.inboxPrefix = o.inboxPrefix;
  const auth: Authenticator[] = [];
  if (o.nkeySeed) auth.push(nkeyAuthenticator(new TextEncoder().encode(o.nkeySeed)));
  if (o.credsFile) auth.push(credsAuthenticator(new Uint8Array(readFileSync(o.credsFile))));
  if (auth.length) opts.authenticator = auth;
  if (o.tls) {
    opts.tls = {};
    if (o.tls.caFile) opts.tls.caFile = o.tls.caFile;
    if (o.tls.certFile) opts.tls.certFile = o.tls.certFile;
    if (o.tls.keyFile) opts.tls.keyFile = o.tls.keyFile;
    if (o.tls.handshakeFirst) opts.tls.handshakeFirst = true;
  }
  return opts;
}

/**
 * Fraction of a reconnect wait that jitter may remove: every client of a server that goes away loses
 * it at the same moment, and jitter spreads their dials.
 */
export const RECONNECT_JITTER = 0.2;

/**
 * Exponential reconnect waits with jitter. nats.js asks `reconnectDelayHandler` for the minimum time
 * between two dials of a server on every turn of its reconnect loop, and calls `reconnectToServer`
 * once right before each dial; counting dials (and drawing the jitter) there makes the wait grow per
 * dial, not per loop turn, and keeps it the same across the turns between two dials. The caller
 * calls `connected()` on every successful (re)connect to start over.
 */
export function exponentialReconnect(
  b: { minMs: number; maxMs: number },
  random: () => number = Math.random,
): Pick<ConnectionOptions, 'reconnectDelayHandler' | 'reconnectToServer' | 'reconnectJitter'> & {
  connected(): void;
} {
  let dials = 0; // since the last successful connect
  let u = 0; // this dial's jitter draw
  return {
    reconnectJitter: 0,
    reconnectDelayHandler: () => reconnectWait(dials, b, u),
    reconnectToServer: () => {
      dials++;
      u = random();
      return null;
    },
    connected: () => {
      dials = 0;
    },
  };
}

/**
 * Minimum wait before the next dial after `dials` dials without success: 0, then min, 2*min ... max,
 * each minus up to {@link RECONNECT_JITTER} of it (`u` in [0, 1): 0 is no jitter). Whole ms.
 */
export function reconnectWait(dials: number, b: { minMs: number; maxMs: number }, u = 0): number {
  if (dials <= 0) return 0;
  const d = exponentialDelay(
    dials - 1,
    { min: b.minMs, max: b.maxMs },
    { jitter: RECONNECT_JITTER, random: () => u },
  );
  return Math.round(d);
}

/**
 * Connects (retrying the first connect by default) and returns the bus handle.
 * @throws the nats.js connection error when `waitOnFirstConnect` is false and the server is down,
 *   or a zod error for invalid options.
 */
export async function connectBus(options: BusConnectOptions = {}): Promise<Bus> {
  const { logger, ...rest } = options;
  const o = BusConnectOptionsSchema.parse(rest);
  const n = names(o.prefix);
  const log = logger ?? defaultLogger();
  const natsOptions = toNatsOptions(o);
  const backoff = o.reconnectBackoff ? exponentialReconnect(o.reconnectBackoff) : undefined;
  if (backoff) {
    const { connected: _, ...handlers } = backoff;
    Object.assign(natsOptions, handlers);
  }
  const nc = await connect(natsOptions);
  backoff?.connected();
  const js = jetstream(nc, { timeout: o.apiTimeoutMs });
  // checkAPI false: no `$JS.API.INFO` round trip at connect, a subject agents are not permitted
  // (a JetStream failure surfaces on the first real call instead).
  const jsm = await jetstreamManager(nc, { timeout: o.apiTimeoutMs, checkAPI: false });
  const listeners = new Set<StatusListener>();
  const emit = (e: ConnectionEvent) => {
    for (const l of listeners) {
      try {
        l(e);
      } catch (err) {
        // A listener must never break the status loop.
        log.error({ err }, 'bus status listener threw');
      }
    }
  };

  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          log.warn({ server: s.server }, 'nats disconnected');
          emit({ type: 'disconnect', server: s.server });
          break;
        case 'reconnecting':
          emit({ type: 'reconnecting' });
          break;
        case 'reconnect':
          backoff?.connected();
          log.info({ server: s.server }, 'nats reconnected');
          emit({ type: 'reconnect', server: s.server });
          break;
        case 'error':
          log.error({ err: s.error }, 'nats error');
          emit({ type: 'error', message: s.error.message });
          break;
        case 'ldm':
          log.warn('nats server entering lame duck mode');
          emit({ type: 'lame_duck' });
          break;
        case 'slowConsumer':
          log.warn({ sub: s.sub.getSubject() }, 'slow consumer');
          emit({ type: 'slow_consumer', sub: s.sub.getSubject() });
          break;
        default:
          break;
      }
    }
  })().catch((err) => log.error({ err }, 'nats status loop failed'));

  const closedP = nc.closed().then((err) => {
    if (err) log.error({ err }, 'nats connection closed with error');
    emit(err ? { type: 'closed', message: err.message } : { type: 'closed' });
  });

  let draining: Promise<void> | undefined;
  return {
    nc,
    js,
    jsm,
    names: n,
    inboxPrefix: o.inboxPrefix ?? '_INBOX',
    log,
    metrics: new BusMetrics(),
    onStatus(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    isClosed: () => nc.isClosed(),
    drain() {
      if (!draining) {
        draining = (async () => {
          if (nc.isClosed()) return;
          try {
            await nc.drain();
          } catch (err) {
            // Already closing/closed: flush what we can.
            if (!nc.isClosed()) await nc.close();
            log.debug({ err }, 'drain fell back to close');
          }
          await closedP;
        })();
      }
      return draining;
    },
    closed: () => closedP,
  };
}
