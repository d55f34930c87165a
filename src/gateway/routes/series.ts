/**
 * @module gateway/routes/series
 * `GET /api/dashboard/series`: the dashboard's "last hour" (series.ts), one point per minute, the
 * current minute last, computed by this gateway (series-feed.ts), so that every payload is at most
 * 60 small points. The same shape, with the last two points, is pushed on the event stream as a
 * `series` event to clients that ask for it (`/api/events?series=1`, routes/events.ts).
 */
import { z } from 'zod';
import { AgentComError, ERROR_CODES } from '../../protocol/errors.js';
import { MESSAGE_KINDS } from '../../protocol/message.js';
import { qInt } from '../query.js';
import { type RouteDef, route } from '../route.js';
import { SERIES_MINUTES } from '../series.js';
import type { SeriesFeed } from '../series-feed.js';

const Ms = z.int().nonnegative();

export const SeriesPointSchema = z
  .object({
    t: z.int().describe('Start of the minute (epoch ms).'),
    done: z.int().nonnegative().describe('Tasks that finished done in this minute.'),
    failed: z.int().nonnegative().describe('Tasks that finished failed or dead in this minute.'),
    latencyP50: Ms.nullable().describe(
      'Submit -> done of the tasks done in this minute, median, ms (estimated from a histogram; null: none).',
    ),
    latencyP99: Ms.nullable().describe('The same, 99th percentile, ms.'),
    waitP50: Ms.nullable().describe(
      'Queue wait (submit -> first assignment) of the tasks that finished in this minute, median, ms.',
    ),
    waitP99: Ms.nullable().describe('The same, 99th percentile, ms.'),
    messages: z
      .object(
        Object.fromEntries(MESSAGE_KINDS.map((k) => [k, z.int().nonnegative()])) as Record<
          (typeof MESSAGE_KINDS)[number],
          z.ZodInt
        >,
      )
      .describe('Messages stored in this minute, per kind.'),
  })
  .describe('One minute of the last hour.');

export const SeriesReplySchema = z
  .object({
    v: z.literal(1),
    at: z.int().describe('When it was computed (epoch ms).'),
    minuteMs: z.literal(60_000).describe('Width of a point.'),
    rev: z
      .int()
      .nonnegative()
      .describe(
        'Raised whenever a minute before the last two changed (the start-up backfill, a late event): a reader following the `series` events reloads the series when it changes.',
      ),
    gateway: z
      .string()
      .describe(
        'Which gateway computed it (each has its own series): compare `rev` only between snapshots of one gateway.',
      ),
    backfilled: z
      .boolean()
      .describe(
        "The gateway's start-up backfill of the last hour is complete (false: older minutes may be short).",
      ),
    points: z
      .array(SeriesPointSchema)
      .max(SERIES_MINUTES)
      .describe('Oldest first; the last is the current minute.'),
  })
  .describe('GET /api/dashboard/series, and the data of a `series` event (with the last two points).');

export const SeriesQuerySchema = z.object({
  minutes: qInt(1, SERIES_MINUTES)
    .optional()
    .describe(`How many minutes, ending with the current one (default ${SERIES_MINUTES}).`),
});

export function seriesRoutes(feed: () => SeriesFeed | undefined): RouteDef[] {
  return [
    route({
      method: 'GET',
      url: '/api/dashboard/series',
      tag: 'hub',
      summary:
        'The last hour per minute, computed by the gateway: tasks done and failed, latency and queue wait p50/p99, messages per kind (docs/gateway.md, "Dashboard").',
      roles: ['read', 'submitter'],
      query: SeriesQuerySchema,
      reply: SeriesReplySchema,
      errors: [404],
      handler: async (ctx) => {
        const f = feed();
        if (!f) throw new AgentComError(ERROR_CODES.NOT_FOUND, 'the series is not kept on this gateway');
        return f.snapshot(Date.now(), ctx.query.minutes ?? SERIES_MINUTES);
      },
    }),
  ];
}
