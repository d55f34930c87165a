/**
 * @module field/process
 * The field's housekeeping (run by the hub holding the lease):
 * - expiry: it follows the bucket and ends each pheromone when its ttl runs out (one timer for the
 *   earliest expiry, a heap for the rest), so the lag is a timer's, not a sweep's; a new leader
 *   ends at once what ran out while no hub led;
 * - claims of an agent that goes offline (presence's `agent_down`) are released at once;
 * - a task promoted from a pheromone, or carrying `metadata.completionPheromone`, emits
 *   `completion.<type>` with its result when it is done (idempotent per task);
 * - at start it finishes what a killed leader left half done: a record written `expired` or
 *   `removed` but not deleted, and a revision whose audit event is missing;
 * - an ended pheromone's delete marker is removed for good after ten minutes, so the bucket (and
 *   every observer's catch-up) holds the live field, not its past (the audit trail keeps that).
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import { type Pheromone, TYPE_MAX_TOKENS } from '../../src/protocol/field.js';
import { kvStream } from '../../src/protocol/subjects.js';
import type { TaskRecord } from '../../src/protocol/task.js';
import { call, type Registry } from '../../src/runtime/index.js';
import { IndexedHeap } from '../../src/runtime/indexed-heap.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import type { AgentDown } from '../scheduler/index.js';
import type { TaskChanged } from '../task-queue/index.js';
import {
  emit,
  end,
  type FieldStore,
  isGone,
  openFieldStore,
  pheromoneId,
  reaudit,
  release,
} from './store.js';

export interface FieldInput {
  bus: Bus;
  log: Logger;
  /** Where Presence and the TaskQueue are registered (absent: no reconcile, e.g. in unit tests). */
  registry?: Registry;
  presence?: string;
  taskQueue?: string;
  /** How soon after start the first reconcile runs (default 2 s; then with every sweep). */
  reconcileAfterMs?: number;
  /** How long an ended pheromone's delete marker is kept (default 10 min; tests shorten it). */
  tombstoneKeepMs?: number;
  /** How often markers past that are removed (default 1 min). */
  tombstoneSweepMs?: number;
}

export type FieldMessage =
  | {
      type: 'changed';
      key: string;
      pheromone: Pheromone | null;
      revision: number;
      operation: 'put' | 'delete' | 'purge';
    }
  | { type: 'sweep_tombstones' }
  | { type: 'reconcile'; completions: boolean }
  /** call: the key (`<id>.<type>`) of a live pheromone, or null; from the index the watch keeps. */
  | { type: 'key_of'; id: string; reply?: (key: string | null) => void }
  | { type: 'expire' }
  | { type: 'retry_expiry'; key: string }
  | AgentDown
  | TaskChanged;

const REPAIRS_IN_FLIGHT = 16;

/** The largest task result a completion pheromone carries whole (a payload holds 64 KiB). */
const COMPLETION_RESULT_MAX = 48 * 1024;

const completionSource = (task: TaskRecord) => `task:${task.id}`.slice(0, 64);

/** How long an ended pheromone's delete marker is kept for observers resuming after a gap. */
const TOMBSTONE_KEEP_MS = 10 * 60_000;
const TOMBSTONE_SWEEP_MS = 60_000;

/** Timers longer than this are re-armed (Node's limit is 2^31-1 ms). */
const MAX_TIMER_MS = 86_400_000;

/** The type a task's completion emits, or null when it emits none. */
export function completionType(task: TaskRecord): string | null {
  const m = task.metadata ?? {};
  const base = typeof m.completionPheromone === 'string' ? m.completionPheromone : m.pheromoneType;
  if (typeof base !== 'string' || !base) return null;
  return ['completion', ...base.split('.')].slice(0, TYPE_MAX_TOKENS).join('.');
}

