/**
 * @module agent/sidecar/queue-store
 * `queue.json` on disk. Loading never fails the sidecar: a missing file is an empty queue, and a
 * file that is not a valid queue (hand-edited, or from another agent id) is moved aside to
 * `queue.json.corrupt-<time>` and reported, and the sidecar starts empty. Nothing is lost by that:
 * the hub still holds those assignments and reclaims them when no progress comes (stuck timeout).
 * Saves are atomic and serialized by the caller (one writer).
 */
import { readFile, rename } from 'node:fs/promises';
import { writeFileAtomic } from '../../runtime/atomic-file.js';
import { emptyQueue, type LocalQueue, LocalQueueSchema } from './local-queue.js';

export interface LoadedQueue {
  queue: LocalQueue;
  /** Set when an unusable file was moved aside. */
  quarantined?: { path: string; reason: string };
}

export async function loadQueue(path: string, agentId: string, now = Date.now()): Promise<LoadedQueue> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { queue: emptyQueue(agentId) };
    throw err;
  }
  let reason: string;
  try {
    const parsed = LocalQueueSchema.safeParse(JSON.parse(text));
    if (parsed.success && parsed.data.agentId === agentId) return { queue: parsed.data };
    reason = parsed.success
      ? `it belongs to agent ${parsed.data.agentId}, not ${agentId}`
      : `invalid: ${parsed.error.issues[0]?.message ?? 'schema'} at ${parsed.error.issues[0]?.path.join('.') ?? ''}`;
  } catch (err) {
    reason = `not JSON: ${(err as Error).message}`;
  }
  const aside = `${path}.corrupt-${now}`;
  await rename(path, aside);
  return { queue: emptyQueue(agentId), quarantined: { path: aside, reason } };
}

export async function saveQueue(path: string, queue: LocalQueue): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(queue, null, 2)}\n`);
}
