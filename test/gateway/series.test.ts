/**
 * The "last hour" aggregate (src/gateway/series.ts), pure: histogram buckets and percentile
 * estimates (bounded by the true min and max, and within the true value's bucket), the ring of
 * minutes against a model (events land in their own minute, roll out after an hour, future ones
 * count now), `rev` raised only for minutes before the last two, and which task revisions count.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bucketOf,
  bucketRange,
  emptyHistogram,
  LATENCY_BOUNDS_MS,
  MINUTE_MS,
  MinuteSeries,
  observe,
  quantile,
  SERIES_MINUTES,
  type SeriesEvent,
  taskOutcome,
} from '../../src/gateway/series.js';
import { MESSAGE_KINDS } from '../../src/protocol/message.js';
import type { HistoryEntry, TaskRecord } from '../../src/protocol/task.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const latency = fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 10_000_000 }));

/** The nearest-rank q-quantile of the values. */
function trueQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1]!;
}

describe('latency histogram', () => {
  it('puts each value in the bucket whose range holds it', () => {
    fc.assert(
      fc.property(latency, (v) => {
        const i = bucketOf(v);
        const [lo, hi] = bucketRange(i);
        expect(i).toBeGreaterThanOrEqual(0);
        expect(i).toBeLessThanOrEqual(LATENCY_BOUNDS_MS.length);
        expect(v).toBeLessThanOrEqual(hi);
        if (i > 0) expect(v).toBeGreaterThan(lo);
      }),
    );
  });

  it('estimates a percentile within [min, max] and within the bucket of the true value', () => {
    fc.assert(
      fc.property(
        fc.array(latency, { minLength: 1, maxLength: 300 }),
        fc.constantFrom(0.5, 0.9, 0.99, 1),
        (values, q) => {
          const h = emptyHistogram();
          for (const v of values) observe(h, v);
          const est = quantile(h, q)!;
          const min = Math.min(...values);
          const max = Math.max(...values);
          expect(h.n).toBe(values.length);
          expect([h.min, h.max]).toEqual([min, max]);
          expect(est).toBeGreaterThanOrEqual(min);
          expect(est).toBeLessThanOrEqual(max);
          const truth = trueQuantile(values, q);
          const [lo, hi] = bucketRange(bucketOf(truth));
          // The estimate is rounded to whole ms: within a ms of the bucket's bounds.
          expect(est).toBeGreaterThanOrEqual(Math.floor(lo));
          expect(est).toBeLessThanOrEqual(Number.isFinite(hi) ? hi : max);
        },
      ),
    );
  });

  it('keeps p50 <= p99, both exact for a single value, null when empty', () => {
    expect(quantile(emptyHistogram(), 0.5)).toBeNull();
    fc.assert(
      fc.property(fc.array(latency, { minLength: 1, maxLength: 200 }), (values) => {
        const h = emptyHistogram();
        for (const v of values) observe(h, v);
        expect(quantile(h, 0.5)!).toBeLessThanOrEqual(quantile(h, 0.99)!);
      }),
    );
    const one = emptyHistogram();
    observe(one, 1234);
    expect([quantile(one, 0.5), quantile(one, 0.99)]).toEqual([1234, 1234]);
    const skew = emptyHistogram();
    observe(skew, -5);
    expect([skew.min, skew.max, quantile(skew, 0.5)]).toEqual([0, 0, 0]);
  });
});

type Op =
  | { op: 'advance'; ms: number }
  | { op: 'event'; offsetMs: number; kind: 'done' | 'failed' | (typeof MESSAGE_KINDS)[number] };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 5 * MINUTE_MS }) }),
  fc.record({
    op: fc.constant('event' as const),
    // From two minutes ahead (another clock) to 90 minutes back (outside the window).
    offsetMs: fc.integer({ min: -2 * MINUTE_MS, max: 90 * MINUTE_MS }),
    kind: fc.constantFrom('done', 'failed', ...MESSAGE_KINDS),
  }),
);

