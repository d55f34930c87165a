/**
 * @module consumer-progress
 * How far a durable consumer has got through its stream, as a time on the reader's own clock:
 * `readThrough`, a time before which every message the stream held has been acked by the consumer
 * (handled, dead-lettered or dropped). Code that acts on a message's absence ("no accept within
 * 30 s") asks this first: while its consumer is behind, the message may be there, unread.
 *
 * Each sample (one stream info, then one consumer info) marks the end of what the stream held when
 * it was asked: its last sequence, or the consumer's `delivered.stream_seq + num_pending` if that
 * is higher, with the time the request was sent. A mark is passed when a later sample's ack floor
 * reaches it. The stream's own last sequence keeps a consumer that does not count what the stream
 * holds (the 2.9 fault of consumer-stall.ts, a lagging replica) from passing it. Only the reader's
 * clock is compared with the reader's clock.
 * Optimistic by the transit time of a message still on its way to the server when the sample was
 * asked for. Held back while a message waits for a later redelivery (nak with a delay): the ack
 * floor stays below it until then; and by a last sequence the consumer will never deliver (the
 * stream's tail purged or deleted). Callers bound how long they wait on it.
 */
import type { Bus } from './connection.js';

export interface ProgressSample {
  /** The reader's time when the sample was asked for (ms). */
  at: number;
  /** The stream's last sequence, read before the consumer. */
  lastSeq: number;
  /** The consumer's delivered.stream_seq, num_pending and ack_floor.stream_seq. */
  delivered: number;
  pending: number;
  ackFloor: number;
}

/** Marks kept at most; past it the oldest goes (readThrough then advances later, never earlier). */
const MAX_MARKS = 1024;

/** The pure part: samples in, the read-through time out. */
export class ReadThrough {
  private marks: { at: number; end: number }[] = [];
  private through = Number.NEGATIVE_INFINITY;

  /** Every message stored before this time (reader's clock) is acked; -Infinity before the first sample. */
  get value(): number {
    return this.through;
  }

  observe(s: ProgressSample): number {
    const end = Math.max(s.lastSeq, s.delivered + s.pending);
    const last = this.marks.at(-1);
    // What was stored before s.at ends at or before `end`, so at or before last.end too: one mark
    // with the later time (ends stay in order; a lower end comes from a consumer recreated).
    if (last && last.end >= end) last.at = Math.max(last.at, s.at);
    else this.marks.push({ at: s.at, end });
    if (this.marks.length > MAX_MARKS) this.marks.shift();
    let passed = 0;
    while (passed < this.marks.length && (this.marks[passed]?.end ?? 0) <= s.ackFloor) passed++;
    if (passed > 0) {
      this.through = Math.max(this.through, this.marks[passed - 1]?.at ?? this.through);
      this.marks.splice(0, passed);
    }
    return this.through;
  }
}

export interface ConsumerProgress {
  /** See ReadThrough.value. */
  readThrough(): number;
  /** Takes one sample (one at a time: a call while one is under way gets that one); returns readThrough. */
  sample(): Promise<number>;
}

/** Follows `durable`, a consumer of the whole of `stream` (no filter), one sample per `sample()`. */
export function consumerProgress(bus: Bus, stream: string, durable: string): ConsumerProgress {
  const tracker = new ReadThrough();
  let under: Promise<number> | undefined;
  const take = async (): Promise<number> => {
    const at = Date.now();
    // The stream first: a message stored between the two reads raises only the consumer's count.
    const si = await bus.jsm.streams.info(stream);
    const ci = await bus.jsm.consumers.info(stream, durable);
    return tracker.observe({
      at,
      lastSeq: si.state.last_seq,
      delivered: ci.delivered.stream_seq,
      pending: ci.num_pending,
      ackFloor: ci.ack_floor.stream_seq,
    });
  };
  return {
    readThrough: () => tracker.value,
    sample() {
      under ??= take().finally(() => {
        under = undefined;
      });
      return under;
    },
  };
}
