/**
 * @module agent/field
 * The stigmergy field from an agent's side (or a trusted client's): emit, claim, release, and
 * observe by pattern. `observe` has the server push, per pattern, the live pheromones and then
 * every change, from one stream in order (bus/pushed-watch.ts), so nothing falls in a gap between
 * the two; a pheromone matching several patterns is delivered once per revision.
 * An agent calls its own endpoints (`field.emit.<id>.<type>`...): the hub takes it as the source
 * and the claimant from the subject, and its permissions say which types it may emit and claim.
 */
import type { z } from 'zod';
import type { Bus } from '../bus/connection.js';
import { followPushedWatch, type PushedEntry } from '../bus/pushed-watch.js';
import { request } from '../bus/service.js';
import { decodePayload } from '../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import {
  FieldClaimReplySchema,
  type FieldEmitInput,
  FieldObserveReplySchema,
  OBSERVE_SLOTS,
  type Pheromone,
  PheromonePatternSchema,
  PheromoneReplySchema,
  PheromoneSchema,
} from '../protocol/field.js';

export interface Observed {
  pheromone: Pheromone;
  /** The KV revision of this change (rises with every change of the field). */
  revision: number;
  /** True for the pheromones already live when the watch started (the catch-up), false after. */
  initial: boolean;
  /**
   * The pheromone has left the field: its final revision (`event` expired or removed), or its
   * key's delete when that revision was replaced before it could be delivered (then `pheromone` is
   * the last revision this observation saw).
   */
  gone: boolean;
}

const isEnded = (p: Pheromone) => p.event === 'expired' || p.event === 'removed';

/** How long an observation remembers a deleted key (the hub removes its marker after 10 min). */
const DELETED_KEPT_MS = 15 * 60_000;

export interface Observation extends AsyncIterable<Observed> {
  stop(): void;
}

export class FieldClient {
  private readonly agentId: string | undefined;
  private readonly by: string | undefined;
  private readonly timeoutMs: number;
  /** Observation slots in use (0 … OBSERVE_SLOTS-1). */
  private readonly slots = new Set<number>();

  /**
   * `agentId`: the agent whose connection `bus` is (it acts on its own subjects). Without it, a
   * trusted client (hub, admin users) acting as `by` (default `api`).
   */
  constructor(
    readonly bus: Bus,
    opts: { agentId?: string; by?: string; timeoutMs?: number } = {},
  ) {
    this.agentId = opts.agentId;
    this.by = opts.by;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
  }

  private endpoint(op: 'emit' | 'claim' | 'release' | 'observe', type?: string): string {
    if (this.agentId === undefined) return `field.${op}`;
    return type === undefined ? `field.${op}.${this.agentId}` : `field.${op}.${this.agentId}.${type}`;
  }

  private call<O>(
    op: 'emit' | 'claim' | 'release' | 'observe',
    type: string | undefined,
    body: object,
    schema: z.ZodType<O>,
  ) {
    const by = this.agentId === undefined && this.by !== undefined ? { by: this.by } : {};
    return request(this.bus, this.endpoint(op, type), { v: 1, ...by, ...body }, schema, {
      timeoutMs: this.timeoutMs,
    });
  }

  /** Deposit a pheromone; its source is this agent. */
  async emit(type: string, opts: Omit<FieldEmitInput, 'v' | 'type' | 'by'> = {}): Promise<Pheromone> {
    return (await this.call('emit', type, { type, ...opts }, PheromoneReplySchema)).pheromone;
  }

  /** First responder wins: `claimed` says whether this caller holds it now. */
  claim(p: Pick<Pheromone, 'id' | 'type'>): Promise<{ claimed: boolean; pheromone: Pheromone }> {
    return this.call(
      'claim',
      p.type,
      { id: p.id, ...(p.type ? { type: p.type } : {}) },
      FieldClaimReplySchema,
    );
  }

  /** Give back this caller's claim (an agent may release only its own). */
  async release(p: Pick<Pheromone, 'id'> & Partial<Pick<Pheromone, 'type'>>): Promise<Pheromone> {
    const body = { id: p.id, ...(p.type ? { type: p.type } : {}) };
    return (await this.call('release', undefined, body, PheromoneReplySchema)).pheromone;
  }

