/**
 * @module scheduler/state
 * The scheduler's matching index: which queued task goes to which agent next. Derived state (rebuilt
 * from task records and agent registrations after a restart), held in memory, mutated in place, no
 * I/O; `now` is always a parameter. It decides, it does not apply: the caller turns each returned
 * assignment into a task-queue `assign` command and calls `release` if that command is refused.
 *
 * Rules. Tasks: priority lane (urgent > high > normal > low) then FIFO (`enqueuedAt`, then id); with
 * `agingMs > 0` a task's sort key is `enqueuedAt + rank * agingMs`, so a task that has waited
 * `agingMs` per lane outranks newer higher-priority work (no starvation under constant urgent load;
 * with aging off, lower lanes wait while higher lanes have eligible work). A task goes only to an agent
 * serving its queue, declaring every capability it needs, with a free slot, and not before its
 * `notBefore`. Agents: among the eligible, the least loaded (busy/slots), then the least recently
 * assigned, then the smallest id, which spreads equal agents round-robin and never starves one;
 * an agent the task `avoid`s (it rejected, failed or timed out on it) gets it only when no other
 * eligible agent has a free slot.
 *
 * Complexity (n queued tasks, m agents, B distinct (queue, capability-set) signatures among queued
 * tasks, B_a the signatures one agent can serve; B and B_a depend on the variety of work, not on n):
 * - Queued tasks live in one heap per signature; a heap of buckets orders bucket heads. Every task
 *   in a bucket has the same eligible agents, so only the head of each bucket is ever examined.
 * - Each bucket keeps a heap of its eligible agents that have a free slot, ordered by the fairness key.
 * - One assignment: pop the best bucket head O(log B + log n), take its best agent O(1), then
 *   re-key that agent in its B_a bucket heaps O(B_a log m). A bucket found without free agents is set
 *   aside for the rest of the call (its tasks cannot be served until an agent frees a slot), so a call
 *   costs O(k (log n + B_a log m) + B log B) for k assignments, never a scan of the queue.
 * - addTask/removeTask O(log n) (+ O(m) once when a task opens a new signature); upsertAgent and
 *   release O(B log m); delayed tasks wait in a heap by `notBefore`, promoted when due, O(log n) each.
 */
import type { AgentId, Capability, QueueName, TaskId } from '../../src/protocol/ids.js';
import { PRIORITY_RANK, type Priority } from '../../src/protocol/task.js';
import { IndexedHeap } from '../../src/runtime/indexed-heap.js';

export interface TaskSummary {
  id: TaskId;
  priority: Priority;
  queue: QueueName;
  /** Capabilities the task needs. */
  capabilities: readonly Capability[];
  /** FIFO position within the lane, epoch ms (pass createdAt to keep a retried task's place). */
  enqueuedAt: number;
  /** Not eligible before this time (delayed task or retry backoff). */
  notBefore?: number;
  /** Agents to pass over while another eligible agent has a free slot (at most a few). */
  avoid?: readonly AgentId[];
}

export interface AgentSummary {
  id: AgentId;
  capabilities: readonly Capability[];
  queues: readonly QueueName[];
  /** Concurrency: tasks the agent may hold at once. */
  slots: number;
  /** Tasks it holds now (assigned, working or blocked). */
  busy: number;
}

export interface Assignment {
  taskId: TaskId;
  agentId: AgentId;
}

export interface SchedulerOptions {
  /** Ms of waiting worth one priority lane; 0 disables aging (strict lanes). Default 0. */
  agingMs: number;
}

export interface SchedulerStats {
  /** Tasks eligible now (or as soon as an agent is free). */
  ready: number;
  /** Tasks waiting for their notBefore. */
  delayed: number;
  agents: number;
  /** Distinct (queue, capabilities) signatures among ready tasks. */
  buckets: number;
}

/** Sort key of a task: lower is scheduled first. Exported for the reference scheduler in tests. */
export interface TaskKey {
  primary: number;
  enqueuedAt: number;
  id: string;
}

