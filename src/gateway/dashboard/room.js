// The chat room (`#room`, docs/gateway.md, "Dashboard"): operators read and post beside the agents.
// Each time the event stream (re)connects (onLive), the panel reads the room's history after what it
// holds for sure (the first time: the last 6 hours, at most 5 pages, the newest 100), while the
// stream's `message` events (GET /api/events?channels=room, sent from the moment it is open) come
// live: merged by seq, each shown once, in seq order, so nothing between the two is lost. A post
// carries a clientId kept until it succeeds, so a retried post is stored once; an error (a read
// token's 403) is shown in the log line and the text is kept. Bounded to the newest 200 messages;
// new ones scroll into view only when the list was at its bottom. Text only, never HTML.
import { $, api, el, log, onEvent, onLive } from './core.js';

const CHANNEL = 'room';
const KEEP = 200;
const FIRST_KEEP = 100;
const FIRST_WINDOW_MS = 6 * 3600_000;
const PAGES = 5;
const PAGE = 500;
/** Longest body shown (a live event carries at most this many characters too). */
const BODY_MAX = 2_000;
const RETRY_MS = 3_000;

/** seq -> { m, li }, every message shown. */
const shown = new Map();
/** Every message up to this seq has been read (history, then the stream's own). */
let synced = 0;
/** The stream connection now (raised on each onLive) and the highest seq each has delivered. */
let connection = 0;
const liveMax = new Map();
let firstDone = false;
/** Catch-ups run one after another. */
let chain = Promise.resolve();
/** The post being sent or retried: its clientId stays while its text does. */
let draft = null;
let replyTo = null;

