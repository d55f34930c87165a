/**
 * @module task-queue/store
 * The task records of record (a KV bucket, one key per task) with a write-through cache. Every
 * change goes through `apply`, which runs the pure `applyTaskCommand` and writes with
 * compare-and-set on the cached revision; on a conflict (another hub wrote) it re-reads and
 * re-applies. Commands for one task are serialized, and commands that queue up behind an in-flight
 * write are applied together and written ONCE (e.g. `accepted` + `completed` of a fast agent): this
 * keeps JetStream writes per task low without weakening durability (no caller is answered before
 * the write that contains its change has been acknowledged by the server). A refusal decided on a
 * cached record is checked against the bucket before it is returned.
 * It does not execute effects: the caller does, after the write. The cache is complete because only
 * the hub holding the lease runs a TaskQueue; a late write by a previous leader makes the next
 * compare-and-set on that task conflict, which re-reads it.
 */
import type { KvValue, TypedKv } from '../../src/bus/kv.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { isTerminal, type TaskRecord } from '../../src/protocol/task.js';
import type { TaskQueueStats } from './messages.js';
import { applyTaskCommand, type TaskCommand, type TaskCommandResult, type TaskQueueConfig } from './state.js';

export interface StoredTask {
  record: TaskRecord;
  revision: number;
}

interface Queued {
  command: TaskCommand;
  resolve: (r: TaskCommandResult) => void;
  reject: (e: unknown) => void;
}

export interface TaskStoreOptions {
  now?: () => number;
  config?: Partial<TaskQueueConfig>;
  /** Re-reads after a compare-and-set conflict before giving up with `conflict` (default 10). */
  maxConflictRetries?: number;
}

export type TaskChangeListener = (task: StoredTask) => void;

export class TaskStore {
  private readonly cache = new Map<string, StoredTask>();
  private readonly queues = new Map<string, Queued[]>();
  private readonly writing = new Set<string>();
  /** Writes and removals under way (`stop` waits for them). */
  private readonly flushes = new Set<Promise<void>>();
  /** Task id -> when its lingering write is due (epoch ms from `performance.now()`). */
  private readonly lingering = new Map<string, number>();
  /** One timer for all lingering writes, armed for the earliest; they are flushed together. */
  private lingerTimer: NodeJS.Timeout | undefined;
  private lingerTimerAt = Number.POSITIVE_INFINITY;
  private readonly listeners = new Set<TaskChangeListener>();
  /** Finished tasks -> when they finished, in the order they finished (for retention). */
  private readonly finishedAt = new Map<string, number>();
  private readonly counts: TaskQueueStats = {
    total: 0,
    byStatus: {},
    byQueue: {},
    byPriority: {},
    tokensUsed: 0,
  };
  private readonly now: () => number;
  private readonly maxConflictRetries: number;

  constructor(
    private readonly kv: TypedKv<TaskRecord>,
    private readonly opts: TaskStoreOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.maxConflictRetries = opts.maxConflictRetries ?? 10;
  }

  /**
   * Read every task into the cache (one pass over the bucket), or take them from `from`: the
   * bucket's records as of its last sequence, read by someone else (actors/task-mirror).
   */
  async load(from?: ReadonlyMap<string, KvValue<TaskRecord>>): Promise<void> {
    for (const { value, revision } of (from ?? (await this.kv.entries())).values()) {
      this.remember({ record: value, revision });
    }
    // Loaded in the order the records were last written: retention wants the oldest finished first.
    const byAge = [...this.finishedAt].sort((a, b) => a[1] - b[1]);
    this.finishedAt.clear();
    for (const [id, at] of byAge) this.finishedAt.set(id, at);
  }

  /** Finished tasks -> when they finished, oldest first (see retention.ts `expiredTasks`). */
  finished(): ReadonlyMap<string, number> {
    return this.finishedAt;
  }

  /**
   * Removes a finished task's record from the bucket and the cache (retention). Serialized with
   * the task's commands like a write; a command arriving meanwhile runs after it (and finds the
   * task unknown). Resolves false, removing nothing, when the task is no longer finished, has a
   * command pending, or was written by someone else since it was read (then it is re-read).
   */
  remove(id: string): Promise<boolean> {
    const stored = this.cache.get(id);
    if (!stored || !isTerminal(stored.record.status) || this.writing.has(id) || this.queues.has(id)) {
      return Promise.resolve(false);
    }
    this.writing.add(id);
    return this.track(this.removeStored(id, stored));
  }