export class FieldProcess implements Server<FieldMessage> {
  private readonly expiries = new IndexedHeap<string, number>((a, b) => a < b);
  /** Live claims by claimant, for releasing an offline agent's. */
  private readonly claims = new Map<string, Set<string>>();
  private readonly claimant = new Map<string, string>();
  /** Keys of the pheromones alive now. */
  private readonly live = new Set<string>();
  /** Pheromone id -> its key, for refs that do not name the type. */
  private readonly keys = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private stopWatch: () => void = () => {};
  private readonly pending = new Set<Promise<unknown>>();
  private readonly log: Logger;
  private stopped = false;
  /** Deleted keys (an ended pheromone's marker) and when this hub saw them. */
  private readonly tombstones = new Map<string, { revision: number; at: number }>();
  private sweeper: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;

  private readonly tombstoneKeepMs: number;

  private constructor(
    private readonly store: FieldStore,
    private readonly input: FieldInput,
    private readonly ctx: ServerContext,
  ) {
    this.log = input.log.child({ actor: 'field' });
    this.tombstoneKeepMs = input.tombstoneKeepMs ?? TOMBSTONE_KEEP_MS;
  }

  static async start(input: FieldInput, ctx: ServerContext): Promise<FieldProcess> {
    const store = await openFieldStore(input.bus);
    const p = new FieldProcess(store, input, ctx);
    // Revisions up to here were written before this hub led: their audit may be missing.
    p.startSeq = (await input.bus.jsm.streams.info(kvStream(input.bus.names.buckets.field))).state.last_seq;
    // One ordered watch: the current values, then every change, with no gap between them.
    const watch = await store.kv.watch();
    p.stopWatch = () => watch.stop();
    void (async () => {
      for await (const c of watch) {
        const msg: FieldMessage = {
          type: 'changed',
          key: c.key,
          pheromone: c.value,
          revision: c.revision,
          operation: c.operation,
        };
        ctx.send(msg);
      }
    })().catch((err) => ctx.crash(err));
    const sweep: FieldMessage = { type: 'sweep_tombstones' };
    p.sweeper = setInterval(() => ctx.send(sweep), input.tombstoneSweepMs ?? TOMBSTONE_SWEEP_MS);
    p.sweeper.unref();
    // What a leader change may have dropped (casts to a Field actor that was not running yet):
    // a soon after start, then with every sweep.
    const reconcile: FieldMessage = { type: 'reconcile', completions: true };
    p.reconcileTimer = setTimeout(() => ctx.send(reconcile), input.reconcileAfterMs ?? 2_000);
    p.reconcileTimer.unref();
    p.log.info({ phase: 'start', revision: p.startSeq }, 'field started');
    return p;
  }

  private startSeq = 0;
  /** Repairs waiting (a field of many thousand pheromones is checked at most REPAIRS_IN_FLIGHT at a time). */
  private readonly repairs: (() => Promise<void>)[] = [];
  private repairing = 0;

  private pumpRepairs(): void {
    while (this.repairing < REPAIRS_IN_FLIGHT && this.repairs.length && !this.stopped) {
      const job = this.repairs.shift()!;
      this.repairing++;
      this.run(
        job().finally(() => {
          this.repairing--;
          this.pumpRepairs();
        }),
        { phase: 'repair' },
      );
    }
  }

  /**
   * What a killed leader may have left half done, for a revision written before this hub led: a
   * record written `expired` or `removed` but not deleted, or a revision whose audit is missing.
   */
  private async repair(key: string, p: Pheromone, revision: number): Promise<void> {
    if (isGone(p)) await end(this.store, key, p.event as 'expired', p.eventBy);
    else if (!(await this.audited(p, revision))) await reaudit(this.store, p, revision);
  }

  /** Whether the audit trail's last event of this pheromone is this revision. */
  private async audited(p: Pheromone, revision: number): Promise<boolean> {
    const { bus } = this.store;
    try {
      const sm = await bus.jsm.direct.getMessage(bus.names.streams.field, {
        last_by_subj: bus.names.subjects.fieldAudit(p.event, p.id, p.type),
      });
      return sm?.header.get('Nats-Msg-Id') === `${p.id}@${revision}`;
    } catch {
      return false;
    }
  }

