/**
 * @module gateway/series
 * The dashboard's "last hour": per-minute aggregates of the 60 minutes ending with the current
 * one, computed on the gateway so that a page gets 60 small points, never raw events. Per minute:
 * tasks that finished `done` and that finished `failed` or `dead`; the latency submit -> done (p50,
 * p99) and the queue wait submit -> first assignment (p50, p99) of the tasks that finished in that
 * minute, each from a fixed-bucket histogram with the minute's true min and max; and the messages
 * stored per kind (direct, broadcast, channel, presence).
 *
 * Pure: no clock and no I/O (series-feed.ts does the reading); every call takes `now`. Memory is
 * bounded: 60 minute slots of fixed size, whatever the rate. An event is placed by its own time
 * (a task's `completedAt`, a message's stored time), not by when it arrives, so a late or
 * backfilled event lands in its minute; one older than the window is dropped, and one ahead of
 * `now` (another host's clock) counts in the current minute.
 *
 * Percentiles are estimates: the bucket holding the nearest-rank value is found exactly, and the
 * value interpolated within it, then clamped to the minute's true min and max. So an estimate is
 * never outside the bucket of the true value, nor outside [min, max].
 */
import { MESSAGE_KINDS, type MessageKind } from '../protocol/message.js';
import type { TaskRecord } from '../protocol/task.js';

export const MINUTE_MS = 60_000;
/** Points in a series: the current minute and the 59 before it. */
export const SERIES_MINUTES = 60;

/**
 * Upper bounds (ms, inclusive) of the latency histogram's buckets; one more bucket holds what is
 * above the last. Roughly 1-2-5 per decade from 1 ms to an hour: 22 counters per histogram.
 */
export const LATENCY_BOUNDS_MS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 60_000, 120_000, 300_000, 600_000,
  1_200_000, 3_600_000, 7_200_000,
] as const;

export interface Histogram {
  /** Per bucket of {@link LATENCY_BOUNDS_MS}, then the overflow bucket. */
  counts: number[];
  n: number;
  /** True min and max of what was observed (0 when n is 0). */
  min: number;
  max: number;
}

export function emptyHistogram(): Histogram {
  return { counts: new Array(LATENCY_BOUNDS_MS.length + 1).fill(0), n: 0, min: 0, max: 0 };
}

/** The bucket of a value: the first whose upper bound is >= it (the overflow bucket past the last). */
export function bucketOf(ms: number): number {
  let lo = 0;
  let hi: number = LATENCY_BOUNDS_MS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ms <= LATENCY_BOUNDS_MS[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Lower (exclusive, but 0 for the first) and upper (inclusive) bound of a bucket; the overflow's is infinite. */
export function bucketRange(i: number): [number, number] {
  return [i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!, LATENCY_BOUNDS_MS[i] ?? Number.POSITIVE_INFINITY];
}

/** Adds a value (a negative one, from clock skew, counts as 0). Mutates `h`. */
export function observe(h: Histogram, ms: number): void {
  const v = Math.max(0, ms);
  h.counts[bucketOf(v)]!++;
  h.min = h.n === 0 ? v : Math.min(h.min, v);
  h.max = h.n === 0 ? v : Math.max(h.max, v);
  h.n++;
}

/**
 * The q-quantile (0 < q <= 1) estimated from the histogram: the nearest-rank value's bucket,
 * interpolated linearly by rank within it, clamped to [min, max]. Null when empty.
 */
export function quantile(h: Histogram, q: number): number | null {
  if (h.n === 0) return null;
  const rank = Math.min(h.n, Math.max(1, Math.ceil(q * h.n)));
  let below = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i]!;
    if (below + c >= rank) {
      const [lo, hiBound] = bucketRange(i);
      const hi = Number.isFinite(hiBound) ? hiBound : h.max;
      const est = lo + ((hi - lo) * (rank - below)) / c;
      return Math.round(Math.min(h.max, Math.max(h.min, est)));
    }
    below += c;
  }
  return h.max;
}

export type MessageCounts = Record<MessageKind, number>;

/** One minute as a page gets it. */
export interface SeriesPoint {
  /** Start of the minute, epoch ms. */
  t: number;
  /** Tasks that finished `done` in this minute. */
  done: number;
  /** Tasks that finished `failed` or `dead` in this minute. */
  failed: number;
  /** Submit -> done of the tasks done in this minute, ms (null when none). */
  latencyP50: number | null;
  latencyP99: number | null;
  /** Submit -> first assignment of the tasks that finished in this minute, ms (null when none). */
  waitP50: number | null;
  waitP99: number | null;
  /** Messages stored in this minute, per kind. */
  messages: MessageCounts;
}

/** What the series counts. Times are epoch ms. */
export type SeriesEvent =
  | {
      type: 'task';
      outcome: 'done' | 'failed';
      /** When it finished. */
      at: number;
      /** Submit -> done (done only). */
      latencyMs?: number;
      /** Submit -> first assignment, when known. */
      waitMs?: number;
    }
  | { type: 'message'; kind: MessageKind; at: number };

