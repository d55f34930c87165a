// Dead tasks (Retry) and dead letters (Replay): what needs an operator's hand. Dead tasks come from
// GET /api/tasks?status=dead at open and from `task` events after (the newest DEAD_MAX kept, newest
// first); dead letters are the oldest ones of the page's state. Both are virtualised lists
// (virtual-list.js) sharing one filter box (words against id, title and error; seq, subject and
// reason).
import { api, button, cell, onEvent, onLoad, openTask, taskFromRecord } from './core.js';
import { coalesce, filterBox, SortedList, setText, VirtualList } from './virtual-list.js';

const DEAD_MAX = 1000;
const dead = new Map();
const order = new SortedList((a, b) => (b.at ?? 0) - (a.at ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
let dlq = [];
let dlqMore = false;
let match = null;
let changes = 0;
let filtered = { at: -1, dead: [], dlq: [] };

function deadText(t) {
  return `${t.id} ${t.title ?? ''} ${t.error?.code ?? ''} ${t.error?.message ?? ''}`.toLowerCase();
}

function add(t) {
  const x = { ...t, v: 1, text: deadText(t) };
  dead.set(x.id, x);
  order.insert(x);
  while (order.size > DEAD_MAX) dead.delete(order.pop().id);
  changes++;
}

function drop(id) {
  const t = dead.get(id);
  if (!t) return false;
  dead.delete(id);
  order.remove(t);
  changes++;
  return true;
}

function view() {
  if (!match) return { dead: order.items, dlq };
  if (filtered.at !== changes)
    filtered = {
      at: changes,
      dead: order.items.filter((t) => match(t.text)),
      dlq: dlq.filter((d) => match(d.text)),
    };
  return filtered;
}

const deadList = new VirtualList({
  scroller: document.getElementById('dead-scroll'),
  table: document.getElementById('dead'),
  items: () => view().dead,
  key: (t) => t.id,
  row: (t) => {
    const tr = document.createElement('tr');
    tr.dataset.taskId = t.id;
    tr.append(
      cell(t.id),
      cell(t.title),
      cell(t.error?.message ?? '', 'error'),
      button('Retry', async () => {
        await api('POST', `/api/tasks/${encodeURIComponent(t.id)}/retry`);
        if (drop(t.id)) changed();
      }),
    );
    return tr;
  },
  empty: 'no dead task',
});

const dlqList = new VirtualList({
  scroller: document.getElementById('dlq-scroll'),
  table: document.getElementById('dlq'),
  items: () => view().dlq,
  key: (d) => String(d.seq),
  row: (d) => {
    const tr = document.createElement('tr');
    tr.dataset.seq = String(d.seq);
    tr.append(
      cell(d.seq),
      cell(d.subject),
      cell(`${d.reason.code}: ${d.reason.message}`, 'error'),
      button('Replay', async () => {
        await api('POST', `/api/dlq/${d.seq}/replay`, {});
        dlq = dlq.filter((x) => x.seq !== d.seq);
        changes++;
        changed();
      }),
    );
    return tr;
  },
  empty: 'no dead letter',
});

/** Dead tasks in the hub (from the list's total at open, then counted from events). */
let deadTotal = 0;

const count = coalesce(() => {
  const v = view();
  setText(
    document.getElementById('dead-count'),
    `${v.dead.length}${deadTotal > dead.size ? ` of ${deadTotal}` : ''} dead, ${v.dlq.length}${dlqMore ? '+' : ''} letters`,
  );
});

function changed() {
  deadList.schedule();
  dlqList.schedule();
  count();
}

document.getElementById('dead').tBodies[0].addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-task-id]');
  if (tr) openTask(tr.dataset.taskId);
});

filterBox(document.getElementById('dead-filter'), (m) => {
  match = m;
  changes++;
  deadList.scrollToTop();
  dlqList.scrollToTop();
  changed();
});

onLoad(async (s) => {
  dlq = (s.dlq?.oldest ?? []).map((d) => ({
    ...d,
    v: 1,
    text: `${d.seq} ${d.subject} ${d.reason.code} ${d.reason.message}`.toLowerCase(),
  }));
  dlqMore = s.dlq?.more ?? false;
  const list = await api('GET', '/api/tasks?status=dead&limit=50').catch(() => null);
  dead.clear();
  order.clear();
  for (const r of list?.tasks ?? []) add(taskFromRecord(r));
  // The hub's count: the page holds the newest 50 at open, and those that die while it is open.
  deadTotal = list?.total ?? dead.size;
  changed();
});

onEvent('task', (data) => {
  if (data.status === 'dead' && !data.removed) {
    if (dead.has(data.id)) return;
    add(data);
    deadTotal++;
    changed();
  } else if (drop(data.id)) {
    deadTotal = Math.max(0, deadTotal - 1);
    changed();
  }
});
