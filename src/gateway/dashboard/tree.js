// The tree panel (docs/gateway.md, "Dashboard"): each hub's supervision tree, live, from the
// gateway's inspection WebSocket (GET /api/inspect?targets=hub.*, docs/protocol.md §11e). Every
// supervisor and child is an actor there, one session per incarnation; this panel folds them into
// one node per place in the tree (its path of names), so a restarted child stays where it was,
// with its restarts counted (those seen since the socket opened). A child is running, restarting
// (its supervisor scheduled a restart) or stopped; a supervisor also shows its strategy and the
// restarts it has made since it started. The hub holding the lease is the one running `work` (the
// leader starts it in `work-slot` while it holds the lease, src/hub/tree.ts), the latest to start
// it if several seem to. The model is bounded: so many hubs (past them the one heard from least
// recently goes, never the lease holder: a restarted hub is a new one), so many nodes per hub (past
// them the stopped leaves go, stopped longest first; a running node or a parent stays), and so many
// sessions of earlier incarnations (the oldest go first; a node's current session stays while the
// node does). `inspectionSocket` is shared with diagram.js.
import { $, el, onOpen, session } from './core.js';

const MAX_HUBS = 32;
const MAX_NODES = 1000;
/** Sessions of earlier incarnations kept per hub (a late event of one still finds its node). */
const MAX_OLD_SESSIONS = 1000;
/** Children listed per supervisor (an agent-fsms with thousands of agents shows the first ones). */
const MAX_SHOWN = 100;

// --- The inspection socket ----------------------------------------------------------------------

/**
 * Opens `GET /api/inspect?targets=...` as a WebSocket (the token in the query: a browser's
 * WebSocket cannot send headers) and keeps it open, reconnecting with backoff (1 s to 10 s) until
 * `close()`. `onEvent(e)` gets each parsed event; `onState('connecting' | 'open' | 'closed' |
 * 'refused: <why>')` each change. A browser cannot see why an upgrade was refused, so a socket
 * that never opened asks the same URL as a plain GET (checked the same way, token in a header):
 * refused for good (401, 403) it stops; over the token's socket cap (429) it waits 30 s.
 */
export function inspectionSocket(targets, onEvent, onState = () => {}) {
  let ws = null;
  let timer = null;
  let failures = 0;
  let closed = false;
  const refusal = async () => {
    try {
      const res = await fetch(`/api/inspect?targets=${encodeURIComponent(targets)}`, {
        headers: { authorization: `Bearer ${session.token}` },
      });
      if (res.status !== 401 && res.status !== 403 && res.status !== 429) return null;
      const body = await res.json().catch(() => null);
      return { status: res.status, why: `${res.status} ${body?.code ?? ''}`.trim() };
    } catch {
      return null;
    }
  };
  const connect = () => {
    if (closed) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = `targets=${encodeURIComponent(targets)}&token=${encodeURIComponent(session.token)}`;
    onState('connecting');
    let opened = false;
    ws = new WebSocket(`${scheme}//${location.host}/api/inspect?${query}`);
    ws.addEventListener('open', () => {
      opened = true;
      failures = 0;
      onState('open');
    });
    ws.addEventListener('message', (m) => {
      if (typeof m.data !== 'string') return;
      let e;
      try {
        e = JSON.parse(m.data);
      } catch {
        return;
      }
      if (e && typeof e === 'object' && typeof e.type === 'string' && typeof e.sessionId === 'string')
        onEvent(e);
    });
    ws.addEventListener('close', async () => {
      ws = null;
      if (closed) return;
      const refused = opened ? null : await refusal();
      if (closed) return;
      if (refused && refused.status !== 429) return onState(`refused: ${refused.why}`);
      onState(refused ? `refused: ${refused.why}` : 'closed');
      timer = setTimeout(connect, refused ? 30_000 : Math.min(10_000, 1_000 * 2 ** failures++));
    });
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      ws?.close();
    },
  };
}

// --- The model (pure) ---------------------------------------------------------------------------

/** The hub id and the path of a session: `hub:<hubId>:p41`. */
function hubOf(sessionId) {
  const m = /^hub:([^:]+):/.exec(sessionId);
  return m ? m[1] : null;
}

export function createTreeModel() {
  return { hubs: new Map(), seq: 0 };
}

/**
 * A hub's part of the model: its nodes by path; the path of each session it announced (the
 * current one of each node, and up to MAX_OLD_SESSIONS earlier ones, in `old`, oldest first); its
 * stopped leaves, in the order they became so (the nodes pruning may drop); when it was last heard.
 */
function hubIn(model, id, create) {
  let hub = model.hubs.get(id);
  if (!hub) {
    if (!create) return null;
    if (model.hubs.size >= MAX_HUBS) dropHub(model);
    hub = {
      id,
      nodes: new Map(),
      sessions: new Map(),
      old: new Set(),
      prunable: new Set(),
      order: 0,
      heard: 0,
    };
    model.hubs.set(id, hub);
  }
  hub.heard = ++model.seq;
  return hub;
}

