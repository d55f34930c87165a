/**
 * The tree panel's model (src/gateway/dashboard/tree.js), its pure part run in Node (the module
 * reads only `sessionStorage` when imported, through core.js, stubbed here): its bounds keep what
 * the picture needs. Thousands of agent incarnations never cost the root's and the supervisors'
 * sessions (a new child stays under its supervisor, a supervisor's snapshot still applies); a
 * pruned node's sessions go with it; past 32 hubs the one heard from least recently goes, never the
 * lease holder (a restarted hub is a new one, so the lease holder named is the live one); and
 * applying an event never walks all of a hub's nodes (pruning keeps its candidates apart).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

interface TreeNode {
  path: string;
  parentPath: string | null;
  value?: string;
  restarts: number;
}
interface TreeHub {
  id: string;
  nodes: Map<string, TreeNode>;
  sessions: Map<string, string>;
}
interface TreeModel {
  hubs: Map<string, TreeHub>;
}
interface TreeModule {
  createTreeModel(): TreeModel;
  applyTreeEvent(model: TreeModel, e: Record<string, unknown>): string | null;
  leaseHolders(model: TreeModel): string[];
  statusOf(node: TreeNode): string;
}

let t: TreeModule;
beforeAll(async () => {
  vi.stubGlobal('sessionStorage', { getItem: () => null, setItem: () => {} });
  const module = '../../src/gateway/dashboard/tree.js';
  t = (await import(/* @vite-ignore */ module)) as TreeModule;
});
afterAll(() => {
  vi.unstubAllGlobals();
});

const sup = (kind = 'supervisor') => ({ value: 'running', context: { kind, strategy: 'one_for_one' } });
const running = { value: 'running', context: { kind: 'actor' } };
const terminated = { value: 'terminated', context: { kind: 'actor', reason: 'normal' } };

/** An event sender for hub `hub` of `model`, session ids `hub:<hub>:p<n>`. */
function hubEvents(model: TreeModel, hub: string) {
  const sid = (p: string) => `hub:${hub}:${p}`;
  return {
    actor: (p: string, name: string, parent: string | undefined, snapshot: object) =>
      t.applyTreeEvent(model, {
        type: '@xstate.actor',
        sessionId: sid(p),
        createdAt: '1',
        name,
        ...(parent ? { parentId: sid(parent) } : {}),
        snapshot,
      }),
    snapshot: (p: string, snapshot: object) =>
      t.applyTreeEvent(model, { type: '@xstate.snapshot', sessionId: sid(p), createdAt: '1', snapshot }),
    report: (p: string, type: string) =>
      t.applyTreeEvent(model, { type: '@xstate.event', sessionId: sid(p), createdAt: '1', event: { type } }),
  };
}

/** A hub's tree as a leader has it: hub > work-slot > work (running: it holds the lease). */
function leaderTree(model: TreeModel, hub: string) {
  const ev = hubEvents(model, hub);
  ev.actor('p1', 'hub', undefined, sup());
  ev.actor('p2', 'work-slot', 'p1', sup('dynamic_supervisor'));
  ev.actor('p3', 'work', 'p2', sup());
  return ev;
}

