/**
 * The naive reference scheduler for property tests: an O(n·m) scan per assignment that states the
 * rules directly (sort every due task; give each the best eligible agent with a free slot that it
 * does not avoid, or the best one when it avoids them all).
 */
import {
  type AgentSummary,
  type Assignment,
  agentKeyLess,
  eligible,
  type TaskSummary,
  taskKey,
  taskKeyLess,
} from '../../../actors/scheduler/state.js';
import type { AgentId, TaskId } from '../../../src/protocol/ids.js';

export class ReferenceScheduler {
  readonly tasks = new Map<TaskId, TaskSummary>();
  readonly agents = new Map<AgentId, AgentSummary & { lastAssigned: number }>();
  counter = 0;
  constructor(readonly agingMs = 0) {}

  addTask(t: TaskSummary): void {
    this.tasks.set(t.id, t);
  }
  removeTask(id: TaskId): void {
    this.tasks.delete(id);
  }
  upsertAgent(a: AgentSummary): void {
    this.agents.set(a.id, { ...a, lastAssigned: this.agents.get(a.id)?.lastAssigned ?? 0 });
  }
  removeAgent(id: AgentId): void {
    this.agents.delete(id);
  }
  release(id: AgentId): void {
    const a = this.agents.get(id);
    if (a) a.busy = Math.max(0, a.busy - 1);
  }
  nextWakeAt(now: number): number | null {
    const future = [...this.tasks.values()].filter((t) => t.notBefore !== undefined && t.notBefore > now);
    return future.length ? Math.min(...future.map((t) => t.notBefore!)) : null;
  }
  nextAssignments(now: number, limit = Number.POSITIVE_INFINITY): Assignment[] {
    const due = [...this.tasks.values()]
      .filter((t) => t.notBefore === undefined || t.notBefore <= now)
      .sort((a, b) => (taskKeyLess(taskKey(a, this.agingMs), taskKey(b, this.agingMs)) ? -1 : 1));
    const out: Assignment[] = [];
    for (const t of due) {
      if (out.length >= limit) break;
      let best: (AgentSummary & { lastAssigned: number }) | undefined;
      let bestWanted: (AgentSummary & { lastAssigned: number }) | undefined;
      for (const a of this.agents.values()) {
        if (a.busy >= a.slots || !eligible(a, t)) continue;
        if (!best || agentKeyLess(a, best)) best = a;
        if (!t.avoid?.includes(a.id) && (!bestWanted || agentKeyLess(a, bestWanted))) bestWanted = a;
      }
      best = bestWanted ?? best;
      if (!best) continue;
      best.busy += 1;
      best.lastAssigned = ++this.counter;
      this.tasks.delete(t.id);
      out.push({ taskId: t.id, agentId: best.id });
    }
    return out;
  }
}
