// The diagram panel (docs/gateway.md, "Dashboard"): the selected agent's AgentFSM (machines/agent.ts)
// as a state diagram, live, with the events it received beside it. Clicking an agent row
// (`dashboard:agent`) opens GET /api/inspect?targets=agent.<id> as a WebSocket (docs/protocol.md
// §11e); the hub holding the lease announces the FSM with its machine definition and current state,
// then sends each event and the state after it. States and transitions are read from that
// definition, not from a copy here: top-level states in columns by distance from the initial one
// (a breadth-first walk of the transitions, in the definition's order), nested states as boxes
// inside their parent, transitions between top-level states as arrows (several events between two
// states share one). The live state is highlighted with its transitions. The SVG is built with DOM
// calls; hub data is only ever text or attribute values. A restarted FSM (or a new leader's) is a
// new session: the diagram follows it. The log keeps the newest LOG_MAX events.
import { $, el, onOpen } from './core.js';
import { inspectionSocket } from './tree.js';

const LOG_MAX = 50;
const SVG = 'http://www.w3.org/2000/svg';

// --- The machine definition (pure) --------------------------------------------------------------

/** The target strings of a transition config (a string, an object, or an array of either). */
function targetsOf(t) {
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t.flatMap(targetsOf);
  if (t && typeof t === 'object') return t.target === undefined ? [] : targetsOf(t.target);
  return [];
}

/** Each event a state config reacts to, with its transition config(s). */
function transitionsOf(config) {
  const out = [];
  for (const [event, t] of Object.entries(config.on ?? {})) out.push([event, t]);
  if (config.always !== undefined) out.push(['always', config.always]);
  for (const [delay, t] of Object.entries(config.after ?? {})) out.push([`after ${delay}`, t]);
  for (const inv of [config.invoke ?? []].flat()) {
    if (inv?.onDone !== undefined) out.push(['done.invoke', inv.onDone]);
    if (inv?.onError !== undefined) out.push(['error.invoke', inv.onError]);
  }
  if (config.onDone !== undefined) out.push(['done.state', config.onDone]);
  return out;
}

/**
 * A machine definition (the JSON config `@xstate.actor` carries) as states by path (`a`, `a.b`)
 * and resolved transitions. Throws on a definition that is not a JSON object.
 */
export function machineModel(definition) {
  const config = typeof definition === 'string' ? JSON.parse(definition) : definition;
  if (!config || typeof config !== 'object') throw new Error('no machine definition');
  const machineId = typeof config.id === 'string' ? config.id : '(machine)';
  const states = new Map();
  const byId = new Map();
  const walk = (cfg, parentPath) => {
    const order = [];
    for (const [key, sc] of Object.entries(cfg.states ?? {})) {
      if (!sc || typeof sc !== 'object') continue;
      const path = parentPath ? `${parentPath}.${key}` : key;
      const transitions = transitionsOf(sc);
      const state = {
        path,
        key,
        parentPath,
        type: sc.type ?? (sc.states ? 'compound' : 'atomic'),
        initial: typeof sc.initial === 'string' ? sc.initial : null,
        // Passed through, never rested in: only eventless transitions.
        transient: sc.always !== undefined && sc.on === undefined,
        config: sc,
        raw: transitions,
        children: [],
      };
      states.set(path, state);
      byId.set(`${machineId}.${path}`, path);
      if (typeof sc.id === 'string') byId.set(sc.id, path);
      state.children = walk(sc, path);
      order.push(path);
    }
    return order;
  };
  const top = walk(config, '');
  const resolve = (from, target) => {
    if (target.startsWith('#')) {
      const ref = target.slice(1);
      if (byId.has(ref)) return byId.get(ref);
      const dot = ref.indexOf('.');
      const base = dot < 0 ? undefined : byId.get(ref.slice(0, dot));
      const path = base === undefined ? undefined : `${base}.${ref.slice(dot + 1)}`;
      return path !== undefined && states.has(path) ? path : null;
    }
    if (target.startsWith('.')) {
      const path = from ? `${from}${target}` : target.slice(1);
      return states.has(path) ? path : null;
    }
    const parent = states.get(from)?.parentPath ?? '';
    const sibling = parent ? `${parent}.${target}` : target;
    if (states.has(sibling)) return sibling;
    return states.has(target) ? target : null;
  };
  /** Per source path ('' for the machine's own `on`): [{event, to}], in definition order. */
  const transitions = new Map();
  const add = (from, list) =>
    transitions.set(
      from,
      list.flatMap(([event, t]) =>
        targetsOf(t)
          .map((target) => resolve(from, target))
          .filter((to) => to !== null)
          .map((to) => ({ event, to })),
      ),
    );
  add('', transitionsOf(config));
  for (const s of states.values()) add(s.path, s.raw);
  // Arrows between top-level states; several events between two states share one.
  const topOf = (path) => path.split('.')[0];
  const edgeMap = new Map();
  for (const s of states.values())
    for (const { event, to } of transitions.get(s.path)) {
      const a = topOf(s.path);
      const b = topOf(to);
      if (a === b && s.path !== to) continue; // inside one top-level state: not drawn
      const k = `${a}\u0000${b}`;
      if (!edgeMap.has(k)) edgeMap.set(k, { from: a, to: b, events: [] });
      const edge = edgeMap.get(k);
      if (!edge.events.includes(event)) edge.events.push(event);
    }
  const initial =
    typeof config.initial === 'string' && states.has(config.initial) ? config.initial : (top[0] ?? null);
  return { id: machineId, initial, states, top, transitions, edges: [...edgeMap.values()] };
}