export function taskKey(t: TaskSummary, agingMs: number): TaskKey {
  const rank = PRIORITY_RANK[t.priority];
  return { primary: agingMs > 0 ? t.enqueuedAt + rank * agingMs : rank, enqueuedAt: t.enqueuedAt, id: t.id };
}

export function taskKeyLess(a: TaskKey, b: TaskKey): boolean {
  if (a.primary !== b.primary) return a.primary < b.primary;
  if (a.enqueuedAt !== b.enqueuedAt) return a.enqueuedAt < b.enqueuedAt;
  return a.id < b.id;
}

/**
 * Tasks in the order the index hands them out, each with its `taskKey`, for reading a backlog
 * into it: while only a head of this order is indexed, every task not yet read sorts after every
 * task that is, so a pick made meanwhile is the pick the whole index would make; a task not yet
 * read only waits. (An agent that only such tasks match waits for them too.)
 */
export function inPickOrder<T>(
  tasks: readonly T[],
  summaryOf: (t: T) => TaskSummary,
  agingMs: number,
): { item: T; key: TaskKey }[] {
  return tasks
    .map((item) => ({ item, key: taskKey(summaryOf(item), agingMs) }))
    .sort((a, b) => (taskKeyLess(a.key, b.key) ? -1 : taskKeyLess(b.key, a.key) ? 1 : 0));
}

/** Fairness key of an agent: lower gets the next task. */
export interface AgentKey {
  busy: number;
  slots: number;
  /** Scheduler-local counter value of its last assignment (0 = never). */
  lastAssigned: number;
  id: string;
}

export function agentKeyLess(a: AgentKey, b: AgentKey): boolean {
  // compare busy/slots without division
  const l = a.busy * b.slots;
  const r = b.busy * a.slots;
  if (l !== r) return l < r;
  if (a.lastAssigned !== b.lastAssigned) return a.lastAssigned < b.lastAssigned;
  return a.id < b.id;
}

/** Whether an agent may take a task: queue served and needed capabilities a subset of its own. */
export function eligible(
  agent: { queues: readonly string[]; capabilities: readonly string[] },
  task: { queue: string; capabilities: readonly string[] },
): boolean {
  return agent.queues.includes(task.queue) && task.capabilities.every((c) => agent.capabilities.includes(c));
}

// --- Internals ---

interface AgentState {
  id: AgentId;
  caps: Set<Capability>;
  queues: Set<QueueName>;
  slots: number;
  busy: number;
  lastAssigned: number;
  /** Signatures this agent can serve (bucket keys). */
  buckets: Set<string>;
}

interface Bucket {
  sig: string;
  queue: QueueName;
  caps: readonly Capability[];
  tasks: IndexedHeap<TaskId, TaskKey>;
  /** Eligible agents with at least one free slot. */
  free: IndexedHeap<AgentId, AgentKey>;
  /** All eligible agents, free or not (so a release can re-enter the free heap). */
  members: Set<AgentId>;
}

interface TaskState {
  summary: TaskSummary;
  key: TaskKey;
  /** Bucket signature when ready; null while delayed. */
  sig: string | null;
}

function signature(queue: string, caps: readonly string[]): string {
  // '\n' cannot occur in queue names or capabilities, so the key is unambiguous
  return [queue, ...[...new Set(caps)].sort()].join('\n');
}

