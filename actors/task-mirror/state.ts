/**
 * @module task-mirror/state
 * The pure part of the task mirror: the records of the tasks bucket as of one stream sequence, kept
 * up to date from the bucket's revisions in stream order. A revision no newer than the one held for
 * its key changes nothing (the tail may start before the end of the first read, so it can repeat
 * what that read saw); a delete or purge forgets the key.
 */
import type { KvValue } from '../../src/bus/kv.js';
import type { TaskRecord } from '../../src/protocol/task.js';

export type MirroredTask = KvValue<TaskRecord>;

export class MirrorState {
  readonly tasks = new Map<string, MirroredTask>();
  /** Every revision up to this stream sequence has been applied. */
  through = 0;

  /** The first read: every key's value as of sequence `through`. */
  constructor(initial: Iterable<[string, MirroredTask]> = [], through = 0) {
    for (const [key, t] of initial) this.tasks.set(key, t);
    this.through = through;
  }

  /** One revision of the bucket (`record` null for deletes and purges). */
  apply(key: string, seq: number, record: TaskRecord | null): void {
    if (seq > this.through) this.through = seq;
    const held = this.tasks.get(key);
    if (held && held.revision >= seq) return;
    if (record) this.tasks.set(key, { value: record, revision: seq });
    else this.tasks.delete(key);
  }

  /** Whether every revision the bucket held at sequence `lastSeq` has been applied. */
  holds(lastSeq: number): boolean {
    return this.through >= lastSeq;
  }
}