/** The active state paths of a snapshot value: `'idle'`, or `{a: 'b'}` -> a, a.b; parallel too. */
export function activePaths(value, prefix = '') {
  const out = [];
  if (typeof value === 'string') out.push(prefix ? `${prefix}.${value}` : value);
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) {
      const path = prefix ? `${prefix}.${k}` : k;
      out.push(path, ...activePaths(v, path));
    }
  return out;
}

// --- The layout (pure) --------------------------------------------------------------------------

const MARGIN = 16;
const COLUMN_GAP = 96;
const ROW_GAP = 22;
const LEAF_H = 32;
const HEADER_H = 24;
const PAD = 8;

/** Width and height of a state's box: a leaf fits its name; a parent fits its children. */
function measure(model, path, sizes) {
  const s = model.states.get(path);
  const label = Math.max(84, 8 * s.key.length + 28);
  if (s.children.length === 0) {
    sizes.set(path, { w: label, h: LEAF_H });
    return sizes.get(path);
  }
  const kids = s.children.map((c) => measure(model, c, sizes));
  // Regions of a parallel state side by side; the children of a compound one stacked.
  const across = s.type === 'parallel';
  const inner = across
    ? { w: kids.reduce((n, k) => n + k.w, 0) + PAD * (kids.length - 1), h: Math.max(...kids.map((k) => k.h)) }
    : {
        w: Math.max(...kids.map((k) => k.w)),
        h: kids.reduce((n, k) => n + k.h, 0) + PAD * (kids.length - 1),
      };
  sizes.set(path, { w: Math.max(label, inner.w + 2 * PAD), h: HEADER_H + inner.h + PAD });
  return sizes.get(path);
}

/** Places a state's children inside its box (x, y: the box's corner). */
function placeChildren(model, path, boxes, sizes) {
  const s = model.states.get(path);
  const box = boxes.get(path);
  let x = box.x + PAD;
  let y = box.y + HEADER_H;
  for (const c of s.children) {
    const size = sizes.get(c);
    const w = s.type === 'parallel' ? size.w : box.w - 2 * PAD;
    boxes.set(c, { x, y, w, h: size.h });
    placeChildren(model, c, boxes, sizes);
    if (s.type === 'parallel') x += size.w + PAD;
    else y += size.h + PAD;
  }
}

/** The point at t = 0.5 of a cubic Bézier. */
const mid = (p0, p1, p2, p3) => ({
  x: (p0.x + 3 * p1.x + 3 * p2.x + p3.x) / 8,
  y: (p0.y + 3 * p1.y + 3 * p2.y + p3.y) / 8,
});

/**
 * Boxes for every state and a path for every arrow, deterministic: top-level states in columns by
 * breadth-first distance from the initial state (unreachable ones in a last column), each column
 * centred. Forward arrows go right to left-hand sides; backward ones leave a box's left side and
 * bow over the top (from the upper half) or under the bottom into their target.
 */