export class Scheduler {
  readonly #agingMs: number;
  readonly #tasks = new Map<TaskId, TaskState>();
  readonly #agents = new Map<AgentId, AgentState>();
  readonly #buckets = new Map<string, Bucket>();
  /** Buckets ordered by their head task. */
  readonly #heads = new IndexedHeap<string, TaskKey>(taskKeyLess);
  readonly #delayed = new IndexedHeap<TaskId, { at: number; id: string }>((a, b) =>
    a.at !== b.at ? a.at < b.at : a.id < b.id,
  );
  #counter = 0;

  constructor(options: Partial<SchedulerOptions> = {}) {
    this.#agingMs = options.agingMs ?? 0;
  }

  // --- Tasks ---

  /** Add (or replace) a queued task. A task with `notBefore` waits until it is due. */
  addTask(t: TaskSummary): void {
    this.removeTask(t.id);
    const state: TaskState = {
      summary: { ...t, capabilities: [...t.capabilities], ...(t.avoid ? { avoid: [...t.avoid] } : {}) },
      key: taskKey(t, this.#agingMs),
      sig: null,
    };
    this.#tasks.set(t.id, state);
    if (t.notBefore !== undefined) this.#delayed.set(t.id, { at: t.notBefore, id: t.id });
    else this.#makeReady(state);
  }

  /** Forget a task (assigned elsewhere, cancelled, failed). Returns whether it was known. */
  removeTask(id: TaskId): boolean {
    const state = this.#tasks.get(id);
    if (!state) return false;
    this.#tasks.delete(id);
    this.#delayed.delete(id);
    if (state.sig !== null) {
      const b = this.#buckets.get(state.sig)!;
      b.tasks.delete(id);
      this.#refreshHead(b);
    }
    return true;
  }

  hasTask(id: TaskId): boolean {
    return this.#tasks.has(id);
  }

  /** Earliest `notBefore` among delayed tasks, so the caller can set a single timer; null if none. */
  nextWakeAt(): number | null {
    return this.#delayed.peek()?.value.at ?? null;
  }

  // --- Agents ---

  /** Register an agent or replace its declaration; keeps its fairness history. */
  upsertAgent(a: AgentSummary): void {
    const prev = this.#agents.get(a.id);
    if (prev) this.#detach(prev);
    const state: AgentState = {
      id: a.id,
      caps: new Set(a.capabilities),
      queues: new Set(a.queues),
      slots: Math.max(0, a.slots),
      busy: Math.max(0, a.busy),
      lastAssigned: prev?.lastAssigned ?? 0,
      buckets: new Set(),
    };
    this.#agents.set(a.id, state);
    for (const b of this.#buckets.values()) if (this.#serves(state, b)) this.#join(state, b);
  }

  removeAgent(id: AgentId): boolean {
    const a = this.#agents.get(id);
    if (!a) return false;
    this.#detach(a);
    this.#agents.delete(id);
    return true;
  }

  /** Set how many tasks the agent holds (e.g. from its FSM after a restart). */
  setBusy(id: AgentId, busy: number): void {
    const a = this.#agents.get(id);
    if (!a) return;
    a.busy = Math.max(0, busy);
    this.#rekey(a);
  }

  /** One of the agent's tasks ended (or an assignment was refused): free a slot. */
  release(id: AgentId, n = 1): void {
    const a = this.#agents.get(id);
    if (a) this.setBusy(id, a.busy - n);
  }

  agent(id: AgentId): Readonly<AgentSummary> | undefined {
    const a = this.#agents.get(id);
    if (!a) return undefined;
    return { id: a.id, capabilities: [...a.caps], queues: [...a.queues], slots: a.slots, busy: a.busy };
  }

  // --- Matching ---

  /**
   * Up to `limit` assignments, best task first. Each returned agent's slot is reserved (busy + 1) and
   * each task leaves the index; hand back with `release` + `addTask` if the assignment is not applied.
   */
  nextAssignments(now: number, limit = Number.POSITIVE_INFINITY): Assignment[] {
    this.#promoteDue(now);
    const out: Assignment[] = [];
    const setAside: Bucket[] = [];
    while (out.length < limit) {
      const top = this.#heads.peek();
      if (!top) break;
      const b = this.#buckets.get(top.key)!;
      const head = b.tasks.peek()!;
      const agentId = this.#pickAgent(b, this.#tasks.get(head.key)!.summary.avoid);
      if (agentId === undefined) {
        // nobody eligible has a free slot: no task of this bucket can be served in this call
        this.#heads.delete(b.sig);
        setAside.push(b);
        continue;
      }
      const task = b.tasks.pop()!;
      this.#tasks.delete(task.key);
      this.#refreshHead(b);
      const a = this.#agents.get(agentId)!;
      a.busy += 1;
      a.lastAssigned = ++this.#counter;
      this.#rekey(a);
      out.push({ taskId: task.key, agentId: a.id });
    }
    for (const b of setAside) if (this.#buckets.has(b.sig)) this.#refreshHead(b);
    return out;
  }

  stats(): SchedulerStats {
    return {
      ready: this.#tasks.size - this.#delayed.size,
      delayed: this.#delayed.size,
      agents: this.#agents.size,
      buckets: this.#buckets.size,
    };
  }

  // --- Internals ---

  /**
   * The bucket's best free agent that the task does not avoid; the best free agent when every free
   * one is avoided; undefined when none is free. Looks past at most `avoid.length` agents.
   */
  #pickAgent(b: Bucket, avoid: readonly AgentId[] | undefined): AgentId | undefined {
    const best = b.free.peek();
    if (!best || !avoid?.length || !avoid.includes(best.key)) return best?.key;
    const aside: { key: AgentId; value: AgentKey }[] = [];
    let found: AgentId | undefined;
    for (let top = b.free.peek(); top && aside.length <= avoid.length; top = b.free.peek()) {
      if (!avoid.includes(top.key)) {
        found = top.key;
        break;
      }
      aside.push(top);
      b.free.pop();
    }
    for (const e of aside) b.free.set(e.key, e.value);
    return found ?? best.key;
  }

  #promoteDue(now: number): void {
    for (let top = this.#delayed.peek(); top && top.value.at <= now; top = this.#delayed.peek()) {
      this.#delayed.pop();
      this.#makeReady(this.#tasks.get(top.key)!);
    }
  }

  #makeReady(state: TaskState): void {
    const { queue, capabilities } = state.summary;
    const sig = signature(queue, capabilities);
    let b = this.#buckets.get(sig);
    if (!b) {
      b = {
        sig,
        queue,
        caps: [...new Set(capabilities)],
        tasks: new IndexedHeap(taskKeyLess),
        free: new IndexedHeap(agentKeyLess),
        members: new Set(),
      };
      this.#buckets.set(sig, b);
      // a new signature is the one O(m) step: find its eligible agents once
      for (const a of this.#agents.values()) if (this.#serves(a, b)) this.#join(a, b);
    }
    state.sig = sig;
    b.tasks.set(state.summary.id, state.key);
    this.#refreshHead(b);
  }

  /** Keep the bucket's head in the heads heap; drop the bucket when it has no tasks left. */
  #refreshHead(b: Bucket): void {
    const head = b.tasks.peek();
    if (head) {
      this.#heads.set(b.sig, head.value);
      return;
    }
    this.#heads.delete(b.sig);
    this.#buckets.delete(b.sig);
    for (const id of b.members) this.#agents.get(id)?.buckets.delete(b.sig);
  }

  #serves(a: AgentState, b: Bucket): boolean {
    return a.queues.has(b.queue) && b.caps.every((c) => a.caps.has(c));
  }

  #join(a: AgentState, b: Bucket): void {
    a.buckets.add(b.sig);
    b.members.add(a.id);
    if (a.busy < a.slots) b.free.set(a.id, this.#key(a));
  }

  #detach(a: AgentState): void {
    for (const sig of a.buckets) {
      const b = this.#buckets.get(sig);
      if (!b) continue;
      b.members.delete(a.id);
      b.free.delete(a.id);
    }
    a.buckets.clear();
  }

  #rekey(a: AgentState): void {
    const hasFree = a.busy < a.slots;
    for (const sig of a.buckets) {
      const b = this.#buckets.get(sig)!;
      if (hasFree) b.free.set(a.id, this.#key(a));
      else b.free.delete(a.id);
    }
  }

  #key(a: AgentState): AgentKey {
    return { busy: a.busy, slots: a.slots, lastAssigned: a.lastAssigned, id: a.id };
  }
}