  private async removeStored(id: string, stored: StoredTask): Promise<boolean> {
    try {
      const r = await this.kv.remove(id, stored.revision);
      if (!r.ok) {
        await this.read(id);
        return false;
      }
      this.forget(id);
      return true;
    } finally {
      this.writing.delete(id);
      if (this.queues.has(id)) void this.flush(id);
    }
  }

  /** Registers work under way, so that `stop` waits for it (whatever its outcome). */
  private track<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.flushes.add(settled);
    void settled.then(() => this.flushes.delete(settled));
    return work;
  }

  /** Write what is lingering now; resolves once every write under way has been answered. */
  async stop(): Promise<void> {
    this.disarmLinger();
    for (const id of [...this.lingering.keys()]) {
      this.lingering.delete(id);
      if (!this.writing.has(id)) void this.flush(id);
    }
    await Promise.all(this.flushes);
  }

  /** Called with every task whose stored record changed. */
  onChange(listener: TaskChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(id: string): StoredTask | undefined {
    return this.cache.get(id);
  }

  all(): IterableIterator<StoredTask> {
    return this.cache.values();
  }

  get size(): number {
    return this.cache.size;
  }

  /**
   * Apply a command to task `id` and persist the result. Resolves with the command's own outcome
   * (refusals included) once the write containing it is acknowledged; rejects only on I/O failure
   * (then nothing of this command was applied, and it is safe to retry).
   *
   * `lingerMs` lets the write wait that long for more commands on the same task (a submit for the
   * assign that follows it, an `accepted` for the `completed` of a fast agent): they are then
   * written once. A command without linger flushes at once, taking any lingering ones with it.
   */
  apply(id: string, command: TaskCommand, opts: { lingerMs?: number } = {}): Promise<TaskCommandResult> {
    return new Promise((resolve, reject) => {
      let q = this.queues.get(id);
      if (!q) {
        q = [];
        this.queues.set(id, q);
      }
      q.push({ command, resolve, reject });
      if (this.writing.has(id)) return;
      if (opts.lingerMs && opts.lingerMs > 0) {
        if (!this.lingering.has(id)) {
          const due = performance.now() + opts.lingerMs;
          this.lingering.set(id, due);
          this.armLinger(due);
        }
        return;
      }
      if (this.lingering.delete(id) && this.lingering.size === 0) this.disarmLinger();
      void this.flush(id);
    });
  }

  /** Nothing lingers any more: a timer left armed would only wake the process for nothing. */
  private disarmLinger(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    this.lingerTimerAt = Number.POSITIVE_INFINITY;
  }

  private armLinger(due: number): void {
    if (due >= this.lingerTimerAt) return;
    clearTimeout(this.lingerTimer);
    this.lingerTimerAt = due;
    this.lingerTimer = setTimeout(() => this.flushDue(), Math.max(0, due - performance.now()));
  }

  /**
   * Flush every lingering write that is due (one timer callback for all of them, so their
   * writes leave in one batch), then re-arm for the next.
   */
  private flushDue(): void {
    this.lingerTimer = undefined;
    this.lingerTimerAt = Number.POSITIVE_INFINITY;
    // Timers fire up to a millisecond early or late: take what is due within half a millisecond.
    const now = performance.now() + 0.5;
    let next = Number.POSITIVE_INFINITY;
    for (const [id, due] of this.lingering) {
      if (due <= now) {
        this.lingering.delete(id);
        if (!this.writing.has(id)) void this.flush(id);
      } else if (due < next) next = due;
    }
    if (next !== Number.POSITIVE_INFINITY) this.armLinger(next);
  }

  /** What `command` would make of task `id` now, without writing anything. */
  preview(id: string, command: TaskCommand): TaskCommandResult {
    return applyTaskCommand(this.cache.get(id)?.record, command, this.now(), this.opts.config);
  }

  private flush(id: string): Promise<void> {
    return this.track(this.flushTask(id));
  }

  private async flushTask(id: string): Promise<void> {
    this.writing.add(id);
    try {
      for (;;) {
        const batch = this.queues.get(id);
        if (!batch || batch.length === 0) break;
        this.queues.delete(id);
        try {
          await this.writeBatch(id, batch);
        } catch (err) {
          for (const q of batch) q.reject(err);
        }
      }
    } finally {
      this.writing.delete(id);
      this.queues.delete(id);
    }
  }

  private async writeBatch(id: string, batch: Queued[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      // After a conflict the cached record is stale: read the current one. A submit missing from
      // the (complete) cache is a new task: it is created without a read, and `create` refuses it
      // atomically if the key exists after all (then the next attempt reads it).
      const base =
        attempt === 0
          ? (this.cache.get(id) ?? (batch[0]!.command.type === 'submit' ? undefined : await this.read(id)))
          : await this.read(id);
      let current = base?.record;
      const results: TaskCommandResult[] = [];
      let changed = false;
      const now = this.now();
      for (const q of batch) {
        const r = applyTaskCommand(current, q.command, now, this.opts.config);
        results.push(r);
        if (r.ok && !r.duplicate) {
          current = r.task;
          changed = true;
        }
      }
      if (!changed || !current) {
        // A refusal decided on the cached record may be wrong when another hub has written since
        // (a leader that was stalled and resumed, for one): read the record once before answering.
        if (attempt === 0 && base && results.some((r) => !r.ok)) {
          const fresh = await this.read(id);
          if (fresh && fresh.revision !== base.revision) continue;
        }
        for (const [i, q] of batch.entries()) q.resolve(results[i]!);
        return;
      }
      const w = base ? await this.kv.update(id, current, base.revision) : await this.kv.create(id, current);
      if (w.ok) {
        this.remember({ record: current, revision: w.revision });
        for (const [i, q] of batch.entries()) q.resolve(results[i]!);
        return;
      }
      // Someone else wrote first (another hub, or an earlier create): re-read and re-apply.
      if (attempt >= this.maxConflictRetries) {
        const error = { code: ERROR_CODES.CONFLICT, message: `task ${id}: too many concurrent writers` };
        for (const q of batch) q.resolve({ ok: false, error });
        return;
      }
    }
  }

  private async read(id: string): Promise<StoredTask | undefined> {
    const got = await this.kv.get(id);
    if (!got) {
      // Gone from the bucket (removed by retention, here or by an earlier leader).
      this.forget(id);
      return undefined;
    }
    const stored = { record: got.value, revision: got.revision };
    this.remember(stored);
    return this.cache.get(id);
  }

  /** Counts by status, queue and priority, kept up to date on every change (O(1) to read). */
  stats(): TaskQueueStats {
    return {
      total: this.counts.total,
      byStatus: { ...this.counts.byStatus },
      byQueue: { ...this.counts.byQueue },
      byPriority: { ...this.counts.byPriority },
      tokensUsed: this.counts.tokensUsed,
    };
  }

  private forget(id: string): void {
    const prev = this.cache.get(id);
    if (!prev) return;
    this.cache.delete(id);
    this.finishedAt.delete(id);
    this.count(prev.record, undefined);
  }

  private remember(stored: StoredTask): void {
    const prev = this.cache.get(stored.record.id);
    if (prev && prev.revision >= stored.revision) return;
    this.cache.set(stored.record.id, stored);
    this.count(prev?.record, stored.record);
    const id = stored.record.id;
    if (!isTerminal(stored.record.status)) this.finishedAt.delete(id);
    else if (!this.finishedAt.has(id)) this.finishedAt.set(id, stored.record.completedAt ?? this.now());
    for (const l of this.listeners) l(stored);
  }

  private count(prev: TaskRecord | undefined, next: TaskRecord | undefined): void {
    const c = this.counts;
    const bump = (m: Record<string, number>, k: string, d: number) => {
      const v = (m[k] ?? 0) + d;
      if (v) m[k] = v;
      else delete m[k];
    };
    for (const [t, d] of [
      [prev, -1],
      [next, 1],
    ] as const) {
      if (!t) continue;
      c.total += d;
      c.tokensUsed += d * t.tokensUsed;
      bump(c.byStatus, t.status, d);
      if (!isTerminal(t.status)) bump(c.byQueue, t.queue, d);
      if (t.status === 'queued') bump(c.byPriority, t.priority, d);
    }
  }
}