export function layoutMachine(model) {
  const column = new Map();
  const queue = model.initial === null ? [] : [model.initial];
  if (model.initial !== null) column.set(model.initial, 0);
  while (queue.length > 0) {
    const a = queue.shift();
    for (const e of model.edges)
      if (e.from === a && !column.has(e.to)) {
        column.set(e.to, column.get(a) + 1);
        queue.push(e.to);
      }
  }
  const last = column.size === 0 ? 0 : Math.max(...column.values()) + 1;
  for (const p of model.top) if (!column.has(p)) column.set(p, last);
  const columns = [];
  for (const p of model.top) {
    const c = column.get(p);
    columns[c] ??= [];
    columns[c].push(p);
  }
  // Breadth-first order within a column (the order states were reached in).
  const reached = [...column.keys()];
  for (const col of columns) col?.sort((a, b) => reached.indexOf(a) - reached.indexOf(b));
  const sizes = new Map();
  for (const p of model.top) measure(model, p, sizes);
  const dense = columns.filter(Boolean);
  const heightOf = (col) => col.reduce((n, p) => n + sizes.get(p).h, 0) + ROW_GAP * (col.length - 1);
  const tallest = Math.max(0, ...dense.map(heightOf));
  const boxes = new Map();
  const colOf = new Map();
  let x = MARGIN;
  const top = MARGIN + 44; // room for the arrows that bow over the top
  dense.forEach((col, i) => {
    const w = Math.max(...col.map((p) => sizes.get(p).w));
    let y = top + (tallest - heightOf(col)) / 2;
    for (const p of col) {
      const size = sizes.get(p);
      boxes.set(p, { x: x + (w - size.w) / 2, y, w: size.w, h: size.h });
      colOf.set(p, i);
      placeChildren(model, p, boxes, sizes);
      y += size.h + ROW_GAP;
    }
    x += w + COLUMN_GAP;
  });
  const width = Math.max(x - COLUMN_GAP + MARGIN, 120);
  const height = top + tallest + 44 + MARGIN;
  const middle = top + tallest / 2;
  const edges = model.edges.map((e) => {
    const a = boxes.get(e.from);
    const b = boxes.get(e.to);
    let p;
    if (e.from === e.to) {
      // A loop over the box's top right corner.
      const s = { x: a.x + a.w - 18, y: a.y };
      const t = { x: a.x + a.w, y: a.y + 10 };
      p = [s, { x: s.x, y: s.y - 30 }, { x: t.x + 30, y: t.y }, t];
    } else if (colOf.get(e.to) > colOf.get(e.from)) {
      const s = { x: a.x + a.w, y: a.y + a.h / 2 - 4 };
      const t = { x: b.x, y: b.y + b.h / 2 - 4 };
      const dx = (t.x - s.x) / 2;
      p = [s, { x: s.x + dx, y: s.y }, { x: t.x - dx, y: t.y }, t];
    } else {
      const up = a.y + a.h / 2 < middle || (a.y + a.h / 2 === middle && b.y + b.h / 2 <= middle);
      const s = { x: a.x, y: a.y + a.h / 2 + (up ? -a.h / 4 : a.h / 4) };
      if (colOf.get(e.to) === colOf.get(e.from)) {
        const t = { x: b.x, y: b.y + b.h / 2 + 4 };
        p = [s, { x: s.x - 40, y: s.y }, { x: t.x - 40, y: t.y }, t];
      } else {
        const t = { x: b.x + b.w / 2 + (up ? -6 : 6), y: up ? b.y : b.y + b.h };
        const bow = 28 + Math.min(60, 0.12 * Math.abs(s.x - t.x));
        p = [s, { x: s.x - 36, y: s.y }, { x: t.x, y: up ? t.y - bow : t.y + bow }, t];
      }
    }
    const d = `M${p[0].x},${p[0].y} C${p[1].x},${p[1].y} ${p[2].x},${p[2].y} ${p[3].x},${p[3].y}`;
    return { ...e, d, mid: mid(...p) };
  });
  return { width, height, boxes, edges };
}

// --- The view -----------------------------------------------------------------------------------

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function arrowMarker(id) {
  const m = svg('marker', {
    id,
    viewBox: '0 0 10 10',
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: 'auto-start-reverse',
  });
  m.append(svg('path', { d: 'M0,0 L10,5 L0,10 z' }));
  return m;
}

/** Short text for an arrow's events: the first two, and how many more. */
function eventsLabel(events) {
  return events.length <= 2 ? events.join(', ') : `${events.slice(0, 2).join(', ')} +${events.length - 2}`;
}

