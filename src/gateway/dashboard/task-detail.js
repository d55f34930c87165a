// The task detail panel: opened by `dashboard:task` (a task row clicked), it shows one task's
// record from GET /api/tasks/:id (fields, progress, the last 50 transitions of its history) with
// Cancel or Retry as its status allows, and Close. It stays live while open: a `task` event for
// that id is applied at once (status, assignee, progress) and the record is read again, at most
// once a second while events arrive, always once after the last one. An id the hub does not know
// (404) shows as not found. One task at a time; nothing is kept once the panel is closed.
import { $, api, el, log, onEvent, onLoad } from './core.js';

const REFRESH_MS = 1_000;
const TEXT_MAX = 500;
const LIVE = new Set(['queued', 'assigned', 'working', 'blocked']);
const RETRYABLE = new Set(['dead', 'failed', 'cancelled']);

/** The task being shown, or null: its record and the state of its reads. */
let current = null;

const bounded = (s, max = TEXT_MAX) => (s.length > max ? `${s.slice(0, max)}…` : s);

/** A local time (with milliseconds for the history: transitions often share a second). */
function time(ms, withMs = false) {
  if (typeof ms !== 'number') return '';
  const d = new Date(ms);
  const t = d.toLocaleTimeString(
    undefined,
    withMs ? { hour: 'numeric', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3 } : {},
  );
  return d.toDateString() === new Date().toDateString() ? t : `${d.toLocaleDateString()} ${t}`;
}

/** A JSON value as one bounded line (a result can be up to 256 KiB: never shown whole). */
function summary(value) {
  if (value === null || value === undefined) return '';
  let s;
  try {
    s = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    s = String(value);
  }
  return bounded(s ?? '');
}

/** Read the record now, or as soon as a second has passed since the last read; once more if asked meanwhile. */
function refresh(f) {
  f.dirty = true;
  pump(f);
}

function pump(f) {
  if (f !== current || f.inflight || f.timer || !f.dirty) return;
  const wait = f.lastRead + REFRESH_MS - Date.now();
  if (wait > 0) {
    f.timer = setTimeout(() => {
      f.timer = null;
      pump(f);
    }, wait);
    return;
  }
  f.dirty = false;
  f.inflight = true;
  f.lastRead = Date.now();
  api('GET', `/api/tasks/${encodeURIComponent(f.id)}`)
    .then(
      (r) => {
        f.record = r.task;
        f.missing = false;
        f.problem = null;
      },
      (err) => {
        // api() throws `<status> <code>: <message>` from the structured error.
        if (/^404\b/.test(err.message)) f.missing = true;
        else f.problem = err.message;
      },
    )
    .finally(() => {
      f.inflight = false;
      if (f === current) render();
      pump(f);
    });
}

function open(id) {
  close();
  current = {
    id,
    record: null,
    missing: false,
    removed: false,
    problem: null,
    dirty: false,
    inflight: false,
    lastRead: 0,
    timer: null,
  };
  const panel = $('task-detail-panel');
  panel.hidden = false;
  render();
  refresh(current);
  panel.scrollIntoView({ block: 'nearest' });
}

function close() {
  if (current?.timer) clearTimeout(current.timer);
  current = null;
  const panel = $('task-detail-panel');
  panel.hidden = true;
  delete panel.dataset.taskId;
  delete panel.dataset.status;
  delete panel.dataset.state;
}

function action(label, run) {
  const b = el('button', label, undefined, { action: label.toLowerCase() });
  b.type = 'button';
  b.addEventListener('click', () => {
    b.disabled = true;
    run().then(
      () => log(`${label}: done`),
      (err) => {
        b.disabled = false;
        log(`${label}: ${err.message}`);
      },
    );
  });
  return b;
}

/** Cancel or Retry: the reply is the record after it; the events that follow keep it current. */
function taskCall(f, label, op, body) {
  return action(label, async () => {
    const r = await api('POST', `/api/tasks/${encodeURIComponent(f.id)}/${op}`, body);
    if (f !== current) return;
    f.record = r.task;
    render();
    refresh(f);
  });
}

function field(name, value) {
  if (value === undefined || value === null || value === '') return [];
  return [el('dt', name), el('dd', value, undefined, { field: name })];
}

