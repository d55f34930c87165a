/**
 * @module field/state
 * The field's rules, without I/O: what each operation makes of a pheromone's record, and the
 * compare-and-set loop that applies one to a cell (store.ts gives it the bucket's key). Because the
 * write is compare-and-set on the revision read, concurrent claimants of an unclaimed pheromone
 * cannot both land: the first update wins, the others find their revision stale, read again and
 * see it claimed (test/actors/field/state.prop.test.ts runs that against every interleaving
 * fast-check finds).
 */
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import type { FieldEvent, Pheromone } from '../../src/protocol/field.js';

/** A new revision of the record, or null when there is nothing to write (the answer is as it is). */
export type Change = (p: Pheromone) => Pheromone | null;

/** True once a pheromone's last revision is written (its key is about to be deleted). */
export function isGone(p: Pheromone): boolean {
  return p.event === 'expired' || p.event === 'removed';
}

/** Live now: not gone and not past its expiry. */
export function isLive(p: Pheromone, now: number): boolean {
  return !isGone(p) && (p.expiresAt === null || p.expiresAt > now);
}

export const withEvent = (p: Pheromone, e: FieldEvent, by: string, now: number): Pheromone => ({
  ...p,
  event: e,
  eventAt: now,
  eventBy: by,
});

/** First responder wins: nothing changes once anyone holds the claim. */
export const claimChange =
  (claimant: string, now: number): Change =>
  (p) =>
    p.claimedBy !== null
      ? null
      : { ...withEvent(p, 'claimed', claimant, now), claimedBy: claimant, claimedAt: now };

/** `holder`: only that claimant's claim may be released (an agent's own). @throws forbidden. */
export const releaseChange =
  (by: string, holder: string | undefined, now: number): Change =>
  (p) => {
    if (p.claimedBy === null) return null;
    if (holder !== undefined && p.claimedBy !== holder)
      throw new AgentComError(
        ERROR_CODES.FORBIDDEN,
        `pheromone ${p.id} is claimed by ${p.claimedBy}, not ${holder}`,
      );
    return { ...withEvent(p, 'released', by, now), claimedBy: null, claimedAt: null };
  };

/**
 * Claimed by its task (`task:<id>`: no agent id holds a colon, so no agent can hold or release
 * that claim); a pheromone promoted before keeps its task.
 */
export const promoteChange =
  (taskId: string, by: string, now: number): Change =>
  (p) => {
    if (p.taskId !== null) return null;
    if (p.claimedBy !== null)
      throw new AgentComError(ERROR_CODES.INVALID_STATE, `pheromone ${p.id} is claimed by ${p.claimedBy}`);
    return {
      ...withEvent(p, 'promoted', by, now),
      claimedBy: `task:${taskId}`.slice(0, 64),
      claimedAt: now,
      taskId: taskId as never,
    };
  };

/** The compare-and-set access to one record that {@link casApply} needs. */
export interface CasCell<T> {
  get(): Promise<{ value: T; revision: number } | null>;
  update(value: T, revision: number): Promise<{ ok: true; revision: number } | { ok: false }>;
}

/**
 * Apply `change` to the live record of `cell`, retrying on a lost compare-and-set. Returns the
 * record after it and the revision written (null when nothing was). @throws not_found when the
 * record is gone or not live at `now`.
 */
export async function casApply(
  cell: CasCell<Pheromone>,
  change: Change,
  now: number,
): Promise<{ pheromone: Pheromone; written: number | null }> {
  for (;;) {
    const got = await cell.get();
    if (!got || !isLive(got.value, now))
      throw new AgentComError(
        ERROR_CODES.NOT_FOUND,
        'the pheromone is not in the field (expired or removed?)',
      );
    const next = change(got.value);
    if (!next) return { pheromone: got.value, written: null };
    const r = await cell.update(next, got.revision);
    if (r.ok) return { pheromone: next, written: r.revision };
  }
}