describe('minute series', () => {
  it('matches a model: each event in its minute, future ones now, older than the hour dropped, rolled out after it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 * MINUTE_MS }),
        fc.array(opArb, { maxLength: 300 }),
        (start, ops) => {
          const s = new MinuteSeries();
          let now = T0 + start;
          /** Accepted events: the minute each was counted in. */
          const model: { minute: number; kind: string }[] = [];
          for (const o of ops) {
            if (o.op === 'advance') {
              now += o.ms;
              continue;
            }
            const at = now - o.offsetMs;
            const e: SeriesEvent =
              o.kind === 'done' || o.kind === 'failed'
                ? { type: 'task', outcome: o.kind, at }
                : { type: 'message', kind: o.kind, at };
            const current = Math.floor(now / MINUTE_MS);
            const minute = Math.min(current, Math.floor(at / MINUTE_MS));
            const inWindow = minute > current - SERIES_MINUTES;
            expect(s.record(e, now)).toBe(inWindow);
            if (inWindow) model.push({ minute, kind: o.kind });
          }
          const points = s.points(now);
          const current = Math.floor(now / MINUTE_MS);
          expect(points).toHaveLength(SERIES_MINUTES);
          points.forEach((p, i) => {
            const minute = current - SERIES_MINUTES + 1 + i;
            expect(p.t).toBe(minute * MINUTE_MS);
            const here = model.filter((m) => m.minute === minute);
            const count = (k: string) => here.filter((m) => m.kind === k).length;
            expect(p.done).toBe(count('done'));
            expect(p.failed).toBe(count('failed'));
            for (const k of MESSAGE_KINDS) expect(p.messages[k]).toBe(count(k));
          });
        },
      ),
    );
  });

  it('gives the last `count` minutes, and an empty hour as zeros', () => {
    const s = new MinuteSeries();
    const now = T0 + 30_000;
    const five = s.points(now, 5);
    expect(five.map((p) => p.t)).toEqual([-4, -3, -2, -1, 0].map((d) => T0 + d * MINUTE_MS));
    expect(five[4]).toEqual({
      t: T0,
      done: 0,
      failed: 0,
      latencyP50: null,
      latencyP99: null,
      waitP50: null,
      waitP99: null,
      messages: { direct: 0, broadcast: 0, channel: 0, presence: 0 },
    });
    expect(s.points(now, 500)).toHaveLength(SERIES_MINUTES);
  });

  it('raises rev only when a minute before the last two changes', () => {
    const s = new MinuteSeries();
    const now = T0 + 10_000;
    s.record({ type: 'task', outcome: 'done', at: now }, now);
    s.record({ type: 'task', outcome: 'done', at: now - MINUTE_MS }, now);
    expect(s.rev).toBe(0);
    s.record({ type: 'message', kind: 'direct', at: now - 2 * MINUTE_MS }, now);
    expect(s.rev).toBe(1);
    s.record({ type: 'message', kind: 'direct', at: now - 2 * SERIES_MINUTES * MINUTE_MS }, now);
    expect(s.rev).toBe(1);
  });

  it('reports latency and wait percentiles per minute, bounded by that minute’s values', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(latency, latency, fc.integer({ min: 0, max: 2 })), {
          minLength: 1,
          maxLength: 100,
        }),
        (tasks) => {
          const s = new MinuteSeries();
          const now = T0 + 2 * MINUTE_MS + 59_000;
          for (const [lat, wait, back] of tasks)
            s.record(
              { type: 'task', outcome: 'done', at: now - back * MINUTE_MS, latencyMs: lat, waitMs: wait },
              now,
            );
          const points = s.points(now, 3);
          points.forEach((p, i) => {
            const mine = tasks.filter(([, , back]) => back === 2 - i);
            expect(p.done).toBe(mine.length);
            if (mine.length === 0) {
              expect([p.latencyP50, p.latencyP99, p.waitP50, p.waitP99]).toEqual([null, null, null, null]);
              return;
            }
            const lats = mine.map(([l]) => l);
            const waits = mine.map(([, w]) => w);
            for (const [v, all] of [
              [p.latencyP50, lats],
              [p.latencyP99, lats],
              [p.waitP50, waits],
              [p.waitP99, waits],
            ] as const) {
              expect(v).toBeGreaterThanOrEqual(Math.min(...all));
              expect(v).toBeLessThanOrEqual(Math.max(...all));
            }
            expect(p.latencyP50!).toBeLessThanOrEqual(p.latencyP99!);
          });
        },
      ),
    );
  });
});

describe('taskOutcome', () => {
  const h = (at: number, from: HistoryEntry['from'], to: HistoryEntry['to']): HistoryEntry => ({
    at,
    from,
    to,
    generation: 1,
    by: 'hub',
  });
  const record = (
    over: Partial<TaskRecord>,
  ): Pick<TaskRecord, 'status' | 'createdAt' | 'completedAt' | 'history'> => ({
    status: 'done',
    createdAt: T0,
    completedAt: T0 + 900,
    history: [
      h(T0, null, 'queued'),
      h(T0 + 40, 'queued', 'assigned'),
      h(T0 + 60, 'assigned', 'working'),
      h(T0 + 900, 'working', 'done'),
    ],
    ...over,
  });

  it('counts a task just done with its latency and its wait until the first assignment', () => {
    expect(taskOutcome(record({}))).toEqual({
      type: 'task',
      outcome: 'done',
      at: T0 + 900,
      latencyMs: 900,
      waitMs: 40,
    });
  });

  it('counts failed and dead as failed, without a latency', () => {
    const failed = record({
      status: 'failed',
      history: [h(T0, null, 'queued'), h(T0 + 5, 'queued', 'assigned'), h(T0 + 900, 'assigned', 'failed')],
    });
    expect(taskOutcome(failed)).toEqual({ type: 'task', outcome: 'failed', at: T0 + 900, waitMs: 5 });
    const dead = record({ status: 'dead', history: [h(T0 + 900, 'working', 'dead')] });
    // The history no longer starts at the submit: the first assignment is unknown.
    expect(taskOutcome(dead)).toEqual({ type: 'task', outcome: 'failed', at: T0 + 900 });
  });

  it('ignores what is not a finish: queued, working, cancelled, a record whose last transition is another', () => {
    expect(taskOutcome(record({ status: 'working', completedAt: null }))).toBeNull();
    expect(taskOutcome(record({ status: 'queued', completedAt: null }))).toBeNull();
    expect(taskOutcome(record({ status: 'cancelled' }))).toBeNull();
    expect(taskOutcome(record({ status: 'done', completedAt: null }))).toBeNull();
    expect(
      taskOutcome(
        record({ status: 'done', history: [h(T0, null, 'queued'), h(T0 + 1, 'queued', 'assigned')] }),
      ),
    ).toBeNull();
  });
});