/** Drops the hub heard from least recently that does not hold the lease (a dead one, mostly). */
function dropHub(model) {
  const holders = leaseHolders(model);
  let victim = null;
  for (const h of model.hubs.values())
    if (!holders.includes(h.id) && (victim === null || h.heard < victim.heard)) victim = h;
  if (victim) model.hubs.delete(victim.id);
}

function setFromSnapshot(model, node, snapshot) {
  const value = snapshot?.value;
  const c = snapshot?.context ?? {};
  const was = node.value;
  node.value = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  // When this incarnation started running, in the order events arrived (for the lease holder).
  if (node.value === 'running' && (was !== 'running' || node.runningSince === undefined))
    node.runningSince = ++model.seq;
  if (typeof c.kind === 'string') node.kind = c.kind;
  node.supervisor = node.kind === 'supervisor' || node.kind === 'dynamic_supervisor';
  if (node.supervisor) {
    node.strategy = c.strategy ?? null;
    node.supRestarts = typeof c.restarts === 'number' ? c.restarts : node.supRestarts;
  }
  node.reason = typeof c.reason === 'string' ? c.reason : null;
  if (node.value === 'running') node.restartScheduled = false;
}

/** A node's status: running, restarting, stopping or stopped. */
export function statusOf(node) {
  if (node.value === 'running') return 'running';
  if (node.value === 'terminating') return 'stopping';
  return node.restartScheduled ? 'restarting' : 'stopped';
}

/** Keeps `hub.prunable` right for `node` after its status or its children changed. */
function track(hub, node) {
  if (statusOf(node) === 'stopped' && node.kids === 0) {
    if (!hub.prunable.has(node.path)) hub.prunable.add(node.path);
  } else hub.prunable.delete(node.path);
}

/** Remembers `sessionId` as an earlier incarnation of `node`, dropping the oldest such past the bound. */
function retire(hub, node, sessionId) {
  hub.old.add(sessionId);
  node.old.add(sessionId);
  for (const s of hub.old) {
    if (hub.old.size <= MAX_OLD_SESSIONS) break;
    hub.old.delete(s);
    hub.nodes.get(hub.sessions.get(s))?.old.delete(s);
    hub.sessions.delete(s);
  }
}

/** Drops a node and its sessions; its parent may become a stopped leaf. */
function drop(hub, node) {
  hub.nodes.delete(node.path);
  hub.prunable.delete(node.path);
  hub.sessions.delete(node.sessionId);
  for (const s of node.old) {
    hub.sessions.delete(s);
    hub.old.delete(s);
  }
  const parent = node.parentPath === null ? undefined : hub.nodes.get(node.parentPath);
  if (parent) {
    parent.kids--;
    track(hub, parent);
  }
}

/** Drops the stopped leaves that stopped longest ago while the hub has too many nodes. */
function prune(hub) {
  for (const path of hub.prunable) {
    if (hub.nodes.size <= MAX_NODES) break;
    const node = hub.nodes.get(path);
    if (node) drop(hub, node);
    else hub.prunable.delete(path);
  }
}

/**
 * Applies one inspection event of a hub's tree. Returns the hub id it changed, or null (not a
 * hub's event, an unknown session, a bound reached).
 */
export function applyTreeEvent(model, e) {
  const hubId = hubOf(e.sessionId);
  if (hubId === null) return null;
  // Only an actor makes a hub known: a stray event of one never takes another's place.
  const hub = hubIn(model, hubId, e.type === '@xstate.actor');
  if (!hub) return null;
  if (e.type === '@xstate.actor') {
    const parentPath = e.parentId === undefined ? null : (hub.sessions.get(e.parentId) ?? null);
    const name = String(e.name ?? e.sessionId);
    const path = parentPath === null ? name : `${parentPath}/${name}`;
    let node = hub.nodes.get(path);
    if (!node) {
      node = {
        path,
        name,
        parentPath,
        order: hub.order++,
        restarts: 0,
        supRestarts: 0,
        lastReport: null,
        kids: 0,
        old: new Set(),
      };
      hub.nodes.set(path, node);
      const parent = parentPath === null ? undefined : hub.nodes.get(parentPath);
      if (parent) {
        parent.kids++;
        track(hub, parent);
      }
    } else if (node.sessionId !== e.sessionId) {
      node.restarts++;
      node.value = undefined; // a new incarnation: running from now
      retire(hub, node, node.sessionId);
    }
    node.sessionId = e.sessionId;
    hub.sessions.set(e.sessionId, path);
    node.old.delete(e.sessionId);
    hub.old.delete(e.sessionId);
    setFromSnapshot(model, node, e.snapshot);
    track(hub, node);
    prune(hub);
    return hubId;
  }
  const node = hub.nodes.get(hub.sessions.get(e.sessionId));
  if (!node) return null;
  if (e.type === '@xstate.snapshot') {
    // A late snapshot of an earlier incarnation says nothing about the current one.
    if (node.sessionId !== e.sessionId) return null;
    setFromSnapshot(model, node, e.snapshot);
    track(hub, node);
    return hubId;
  }
  if (e.type === '@xstate.event') {
    const type = String(e.event?.type ?? '');
    node.lastReport = e.event?.childId ? `${type} ${e.event.childId}` : type;
    const from = e.sourceId === undefined ? undefined : hub.nodes.get(hub.sessions.get(e.sourceId));
    // The exited incarnation is the source of a scheduled restart; its next one clears the flag.
    if (type === 'restart_scheduled' && from && from.sessionId === e.sourceId) {
      from.restartScheduled = true;
      track(hub, from);
    }
    return hubId;
  }
  return null;
}

