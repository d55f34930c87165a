// The dashboard's core (docs/gateway.md, "Dashboard"): the token, API calls, the event stream and
// the hooks panels register on. It opens on GET /api/dashboard/state, then follows GET /api/events
// from that state's cursor (read with fetch, so the token travels in a header, never in a URL) and
// hands each event to the panels that asked for its type. The server computes aggregates; panels
// keep bounded lists only. Every value from the hub is written with textContent, never as HTML.

export const session = {
  token: sessionStorage.getItem('agentcom.token') ?? '',
  cursor: null,
  abort: null,
  /** The last GET /api/dashboard/state reply. */
  initial: null,
};

const loaders = [];
const openers = [];
const lives = [];
const handlers = new Map();

/** Run `fn(state)` with each GET /api/dashboard/state reply (at open and after a `reset`). */
export function onLoad(fn) {
  loaders.push(fn);
}
/** Run `fn()` once the page is signed in and live (again after each sign-in). */
export function onOpen(fn) {
  openers.push(fn);
}
/** Run `fn()` each time the event stream (re)connects, once it is open: read what may have been missed. */
export function onLive(fn) {
  lives.push(fn);
}
/** Run `fn(data, id)` for each event of this type on /api/events (task, agent, alert, pheromone, ...). */
export function onEvent(type, fn) {
  if (!handlers.has(type)) handlers.set(type, []);
  handlers.get(type).push(fn);
}

export const $ = (id) => document.getElementById(id);

export function log(text) {
  $('log').textContent = `${new Date().toISOString().slice(11, 19)} ${text}`;
}

export function setStatus(status, text) {
  $('status').dataset.status = status;
  $('status').textContent = text;
}

export async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: {
      authorization: `Bearer ${session.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  const value = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${res.status} ${value?.code ?? ''}: ${value?.message ?? text}`);
  return value;
}

/** An element with text (never HTML), a class and data attributes. */
export function el(tag, text, className, data) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  for (const [k, v] of Object.entries(data ?? {})) e.dataset[k] = v;
  return e;
}

export function cell(text, className) {
  return el('td', text ?? '', className);
}

/** A table cell with a button that runs `onClick` once (enabled again if it fails). */
export function button(label, onClick) {
  const td = document.createElement('td');
  const b = el('button', label);
  b.type = 'button';
  b.addEventListener('click', (e) => {
    e.stopPropagation();
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

export function fill(tableId, rows) {
  $(tableId).tBodies[0].replaceChildren(...rows);
}

/** Ask for the task's detail panel (task-detail.js listens). */
export function openTask(id) {
  document.dispatchEvent(new CustomEvent('dashboard:task', { detail: { id } }));
}
/** Ask for the agent's detail (its state diagram; diagram.js listens). */
export function openAgent(id) {
  document.dispatchEvent(new CustomEvent('dashboard:agent', { detail: { id } }));
}

/** A task record as the panels keep it. */
export function taskFromRecord(t) {
  return {
    id: t.id,
    title: t.title,
    status: t.status,
    queue: t.queue,
    priority: t.priority,
    assignee: t.assignee,
    progress: t.progress,
    error: t.error,
    at: t.completedAt ?? t.lastProgressAt ?? t.assignedAt ?? t.createdAt,
  };
}

async function load() {
  const s = await api('GET', '/api/dashboard/state');
  session.cursor = s.cursor;
  session.initial = s;
  // Side by side: one panel's slow read (a thousand pheromones) delays no other, nor going live.
  await Promise.all(loaders.map((fn) => fn(s)));
}

function dispatch(type, data, id) {
  for (const fn of handlers.get(type) ?? []) {
    try {
      fn(data, id);
    } catch (err) {
      log(`${type} event: ${err.message}`);
    }
  }
}

/** Follows the event stream from the cursor; reloads the state on `reset`, reconnects on a drop. */
async function follow() {
  const abort = new AbortController();
  session.abort = abort;
  for (;;) {
    try {
      const res = await fetch('/api/events?series=1&channels=room', {
        headers: { authorization: `Bearer ${session.token}`, 'last-event-id': session.cursor ?? '' },
        signal: abort.signal,
      });
      if (!res.ok) throw new Error(`events: ${res.status}`);
      for (const fn of lives) new Promise((r) => r(fn())).catch((err) => log(`live: ${err.message}`));
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
          if (id) session.cursor = id;
          if (type === 'reset') {
            await load();
            continue;
          }
          if (data) dispatch(type, JSON.parse(data), id);
        }
      }
    } catch (err) {
      if (abort.signal.aborted) return;
      log(`event stream: ${err.message}; reconnecting`);
    }
    if (abort.signal.aborted) return;
    setStatus('reconnecting', 'reconnecting');
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function open() {
  session.abort?.abort();
  setStatus('loading', 'loading');
  try {
    await load();
    for (const fn of openers) await fn();
    void follow();
  } catch (err) {
    setStatus('error', err.message);
  }
}

/** Starts the page: call once, after every panel module has registered its hooks. */
export function start() {
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    session.token = $('token').value.trim();
    sessionStorage.setItem('agentcom.token', session.token);
    void open();
  });
  if (session.token) void open();
}
