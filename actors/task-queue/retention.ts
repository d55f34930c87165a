/**
 * @module task-queue/retention
 * Which finished task records to remove, so that the tasks bucket and the hub's memory do not
 * grow with every task ever run (as BullMQ's `removeOnComplete`, Oban's pruner and Temporal's
 * retention period do for theirs). Pure: the store does the removal.
 *
 * A finished task (done, failed, dead or cancelled) is kept for `maxAgeMs` after it finished, and
 * at most `maxCount` finished tasks are kept, the oldest going first. Queued and active tasks are
 * never removed. A removed task is unknown from then on: `get` answers null, a late report about
 * it is refused as `not_found`, and a submit with its idempotency key creates a new task. That
 * new task starts again at generation 0, so a report from the removed one (same id, same agent,
 * same generation) delayed past the retention period would be taken for the new one's: keep the
 * retention far longer than any report can be in transit.
 */

export interface RetentionPolicy {
  /** How long a finished task is kept after it finished, ms. */
  maxAgeMs: number;
  /** How many finished tasks are kept at most. */
  maxCount: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { maxAgeMs: 7 * 24 * 60 * 60_000, maxCount: 50_000 };

/**
 * The finished tasks due for removal at `now`, oldest first, at most `limit`.
 * `finished` maps task id -> when it finished, in the order the tasks finished (oldest first).
 * The walk stops at the first task that is young enough and within the count, so a sweep costs
 * O(removed), not O(finished); an entry out of order only waits until the one before it is due.
 */
export function expiredTasks(
  finished: ReadonlyMap<string, number>,
  now: number,
  policy: RetentionPolicy,
  limit = Number.POSITIVE_INFINITY,
): string[] {
  const out: string[] = [];
  let excess = finished.size - policy.maxCount;
  for (const [id, finishedAt] of finished) {
    if (out.length >= limit) break;
    if (excess <= 0 && now - finishedAt < policy.maxAgeMs) break;
    out.push(id);
    excess--;
  }
  return out;
}
