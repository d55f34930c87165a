/**
 * @module field/query
 * Reading the field: live pheromones by pattern (from the bucket), counts, and the audit trail by
 * pattern and time (direct gets on `<P>_FIELD`, so a page costs one request per event and no
 * consumer). Read-only; any hub may answer.
 */
import { firstSeqAtOrAfter, nextBySubject } from '../../src/bus/direct-get.js';
import { decodePayload } from '../../src/protocol/envelope.js';
import { type Pheromone, PheromoneSchema, patternTypeFilter, typeMatches } from '../../src/protocol/field.js';
import { type FieldStore, isLive } from './store.js';

export async function livePheromones(store: FieldStore, now = Date.now()): Promise<Pheromone[]> {
  const all = await store.kv.entries();
  return [...all.values()].map((e) => e.value).filter((p) => isLive(p, now));
}

export function listPheromones(
  live: Pheromone[],
  req: { pattern: string; claimed?: boolean | undefined; limit: number },
): { pheromones: Pheromone[]; total: number } {
  const matching = live
    .filter((p) => typeMatches(p.type, req.pattern))
    .filter((p) => req.claimed === undefined || (p.claimedBy !== null) === req.claimed)
    .sort((a, b) => b.timestamp - a.timestamp || (a.id < b.id ? 1 : -1));
  return { pheromones: matching.slice(0, req.limit), total: matching.length };
}

export function fieldCounts(live: Pheromone[]) {
  const byType: Record<string, number> = {};
  let claimed = 0;
  for (const p of live) {
    byType[p.type] = (byType[p.type] ?? 0) + 1;
    if (p.claimedBy !== null) claimed++;
  }
  return { active: live.length - claimed, claimed, byType };
}

/** Expiries in the audit trail (a consumer's pending count, not a read of every event). */
export async function countExpired(store: FieldStore): Promise<number> {
  const { bus } = store;
  const stream = bus.names.streams.field;
  const ci = await bus.jsm.consumers.add(stream, {
    filter_subject: bus.names.subjects.fieldAudit('expired', '*', '>'),
    ack_policy: 'none' as never,
    inactive_threshold: 5_000_000_000,
  });
  try {
    return ci.num_pending;
  } finally {
    await bus.jsm.consumers.delete(stream, ci.name).catch(() => {});
  }
}

export async function auditHistory(
  store: FieldStore,
  req: { pattern: string; since?: number | undefined; until?: number | undefined; limit: number },
): Promise<{ events: (Pheromone & { seq: number })[]; more: boolean }> {
  const { bus } = store;
  const filter = bus.names.subjects.fieldAudit('*', '*', patternTypeFilter(req.pattern));
  const events: (Pheromone & { seq: number })[] = [];
  const stream = bus.names.streams.field;
  let seq =
    req.since !== undefined
      ? await firstSeqAtOrAfter(bus, stream, req.since, bus.names.subjects.fieldAuditAll)
      : 1;
  for (;;) {
    const sm = await nextBySubject(bus, stream, seq, filter);
    if (!sm) break;
    seq = sm.seq + 1;
    // Only the hub writes the trail; an event that does not decode (a hand-made publish) is skipped.
    const p = decodePayload(PheromoneSchema, sm.data);
    if (!p.ok) continue;
    if (req.until !== undefined && p.value.eventAt > req.until) break;
    if (events.length === req.limit) return { events, more: true };
    events.push({ ...p.value, seq: sm.seq });
  }
  return { events, more: false };
}
