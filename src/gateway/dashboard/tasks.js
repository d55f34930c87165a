// The recent tasks panel: the tasks that changed last, newest first, kept current by `task` events,
// with Cancel for live ones and Retry for finished ones; a row opens the task's detail. The page
// keeps the last TASKS_MAX tasks it heard of (the hub may hold 100,000: their counts are the queue
// panel's). A virtualised list (virtual-list.js): only the rows in view are in the DOM, one render
// per frame at most; the order is kept by binary search (no sort per event).
//
// The filter box matches words against id, title, status, queue and agent over the tasks the page
// holds, and asks the hub for the rest (GET /api/tasks, newest first): a word that names a status
// lists tasks in it; another word is tried as a task id and as a queue name.
import { api, button, cell, log, onEvent, onLoad, openTask, taskFromRecord } from './core.js';
import { filterBox, SortedList, setText, VirtualList } from './virtual-list.js';

const TASKS_MAX = 1000;
/** Tasks the hub is asked for per filter. */
const FOUND_MAX = 200;
const STATUSES = new Set(['queued', 'assigned', 'working', 'blocked', 'done', 'failed', 'dead', 'cancelled']);
const LIVE = new Set(['queued', 'assigned', 'working', 'blocked']);
const RETRYABLE = new Set(['dead', 'failed', 'cancelled']);
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

const tasks = new Map();
const order = new SortedList((a, b) => (b.at ?? 0) - (a.at ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
/** Tasks the hub answered for the filter in force (not among the recent ones). */
let found = new Map();
let match = null;
let filterText = '';
let changes = 0;
let filtered = { at: -1, items: [] };

function touch(t) {
  t.v = (t.v ?? 0) + 1;
  t.text = `${t.id} ${t.title ?? ''} ${t.status} ${t.queue ?? ''} ${t.assignee ?? ''}`.toLowerCase();
  changes++;
}

/** A task's news: its record or event, merged into what the page holds. */
function upsert(data) {
  const f = found.get(data.id);
  if (f) {
    Object.assign(f, data);
    touch(f);
  }
  const old = tasks.get(data.id);
  if (old) {
    order.remove(old);
    Object.assign(old, data);
    touch(old);
    order.insert(old);
    return;
  }
  const t = { ...data };
  touch(t);
  tasks.set(t.id, t);
  order.insert(t);
  while (order.size > TASKS_MAX) tasks.delete(order.pop().id);
}

function remove(id) {
  const t = tasks.get(id);
  if (t) {
    tasks.delete(id);
    order.remove(t);
  }
  found.delete(id);
  changes++;
}

function row(t) {
  const tr = document.createElement('tr');
  tr.dataset.taskId = t.id;
  tr.dataset.status = t.status;
  const action = RETRYABLE.has(t.status)
    ? button('Retry', () => api('POST', `/api/tasks/${encodeURIComponent(t.id)}/retry`))
    : LIVE.has(t.status)
      ? button('Cancel', () => api('POST', `/api/tasks/${encodeURIComponent(t.id)}/cancel`, {}))
      : cell('');
  const title = cell(t.title, 'title');
  title.title = t.title ?? '';
  tr.append(
    cell(t.id),
    title,
    cell(t.status, 'status'),
    cell(t.queue),
    cell(t.assignee),
    cell(t.progress?.pct !== undefined ? `${t.progress.pct}%` : ''),
    action,
  );
  return tr;
}

function items() {
  if (!match) return order.items;
  if (filtered.at !== changes) {
    const local = order.items.filter((t) => match(t.text));
    for (const t of found.values()) if (!tasks.has(t.id) && match(t.text)) local.push(t);
    filtered = { at: changes, items: local };
  }
  return filtered.items;
}

const list = new VirtualList({
  scroller: document.getElementById('tasks-scroll'),
  table: document.getElementById('tasks'),
  items,
  key: (t) => t.id,
  row,
  empty: 'no task',
});

function count() {
  setText(document.getElementById('tasks-count'), match ? `${items().length} shown` : `last ${tasks.size}`);
}
let countTimer = 0;
function changed() {
  list.schedule();
  if (countTimer) return;
  countTimer = setTimeout(() => {
    countTimer = 0;
    count();
  }, 200);
}

/** Asks the hub for tasks the filter names that the page does not hold. */
async function lookUp(text) {
  const words = text.split(/\s+/).filter(Boolean);
  const statuses = words.filter((w) => STATUSES.has(w.toLowerCase())).map((w) => w.toLowerCase());
  const others = words.filter((w) => !STATUSES.has(w.toLowerCase()));
  const status = statuses.length ? `&status=${statuses.join(',')}` : '';
  const asks = [];
  if (others.length === 0 && statuses.length)
    asks.push(api('GET', `/api/tasks?limit=${FOUND_MAX}${status}`).then((r) => r.tasks));
  if (others.length === 1 && TOKEN.test(others[0])) {
    const w = encodeURIComponent(others[0]);
    asks.push(api('GET', `/api/tasks/${w}`).then((r) => [r.task]));
    asks.push(api('GET', `/api/tasks?limit=${FOUND_MAX}&queue=${w}${status}`).then((r) => r.tasks));
  }
  const answers = await Promise.allSettled(asks);
  if (text !== filterText) return;
  const next = new Map();
  for (const a of answers)
    if (a.status === 'fulfilled') for (const r of a.value) next.set(r.id, taskFromRecord(r));
  for (const t of next.values()) touch(t);
  found = next;
  changes++;
  changed();
}

let lookUpTimer = 0;
filterBox(document.getElementById('tasks-filter'), (m) => {
  match = m;
  filterText = document.getElementById('tasks-filter').value.trim();
  found = new Map();
  changes++;
  list.scrollToTop();
  count();
  clearTimeout(lookUpTimer);
  if (!filterText) return;
  const text = filterText;
  lookUpTimer = setTimeout(() => {
    lookUp(text).catch((err) => log(`task filter: ${err.message}`));
  }, 300);
});

document.getElementById('tasks').tBodies[0].addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-task-id]');
  if (tr) openTask(tr.dataset.taskId);
});

onLoad((s) => {
  tasks.clear();
  order.clear();
  for (const r of s.recent ?? []) upsert(taskFromRecord(r));
  changed();
});

onEvent('task', (data) => {
  if (data.removed) remove(data.id);
  else upsert(data);
  changed();
});