interface Slot {
  minute: number;
  done: number;
  failed: number;
  latency: Histogram;
  wait: Histogram;
  messages: MessageCounts;
}

const zeroMessages = (): MessageCounts =>
  Object.fromEntries(MESSAGE_KINDS.map((k) => [k, 0])) as MessageCounts;

const minuteOf = (ms: number): number => Math.floor(ms / MINUTE_MS);

function emptySlot(minute: number): Slot {
  return {
    minute,
    done: 0,
    failed: 0,
    latency: emptyHistogram(),
    wait: emptyHistogram(),
    messages: zeroMessages(),
  };
}

/** Per-minute aggregates of the last {@link SERIES_MINUTES} minutes (a ring of minute slots). */
export class MinuteSeries {
  private readonly slots: (Slot | undefined)[] = new Array(SERIES_MINUTES);
  private revision = 0;

  /**
   * Raised whenever an event lands in a minute before the last two (a backfill, a late event):
   * a reader holding the whole series and following only the last two points reloads it then.
   */
  get rev(): number {
    return this.revision;
  }

  /** Counts an event; false when it is older than the window at `now` (dropped). */
  record(e: SeriesEvent, now: number): boolean {
    const current = minuteOf(now);
    const minute = Math.min(minuteOf(e.at), current);
    if (minute <= current - SERIES_MINUTES) return false;
    const slot = this.slotFor(minute);
    // A slot already on a later minute: this clock went back; the event is outside that window.
    if (!slot) return false;
    if (minute < current - 1) this.revision++;
    if (e.type === 'message') {
      slot.messages[e.kind]++;
      return true;
    }
    if (e.outcome === 'done') {
      slot.done++;
      if (e.latencyMs !== undefined) observe(slot.latency, e.latencyMs);
    } else slot.failed++;
    if (e.waitMs !== undefined) observe(slot.wait, e.waitMs);
    return true;
  }

  /** The last `count` minutes ending with the current one at `now`, oldest first (empty minutes as zeros). */
  points(now: number, count = SERIES_MINUTES): SeriesPoint[] {
    const current = minuteOf(now);
    const n = Math.max(0, Math.min(SERIES_MINUTES, Math.floor(count)));
    const out: SeriesPoint[] = [];
    for (let m = current - n + 1; m <= current; m++) out.push(pointOf(m, this.live(m)));
    return out;
  }

  /** The slot of a minute in the window, reset when it held an older minute (the ring rolls over). */
  private slotFor(minute: number): Slot | undefined {
    const i = ((minute % SERIES_MINUTES) + SERIES_MINUTES) % SERIES_MINUTES;
    const s = this.slots[i];
    if (s && s.minute === minute) return s;
    if (s && s.minute > minute) return undefined;
    const fresh = emptySlot(minute);
    this.slots[i] = fresh;
    return fresh;
  }

  /** The slot of a minute if it holds that minute (not an older one in the same place). */
  private live(minute: number): Slot | undefined {
    const s = this.slots[((minute % SERIES_MINUTES) + SERIES_MINUTES) % SERIES_MINUTES];
    return s && s.minute === minute ? s : undefined;
  }
}

function pointOf(minute: number, s: Slot | undefined): SeriesPoint {
  return {
    t: minute * MINUTE_MS,
    done: s?.done ?? 0,
    failed: s?.failed ?? 0,
    latencyP50: s ? quantile(s.latency, 0.5) : null,
    latencyP99: s ? quantile(s.latency, 0.99) : null,
    waitP50: s ? quantile(s.wait, 0.5) : null,
    waitP99: s ? quantile(s.wait, 0.99) : null,
    messages: s ? { ...s.messages } : zeroMessages(),
  };
}

/** The fields of a task record the series reads. */
export type TaskOutcomeFields = Pick<TaskRecord, 'status' | 'createdAt' | 'completedAt' | 'history'>;

/**
 * The series event a task record's revision stands for: a task that has just finished done,
 * failed or dead (its latest transition is the one into that status), with its latency and its
 * queue wait; null for any other revision (queued, working, cancelled...). The wait is read from
 * the history's first assignment, and only when the history still holds the submit (it keeps the
 * last 50 transitions): otherwise the first assignment may have been dropped from it.
 */
export function taskOutcome(r: TaskOutcomeFields): Extract<SeriesEvent, { type: 'task' }> | null {
  if (r.status !== 'done' && r.status !== 'failed' && r.status !== 'dead') return null;
  if (r.completedAt === null) return null;
  const last = r.history[r.history.length - 1];
  if (last !== undefined && last.to !== r.status) return null;
  const outcome = r.status === 'done' ? 'done' : 'failed';
  const e: Extract<SeriesEvent, { type: 'task' }> = { type: 'task', outcome, at: r.completedAt };
  if (outcome === 'done') e.latencyMs = r.completedAt - r.createdAt;
  if (r.history[0]?.from === null) {
    const first = r.history.find((h) => h.to === 'assigned');
    if (first) e.waitMs = first.at - r.createdAt;
  }
  return e;
}
