/**
 * @module gateway/series-feed
 * Feeds the dashboard's "last hour" series (series.ts) on a gateway: the I/O around the pure
 * aggregate. Every gateway keeps its own; nothing is written anywhere.
 *
 * - Tasks: the revisions of the task bucket the gateway already tails for its event stream
 *   (events.ts hands each new one over; no second tail). A revision whose latest transition is
 *   into done, failed or dead counts once, in the minute of its `completedAt`.
 * - Messages: the messaging stream (`<P>_MESSAGES`, subjects `<p>.msg.<kind>.<target>`) read
 *   headers only by an ordered consumer from the start of the window on, then live: one message,
 *   one count for its kind, in the minute the stream stored it.
 *
 * Backfill, so that a gateway (re)start does not blank the charts: at start the task bucket's
 * revisions stored since the window's start, up to the one the tail had reached, are read once
 * (bounded: the newest `backfillMax` revisions, `backfillMaxBytes` of them, within `backfillTimeoutMs`); messages need nothing
 * more, their consumer starts at the window's start. What the backfill can miss:
 * - a task whose done/failed revision is no longer in the bucket: the bucket keeps 5 revisions
 *   per key, so a task changed 5 more times since (a manual retry and its run), and a finished
 *   task removed by retention (the hub's `maxCount`/`maxAgeMs`; a purge leaves no record);
 * - a task that failed and was then retried by hand and finished again counts its latest finish
 *   only, as the older revision may be gone;
 * - messages removed from the stream since (a kind's retention by age or count);
 * - on a very busy hub, revisions past the bounds: the oldest minutes are then short (logged, and
 *   `backfilled` stays false until the feed has run for an hour).
 * Live, a task record re-written without a new transition is counted once (recent keys are
 * remembered, the last 10,000), and a message is counted once (the ordered consumer neither skips
 * nor repeats). A revision whose record does not parse is skipped.
 */
import { randomUUID } from 'node:crypto';
import type { Bus } from '../bus/connection.js';
import { firstSeqSince, followStream, readStream, type StreamFollow } from '../bus/stream-since.js';
import { MESSAGE_KINDS, type MessageKind } from '../protocol/message.js';
import { kvStream, kvSubject } from '../protocol/subjects.js';
import { MINUTE_MS, MinuteSeries, SERIES_MINUTES, type SeriesPoint, taskOutcome } from './series.js';
import { decodeTaskView, type TaskRevisionTap, type TaskView } from './task-view.js';

export interface SeriesFeedOptions {
  /** Task revisions the start-up backfill reads at most (default 200,000). */
  backfillMax?: number;
  /** How long the task backfill may take, ms (default 60 s). */
  backfillTimeoutMs?: number;
  /** Bytes of task records the start-up backfill reads at most (default 256 MiB: a record may be 320 KiB). */
  backfillMaxBytes?: number;
  /** Wait before a failed read is tried again, ms (default 5 s). */
  retryMs?: number;
}

/** What GET /api/dashboard/series and the `series` event carry (routes/series.ts has its schema). */
export interface SeriesSnapshot {
  v: 1;
  /** When it was taken, epoch ms. */
  at: number;
  minuteMs: typeof MINUTE_MS;
  /** Raised when a minute before the last two changed: reload the whole series. */
  rev: number;
  /** Which gateway process computed it: `rev` counts per gateway. */
  gateway: string;
  /** The start-up backfill is complete (tasks and messages). */
  backfilled: boolean;
  points: SeriesPoint[];
}

/** Only a finished task counts: other revisions read back at start are skipped before they are parsed. */
const FINISHED = /"status":"(?:done|failed|dead)"/;
const RECENT_KEYS = 10_000;
/** Revisions stored this long before the window may still hold a finish inside it (another clock). */
const CLOCK_MARGIN_MS = MINUTE_MS;

const windowStart = (now: number): number => (Math.floor(now / MINUTE_MS) - SERIES_MINUTES + 1) * MINUTE_MS;

export class SeriesFeed {
  readonly series = new MinuteSeries();
  private tasksBackfilled = false;
  private messagesBackfilled = false;
  private stopped = false;
  /** Finishes counted lately (`id:status:completedAt`), oldest first. */
  private readonly recent = new Map<string, true>();
  private follow: StreamFollow | undefined;
  private untap = () => {};
  private readonly wakers = new Set<() => void>();
  private readonly log: Bus['log'];
  private readonly startedAt = Date.now();
  /** Names this feed in its snapshots, so a client behind a load balancer compares `rev` per gateway. */
  private readonly gatewayId = randomUUID();
  /** Aborted on stop: ends a backfill read under way. */
  private readonly stopping = new AbortController();

  private constructor(
    private readonly bus: Bus,
    private readonly opts: Required<SeriesFeedOptions>,
  ) {
    this.log = bus.log.child({ actor: 'gateway', phase: 'series' });
  }

  /** Starts feeding (the reads run in the background; nothing here throws). */
  static start(bus: Bus, source: TaskRevisionTap, opts: SeriesFeedOptions = {}): SeriesFeed {
    const feed = new SeriesFeed(bus, {
      backfillMax: opts.backfillMax ?? 200_000,
      backfillTimeoutMs: opts.backfillTimeoutMs ?? 60_000,
      backfillMaxBytes: opts.backfillMaxBytes ?? 256 * 1024 * 1024,
      retryMs: opts.retryMs ?? 5_000,
    });
    // Tapped before anything is awaited: every revision after `after` comes live, the rest is backfill's.
    const tap = source.tapTasks((_r, task) => {
      if (task) feed.onTask(task);
    });
    feed.untap = tap.stop;
    void feed.backfillTasks(tap.after);
    void feed.followMessages();
    return feed;
  }