/**
 * The hub holding the lease: the one running `work` under `work-slot` ([] when none does). When
 * several seem to (a hub killed without a word keeps its last picture), the one that started it
 * last: a lease taken over is taken after the old holder's ran out.
 */
export function leaseHolders(model) {
  let best = null;
  for (const hub of model.hubs.values())
    for (const n of hub.nodes.values())
      if (n.name === 'work' && /(^|\/)work-slot$/.test(n.parentPath ?? '') && statusOf(n) === 'running')
        if (!best || n.runningSince > best.since) best = { id: hub.id, since: n.runningSince };
  return best ? [best.id] : [];
}

// --- The view -----------------------------------------------------------------------------------

function nodeItem(node, childrenOf) {
  const status = statusOf(node);
  const li = el('li', undefined, 'tree-node', {
    nodeName: node.name,
    path: node.path,
    status,
    kind: node.kind ?? 'unknown',
    restarts: String(node.restarts),
  });
  const row = el('div', undefined, 'tree-row');
  row.append(el('span', node.name, 'tree-name'), el('span', status, 'tree-status'));
  if (node.supervisor) {
    row.append(el('span', node.kind === 'dynamic_supervisor' ? 'dynamic' : node.strategy, 'tree-strategy'));
    row.append(
      el('span', `${node.supRestarts} restart${node.supRestarts === 1 ? '' : 's'}`, 'tree-sup-restarts'),
    );
  }
  if (node.restarts > 0)
    row.append(
      el('span', `restarted ${node.restarts}×`, 'tree-restarts', { restarts: String(node.restarts) }),
    );
  if (node.reason && status !== 'running') row.append(el('span', node.reason, 'tree-reason'));
  if (node.lastReport) row.title = `last report: ${node.lastReport}`;
  li.append(row);
  const kids = childrenOf.get(node.path) ?? [];
  if (kids.length > 0) {
    const ul = el('ul', undefined, 'tree-children');
    for (const k of kids.slice(0, MAX_SHOWN)) ul.append(nodeItem(k, childrenOf));
    if (kids.length > MAX_SHOWN) ul.append(el('li', `… ${kids.length - MAX_SHOWN} more`, 'tree-more'));
    li.append(ul);
  }
  return li;
}

function hubView(hub, holds) {
  const box = el('div', undefined, 'tree-hub', { hubId: hub.id, lease: holds ? 'held' : 'standby' });
  const head = el('div', undefined, 'tree-hub-head');
  head.append(
    el('span', `hub ${hub.id}`, 'tree-hub-id'),
    el('span', holds ? 'holds the lease' : 'standby', 'tree-lease-badge'),
  );
  const childrenOf = new Map();
  const roots = [];
  const nodes = [...hub.nodes.values()].sort((a, b) => a.order - b.order);
  for (const n of nodes) {
    if (n.parentPath === null || !hub.nodes.has(n.parentPath)) roots.push(n);
    else {
      if (!childrenOf.has(n.parentPath)) childrenOf.set(n.parentPath, []);
      childrenOf.get(n.parentPath).push(n);
    }
  }
  const ul = el('ul', undefined, 'tree-root');
  for (const r of roots) ul.append(nodeItem(r, childrenOf));
  box.append(head, ul);
  return box;
}

let model = createTreeModel();
let socket = null;
let scheduled = false;

function render() {
  scheduled = false;
  const holders = leaseHolders(model);
  const lease = $('tree-lease');
  lease.dataset.holder = holders.join(' ');
  lease.textContent =
    holders.length === 0
      ? model.hubs.size === 0
        ? 'waiting for the hubs’ trees…'
        : 'no hub is running work: nobody holds the lease'
      : `lease held by hub ${holders.join(', ')}`;
  const hubs = [...model.hubs.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  $('tree').replaceChildren(...hubs.map((h) => hubView(h, holders.includes(h.id))));
}

/** Renders once for a burst of events (a tree announces dozens at once). */
function schedule() {
  if (scheduled) return;
  scheduled = true;
  setTimeout(render, 50);
}

onOpen(() => {
  socket?.close();
  model = createTreeModel();
  render();
  socket = inspectionSocket(
    'hub.*',
    (e) => {
      if (applyTreeEvent(model, e) !== null) schedule();
    },
    (state) => {
      $('tree-panel').dataset.socket = state;
      if (state.startsWith('refused')) $('tree-lease').textContent = `inspection ${state}`;
      // Each new socket is a new listener: every hub announces its whole tree to it again, so the
      // picture starts afresh (and a hub that is gone is gone from it).
      if (state === 'open') {
        model = createTreeModel();
        schedule();
      }
    },
  );
});