describe('the tree panel’s model', () => {
  it('keeps the sessions of the nodes it shows through any churn of incarnations', () => {
    const m = t.createTreeModel();
    const ev = hubEvents(m, 'h1');
    ev.actor('p1', 'hub', undefined, sup());
    ev.actor('p2', 'agent-fsms', 'p1', sup('dynamic_supervisor'));
    // Agents come and go: 5,000 incarnations of 50 agents, each a new session.
    let pid = 10;
    for (let i = 0; i < 5_000; i++) ev.actor(`p${pid++}`, `agent-${i % 50}`, 'p2', running);
    const hub = m.hubs.get('h1')!;
    expect(hub.nodes.get('hub/agent-fsms/agent-7')!.restarts).toBe(99);
    // A new agent after all that is still drawn under its supervisor, not as a root of its own.
    ev.actor(`p${pid++}`, 'agent-new', 'p2', running);
    expect(hub.nodes.get('hub/agent-fsms/agent-new')?.parentPath).toBe('hub/agent-fsms');
    expect([...hub.nodes.values()].filter((n) => n.parentPath === null).map((n) => n.path)).toEqual(['hub']);
    // The supervisors' snapshots still land.
    expect(ev.snapshot('p2', { value: 'terminating', context: { kind: 'dynamic_supervisor' } })).toBe('h1');
    expect(hub.nodes.get('hub/agent-fsms')!.value).toBe('terminating');
    expect(ev.snapshot('p1', { value: 'dead', context: { kind: 'supervisor' } })).toBe('h1');
    expect(hub.nodes.get('hub')!.value).toBe('dead');
    // Bounded all the same: the current sessions, and at most 1,000 of earlier incarnations.
    expect(hub.sessions.size).toBeLessThanOrEqual(hub.nodes.size + 1_000);
    // An event of an incarnation long gone finds nothing; of a recent one, its node.
    expect(ev.report('p10', 'late')).toBeNull();
    expect(ev.report(`p${pid - 2 - 50}`, 'late')).toBe('h1');
    // A late snapshot of an earlier incarnation changes nothing.
    expect(ev.snapshot(`p${pid - 2 - 50}`, terminated)).toBeNull();
    expect(t.statusOf(hub.nodes.get('hub/agent-fsms/agent-49')!)).toBe('running');
  });

  it('drops the stopped leaves past 1,000 nodes, stopped longest first, with their sessions', () => {
    const m = t.createTreeModel();
    const ev = hubEvents(m, 'h1');
    ev.actor('p1', 'hub', undefined, sup());
    ev.actor('p2', 'agent-fsms', 'p1', sup('dynamic_supervisor'));
    for (let i = 0; i < 1_100; i++) ev.actor(`p${100 + i}`, `agent-${i}`, 'p2', running);
    const hub = m.hubs.get('h1')!;
    expect(hub.nodes.size).toBe(1_102); // nothing stopped: nothing dropped
    // 200 stop, the later-announced first.
    for (let i = 299; i >= 100; i--) ev.snapshot(`p${100 + i}`, terminated);
    ev.actor('p5000', 'late', 'p2', running);
    expect(hub.nodes.size).toBe(1_000);
    const gone = Array.from({ length: 200 }, (_, k) => 100 + k).filter(
      (i) => !hub.nodes.has(`hub/agent-fsms/agent-${i}`),
    );
    // 103 went (1,103 - 1,000): those that stopped first (299 down to 197).
    expect(gone).toEqual(Array.from({ length: 103 }, (_, k) => 197 + k));
    // Their sessions went with them: a late event of one is simply not applied.
    expect(hub.sessions.has('hub:h1:p399')).toBe(false);
    expect(ev.snapshot('p399', terminated)).toBeNull();
    expect(hub.sessions.size).toBe(hub.nodes.size);
    // The supervisors (parents) and the running stay.
    expect(hub.nodes.has('hub/agent-fsms')).toBe(true);
    expect(hub.nodes.has('hub/agent-fsms/agent-0')).toBe(true);
    expect(hub.nodes.has('hub/agent-fsms/late')).toBe(true);
  });

  it('never walks all of a hub’s nodes to apply an event, however many there are', () => {
    const m = t.createTreeModel();
    const ev = hubEvents(m, 'h1');
    ev.actor('p1', 'hub', undefined, sup());
    ev.actor('p2', 'agent-fsms', 'p1', sup('dynamic_supervisor'));
    // Count the walks over the hub's nodes from here on.
    const hub = m.hubs.get('h1')!;
    let walks = 0;
    const nodes = hub.nodes;
    for (const method of ['values', 'keys', 'entries', 'forEach', Symbol.iterator] as const) {
      const original = (nodes as unknown as Record<PropertyKey, (...a: unknown[]) => unknown>)[method]!;
      Object.defineProperty(nodes, method, {
        value: (...a: unknown[]) => {
          walks++;
          return original.apply(nodes, a);
        },
      });
    }
    // A full announcement of 3,000 agents (past the 1,000 nodes where pruning starts), then churn.
    for (let i = 0; i < 3_000; i++) ev.actor(`p${10 + i}`, `agent-${i}`, 'p2', running);
    for (let i = 0; i < 500; i++) ev.snapshot(`p${10 + i}`, terminated);
    for (let i = 0; i < 500; i++) ev.actor(`p${5_000 + i}`, `agent-${i}`, 'p2', running);
    expect(hub.nodes.size).toBe(3_002);
    expect(walks).toBe(0);
  });

  it('past 32 hubs, drops the one heard from least recently, never the lease holder', () => {
    const m = t.createTreeModel();
    // A crash-looping leader: each start is a new hub id (host-pid); a SIGKILLed one sends no last word.
    for (let i = 0; i < 40; i++) leaderTree(m, `host-${1000 + i}`);
    expect(m.hubs.size).toBe(32);
    expect(t.leaseHolders(m)).toEqual(['host-1039']);
    expect(m.hubs.has('host-1039')).toBe(true);
    expect(m.hubs.has('host-1007')).toBe(false);
    expect(m.hubs.has('host-1008')).toBe(true);

    // The lease holder heard from least recently of all still stays; the next least recent goes.
    const n = t.createTreeModel();
    const holder = leaderTree(n, 'leader');
    for (let i = 0; i < 31; i++) hubEvents(n, `standby-${i}`).actor('p1', 'hub', undefined, sup());
    expect(n.hubs.size).toBe(32);
    hubEvents(n, 'standby-0').actor('p1', 'hub', undefined, sup()); // heard again
    hubEvents(n, 'newcomer').actor('p1', 'hub', undefined, sup());
    expect(n.hubs.size).toBe(32);
    expect(n.hubs.has('leader')).toBe(true);
    expect(n.hubs.has('standby-0')).toBe(true);
    expect(n.hubs.has('standby-1')).toBe(false);
    expect(n.hubs.has('newcomer')).toBe(true);
    expect(t.leaseHolders(n)).toEqual(['leader']);
    // An event of a hub not held (no actor of it seen) makes no hub of it.
    expect(hubEvents(n, 'stray').snapshot('p1', running)).toBeNull();
    expect(n.hubs.has('stray')).toBe(false);
    expect(holder.snapshot('p3', { value: 'dead', context: { kind: 'supervisor' } })).toBe('leader');
  });
});