  /**
   * The live pheromones matching any of `patterns` (`*`, `error.*`, `*.completion`, `request.>`;
   * at most 16), then every change to them (claimed, released, expired, removed), until `stop()`.
   * The hub has the server push them to this connection's inbox (`field.observe`); a gap in the
   * delivery, or a silence, resumes from the last record seen, so none is missed or repeated.
   */
  async observe(patterns: string[]): Promise<Observation> {
    for (const p of patterns) PheromonePatternSchema.parse(p);
    // Each pattern holds one of the caller's slots until stop(): the hub names an agent's consumer
    // by slot, so two observations sharing one would keep replacing each other.
    const free = Array.from({ length: OBSERVE_SLOTS }, (_, i) => i).filter((i) => !this.slots.has(i));
    if (patterns.length > free.length)
      throw new AgentComError(
        ERROR_CODES.INVALID_STATE,
        `at most ${OBSERVE_SLOTS} patterns observed at once per client (${this.slots.size} in use)`,
      );
    const mine = free.slice(0, patterns.length);
    for (const s of mine) this.slots.add(s);
    const queue: Observed[] = [];
    let wake: (() => void) | undefined;
    let stopped = false;
    // Per key, the newest revision delivered and its record: a second pattern's copy of a revision
    // is dropped, and a delete is told with the last record seen.
    const seen = new Map<string, { revision: number; pheromone: Pheromone | null; deletedAt?: number }>();
    const push = (o: Observed) => {
      queue.push(o);
      wake?.();
    };
    let deletes = 0;
    const onEntry = (e: PushedEntry) => {
      const last = seen.get(e.key);
      if (last && last.revision >= e.revision) return;
      if (e.operation !== 'put') {
        // Kept (not forgotten) so that another pattern's late copy of an earlier revision is still
        // dropped; forgotten once the hub has removed the marker itself (field/process.ts).
        seen.set(e.key, { revision: e.revision, pheromone: null, deletedAt: Date.now() });
        if (++deletes % 1_000 === 0) forgetDeletedBefore(Date.now() - DELETED_KEPT_MS);
        // The key's final revision (expired/removed) can be replaced by its delete before it is
        // delivered: then the delete is the news. Already told when that revision came.
        if (last?.pheromone && !isEnded(last.pheromone))
          push({ pheromone: last.pheromone, revision: e.revision, initial: e.initial, gone: true });
        return;
      }
      const p = decodePayload(PheromoneSchema, e.data);
      if (!p.ok) return; // only the hub writes the field; a record that does not decode is skipped
      seen.set(e.key, { revision: e.revision, pheromone: p.value });
      push({ pheromone: p.value, revision: e.revision, initial: e.initial, gone: isEnded(p.value) });
    };
    const forgetDeletedBefore = (t: number) => {
      for (const [k, v] of seen) if (v.deletedAt !== undefined && v.deletedAt < t) seen.delete(k);
    };
    // The first delivery of every pattern, so the caller's first read already has the catch-up.
    // observe() resolves once every pattern's first consumer exists, and rejects with the hub's
    // error (forbidden, unavailable...) when one cannot be made; later resumes retry on their own.
    const opened = patterns.map(() => {
      const o = { resolve: () => {}, reject: (_err: unknown) => {}, promise: Promise.resolve() };
      o.promise = new Promise<void>((resolve, reject) => Object.assign(o, { resolve, reject }));
      return o;
    });
    const watches = patterns.map((pattern, i) => {
      const slot = mine[i]!;
      return followPushedWatch(
        this.bus,
        this.bus.names.buckets.field,
        async (deliverSubject, startSeq) => {
          const body = { pattern, deliverSubject, slot, ...(startSeq !== undefined ? { startSeq } : {}) };
          const r = await this.call('observe', undefined, body, FieldObserveReplySchema);
          opened[i]!.resolve();
          return r;
        },
        onEntry,
        (err) => opened[i]!.reject(err),
      );
    });
    const release = () => {
      for (const s of mine) this.slots.delete(s);
    };
    try {
      await Promise.all(opened.map((o) => o.promise));
    } catch (err) {
      for (const w of watches) w.stop();
      release();
      throw err;
    }
    const stop = () => {
      if (!stopped) release();
      stopped = true;
      for (const w of watches) w.stop();
      wake?.();
    };
    return {
      stop,
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const next = queue.shift();
            if (next) {
              yield next;
              continue;
            }
            if (stopped) return;
            await new Promise<void>((r) => {
              wake = r;
            });
            wake = undefined;
          }
        } finally {
          stop();
        }
      },
    };
  }
}