  /**
   * Both backfills are complete, or this feed has run for the whole window: the series holds all
   * of the last hour it can.
   */
  get backfilled(): boolean {
    return (
      (this.tasksBackfilled && this.messagesBackfilled) ||
      Date.now() - this.startedAt >= SERIES_MINUTES * MINUTE_MS
    );
  }

  /** The last `count` minutes ending with the current one. */
  snapshot(now: number, count = SERIES_MINUTES): SeriesSnapshot {
    return {
      v: 1,
      at: now,
      minuteMs: MINUTE_MS,
      rev: this.series.rev,
      gateway: this.gatewayId,
      backfilled: this.backfilled,
      points: this.series.points(now, count),
    };
  }

  stop(): void {
    this.stopped = true;
    this.stopping.abort();
    this.untap();
    this.follow?.stop();
    for (const wake of [...this.wakers]) wake();
  }

  /** A revision read back by the backfill (the live ones come decoded). */
  private onTaskRecord(data: Uint8Array): void {
    const text = Buffer.from(data).toString('utf8');
    if (!FINISHED.test(text)) return;
    const task = decodeTaskView(text);
    if (task) this.onTask(task);
  }

  private onTask(task: TaskView): void {
    const e = taskOutcome(task);
    if (!e) return;
    const key = `${task.id}:${task.status}:${task.completedAt}`;
    if (this.recent.has(key)) return;
    this.recent.set(key, true);
    if (this.recent.size > RECENT_KEYS) this.recent.delete(this.recent.keys().next().value!);
    this.series.record(e, Date.now());
  }

  private onMessage(subject: string, at: number): void {
    const head = `${this.bus.names.prefix}.msg.`;
    if (!subject.startsWith(head)) return;
    const rest = subject.slice(head.length);
    const kind = rest.split('.', 1)[0] as MessageKind;
    if ((MESSAGE_KINDS as readonly string[]).includes(kind))
      this.series.record({ type: 'message', kind, at }, Date.now());
  }

  /** The task revisions stored since the window's start up to `until` (where the live tap began). */
  private async backfillTasks(until: number): Promise<void> {
    const bucket = this.bus.names.buckets.tasks;
    const stream = kvStream(bucket);
    const filter = kvSubject(bucket, '>');
    let from: number | undefined;
    let cut = false;
    const deadline = Date.now() + this.opts.backfillTimeoutMs;
    while (!this.stopped) {
      try {
        if (until <= 0) break;
        if (from === undefined) {
          const first = (
            await firstSeqSince(this.bus, stream, filter, windowStart(Date.now()) - CLOCK_MARGIN_MS)
          ).seq;
          // Over the bound, the newest revisions: the latest minutes whole, the oldest short.
          from = Math.max(first, until - this.opts.backfillMax + 1);
          cut = from > first;
        }
        const r = await readStream(
          this.bus,
          stream,
          {
            filter,
            fromSeq: from,
            untilSeq: until,
            max: this.opts.backfillMax,
            maxBytes: this.opts.backfillMaxBytes,
            timeoutMs: Math.max(0, deadline - Date.now()),
            signal: this.stopping.signal,
          },
          (e) => {
            // A retry after a failure goes on after what was read (nothing counted twice).
            from = e.seq + 1;
            if (e.kvOperation === undefined) this.onTaskRecord(e.data);
          },
        );
        if (cut || !r.complete)
          this.log.warn(
            {
              max: this.opts.backfillMax,
              maxBytes: this.opts.backfillMaxBytes,
              timeoutMs: this.opts.backfillTimeoutMs,
            },
            'the series backfill of tasks stopped at its bound: the oldest minutes may be short',
          );
        else this.tasksBackfilled = true;
        return;
      } catch (err) {
        if (this.stopped || Date.now() >= deadline) {
          this.log.warn({ err }, 'the series backfill of tasks failed: older minutes may be short');
          return;
        }
        this.log.debug({ err }, 'series backfill of tasks: retrying');
        await this.sleep(this.opts.retryMs);
      }
    }
    this.tasksBackfilled = true;
  }

  /** Messages from the window's start on, then live, until stopped (a failed read is started again). */
  private async followMessages(): Promise<void> {
    const stream = this.bus.names.streams.messages;
    const filter = this.bus.names.subjects.msgAll;
    let from: number | undefined;
    while (!this.stopped) {
      try {
        if (from === undefined) {
          const first = await firstSeqSince(this.bus, stream, filter, windowStart(Date.now()));
          from = first.seq;
          if (first.pending === 0) this.messagesBackfilled = true;
        }
        const f = await followStream(this.bus, stream, { filter, fromSeq: from, headersOnly: true }, (e) => {
          from = e.seq + 1;
          this.onMessage(e.subject, e.at);
          if (e.pending === 0) this.messagesBackfilled = true;
        });
        this.follow = f;
        if (this.stopped) f.stop();
        const end = await f.closed;
        if (this.stopped) return;
        this.log.warn({ err: end }, 'the series follow of messages ended: starting it again');
      } catch (err) {
        if (this.stopped) return;
        // The stream may not be there yet (a gateway started before any hub provisioned).
        this.log.debug({ err }, 'series follow of messages: retrying');
      }
      await this.sleep(this.opts.retryMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.wakers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }
}
