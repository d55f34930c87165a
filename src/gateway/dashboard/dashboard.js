// The AgentCom dashboard (docs/gateway.md, "Dashboard"): one page, served by the gateway with no
// external asset. It opens on GET /api/dashboard/state, then follows GET /api/events from that
// state's cursor (read with fetch, so the token travels in a header, never in a URL) and redraws
// what each event changes. The server computes aggregates; the page keeps bounded lists only.
// Every value from the hub is written with textContent, never parsed as HTML.

const RECENT_MAX = 50;
const state = {
  token: sessionStorage.getItem('agentcom.token') ?? '',
  agents: new Map(),
  tasks: new Map(),
  stats: null,
  dlq: [],
  dead: [],
  cursor: null,
  abort: null,
};

const $ = (id) => document.getElementById(id);

function log(text) {
  $('log').textContent = `${new Date().toISOString().slice(11, 19)} ${text}`;
}

function setStatus(status, text) {
  $('status').dataset.status = status;
  $('status').textContent = text;
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${state.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const value = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${res.status} ${value?.code ?? ''}: ${value?.message ?? text}`);
  return value;
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text === undefined || text === null ? '' : String(text);
  if (className) td.className = className;
  return td;
}

function button(label, onClick) {
  const td = document.createElement('td');
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', () => {
    b.disabled = true;
    onClick().then(
      () => log(`${label}: done`),
      (err) => {
        b.disabled = false;
        log(`${label}: ${err.message}`);
      },
    );
  });
  td.append(b);
  return td;
}

function fill(tableId, rows) {
  $(tableId).tBodies[0].replaceChildren(...rows);
}

function renderAgents() {
  const rows = [...state.agents.values()]
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((a) => {
      const tr = document.createElement('tr');
      tr.dataset.agentId = a.id;
      tr.dataset.state = a.online === false ? 'offline' : a.state;
      tr.append(
        cell(a.id),
        cell(a.online === false ? 'offline' : a.state, 'state'),
        cell((a.tasks ?? []).join(' ')),
        cell(a.slots),
        cell(a.completed),
        cell(a.flags),
        cell((a.queues ?? []).join(' ')),
      );
      return tr;
    });
  fill('agents', rows);
}

function renderQueue() {
  const s = state.stats;
  if (!s) return;
  const rows = Object.entries(s.queues ?? {}).map(([name, q]) => {
    const tr = document.createElement('tr');
    tr.dataset.queue = name;
    tr.append(
      cell(name),
      cell(q.queued.urgent ?? 0),
      cell(q.queued.high ?? 0),
      cell(q.queued.normal ?? 0),
      cell(q.queued.low ?? 0),
      cell(q.oldestReadyAgeMs ? `${Math.round(q.oldestReadyAgeMs / 1000)} s` : ''),
    );
    return tr;
  });
  fill('queue', rows);
  $('counts').textContent = Object.entries(s.byStatus)
    .map(([k, v]) => `${k} ${v}`)
    .join(' · ');
}

function renderTasks() {
  const rows = [...state.tasks.values()]
    .sort((a, b) => (b.at ?? 0) - (a.at ?? 0))
    .slice(0, RECENT_MAX)
    .map((t) => {
      const tr = document.createElement('tr');
      tr.dataset.taskId = t.id;
      tr.dataset.status = t.status;
      const retry =
        t.status === 'dead' || t.status === 'failed' || t.status === 'cancelled'
          ? button('Retry', () => api('POST', `/api/tasks/${encodeURIComponent(t.id)}/retry`))
          : t.status === 'queued' ||
              t.status === 'assigned' ||
              t.status === 'working' ||
              t.status === 'blocked'
            ? button('Cancel', () => api('POST', `/api/tasks/${encodeURIComponent(t.id)}/cancel`, {}))
            : cell('');
      tr.append(
        cell(t.id),
        cell(t.title),
        cell(t.status, 'status'),
        cell(t.queue),
        cell(t.assignee),
        cell(t.progress?.pct !== undefined ? `${t.progress.pct}%` : ''),
        retry,
      );
      return tr;
    });
  fill('tasks', rows);
}

function renderDead() {
  fill(
    'dead',
    state.dead.map((t) => {
      const tr = document.createElement('tr');
      tr.dataset.taskId = t.id;
      tr.append(
        cell(t.id),
        cell(t.title),
        cell(t.error?.message ?? ''),
        button('Retry', async () => {
          await api('POST', `/api/tasks/${encodeURIComponent(t.id)}/retry`);
          state.dead = state.dead.filter((x) => x.id !== t.id);
          renderDead();
        }),
      );
      return tr;
    }),
  );
  fill(
    'dlq',
    state.dlq.map((d) => {
      const tr = document.createElement('tr');
      tr.dataset.seq = String(d.seq);
      tr.append(
        cell(d.seq),
        cell(d.subject),
        cell(`${d.reason.code}: ${d.reason.message}`),
        button('Replay', async () => {
          await api('POST', `/api/dlq/${d.seq}/replay`, {});
          state.dlq = state.dlq.filter((x) => x.seq !== d.seq);
          renderDead();
        }),
      );
      return tr;
    }),
  );
}

function render() {
  renderAgents();
  renderQueue();
  renderTasks();
  renderDead();
}

function taskFromRecord(t) {
  return {
    id: t.id,
    title: t.title,
    status: t.status,
    queue: t.queue,
    assignee: t.assignee,
    progress: t.progress,
    error: t.error,
    at: t.completedAt ?? t.lastProgressAt ?? t.assignedAt ?? t.createdAt,
  };
}

async function load() {
  const s = await api('GET', '/api/dashboard/state');
  state.cursor = s.cursor;
  state.stats = s.tasks;
  state.agents = new Map(
    (s.agents?.agents ?? []).map((a) => [
      a.id,
      {
        id: a.id,
        online: a.online,
        state: a.state,
        tasks: a.tasks,
        slots: a.hello.slots,
        completed: a.completed,
        flags: a.flags,
        queues: a.hello.queues,
      },
    ]),
  );
  state.tasks = new Map((s.recent ?? []).map((t) => [t.id, taskFromRecord(t)]));
  state.dlq = s.dlq?.oldest ?? [];
  const dead = await api('GET', '/api/tasks?status=dead&limit=50').catch(() => null);
  state.dead = (dead?.tasks ?? []).map(taskFromRecord);
  render();
}

let statsTimer = null;
/** Counts change with every task event: asked for again at most once a second. */
function refreshStatsSoon() {
  if (statsTimer) return;
  statsTimer = setTimeout(async () => {
    statsTimer = null;
    try {
      state.stats = await api('GET', '/api/tasks/stats');
      renderQueue();
    } catch (err) {
      log(`stats: ${err.message}`);
    }
  }, 1000);
}

function apply(type, data) {
  if (type === 'task') {
    if (data.removed) state.tasks.delete(data.id);
    else {
      state.tasks.set(data.id, { ...state.tasks.get(data.id), ...data });
      if (data.status === 'dead' && !state.dead.some((t) => t.id === data.id)) state.dead.unshift(data);
      if (data.status !== 'dead') state.dead = state.dead.filter((t) => t.id !== data.id);
      renderDead();
    }
    if (state.tasks.size > RECENT_MAX * 2) {
      const keep = [...state.tasks.values()].sort((a, b) => (b.at ?? 0) - (a.at ?? 0)).slice(0, RECENT_MAX);
      state.tasks = new Map(keep.map((t) => [t.id, t]));
    }
    renderTasks();
    refreshStatsSoon();
  } else if (type === 'agent') {
    if (data.removed) state.agents.delete(data.id);
    else {
      const a = state.agents.get(data.id) ?? { id: data.id, state: 'offline', tasks: [] };
      if (data.state !== undefined) {
        a.state = typeof data.state === 'string' ? data.state : JSON.stringify(data.state);
        a.tasks = data.tasks ?? a.tasks;
        a.online = a.state !== 'offline';
      }
      if (data.registered) a.queues = data.queues;
      state.agents.set(data.id, a);
    }
    renderAgents();
  }
}

/** Follows the event stream from the cursor; reloads the state on `reset`, reconnects on a drop. */
async function follow() {
  for (;;) {
    state.abort = new AbortController();
    try {
      const res = await fetch('/api/events', {
        headers: { authorization: `Bearer ${state.token}`, 'last-event-id': state.cursor ?? '' },
        signal: state.abort.signal,
      });
      if (!res.ok) throw new Error(`events: ${res.status}`);
      setStatus('live', 'live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = 'message';
          let id = null;
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) type = line.slice(6).trim();
            else if (line.startsWith('id:')) id = line.slice(3).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (id) state.cursor = id;
          if (type === 'reset') {
            await load();
            continue;
          }
          if (data) apply(type, JSON.parse(data));
        }
      }
    } catch (err) {
      if (state.abort.signal.aborted) return;
      log(`event stream: ${err.message}; reconnecting`);
    }
    setStatus('reconnecting', 'reconnecting');
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function open() {
  state.abort?.abort();
  setStatus('loading', 'loading');
  try {
    await load();
    const control = await api('GET', '/api/hub').catch(() => null);
    if (control) $('hub').textContent = `intake ${control.intake}, assignment ${control.assignment}`;
    $('pause').hidden = false;
    $('resume').hidden = false;
    void follow();
  } catch (err) {
    setStatus('error', err.message);
  }
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  state.token = $('token').value.trim();
  sessionStorage.setItem('agentcom.token', state.token);
  void open();
});
for (const op of ['pause', 'resume'])
  $(op).addEventListener('click', () =>
    api('POST', `/api/hub/${op}`, {}).then(
      (c) => {
        $('hub').textContent = `intake ${c.intake}, assignment ${c.assignment}`;
        log(`${op}d`);
      },
      (err) => log(`${op}: ${err.message}`),
    ),
  );
if (state.token) void open();
