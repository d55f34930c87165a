/**
 * @module withdraw
 * Takes a stored message back before its consumer has it: used for an assignment that was
 * superseded while it waited in an agent's inbox, so that a restarted agent does not start work
 * the hub has already given to someone else. Best effort: a message already acked (gone from a
 * work queue) or deleted is not an error, and one already delivered is stopped by the `cancel`
 * that follows it anyway.
 */
import type { Bus } from './connection.js';

/** Deletes message `seq` of `stream`; resolves false when it was not there (or could not be deleted). */
export async function withdrawMessage(bus: Bus, stream: string, seq: number): Promise<boolean> {
  try {
    return await bus.jsm.streams.deleteMessage(stream, seq, false);
  } catch {
    return false;
  }
}
