/**
 * @module task-mirror/process
 * The warm standby of the task records. While its hub stands by (`resume`, cast by the hub on each
 * change of role to standby) it reads the tasks bucket once, then follows its revisions (an ordered
 * consumer from the sequence after that read), so that a hub taking over hands its TaskQueue the
 * records at once instead of reading them all while no task moves: at 100,000 open tasks that read
 * was 5.6-7.1 s of a failover (docs/scaling.md). It starts idle: a hub that leads from its start
 * never follows its own writes.
 *
 * `take` (called by the TaskQueue as it starts) answers the records once the mirror has applied
 * every revision up to the bucket's last sequence at the time of asking, then stops following: the
 * TaskQueue is the writer now and keeps its own cache. It answers null, and the TaskQueue reads the
 * bucket itself, while the first read is under way, after a take, after an error, or when the
 * tail does not reach that sequence within TAKE_WAIT_MS (it never does when retention removed the
 * bucket's last revision before the tail saw it). The next `resume` reads and follows again.
 * It never crashes: a failure costs a failover its speed, not its correctness, and must not spend
 * the restart budget of the supervisor it shares with the lease. A failed read is tried again.
 * What it hands over can hold one record too many: a finished task that retention removed
 * (a purge marker, then a purge of the key up to it) after the tail had fallen behind, so that
 * the purge came first and the tail never saw the marker. The TaskQueue's retention sweep at its
 * start removes it again: the record is still due, and its remove finds the key gone and forgets
 * it (task-queue/store.ts).
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import { type KvValue, openKv } from '../../src/bus/kv.js';
import { type KvRevision, type KvTail, kvLastSeq, tailKv } from '../../src/bus/kv-tail.js';
import { decodePayload } from '../../src/protocol/envelope.js';
import { type TaskRecord, TaskRecordSchema } from '../../src/protocol/task.js';
import { exponentialDelay } from '../../src/runtime/backoff.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import { MirrorState } from './state.js';

/** How long `take` waits for the tail to reach the bucket's last sequence before answering null. */
export const TAKE_WAIT_MS = 2_000;

export type TaskMirrorMessage =
  /** call: the records (then the mirror stops following), or null: read the bucket yourself. */
  | { type: 'take'; reply?: (records: Map<string, KvValue<TaskRecord>> | null) => void }
  /** cast: this hub stands by (does not write the bucket); read and follow it, unless already. */
  | { type: 'resume' }
  /** call: counts, for tests and logs. */
  | { type: 'status'; reply?: (s: TaskMirrorStatus) => void };

export interface TaskMirrorStatus {
  phase: 'reading' | 'following' | 'stopped';
  tasks: number;
  /** Every revision up to this stream sequence is applied. */
  through: number;
}

export interface TaskMirrorInput {
  bus: Bus;
  log: Logger;
}

interface Waiter {
  seq: number;
  done: (held: boolean) => void;
}