/** The diagram of `model` laid out as `layout`, with `active` (a set of paths) highlighted. */
function drawDiagram(model, layout, active) {
  const root = svg('svg', {
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    role: 'img',
    class: 'diagram-svg',
  });
  root.append(svg('title', {}, `state machine ${model.id}`));
  const defs = svg('defs');
  defs.append(arrowMarker('diagram-arrow'), arrowMarker('diagram-arrow-active'));
  root.append(defs);
  const topActive = new Set([...active].map((p) => p.split('.')[0]));
  const edges = svg('g', { class: 'diagram-edges' });
  const labels = svg('g', { class: 'diagram-labels' });
  // Drawn the live state's arrows last, so they lie on top.
  const sorted = [...layout.edges].sort(
    (a, b) => Number(topActive.has(a.from)) - Number(topActive.has(b.from)),
  );
  for (const e of sorted) {
    const on = topActive.has(e.from);
    const g = svg('g', {
      class: 'diagram-edge',
      'data-from': e.from,
      'data-to': e.to,
      'data-active': on,
    });
    g.append(svg('title', {}, `${e.from} → ${e.to}: ${e.events.join(', ')}`));
    g.append(svg('path', { d: e.d, 'marker-end': `url(#${on ? 'diagram-arrow-active' : 'diagram-arrow'})` }));
    edges.append(g);
    if (on)
      labels.append(
        svg('text', { x: e.mid.x, y: e.mid.y - 4, class: 'diagram-label' }, eventsLabel(e.events)),
      );
  }
  const states = svg('g', { class: 'diagram-states' });
  // Parents before their children, so a child's box lies on its parent's.
  for (const s of [...model.states.values()].sort(
    (a, b) => a.path.split('.').length - b.path.split('.').length,
  )) {
    const b = layout.boxes.get(s.path);
    const parent = s.children.length > 0;
    const g = svg('g', {
      class: `diagram-state${parent ? ' diagram-parent' : ''}`,
      'data-state-node': s.path,
      'data-active': active.has(s.path),
      'data-type': s.type,
      'data-transient': s.transient,
    });
    g.append(svg('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: 8, ry: 8 }));
    if (s.type === 'final')
      g.append(svg('rect', { x: b.x + 3, y: b.y + 3, width: b.w - 6, height: b.h - 6, rx: 6, ry: 6 }));
    const ty = parent ? b.y + 16 : b.y + b.h / 2 + 5;
    g.append(svg('text', { x: b.x + b.w / 2, y: ty }, s.key));
    states.append(g);
  }
  // The initial state's marker: a dot and a short arrow into its left side.
  const init = model.initial === null ? undefined : layout.boxes.get(model.initial);
  if (init) {
    const y = init.y + init.h / 2 + 6;
    states.append(
      svg('circle', { cx: init.x - 22, cy: y, r: 4, class: 'diagram-initial' }),
      svg('path', {
        d: `M${init.x - 18},${y} L${init.x - 1},${y}`,
        class: 'diagram-initial',
        'marker-end': 'url(#diagram-arrow)',
      }),
    );
  }
  root.append(edges, states, labels);
  return root;
}

/** What the active states react to, as lines `EVENT, EVENT → target`. */
function transitionLines(model, active) {
  const lines = [];
  for (const from of ['', ...[...active].sort()]) {
    const byTarget = new Map();
    for (const { event, to } of model.transitions.get(from) ?? []) {
      if (!byTarget.has(to)) byTarget.set(to, []);
      if (!byTarget.get(to).includes(event)) byTarget.get(to).push(event);
    }
    for (const [to, events] of byTarget) lines.push({ from: from || '(any)', to, events });
  }
  return lines;
}

/** A snapshot's context in one line: scalars as they are, objects and arrays by their size. */
function contextLine(context) {
  if (!context || typeof context !== 'object') return '';
  return Object.entries(context)
    .slice(0, 14)
    .map(([k, v]) => {
      if (Array.isArray(v)) return `${k}: [${v.length}]`;
      if (v && typeof v === 'object') {
        const keys = Object.keys(v);
        return `${k}: {${keys.slice(0, 3).join(', ')}${keys.length > 3 ? ', …' : ''}}`;
      }
      return `${k}: ${v}`;
    })
    .join('  ·  ');
}

// --- The panel ----------------------------------------------------------------------------------

let selected = null;
let socket = null;
/** The FSM being watched: its session, model, layout and state; null before its announcement. */
let fsm = null;
let log = [];

function clock(createdAt) {
  const at = Number(createdAt);
  return Number.isFinite(at) ? new Date(at).toISOString().slice(11, 23) : '';
}

function renderDiagram() {
  const box = $('diagram-svg');
  if (!fsm) {
    box.replaceChildren(el('p', 'waiting for the hub to announce the state machine…', 'diagram-note'));
    $('diagram-transitions').replaceChildren();
    $('diagram-context').textContent = '';
    return;
  }
  if (!fsm.model) {
    box.replaceChildren(el('p', `no diagram: ${fsm.error}`, 'diagram-note'));
    return;
  }
  const active = new Set(activePaths(fsm.value));
  box.replaceChildren(drawDiagram(fsm.model, fsm.layout, active));
  box.dataset.value = typeof fsm.value === 'string' ? fsm.value : JSON.stringify(fsm.value);
  box.dataset.status = fsm.status ?? 'active';
  $('diagram-transitions').replaceChildren(
    ...transitionLines(fsm.model, active).map((l) =>
      el('li', `${l.from}: ${l.events.join(', ')} → ${l.to}`, undefined, { from: l.from, to: l.to }),
    ),
  );
  $('diagram-context').textContent = contextLine(fsm.context);
}

function renderLog() {
  $('diagram-log').replaceChildren(
    ...log.map((entry) => {
      const li = el('li', undefined, entry.kind === 'session' ? 'diagram-session' : undefined, {
        eventType: entry.type,
        stateAfter: entry.after ?? '',
      });
      li.append(
        el('time', clock(entry.at)),
        el('b', entry.type),
        el('span', entry.after === undefined ? '' : `→ ${entry.after}`, 'diagram-after'),
      );
      if (entry.detail) {
        const detail = el('span', entry.detail, 'diagram-detail');
        detail.title = entry.detail;
        li.append(detail);
      }
      return li;
    }),
  );
}

function push(entry) {
  log.unshift(entry);
  if (log.length > LOG_MAX) log.length = LOG_MAX;
}

/** An event's fields worth a glance (task, generation, reason), as text. */
function detailOf(event) {
  const parts = [];
  for (const k of ['taskId', 'generation', 'reason', 'slots', 'tokensUsed'])
    if (event[k] !== undefined && event[k] !== null) parts.push(`${k} ${event[k]}`);
  return parts.join(' · ');
}

function valueText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

function onInspection(e) {
  if (e.type === '@xstate.actor') {
    // The FSM itself (the root of its system); a restarted one is a new session.
    if (e.parentId !== undefined && e.parentId !== null) return;
    const fresh = fsm?.session !== e.sessionId;
    let model = fsm && !fresh ? fsm.model : null;
    let layout = fsm && !fresh ? fsm.layout : null;
    let error = null;
    if (fresh || !model)
      try {
        model = machineModel(e.definition);
        layout = layoutMachine(model);
      } catch (err) {
        error = err.message;
      }
    fsm = {
      session: e.sessionId,
      model,
      layout,
      error,
      value: e.snapshot?.value,
      status: e.snapshot?.status,
      context: e.snapshot?.context,
    };
    if (fresh) {
      push({
        kind: 'session',
        type: 'session',
        at: e.createdAt,
        detail: e.sessionId,
        after: valueText(fsm.value),
      });
      renderLog();
    }
    renderDiagram();
    return;
  }
  if (!fsm || e.sessionId !== fsm.session) return;
  if (e.type === '@xstate.event') {
    const event = e.event ?? {};
    push({ type: String(event.type ?? ''), at: e.createdAt, detail: detailOf(event) });
    renderLog();
  } else if (e.type === '@xstate.snapshot') {
    fsm.value = e.snapshot?.value;
    fsm.status = e.snapshot?.status;
    fsm.context = e.snapshot?.context;
    // The state the newest event led to.
    const top = log[0];
    if (top && top.kind !== 'session' && top.after === undefined && top.type === String(e.event?.type ?? ''))
      top.after = valueText(fsm.value);
    renderDiagram();
    renderLog();
  }
}

/** Watches agent `id` (null: none); the same one again only when `reopen` (a new sign-in). */
function select(id, reopen = false) {
  if (id !== null && id === selected && socket && !reopen) return;
  socket?.close();
  socket = null;
  selected = id;
  fsm = null;
  log = [];
  $('diagram-hint').hidden = id !== null;
  $('diagram').hidden = id === null;
  $('diagram-panel').dataset.agent = id ?? '';
  if (id === null) return;
  $('diagram-agent').textContent = `agent ${id}`;
  renderDiagram();
  renderLog();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
    $('diagram-svg').replaceChildren(el('p', 'this agent id cannot be inspected', 'diagram-note'));
    return;
  }
  socket = inspectionSocket(`agent.${id}`, onInspection, (state) => {
    $('diagram-socket').textContent = state;
    $('diagram-socket').dataset.socket = state;
  });
}

document.addEventListener('dashboard:agent', (e) => {
  const id = e.detail?.id;
  select(typeof id === 'string' && id !== '' ? id : null);
});
$('diagram-close').addEventListener('click', () => select(null));
// After a sign-in (maybe with another token), the watched agent is opened again.
onOpen(() => {
  if (selected !== null) select(selected, true);
});
