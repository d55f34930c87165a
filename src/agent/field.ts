/**
 * @module agent/field
 * The stigmergy field from an agent's side (or a trusted client's): emit, claim, release, and
 * observe by pattern. `observe` watches the field's bucket once per pattern: each watch first
 * delivers the live pheromones, then every change, from one ordered stream, so nothing falls in a
 * gap between the two; a pheromone matching several patterns is delivered once per revision.
 * An agent calls its own endpoints (`field.emit.<id>.<type>`...): the hub takes it as the source
 * and the claimant from the subject, and its permissions say which types it may emit and claim.
 */
import type { z } from 'zod';
import type { Bus } from '../bus/connection.js';
import { openKv } from '../bus/kv.js';
import { request } from '../bus/service.js';
import {
  FieldClaimReplySchema,
  type FieldEmitInput,
  type Pheromone,
  PheromonePatternSchema,
  PheromoneReplySchema,
  PheromoneSchema,
  patternKeyFilter,
} from '../protocol/field.js';

export interface Observed {
  pheromone: Pheromone;
  /** The KV revision of this change (rises with every change of the field). */
  revision: number;
  /** True for the pheromones already live when the watch started (the catch-up), false after. */
  initial: boolean;
}

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

  private endpoint(op: 'emit' | 'claim' | 'release', type?: string): string {
    if (this.agentId === undefined) return `field.${op}`;
    return type === undefined ? `field.${op}.${this.agentId}` : `field.${op}.${this.agentId}.${type}`;
  }

  private call<O>(
    op: 'emit' | 'claim' | 'release',
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
    return this.call('claim', p.type, { id: p.id }, FieldClaimReplySchema);
  }

  /** Give back this caller's claim (an agent may release only its own). */
  async release(p: Pick<Pheromone, 'id'>): Promise<Pheromone> {
    return (await this.call('release', undefined, { id: p.id }, PheromoneReplySchema)).pheromone;
  }

  /**
   * The live pheromones matching any of `patterns` (`*`, `error.*`, `*.completion`, `request.>`),
   * then every change to them (claimed, released, expired, removed), until `stop()`.
   */
  async observe(patterns: string[]): Promise<Observation> {
    for (const p of patterns) PheromonePatternSchema.parse(p);
    const kv = await openKv(this.bus, this.bus.names.buckets.field, PheromoneSchema);
    // Read before the watches start: what they deliver at or below it was live before observe().
    const startedAt = (await this.bus.jsm.streams.info(`KV_${kv.bucket}`)).state.last_seq;
    const watches = await Promise.all(patterns.map((p) => kv.watch({ key: patternKeyFilter(p) })));
    const queue: Observed[] = [];
    let wake: (() => void) | undefined;
    let stopped = false;
    let live = watches.length;
    // Per key, the newest revision delivered: a second pattern's copy of it is dropped.
    const seen = new Map<string, number>();
    for (const w of watches)
      void (async () => {
        for await (const c of w) {
          if (c.operation !== 'put' || !c.value) {
            seen.delete(c.key);
            continue;
          }
          if ((seen.get(c.key) ?? 0) >= c.revision) continue;
          seen.set(c.key, c.revision);
          queue.push({ pheromone: c.value, revision: c.revision, initial: c.revision <= startedAt });
          wake?.();
        }
      })().finally(() => {
        live--;
        wake?.();
      });
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
            if (stopped || live === 0) return;
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