function render() {
  const f = current;
  if (!f) return;
  const panel = $('task-detail-panel');
  const t = f.record;
  const state = f.missing
    ? 'not-found'
    : f.removed
      ? 'removed'
      : t
        ? 'loaded'
        : f.problem
          ? 'error'
          : 'loading';
  panel.dataset.taskId = f.id;
  panel.dataset.state = state;
  panel.dataset.status = f.missing ? '' : (t?.status ?? '');
  $('task-detail-id').textContent = f.id;

  const note = $('task-detail-note');
  note.textContent =
    state === 'not-found'
      ? `Task ${f.id} not found.`
      : state === 'removed'
        ? 'This task was removed (retention).'
        : f.problem
          ? `Could not read the task: ${f.problem}`
          : state === 'loading'
            ? 'Loading…'
            : '';
  note.hidden = note.textContent === '';

  const actions = [];
  if (t && !f.missing && !f.removed) {
    if (LIVE.has(t.status)) actions.push(taskCall(f, 'Cancel', 'cancel', {}));
    if (RETRYABLE.has(t.status)) actions.push(taskCall(f, 'Retry', 'retry'));
  }
  actions.push(action('Close', async () => close()));
  $('task-detail-actions').replaceChildren(...actions);

  const shown = t && !f.missing;
  $('task-detail-fields').replaceChildren(
    ...(shown
      ? [
          ...field('title', t.title),
          ...field('status', t.status),
          ...field('queue', t.queue),
          ...field('priority', t.priority),
          ...field('capabilities', (t.capabilities ?? []).join(' ')),
          ...field('assignee', t.assignee),
          ...field('generation', t.generation),
          ...field('retries', `${t.retryCount} of ${t.maxRetries}`),
          ...field('tokens used', t.tokensUsed),
          ...field('submitted by', t.submittedBy),
          ...field('created', time(t.createdAt)),
          ...field('not before', time(t.notBefore)),
          ...field('complete by', time(t.completeBy)),
          ...field('assigned', time(t.assignedAt)),
          ...field('accepted', time(t.acceptedAt)),
          ...field('last progress', time(t.lastProgressAt)),
          ...field('completed', time(t.completedAt)),
          ...field('error', t.error ? bounded(`${t.error.code}: ${t.error.message}`) : ''),
          ...field('result', summary(t.result)),
          ...field('description', t.description ? bounded(t.description) : ''),
        ]
      : []),
  );

  const progress = $('task-detail-progress');
  // The last report's progress, while it means something: a done task's 40% would mislead.
  const p = shown && t.status !== 'done' ? t.progress : null;
  progress.hidden = !p;
  const bar = progress.querySelector('progress');
  if (p && typeof p.pct === 'number') {
    bar.value = p.pct;
    progress.dataset.pct = String(p.pct);
  } else {
    bar.removeAttribute('value');
    delete progress.dataset.pct;
  }
  progress.querySelector('.pct').textContent = typeof p?.pct === 'number' ? `${p.pct}%` : '';
  progress.querySelector('.message').textContent = p?.message ? bounded(p.message, 200) : '';

  $('task-history').tBodies[0].replaceChildren(
    ...(shown ? (t.history ?? []) : []).map((h) => {
      const tr = document.createElement('tr');
      tr.dataset.to = h.to;
      const at = el('td', time(h.at, true));
      at.title = new Date(h.at).toISOString();
      tr.append(
        at,
        el('td', h.from ?? ''),
        el('td', h.to, 'status'),
        el('td', h.generation),
        el('td', h.by),
        el('td', h.agent ?? ''),
        el('td', h.reason ? bounded(h.reason, 200) : '', 'reason'),
      );
      return tr;
    }),
  );
}

document.addEventListener('dashboard:task', (e) => {
  const id = e.detail?.id;
  if (typeof id === 'string' && id) open(id);
});

onEvent('task', (data) => {
  const f = current;
  if (!f || data.id !== f.id) return;
  if (data.removed) f.removed = true;
  else if (f.record) {
    f.removed = false;
    // What the event carries is applied at once (bounded fields); the read brings the rest.
    for (const k of ['status', 'assignee', 'generation', 'retryCount', 'progress'])
      if (data[k] !== undefined) f.record[k] = data[k];
  }
  render();
  refresh(f);
});

// After a reconnect that lost events (`reset`), read the open task again.
onLoad(() => {
  if (current) refresh(current);
});