  handle(msg: FieldMessage): void {
    switch (msg.type) {
      case 'changed':
        if (msg.pheromone && !isGone(msg.pheromone)) this.track(msg.key, msg.pheromone);
        else this.untrack(msg.key);
        if (msg.operation === 'delete')
          this.tombstones.set(msg.key, { revision: msg.revision, at: Date.now() });
        else this.tombstones.delete(msg.key);
        if (msg.pheromone && msg.revision <= this.startSeq) {
          const { key, pheromone, revision } = msg;
          this.repairs.push(() => this.repair(key, pheromone, revision));
          this.pumpRepairs();
        }
        this.arm();
        return;
      case 'expire':
        this.expireDue();
        return;
      case 'sweep_tombstones':
        this.sweepTombstones();
        this.run(this.reconcileClaims(), { phase: 'reconcile' });
        return;
      case 'reconcile':
        this.run(this.reconcileClaims(), { phase: 'reconcile' });
        if (msg.completions) this.run(this.reconcileCompletions(), { phase: 'reconcile' });
        return;
      case 'retry_expiry':
        // The write failed (a lost lease, NATS away): try again shortly rather than never.
        // Re-armed whether or not the key still looks live here (the `expired` revision may be
        // written, its audit or delete not): end() finishes that, and ends nothing not yet due.
        this.expiries.set(msg.key, Date.now() + 1_000);
        this.arm();
        return;
      case 'key_of':
        msg.reply?.(this.keys.get(msg.id) ?? null);
        return;
      case 'agent_down':
        this.releaseClaimsOf(msg.agentId, msg.reason);
        return;
      case 'tasks_changed':
        for (const t of msg.tasks) if (t.status === 'done') this.emitCompletion(t);
        return;
      default:
        return;
    }
  }

