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

export interface Observation extends AsyncIterable<Observed> {
  stop(): void;
}

export class FieldClient {
  private readonly agentId: string | undefined;
  private readonly by: string | undefined;
  private readonly timeoutMs: number;

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
    if (patterns.length > OBSERVE_SLOTS) throw new Error(`at most ${OBSERVE_SLOTS} patterns`);
    for (const p of patterns) PheromonePatternSchema.parse(p);
    const queue: Observed[] = [];
    let wake: (() => void) | undefined;
    let stopped = false;
    // Per key, the newest revision delivered and its record: a second pattern's copy of a revision
    // is dropped, and a delete is told with the last record seen.
    const seen = new Map<string, { revision: number; pheromone: Pheromone }>();
    const push = (o: Observed) => {
      queue.push(o);
      wake?.();
    };
    const onEntry = (e: PushedEntry) => {
      const last = seen.get(e.key);
      if (last && last.revision >= e.revision) return;
      if (e.operation !== 'put') {
        seen.delete(e.key);
        // The key's final revision (expired/removed) can be replaced by its delete before it is
        // delivered: then the delete is the news. Already told when that revision came.
        if (last && !isEnded(last.pheromone))
          push({ pheromone: last.pheromone, revision: e.revision, initial: e.initial, gone: true });
        return;
      }
      const p = decodePayload(PheromoneSchema, e.data);
      if (!p.ok) return; // only the hub writes the field; a record that does not decode is skipped
      seen.set(e.key, { revision: e.revision, pheromone: p.value });
      push({ pheromone: p.value, revision: e.revision, initial: e.initial, gone: isEnded(p.value) });
    };
    // The first delivery of every pattern, so the caller's first read already has the catch-up.
    // observe() resolves once every pattern's first consumer exists, and rejects with the hub's
    // error (forbidden, unavailable...) when one cannot be made; later resumes retry on their own.
    const opened = patterns.map(() => {
      const o = { resolve: () => {}, reject: (_err: unknown) => {}, promise: Promise.resolve() };
      o.promise = new Promise<void>((resolve, reject) => Object.assign(o, { resolve, reject }));
      return o;
    });
    const watches = patterns.map((pattern, slot) =>
      followPushedWatch(
        this.bus,
        this.bus.names.buckets.field,
        async (deliverSubject, startSeq) => {
          const body = { pattern, deliverSubject, slot, ...(startSeq !== undefined ? { startSeq } : {}) };
          const r = await this.call('observe', undefined, body, FieldObserveReplySchema);
          opened[slot]!.resolve();
          return r;
        },
        onEntry,
        (err) => opened[slot]!.reject(err),
      ),
    );
    try {
      await Promise.all(opened.map((o) => o.promise));
    } catch (err) {
      for (const w of watches) w.stop();
      throw err;
    }
    const stop = () => {
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
