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
 * With `channels=room,ops`, a `message` event (no `id:` line either) for each post stored in those
 * channels from the moment the stream is open (channel-feed.ts): the gateway's follow runs before
 * the response's headers are sent, so a client that then reads a channel's history and
 * de-duplicates by `seq` misses nothing. Not for agent tokens (an agent reads its mailbox).
 *
 * A client that reads too slowly is disconnected once `maxBufferedBytes` wait unsent: it resumes
 * with its last id, and no other client waits for it. A comment line every 15 s keeps proxies
 * from closing an idle stream.
 */
import { once } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AgentIdSchema, QueueNameSchema } from '../../protocol/ids.js';
import { ChannelNameSchema } from '../../protocol/message.js';
import type { ChannelMessageEvent } from '../channel-feed.js';
import {
  decodeCursor,
  EVENT_SOURCES,
  type EventHub,
  type EventSource,
  type GatewayEvent,
} from '../events.js';
import { qBool, qList } from '../query.js';
import type { Principal } from '../route.js';

/** Channels one stream may watch. */
export const MAX_CHANNELS = 8;

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
  channels: z
    .preprocess(
      (v) => (Array.isArray(v) ? v.flatMap((s) => String(s).split(',')) : String(v).split(',')),
      z.array(ChannelNameSchema).min(1).max(MAX_CHANNELS),
    )
    .optional()
    .describe(
      `Also send a \`message\` event (without an id) for each post stored in these channels (at most ${MAX_CHANNELS}, e.g. \`room,ops\`) from the moment the stream is open: seq, channel, from, fromKind, title, body (cut to 2,000 characters, with \`truncated\`), replyTo, threadId, at. Whatever \`types\` says. Ignored for an agent token: an agent reads its mailbox.`,
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

/**
 * Serves one event-stream request until the client goes or the gateway closes. Resolves once the
 * stream is open (the response hijacked); throws, before anything is written, when the channel
 * feed a client asked for cannot start (`unavailable`).
 */
export async function serveEvents(
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
): Promise<void> {
  // An agent token sees its own agent's events only, whatever it asks for.
  const q: EventsQuery = principal.role === 'agent' ? { ...query, agent: principal.agentId } : query;
  const types = new Set<EventSource>(q.types ?? EVENT_SOURCES);
  const header = req.headers['last-event-id'];
  const lastId = (Array.isArray(header) ? header[0] : header) ?? q.lastEventId;

  // The channel follow runs before the headers go out: every post stored once the client sees
  // the stream open comes as a `message` event (held until the stream is written, like the rest).
  let unwatch = () => {};
  let onPost: (m: ChannelMessageEvent) => void = () => {};
  const early: ChannelMessageEvent[] = [];
  if (principal.role !== 'agent' && q.channels !== undefined) {
    onPost = (m) => early.push(m);
    unwatch = await hub.channels.watch(new Set(q.channels), (m) => onPost(m));
    // The client went away while the follow started: nothing to serve.
    if (reply.raw.destroyed || req.raw.socket?.destroyed) {
      unwatch();
      reply.hijack();
      reply.raw.destroy();
      return;
    }
  }

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
    unwatch();
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
  // No id: a post is not part of the durable sequence and must not move a client's cursor.
  const post = (m: ChannelMessageEvent) => write(`event: message\ndata: ${JSON.stringify(m)}\n\n`);
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
  // Posts are held the same way until the replay is written.
  onPost = (m) => {
    if (!replaying) return void post(m);
    early.push(m);
    if (early.length > MAX_HELD) close(true);
  };
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
    for (const m of early.splice(0)) post(m);
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