function time(ms) {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

function excerpt(text, n = 80) {
  const t = String(text ?? '').replace(/\s+/g, ' ');
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

function atBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 8;
}

function item(m) {
  const li = el('li', null, 'room-msg', { seq: String(m.seq), fromKind: m.fromKind, from: m.from });
  if (m.replyTo !== undefined) {
    li.classList.add('reply');
    li.dataset.replyTo = String(m.replyTo);
    const parent = shown.get(m.replyTo)?.m;
    const re = el('p', `↳ re #${m.replyTo}`, 'room-re');
    if (parent) re.textContent += ` ${parent.from}: ${excerpt(parent.title ?? parent.body)}`;
    li.append(re);
  }
  const head = el('p', null, 'room-head');
  head.append(
    el('b', m.from, 'room-from'),
    el('span', m.fromKind, 'room-kind'),
    el('time', time(m.at), 'room-time'),
    el('span', `#${m.seq}`, 'room-seq'),
  );
  head.querySelector('time').dateTime = new Date(m.at).toISOString();
  const answer = el('button', 'Reply', 'room-answer');
  answer.type = 'button';
  answer.addEventListener('click', () => setReply(m));
  head.append(answer);
  li.append(head);
  if (m.title) li.append(el('p', m.title, 'room-title'));
  const body = String(m.body ?? '');
  const cut = m.truncated === true || body.length > BODY_MAX;
  li.append(el('p', cut ? `${body.slice(0, BODY_MAX)}…` : body, 'room-body'));
  if (cut) li.append(el('p', 'message cut: read it whole in the API’s history', 'room-cut'));
  return li;
}

/** Adds messages not shown yet, in seq order; keeps the newest KEEP. */
function add(messages) {
  const list = $('room-list');
  const stick = atBottom(list);
  let added = false;
  for (const m of messages) {
    if (typeof m?.seq !== 'number' || shown.has(m.seq)) continue;
    const li = item(m);
    // Most come last: look for the place from the end.
    let after = list.lastElementChild;
    while (after && Number(after.dataset.seq) > m.seq) after = after.previousElementSibling;
    if (after) after.after(li);
    else list.prepend(li);
    shown.set(m.seq, { m, li });
    added = true;
  }
  if (!added) return;
  while (shown.size > KEEP) {
    const first = list.firstElementChild;
    shown.delete(Number(first.dataset.seq));
    first.remove();
  }
  $('room-panel').dataset.count = String(shown.size);
  if (stick) list.scrollTop = list.scrollHeight;
}

function setNote(text) {
  $('room-note').textContent = text;
}

/** Reads the history after `synced` (the first time: the last 6 hours), for connection `conn`. */
async function catchUp(conn) {
  const first = !firstDone;
  let query = first ? `since=${Math.max(0, Date.now() - FIRST_WINDOW_MS)}` : `after=${synced}`;
  const read = [];
  let complete = false;
  let after = synced;
  for (let page = 0; page < PAGES; page++) {
    const r = await api('GET', `/api/channels/${CHANNEL}/messages?${query}&limit=${PAGE}`);
    read.push(...r.messages);
    for (const m of r.messages) after = Math.max(after, m.seq);
    if (r.next === null) {
      complete = true;
      break;
    }
    after = Math.max(after, r.next);
    query = `after=${r.next}`;
  }
  add(first ? read.slice(-FIRST_KEEP) : read.slice(-KEEP));
  firstDone = true;
  // Read to the end: everything before this connection opened is held, and the connection has
  // delivered everything since, up to its highest seq.
  synced = Math.max(synced, after, complete ? (liveMax.get(conn) ?? 0) : 0);
  const panel = $('room-panel');
  panel.dataset.synced = String(synced);
  panel.dataset.loaded = 'true';
  setNote(complete ? '' : 'history incomplete: more messages than one read shows');
}

/** Queues a catch-up for connection `conn`; a failed one is tried again while `conn` lasts. */
function schedule(conn) {
  chain = chain
    .then(() => catchUp(conn))
    .catch((err) => {
      setNote(`history: ${err.message}; trying again`);
      log(`#${CHANNEL} history: ${err.message}`);
      setTimeout(() => {
        if (conn === connection) schedule(conn);
      }, RETRY_MS);
    });
  return chain;
}

onLive(() => {
  connection += 1;
  liveMax.set(connection, 0);
  for (const k of liveMax.keys()) if (k < connection - 1) liveMax.delete(k);
  return schedule(connection);
});

onEvent('message', (m) => {
  if (m?.channel !== CHANNEL) return;
  liveMax.set(connection, Math.max(liveMax.get(connection) ?? 0, m.seq));
  add([m]);
});

function setReply(m) {
  replyTo = m ? m.seq : null;
  const box = $('room-replying');
  box.hidden = replyTo === null;
  $('room-replying-to').textContent = m ? `#${m.seq} ${m.from}: ${excerpt(m.title ?? m.body, 60)}` : '';
  if (m) $('room-body').focus();
}

function newId() {
  return crypto.randomUUID().replace(/-/g, '');
}

async function send() {
  const body = $('room-body').value;
  const title = $('room-title').value.trim();
  if (!body.trim()) return;
  const same = draft && draft.body === body && draft.title === title && draft.replyTo === replyTo;
  if (!same) draft = { clientId: newId(), body, title, replyTo };
  const payload = { body, clientId: draft.clientId };
  if (title) payload.title = title;
  if (replyTo !== null) payload.replyTo = replyTo;
  const button = $('room-send');
  button.disabled = true;
  try {
    const r = await api('POST', `/api/channels/${CHANNEL}/messages`, payload);
    draft = null;
    $('room-body').value = '';
    $('room-title').value = '';
    setReply(null);
    add([r.message]);
    const list = $('room-list');
    list.scrollTop = list.scrollHeight;
    log(`#${CHANNEL}: posted #${r.message.seq}`);
  } catch (err) {
    // The text stays: fix the token, or try again (the same clientId: stored once).
    log(`#${CHANNEL}: post failed: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

$('room-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void send();
});
$('room-body').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $('room-form').requestSubmit();
  }
});
$('room-replying-cancel').addEventListener('click', () => setReply(null));
