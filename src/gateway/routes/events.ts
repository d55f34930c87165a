/**
 * @module gateway/routes/events
 * `GET /api/events`: the event stream (events.ts) as Server-Sent Events, filtered by `types`,
 * `queue` and `agent`, resumed from `Last-Event-ID` (header, or `lastEventId` in the query for
 * clients that cannot set headers). An agent token sees its own agent and tasks only.
 *
 * With `series=1`, a `series` event (no `id:` line, so it moves no cursor) comes every
 * `SERIES_PUSH_MS`: the last two minutes of GET /api/dashboard/series (routes/series.ts), for the
 * dashboard's charts. Not for agent tokens (ignored, as their other filters are).
 *
 * A client that reads too slowly is disconnected once `maxBufferedBytes` wait unsent: it resumes
 * with its last id, and no other client waits for it. A comment line every 15 s keeps proxies
 * from closing an idle stream.
 */
import { once } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AgentIdSchema, QueueNameSchema } from '../../protocol/ids.js';
import {
  decodeCursor,
  EVENT_SOURCES,
  type EventHub,
  type EventSource,
  type GatewayEvent,
} from '../events.js';
import { qBool, qList } from '../query.js';
import type { Principal } from '../route.js';

export const EventsQuerySchema = z.object({
  types: qList(z.enum(EVENT_SOURCES))
    .optional()
    .describe('Sources to send (default all): task, agent, alert, pheromone.'),
  queue: QueueNameSchema.optional().describe('Task events of this queue only.'),
  agent: AgentIdSchema.optional().describe('Events of this agent (and the tasks it holds) only.'),
  lastEventId: z.string().max(100).optional().describe('As the Last-Event-ID header.'),
  series: qBool
    .optional()
    .describe(
      'Also send a `series` event (without an id) every few seconds: the last two minutes of GET /api/dashboard/series. Ignored for an agent token.',
    ),
});
export type EventsQuery = z.infer<typeof EventsQuerySchema>;

const KEEPALIVE_MS = 15_000;
/** How often a client that asked for it gets the `series` event. */
export const SERIES_PUSH_MS = 2_000;
/** Live events held while a replay is written; beyond, the client is cut off (it resumes later). */
const MAX_HELD = 10_000;

function matches(e: GatewayEvent, types: Set<EventSource>, q: EventsQuery): boolean {
  if (!types.has(e.source)) return false;
  if (q.queue !== undefined && e.source === 'task' && e.queue !== q.queue) return false;
  if (q.agent !== undefined && (e.source === 'alert' || e.agentId !== q.agent)) return false;
  return true;
}

const frame = (e: { id: string; event: string; data: unknown }) =>
  `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;

/** Serves one event-stream request until the client goes or the gateway closes. */
export function serveEvents(
  hub: EventHub,
  req: FastifyRequest,
  reply: FastifyReply,
  query: EventsQuery,
  principal: Principal,
  opts: {
    maxBufferedBytes: number;
    /** Registers the stream's `close` (the gateway closing, its token revoked); returns the unregister. */
    onClose: (fn: () => void) => () => void;
  },
): void {
  // An agent token sees its own agent's events only, whatever it asks for.
  const q: EventsQuery = principal.role === 'agent' ? { ...query, agent: principal.agentId } : query;
  const types = new Set<EventSource>(q.types ?? EVENT_SOURCES);
  const header = req.headers['last-event-id'];
  const lastId = (Array.isArray(header) ? header[0] : header) ?? q.lastEventId;

  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let closed = false;
  let keepalive: NodeJS.Timeout | undefined;
  let expiry: NodeJS.Timeout | undefined;
  let seriesTimer: NodeJS.Timeout | undefined;
  let unsubscribe = () => {};
  let settle = () => {};
  const ended = new Promise<void>((r) => {
    settle = r;
  });
  /** Ends the stream: gracefully, or at once (dropping what is unsent) for a client too slow. */
  const close = (abort = false) => {
    if (closed) return;
    closed = true;
    settle();
    clearInterval(keepalive);
    clearInterval(seriesTimer);
    clearTimeout(expiry);
    unsubscribe();
    if (abort) res.destroy();
    else res.end();
  };
  // The slot is given back when the socket is gone, not when the stream is ended.
  const unregister = opts.onClose(() => close());
  res.on('close', () => {
    close();
    unregister();
  });
  // Per source, the last sequence the client has: what it resumes from, then what was sent.
  const sent: Record<EventSource, number> = (lastId !== undefined && decodeCursor(lastId)) || {
    task: 0,
    agent: 0,
    alert: 0,
    pheromone: 0,
  };
  /** Writes; false when the client's buffer is full. Live events past the limit cut the client off. */
  const write = (text: string, replay = false): boolean => {
    if (closed) return false;
    const ok = res.write(text);
    if (!replay && res.writableLength > opts.maxBufferedBytes) close(true);
    return ok;
  };
  const send = (e: GatewayEvent, replay = false): boolean => {
    if (e.seq <= sent[e.source]) return true;
    sent[e.source] = e.seq;
    return matches(e, types, q) ? write(frame({ id: e.id, event: e.source, data: e.data }), replay) : true;
  };
  // Subscribe before replaying, so an event arriving meanwhile is held, then sent in order.
  const held: GatewayEvent[] = [];
  let replaying = true;
  unsubscribe = hub.subscribe((e) => {
    if (!replaying) return send(e);
    held.push(e);
    // A client that cannot take the replay as fast as events come resumes later instead.
    if (held.length > MAX_HELD) close(true);
  });
  // A token that expires ends its streams then (a revoked one is ended by the gateway).
  if (principal.expiresAt !== null)
    expiry = setTimeout(() => close(), Math.min(2 ** 31 - 1, Math.max(0, principal.expiresAt - Date.now())));
  res.write('retry: 2000\n\n');
  const replay: GatewayEvent[] = [];
  if (lastId !== undefined) {
    const r = hub.since(lastId);
    if (r.kind === 'reset')
      write(
        frame({
          id: hub.cursor(),
          event: 'reset',
          data: { reason: 'resume point no longer held; reload the state' },
        }),
      );
    else replay.push(...r.events);
  } else write(frame({ id: hub.cursor(), event: 'ready', data: { at: Date.now() } }));
  void (async () => {
    // The replay may be larger than a client's buffer: it is written as the client reads it.
    for (const e of replay) {
      if (closed) return;
      if (!send(e, true) && !closed) await Promise.race([once(res, 'drain'), ended]);
    }
    replaying = false;
    for (const e of held.splice(0)) send(e);
    if (!closed) keepalive = setInterval(() => write(': keep-alive\n\n'), KEEPALIVE_MS);
    const series = principal.role !== 'agent' && q.series === true ? hub.series : undefined;
    if (series && !closed) {
      // No id: it is not part of the durable sequence and must not move a client's cursor.
      const push = () => write(`event: series\ndata: ${JSON.stringify(series.snapshot(Date.now(), 2))}\n\n`);
      push();
      seriesTimer = setInterval(push, SERIES_PUSH_MS);
    }
  })();
}