  async terminate(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.sweeper);
    clearTimeout(this.reconcileTimer);
    this.stopWatch();
    await Promise.allSettled([...this.pending]);
  }

  private track(key: string, p: Pheromone): void {
    this.live.add(key);
    this.keys.set(p.id, key);
    if (p.expiresAt !== null) this.expiries.set(key, p.expiresAt);
    else this.expiries.delete(key);
    const before = this.claimant.get(key);
    if (before !== undefined && before !== p.claimedBy) this.unclaim(before, key);
    if (p.claimedBy !== null) {
      this.claimant.set(key, p.claimedBy);
      const set = this.claims.get(p.claimedBy) ?? new Set<string>();
      this.claims.set(p.claimedBy, set);
      set.add(key);
    } else this.claimant.delete(key);
  }

  private untrack(key: string): void {
    this.live.delete(key);
    this.keys.delete(key.slice(0, key.indexOf('.')));
    this.expiries.delete(key);
    const holder = this.claimant.get(key);
    if (holder !== undefined) this.unclaim(holder, key);
    this.claimant.delete(key);
  }

  /** Forget one claim of `holder`, and the holder once it has none (labels come and go). */
  private unclaim(holder: string, key: string): void {
    const set = this.claims.get(holder);
    set?.delete(key);
    if (set && !set.size) this.claims.delete(holder);
  }

  private arm(): void {
    clearTimeout(this.timer);
    const first = this.expiries.peek();
    if (!first || this.stopped) return;
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, first.value - Date.now()));
    this.timer = setTimeout(() => this.ctx.send({ type: 'expire' }), ms);
    this.timer.unref();
  }

  private expireDue(): void {
    const now = Date.now();
    for (let e = this.expiries.peek(); e && e.value <= now; e = this.expiries.peek()) {
      this.expiries.pop();
      const key = e.key;
      const retry: FieldMessage = { type: 'retry_expiry', key };
      this.run(end(this.store, key, 'expired', 'hub', now, { dueBy: now }), { key, phase: 'expire' }, () =>
        this.ctx.send(retry),
      );
    }
    this.arm();
  }

  /**
   * Claims held by registered agents that are offline now are released: an `agent_down` cast while
   * no Field actor ran (a failover, a restart) is lost, and a release that failed is retried here.
   */
  private async reconcileClaims(): Promise<void> {
    const { registry, presence } = this.input;
    if (!registry || !presence || !this.claims.size) return;
    const r = await call<{ registration: { id: string }; online: boolean }[]>(
      presence,
      { type: 'agents' },
      { registry, timeout: 5_000 },
    );
    if (!r.ok) return;
    for (const { registration, online } of r.value)
      if (!online && this.claims.get(registration.id)?.size)
        this.releaseClaimsOf(registration.id, 'offline (reconciled)');
  }

  /**
   * Completion pheromones a leader change may have dropped: every done task that emits one and has
   * no `emitted` event for it in the audit trail gets it now (its id is its task's, so once only).
   */
  private async reconcileCompletions(): Promise<void> {
    const { registry, taskQueue } = this.input;
    if (!registry || !taskQueue) return;
    const r = await call<TaskRecord[]>(taskQueue, { type: 'snapshot' }, { registry, timeout: 10_000 });
    if (!r.ok) return;
    const { bus } = this.store;
    for (const task of r.value) {
      const type = task.status === 'done' ? completionType(task) : null;
      if (!type) continue;
      const id = pheromoneId(completionSource(task), type, task.id, 0);
      const audited = await bus.jsm.direct
        .getMessage(bus.names.streams.field, {
          last_by_subj: bus.names.subjects.fieldAudit('emitted', id, type),
        })
        .catch(() => null);
      if (!audited) this.emitCompletion(task);
    }
  }

  private releaseClaimsOf(agentId: string, reason: string): void {
    const keys = [...(this.claims.get(agentId) ?? [])];
    if (!keys.length) return;
    this.log.info(
      { agent_id: agentId, claims: keys.length, reason, phase: 'release' },
      'releasing an offline agent’s claims',
    );
    for (const key of keys)
      this.run(release(this.store, key, 'hub', { holder: agentId }), {
        key,
        agent_id: agentId,
        phase: 'release',
      });
  }

  private emitCompletion(task: TaskRecord): void {
    const type = completionType(task);
    if (!type) return;
    // A result may be four times a payload's limit: a large one is named, not copied.
    const size = JSON.stringify(task.result ?? null).length;
    const payload = {
      task_id: task.id,
      result: size > COMPLETION_RESULT_MAX ? { truncated: true, chars: size } : (task.result ?? null),
      ...(typeof task.metadata?.pheromone === 'string' ? { pheromone: task.metadata.pheromone } : {}),
    };
    // The task id is the idempotency key: a task seen done again (a restart) emits nothing new.
    this.run(
      emit(
        this.store,
        { v: 1, type, selector: '', payload, idempotencyKey: task.id },
        completionSource(task),
      ),
      { task_id: task.id, phase: 'completion' },
    );
  }

  /**
   * An ended pheromone's delete marker stays in the bucket (every observer's catch-up would carry
   * it forever); once no observer that fell behind can still need it, it is removed for good,
   * unless the key was written again meanwhile (compare-and-set on the marker's revision).
   */
  private sweepTombstones(): void {
    const before = Date.now() - this.tombstoneKeepMs;
    for (const [key, t] of this.tombstones) {
      if (t.at > before) continue;
      this.tombstones.delete(key);
      this.run(this.store.kv.remove(key, t.revision), { key, phase: 'tombstone' });
    }
  }

  /** Run a write in the background; a failure is logged (the next leader's start repairs it). */
  private run(p: Promise<unknown>, fields: Record<string, unknown>, onError?: () => void): void {
    const tracked = p
      .catch((err) => {
        this.log.warn({ err, ...fields }, 'field write failed');
        if (!this.stopped) onError?.();
      })
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }
}
