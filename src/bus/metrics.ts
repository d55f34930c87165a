/**
 * @module metrics
 * Cheap in-memory counters and latency histograms for the bus (seed 003's visibility). Recording
 * is O(1) with no allocation: a fixed array of log-scaled buckets (8 per power of two, about 9%
 * resolution) over microseconds. Percentiles are approximate (bucket upper bounds).
 */
import type { BusCounters, LatencySummary } from '../protocol/status.js';

const SUB = 8;
const BUCKETS = 40 * SUB; // up to 2^40 us, far beyond any latency we care about

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS);
  private n = 0;
  private maxUs = 0;

  /** Records a duration in milliseconds (negative values count as 0). */
  record(ms: number): void {
    const us = ms * 1000;
    let i = 0;
    if (us > 1) {
      i = Math.floor(Math.log2(us) * SUB);
      if (i >= BUCKETS) i = BUCKETS - 1;
    }
    this.counts[i]! += 1;
    this.n++;
    if (us > this.maxUs) this.maxUs = us;
  }

  get count(): number {
    return this.n;
  }

  /** Approximate percentile in milliseconds (`q` in 0..1); 0 when empty. */
  percentile(q: number): number {
    if (this.n === 0) return 0;
    const target = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return Math.min(2 ** ((i + 1) / SUB), this.maxUs) / 1000;
    }
    return this.maxUs / 1000;
  }

  summary(): LatencySummary {
    return {
      count: this.n,
      p50_ms: round3(this.percentile(0.5)),
      p99_ms: round3(this.percentile(0.99)),
      max_ms: round3(this.maxUs / 1000),
    };
  }

  /** Adds another histogram's samples into this one. */
  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.n += other.n;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.maxUs = 0;
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Counters shared by every publisher and consumer runner of one bus connection. */
export class BusMetrics {
  published = 0;
  publishRetries = 0;
  publishDuplicates = 0;
  publishFailures = 0;
  dispatched = 0;
  acked = 0;
  nacked = 0;
  deadLettered = 0;
  handlerErrors = 0;
  readonly publishLatency = new Histogram();
  /** Samples recorded directly on the bus (runners keep their own; see `trackRunner`). */
  readonly publishToDispatch = new Histogram();
  readonly ackLatency = new Histogram();
  private readonly runners: { p2d: Histogram; ack: Histogram }[] = [];

  /** @internal Consumer runners register their histograms once instead of recording twice. */
  trackRunner(h: { p2d: Histogram; ack: Histogram }): void {
    this.runners.push(h);
  }

  private merged(pick: (r: { p2d: Histogram; ack: Histogram }) => Histogram, own: Histogram): Histogram {
    const m = new Histogram();
    m.add(own);
    for (const r of this.runners) m.add(pick(r));
    return m;
  }

  snapshot(): BusCounters {
    return {
      published: this.published,
      publish_retries: this.publishRetries,
      publish_duplicates: this.publishDuplicates,
      publish_failures: this.publishFailures,
      dispatched: this.dispatched,
      acked: this.acked,
      nacked: this.nacked,
      dead_lettered: this.deadLettered,
      handler_errors: this.handlerErrors,
      publish_ms: this.publishLatency.summary(),
      publish_to_dispatch_ms: this.merged((r) => r.p2d, this.publishToDispatch).summary(),
      ack_ms: this.merged((r) => r.ack, this.ackLatency).summary(),
    };
  }
}
