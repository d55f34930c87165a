/**
 * @module direct-get
 * Reading single stored messages by subject without a consumer (`$JS.API.DIRECT.GET`, streams with
 * `allow_direct`): the next message on a subject filter from a sequence, and the first sequence
 * stored at or after a time (nats-server 2.9 has no direct get by start time).
 */
import type { StoredMsg } from '@nats-io/jetstream';
import type { Bus } from './connection.js';

/** The first message at or after `seq` whose subject matches `subject` (wildcards allowed), or null. */
export async function nextBySubject(
  bus: Bus,
  stream: string,
  seq: number,
  subject: string,
): Promise<StoredMsg | null> {
  try {
    return await bus.jsm.direct.getMessage(stream, { seq, next_by_subj: subject });
  } catch (err) {
    if ((err as { code?: number }).code === 404 || /not found/i.test(String(err))) return null;
    throw err;
  }
}

/**
 * The first sequence stored at or after `time`: a binary search over the stream's sequences with
 * direct gets on `allSubjects` (times rise with sequences).
 */
export async function firstSeqAtOrAfter(
  bus: Bus,
  stream: string,
  time: number,
  allSubjects: string,
): Promise<number> {
  const { state } = await bus.jsm.streams.info(stream);
  let lo = state.first_seq;
  let hi = state.last_seq + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const sm = await nextBySubject(bus, stream, mid, allSubjects);
    if (!sm || sm.time.getTime() >= time) hi = mid;
    else lo = sm.seq + 1;
  }
  return lo;
}
