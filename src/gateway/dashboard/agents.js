// The agents panel: every agent by id with its FSM state, its slots in use, the tasks it holds, when
// the page last heard of it, completions, flags, a suspension in force and its queues, kept current
// by `agent` events. A virtualised list (virtual-list.js): only the rows in view are in the DOM, one
// render per frame at most; the id order is kept by binary search (no sort per event). The filter
// box matches words against id, state and queues. A row opens the agent's state diagram.
//
// "Seen" is the latest of the agent's last heartbeat in the hub's agent list (`lastHeartbeat`, as
// the page opened: heartbeats are not on the event stream) and its latest state change or hello
// seen on the event stream since.
// Suspensions come with the page's state (GET /api/dashboard/state); a hello ends one.
import { $, cell, onEvent, onLoad, openAgent } from './core.js';
import { age, filterBox, SortedList, setText, VirtualList } from './virtual-list.js';

const agents = new Map();
/** The agents with a suspension the page knows of (checked each second for its end). */
const suspended = new Set();
const order = new SortedList((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
let match = null;
/** Bumped on every change: the filtered view is recomputed (once per frame) when it moved. */
let changes = 0;
let filtered = { at: -1, items: [] };

function shownState(a) {
  if (a.suspension) return 'suspended';
  return a.online === false ? 'offline' : a.state;
}

function touch(a) {
  a.v = (a.v ?? 0) + 1;
  a.text = `${a.id} ${shownState(a)} ${(a.queues ?? []).join(' ')}`.toLowerCase();
  changes++;
}

function blank(id) {
  return {
    id,
    online: false,
    state: 'offline',
    tasks: [],
    slots: 1,
    completed: 0,
    flags: 0,
    queues: [],
    seenAt: null,
    suspension: null,
    v: 0,
    text: '',
  };
}

function clock(at) {
  return new Date(at).toISOString().slice(11, 19);
}

function row(a) {
  const tr = document.createElement('tr');
  tr.dataset.agentId = a.id;
  tr.dataset.state = shownState(a);
  const tasks = (a.tasks ?? []).join(' ');
  const held = cell(tasks, 'ids');
  held.title = tasks;
  const s = a.suspension;
  const suspension = cell(
    s ? `until ${clock(s.until)}${s.count > 1 ? ` (${s.count}x)` : ''}: ${s.reason}` : '',
    'suspension',
  );
  if (s) suspension.title = s.reason;
  tr.append(
    cell(a.id),
    cell(shownState(a), 'state'),
    cell(`${(a.tasks ?? []).length}/${a.slots ?? '?'}`, 'num'),
    held,
    cell(age(a.seenAt), 'age'),
    cell(a.completed, 'num'),
    cell(a.flags, a.flags > 0 ? 'num flagged' : 'num'),
    suspension,
    cell((a.queues ?? []).join(' ')),
  );
  return tr;
}

function items() {
  if (!match) return order.items;
  if (filtered.at !== changes) filtered = { at: changes, items: order.items.filter((a) => match(a.text)) };
  return filtered.items;
}

const list = new VirtualList({
  scroller: $('agents-scroll'),
  table: $('agents'),
  items,
  key: (a) => a.id,
  row,
  live: (tr, a) => setText(tr.cells[4], age(a.seenAt)),
  empty: 'no agent',
});

function count() {
  const shown = items().length;
  setText($('agents-count'), match ? `${shown} of ${agents.size}` : String(agents.size));
}

function changed() {
  list.schedule();
  countSoon();
}
let countTimer = 0;
function countSoon() {
  if (countTimer) return;
  countTimer = setTimeout(() => {
    countTimer = 0;
    count();
  }, 200);
}

$('agents').tBodies[0].addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-agent-id]');
  if (tr) openAgent(tr.dataset.agentId);
});

filterBox($('agents-filter'), (m) => {
  match = m;
  changes++;
  list.scrollToTop();
  count();
});

onLoad((s) => {
  agents.clear();
  suspended.clear();
  for (const e of s.agents?.agents ?? []) {
    const a = blank(e.id);
    a.online = e.online;
    a.state = e.state;
    a.tasks = e.tasks ?? [];
    a.slots = e.hello?.slots ?? 1;
    a.completed = e.completed ?? 0;
    a.flags = e.flags ?? 0;
    a.queues = e.hello?.queues ?? [];
    a.seenAt = e.lastHeartbeat ?? null;
    agents.set(a.id, a);
  }
  const now = Date.now();
  for (const sus of s.agents?.suspended ?? []) {
    if (sus.until <= now) continue;
    const a = agents.get(sus.agentId) ?? blank(sus.agentId);
    a.suspension = { until: sus.until, reason: sus.reason, count: sus.count };
    suspended.add(a.id);
    agents.set(a.id, a);
  }
  for (const a of agents.values()) touch(a);
  order.clear();
  order.items.push(...agents.values());
  order.items.sort(order.cmp);
  changed();
  count();
});

onEvent('agent', (d) => {
  const existing = agents.get(d.id);
  if (d.removed) {
    if (!existing) return;
    agents.delete(d.id);
    suspended.delete(d.id);
    order.remove(existing);
    changes++;
    changed();
    return;
  }
  const a = existing ?? blank(d.id);
  if (d.state !== undefined) {
    a.state = typeof d.state === 'string' ? d.state : JSON.stringify(d.state);
    a.tasks = d.tasks ?? a.tasks;
    a.online = a.state !== 'offline';
    if (typeof d.slots === 'number') a.slots = d.slots;
    if (typeof d.completed === 'number') a.completed = d.completed;
    if (typeof d.flags === 'number') a.flags = d.flags;
  }
  if (d.registered) {
    a.queues = d.queues ?? a.queues;
    if (typeof d.slots === 'number') a.slots = d.slots;
    // A hello was accepted: whatever suspension the page knew of is over.
    a.suspension = null;
    suspended.delete(a.id);
  }
  if (typeof d.at === 'number' && d.at > (a.seenAt ?? 0)) a.seenAt = d.at;
  touch(a);
  if (!existing) {
    agents.set(a.id, a);
    order.insert(a);
  }
  changed();
});

// Ages move on, and suspensions end, without any event.
setInterval(() => {
  const now = Date.now();
  for (const id of suspended) {
    const a = agents.get(id);
    if (a?.suspension && a.suspension.until > now) continue;
    suspended.delete(id);
    if (!a) continue;
    a.suspension = null;
    touch(a);
  }
  list.schedule();
}, 1000);