export class TaskMirror implements Server<TaskMirrorMessage> {
  private readonly log: Logger;
  private readonly bucket: string;
  private phase: TaskMirrorStatus['phase'] = 'stopped';
  /** Raised by every stop: a read or a revision of an older generation is dropped. */
  private generation = 0;
  private state: MirrorState | undefined;
  private tail: KvTail | undefined;
  private waiters: Waiter[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  /** A take is under way; a `resume` meanwhile (the lease lost again at once) is kept for its end. */
  private taking = false;
  private resumeAfterTake = false;

  private constructor(private readonly input: TaskMirrorInput) {
    this.log = input.log.child({ actor: 'task-mirror' });
    this.bucket = input.bus.names.buckets.tasks;
  }

  static start(input: TaskMirrorInput, _ctx: ServerContext): TaskMirror {
    return new TaskMirror(input);
  }

  handle(msg: TaskMirrorMessage): void {
    switch (msg.type) {
      case 'take':
        this.taking = true;
        void this.take().then((records) => {
          this.taking = false;
          if (this.resumeAfterTake) {
            this.resumeAfterTake = false;
            this.follow(0);
          }
          msg.reply?.(records);
        });
        return;
      case 'resume':
        if (this.taking) this.resumeAfterTake = true;
        else if (this.phase === 'stopped') this.follow(0);
        return;
      case 'status':
        msg.reply?.({
          phase: this.phase,
          tasks: this.state?.tasks.size ?? 0,
          through: this.state?.through ?? 0,
        });
        return;
    }
  }

  terminate(): void {
    this.stop();
  }

  private follow(attempt: number): void {
    // A retry armed by an earlier failure, or a tail of an earlier generation, ends here.
    clearTimeout(this.retryTimer);
    this.tail?.stop();
    this.tail = undefined;
    const gen = ++this.generation;
    this.phase = 'reading';
    const started = performance.now();
    void this.read(gen).then(
      () => {
        if (gen !== this.generation) return;
        this.phase = 'following';
        this.log.info(
          {
            phase: 'start',
            tasks: this.state?.tasks.size,
            through: this.state?.through,
            read_ms: Math.round(performance.now() - started),
          },
          'task mirror following the bucket',
        );
      },
      (err) => {
        if (gen !== this.generation) return;
        this.stop();
        this.log.warn({ err, attempt }, 'task mirror could not read the bucket; trying again');
        this.retryTimer = setTimeout(
          () => this.follow(attempt + 1),
          exponentialDelay(attempt, { min: 1_000, max: 30_000 }),
        );
        this.retryTimer.unref();
      },
    );
  }

  private async read(gen: number): Promise<void> {
    const { bus } = this.input;
    // The last sequence before the read: everything up to it is in what the read returns.
    const before = await kvLastSeq(bus, this.bucket);
    const kv = await openKv(bus, this.bucket, TaskRecordSchema);
    const entries = await kv.entries();
    if (gen !== this.generation) return;
    let through = before;
    for (const e of entries.values()) through = Math.max(through, e.revision);
    this.state = new MirrorState(entries, through);
    const tail = await tailKv(bus, this.bucket, through + 1, (r) => this.onRevision(gen, r));
    if (gen !== this.generation) tail.stop();
    else this.tail = tail;
  }

  private onRevision(gen: number, r: KvRevision): void {
    if (gen !== this.generation || !this.state) return;
    let record: TaskRecord | null = null;
    if (r.operation === 'put') {
      const decoded = decodePayload(TaskRecordSchema, r.data, Number.MAX_SAFE_INTEGER);
      if (!decoded.ok) {
        // The TaskQueue's own read decides what an invalid record means; the mirror does not guess.
        this.log.warn(
          { task_id: r.key, seq: r.seq, error: decoded.error },
          'invalid task record; mirror stopped',
        );
        this.stop();
        return;
      }
      record = decoded.value;
    }
    this.state.apply(r.key, r.seq, record);
    if (this.waiters.length > 0) this.wake();
  }

  private async take(): Promise<Map<string, KvValue<TaskRecord>> | null> {
    if (this.phase !== 'following' || !this.state) {
      this.stop();
      return null;
    }
    const asked = performance.now();
    let lastSeq: number;
    try {
      lastSeq = await kvLastSeq(this.input.bus, this.bucket);
    } catch (err) {
      this.log.warn({ err }, 'task mirror could not ask for the bucket’s last sequence');
      this.stop();
      return null;
    }
    const held = await this.reach(lastSeq);
    const state = this.state;
    this.stop();
    const waitedMs = Math.round(performance.now() - asked);
    if (!held || !state) {
      this.log.warn(
        { phase: 'take', through: state?.through, last_seq: lastSeq, waited_ms: waitedMs },
        'task mirror did not reach the bucket’s last sequence; the task queue reads the bucket',
      );
      return null;
    }
    this.log.info(
      { phase: 'take', tasks: state.tasks.size, through: lastSeq, waited_ms: waitedMs },
      'task records handed over',
    );
    return state.tasks;
  }

  /** Resolves true once every revision up to `seq` is applied, false after TAKE_WAIT_MS or a stop. */
  private reach(seq: number): Promise<boolean> {
    if (this.state?.holds(seq)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(false), TAKE_WAIT_MS);
      const finish = (held: boolean) => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(held);
      };
      const waiter: Waiter = { seq, done: finish };
      this.waiters.push(waiter);
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) if (this.state?.holds(w.seq)) w.done(true);
  }

  private stop(): void {
    this.generation++;
    this.phase = 'stopped';
    clearTimeout(this.retryTimer);
    this.tail?.stop();
    this.tail = undefined;
    this.state = undefined;
    for (const w of [...this.waiters]) w.done(false);
  }
}
