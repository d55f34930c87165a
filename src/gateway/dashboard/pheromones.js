// The pheromone map (seed 001's "pheromone map"; docs/gateway.md, "Dashboard"). The live field as
// glowing dots, one lane per type, placed by age along the last 15 minutes (older ones wait at the
// left edge) and fading as their ttl runs out; coloured unclaimed, claimed or promoted to a task;
// lines from each observing agent to the dots its patterns match; and per minute, what was
// emitted, claimed and ended (expired or removed). Hovering or clicking a dot shows its record.
//
// It opens on GET /api/pheromones (the newest 1,000, without payloads) and the field's counts in
// the dashboard state, then follows `pheromone` events; the flow chart starts from the audit trail
// (GET /api/pheromones/history, at most 2,000 events). Observations are not on the event stream:
// GET /api/pheromones/observers is asked once at open and then every 10 s while the page is
// visible, so a new observer shows within about 15 s (the hub reuses a scan for 5 s). Bounded: at
// most MAX_DOTS dots (the newest) with "+K more" from the server's counts, MAX_LANES lanes,
// MAX_AGENTS agents, MAX_LINES lines.
// Every value from the hub is written with textContent.
import { $, api, el, log, onEvent, onLoad, onOpen, session } from './core.js';

const NS = 'http://www.w3.org/2000/svg';
const MAX_DOTS = 500;
const MAX_HELD = 2000;
const MAX_LANES = 24;
const MAX_AGENTS = 40;
const MAX_LINES = 1500;
/** With this many dots or fewer, a claimed dot is labelled with its claimer. */
const LABELLED_DOTS = 60;
const WINDOW_MS = 15 * 60_000;
const MINUTE = 60_000;
const OBSERVERS_EVERY_MS = 10_000;
const STATS_EVERY_MS = 30_000;
const TICK_MS = 5_000;
const HISTORY_PAGES = 4;
const HISTORY_PAGE = 500;
const FLASH_MS = 2_500;

// Map geometry (SVG user units; the map is scaled to the panel's width).
const W = 1000;
const AGENT_X = 150;
const LABEL_END = 330;
const DOT_X0 = 350;
const DOT_X1 = 975;
const TOP = 24;

const state = {
  /** id -> the pheromone's record without its payload. */
  held: new Map(),
  /** The server's counts, kept current by events between reads: { active, claimed, expired, byType }. */
  stats: null,
  statsAt: 0,
  statsDirty: false,
  /** The observations: { agentId, slot, pattern, active, consumer }. */
  observers: [],
  observersTotal: 0,
  observersTruncated: false,
  observersError: null,
  observersLoaded: false,
  /** Patterns online agents name in their hello ({ agentId, pattern }). */
  declared: [],
  /** minute start -> { emitted, claimed, ended }. */
  flow: new Map(),
  flowPartial: false,
  /** Revisions already counted in the flow, and in the counts (`<id>@<event>@<eventAt>`). */
  flowSeen: new Set(),
  statsSeen: new Set(),
  /** id -> until when its dot pings (an event just touched it). */
  flash: new Map(),
  selected: null,
  hovered: null,
  /** The pinned pheromone's last record once it left the field. */
  selectedEnded: null,
  /** Server clock minus this page's (from the state's `at`). */
  skew: 0,
  /** Bumped by each load: a slower earlier history read is dropped. */
  generation: 0,
};

const now = () => Date.now() + state.skew;

/** Where an age sits on the map's time axis: logarithmic, so the last seconds are not one pile. */
const ageX = (ms) =>
  DOT_X1 -
  ((DOT_X1 - DOT_X0) * Math.log1p(Math.min(WINDOW_MS, Math.max(0, ms)) / 1000)) /
    Math.log1p(WINDOW_MS / 1000);

/** Whether `type` matches `pattern` (protocol/field.ts typeMatches: NATS tokens, `*` alone is all). */
function typeMatches(type, pattern) {
  if (pattern === '*' || pattern === '>') return true;
  const t = type.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length || (p[i] !== '*' && p[i] !== t[i])) return false;
  }
  return t.length === p.length;
}

function svg(tag, attrs, className) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) e.setAttribute(k, String(v));
  if (className) e.setAttribute('class', className);
  return e;
}

function svgText(x, y, text, className, anchor) {
  const t = svg('text', { x, y, ...(anchor ? { 'text-anchor': anchor } : {}) }, className);
  t.textContent = String(text);
  return t;
}

function hash(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

const revision = (p) => `${p.id}@${p.event}@${p.eventAt}`;

/** The map's record of a pheromone (a listed record or an event's data): never its payload. */
function record(d) {
  const eventAt = d.eventAt ?? d.at ?? now();
  return {
    id: String(d.id),
    type: String(d.type ?? ''),
    selector: d.selector ?? '',
    source: d.source ?? '',
    timestamp: d.timestamp ?? eventAt,
    ttl: d.ttl ?? null,
    expiresAt: d.expiresAt ?? null,
    claimedBy: d.claimedBy ?? null,
    claimedAt: d.claimedAt ?? null,
    taskId: d.taskId ?? null,
    event: d.event ?? 'emitted',
    eventAt,
    eventBy: d.eventBy ?? '',
  };
}

const dotState = (p) => (p.taskId ? 'task' : p.claimedBy ? 'claimed' : 'free');

function hold(p) {
  const before = state.held.get(p.id);
  if (before && before.eventAt > p.eventAt) return;
  state.held.set(p.id, p);
  // Over the bound: keep the newest MAX_HELD (in a batch, not on every event).
  if (state.held.size > MAX_HELD + 200) {
    const keep = [...state.held.values()].sort((a, b) => b.timestamp - a.timestamp).slice(0, MAX_HELD);
    state.held = new Map(keep.map((x) => [x.id, x]));
  }
}

function countFlow(p) {
  const key = revision(p);
  if (state.flowSeen.has(key)) return;
  state.flowSeen.add(key);
  const series =
    p.event === 'emitted'
      ? 'emitted'
      : p.event === 'claimed' || p.event === 'promoted'
        ? 'claimed'
        : p.event === 'expired' || p.event === 'removed'
          ? 'ended'
          : null;
  if (!series || p.eventAt < now() - WINDOW_MS - MINUTE) return;
  const minute = Math.floor(p.eventAt / MINUTE) * MINUTE;
  const b = state.flow.get(minute) ?? { emitted: 0, claimed: 0, ended: 0 };
  b[series]++;
  state.flow.set(minute, b);
}

function trimFlow() {
  const from = now() - WINDOW_MS - MINUTE;
  for (const m of state.flow.keys()) if (m < from) state.flow.delete(m);
  if (state.flowSeen.size > 20_000) state.flowSeen.clear();
  if (state.statsSeen.size > 20_000) state.statsSeen = new Set([...state.held.values()].map(revision));
}

/** The counts after one event the server's counts did not include yet. */
function countStats(p) {
  const key = revision(p);
  if (state.statsSeen.has(key) || !state.stats) return;
  state.statsSeen.add(key);
  const s = state.stats;
  const wasClaimed = p.claimedBy !== null;
  const byType = (n) => {
    s.byType[p.type] = Math.max(0, (s.byType[p.type] ?? 0) + n);
    if (!s.byType[p.type]) delete s.byType[p.type];
  };
  switch (p.event) {
    case 'emitted':
      s.active++;
      byType(1);
      break;
    case 'claimed':
    case 'promoted':
      s.active--;
      s.claimed++;
      break;
    case 'released':
      s.claimed--;
      s.active++;
      break;
    case 'expired':
    case 'removed':
      if (p.event === 'expired') s.expired++;
      if (wasClaimed) s.claimed--;
      else s.active--;
      byType(-1);
      break;
  }
  s.active = Math.max(0, s.active);
  s.claimed = Math.max(0, s.claimed);
}

// --- loading --------------------------------------------------------------------------------

onLoad(async (s) => {
  const generation = ++state.generation;
  state.skew = typeof s.at === 'number' ? s.at - Date.now() : 0;
  state.held = new Map();
  state.flash = new Map();
  state.flow = new Map();
  state.flowSeen = new Set();
  state.statsSeen = new Set();
  state.flowPartial = false;
  state.stats = s.field ? { ...s.field, byType: { ...s.field.byType } } : null;
  state.statsAt = now();
  state.statsDirty = false;
  state.declared = (s.agents?.agents ?? [])
    .filter((a) => a.online !== false)
    .flatMap((a) => (a.hello?.observes ?? []).map((pattern) => ({ agentId: a.id, pattern })));
  try {
    const list = await api('GET', '/api/pheromones?limit=1000&payloads=false');
    for (const p of list.pheromones) {
      const r = record(p);
      hold(r);
      state.statsSeen.add(revision(r));
    }
  } catch (err) {
    log(`pheromones: ${err.message}`);
  }
  render();
  void loadHistory(generation);
});

/** The flow chart's start: the audit trail of the window, a few pages at most. */
async function loadHistory(generation) {
  let since = Math.floor(now() - WINDOW_MS);
  try {
    for (let page = 0; page < HISTORY_PAGES; page++) {
      const h = await api(
        'GET',
        `/api/pheromones/history?since=${since}&limit=${HISTORY_PAGE}&payloads=false`,
      );
      if (generation !== state.generation) return;
      for (const e of h.events) countFlow(record(e));
      if (!h.more || !h.events.length) {
        scheduleRender();
        return;
      }
      since = h.events[h.events.length - 1].eventAt;
    }
    state.flowPartial = true;
  } catch (err) {
    log(`pheromone history: ${err.message}`);
  }
  scheduleRender();
}

let observersInFlight = false;
async function refreshObservers() {
  if (!session.token || observersInFlight || document.hidden) return;
  observersInFlight = true;
  try {
    const r = await api('GET', '/api/pheromones/observers?limit=1000');
    state.observers = r.observers;
    state.observersTotal = r.total;
    state.observersTruncated = r.truncated;
    state.observersError = null;
  } catch (err) {
    state.observersError = err.message;
  } finally {
    state.observersLoaded = true;
    observersInFlight = false;
  }
  scheduleRender();
}

async function refreshStats() {
  if (!session.token || document.hidden || !state.statsDirty) return;
  if (now() - state.statsAt < STATS_EVERY_MS) return;
  state.statsDirty = false;
  state.statsAt = now();
  try {
    const s = await api('GET', '/api/pheromones/stats');
    state.stats = { ...s, byType: { ...s.byType } };
    scheduleRender();
  } catch (err) {
    log(`pheromone stats: ${err.message}`);
  }
}

let timers = null;
onOpen(() => {
  void refreshObservers();
  if (timers) return;
  timers = [
    setInterval(() => void refreshObservers(), OBSERVERS_EVERY_MS),
    setInterval(() => {
      if (document.hidden) return;
      void refreshStats();
      trimFlow();
      render();
    }, TICK_MS),
  ];
});

onEvent('pheromone', (d) => {
  if (d.removed) {
    // The key's delete: its final revision (expired/removed) came before.
    state.held.delete(d.id);
    scheduleRender();
    return;
  }
  const p = record(d);
  countFlow(p);
  countStats(p);
  state.statsDirty = true;
  if (p.event === 'expired' || p.event === 'removed') {
    state.held.delete(p.id);
    if (p.id === state.selected) state.selectedEnded = p;
  } else hold(p);
  state.flash.set(p.id, now() + FLASH_MS);
  scheduleRender();
});

// --- drawing --------------------------------------------------------------------------------

let pending = null;
function scheduleRender() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = null;
    render();
  }, 100);
}

function render() {
  const t = now();
  for (const [id, until] of state.flash) if (until < t) state.flash.delete(id);
  const drawn = [...state.held.values()].sort((a, b) => b.timestamp - a.timestamp).slice(0, MAX_DOTS);
  renderSummary(drawn.length);
  renderMap(drawn, t);
  renderFlow(t);
  renderDetail(t);
}

function renderSummary(drawn) {
  const s = state.stats;
  const live = s ? s.active + s.claimed : state.held.size;
  const more = Math.max(0, live - drawn);
  const parts = [
    s
      ? el(
          'span',
          `Environment: ${s.active} active | ${s.claimed} claimed | ${s.expired} expired`,
          'ph-counts',
        )
      : el('span', 'Environment: counts unavailable', 'ph-counts'),
    el('span', ` · showing ${drawn} of ${live}`),
  ];
  if (more > 0) parts.push(el('span', ` (+${more} more)`, 'ph-more', { more: String(more) }));
  const agents = new Set(state.observers.map((o) => o.agentId ?? '(trusted)'));
  parts.push(
    el(
      'span',
      state.observersError
        ? ` · observations unavailable (${state.observersError})`
        : ` · ${plural(state.observersTotal, 'observation')}${state.observersTruncated ? '+' : ''} by ${plural(agents.size, 'observer')} (refreshed every ${OBSERVERS_EVERY_MS / 1000} s)`,
      'ph-observers',
    ),
  );
  $('ph-summary').replaceChildren(...parts);
}

/** The observers drawn: agents (and trusted clients) with their patterns, live and declared. */
function observerRows() {
  const byAgent = new Map();
  const row = (id) => {
    if (!byAgent.has(id)) byAgent.set(id, { id, subs: [] });
    return byAgent.get(id);
  };
  for (const o of state.observers) {
    const id = o.agentId ?? `trusted ${o.consumer.slice(-6)}`;
    row(id).subs.push({ pattern: o.pattern, kind: o.active ? 'live' : 'idle', slot: o.slot });
  }
  for (const d of state.declared) {
    const r = row(d.agentId);
    if (!r.subs.some((s) => s.pattern === d.pattern))
      r.subs.push({ pattern: d.pattern, kind: 'declared', slot: null });
  }
  return [...byAgent.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function renderMap(drawn, t) {
  const map = $('ph-map');
  // Lanes: the most populous types (alphabetical, so families sit together), the rest in one.
  const perType = new Map();
  for (const p of drawn) perType.set(p.type, (perType.get(p.type) ?? 0) + 1);
  const ranked = [...perType.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = ranked
    .slice(0, MAX_LANES)
    .map(([type]) => type)
    .sort();
  const other = ranked.slice(MAX_LANES);
  const lanes = shown.map((type) => ({ type, label: type, count: perType.get(type) }));
  if (other.length)
    lanes.push({
      type: null,
      label: `${other.length} other types`,
      count: other.reduce((n, [, c]) => n + c, 0),
    });
  const laneOf = new Map(shown.map((type, i) => [type, i]));
  const otherLane = other.length ? lanes.length - 1 : -1;

  const rows = observerRows();
  const agents = rows.slice(0, MAX_AGENTS);
  const laneH = lanes.length <= 8 ? 34 : lanes.length <= 16 ? 26 : 20;
  const inner = Math.max(lanes.length * laneH, agents.length * 30, 120);
  const height = TOP + inner + 10;
  map.setAttribute('viewBox', `0 0 ${W} ${height}`);
  map.dataset.dots = String(drawn.length);
  // Many dots: no breathing glow (hundreds of animations cost the page more than they show).
  map.classList.toggle('dense', drawn.length > 100);

  const defs = svg('defs');
  for (const [id, colour] of [
    ['free', '#19d3a2'],
    ['claimed', '#f5a623'],
    ['task', '#9b6cff'],
  ]) {
    const g = svg('radialGradient', { id: `ph-glow-${id}` });
    g.append(
      svg('stop', { offset: '0%', 'stop-color': colour, 'stop-opacity': 0.9 }),
      svg('stop', { offset: '45%', 'stop-color': colour, 'stop-opacity': 0.35 }),
      svg('stop', { offset: '100%', 'stop-color': colour, 'stop-opacity': 0 }),
    );
    defs.append(g);
  }

  const back = svg('g', {}, 'ph-back');
  back.append(
    svgText(DOT_X0, 14, `${WINDOW_MS / MINUTE} min+`, 'ph-axis'),
    svgText(DOT_X1, 14, 'now', 'ph-axis', 'middle'),
    svgText(AGENT_X - 12, 14, 'observers', 'ph-axis', 'end'),
    svgText(LABEL_END, 14, 'type', 'ph-axis', 'end'),
  );
  for (const [ms, label] of [
    [10_000, '10 s'],
    [MINUTE, '1 min'],
    [5 * MINUTE, '5 min'],
  ]) {
    const x = ageX(ms);
    back.append(
      svg('line', { x1: x, x2: x, y1: TOP - 4, y2: height - 6 }, 'ph-grid'),
      svgText(x, 14, label, 'ph-axis', 'middle'),
    );
  }
  lanes.forEach((lane, i) => {
    const y = TOP + i * laneH;
    back.append(
      svg(
        'rect',
        { x: LABEL_END + 6, y, width: DOT_X1 + 10 - LABEL_END - 6, height: laneH },
        `ph-lane ${i % 2 ? 'odd' : 'even'}`,
      ),
    );
    const label = svgText(
      LABEL_END,
      y + laneH / 2 + 4,
      `${lane.label} (${lane.count})`,
      'ph-lane-label',
      'end',
    );
    if (lane.type) label.dataset.type = lane.type;
    back.append(label);
  });
  if (!drawn.length)
    back.append(svgText((DOT_X0 + DOT_X1) / 2, TOP + 34, 'no live pheromones', 'ph-empty', 'middle'));

  // Dots.
  const pos = new Map();
  const dots = svg('g', {}, 'ph-dots');
  const label = drawn.length <= LABELLED_DOTS;
  const glow = drawn.length > 200 ? 7 : 12;
  for (const p of drawn) {
    const lane = laneOf.get(p.type) ?? otherLane;
    const x = ageX(t - p.timestamp);
    const h = hash(p.id);
    const y = TOP + lane * laneH + 6 + (h % Math.max(1, laneH - 12));
    pos.set(p.id, { x, y });
    const st = dotState(p);
    const g = svg('g', { transform: `translate(${x.toFixed(1)} ${y.toFixed(1)})` }, 'ph-dot');
    g.dataset.pheromoneId = p.id;
    g.dataset.type = p.type;
    g.dataset.claimed = String(p.claimedBy !== null);
    g.dataset.state = st;
    if (p.claimedBy) g.dataset.claimedBy = p.claimedBy;
    if (p.id === state.selected) g.classList.add('selected');
    if (p.expiresAt !== null && p.ttl) {
      const left = Math.max(0, Math.min(1, (p.expiresAt - t) / (p.ttl * 1000)));
      g.setAttribute('opacity', (0.3 + 0.7 * left).toFixed(2));
    }
    const title = svg('title');
    title.textContent = `${p.type}${p.selector ? ` ${p.selector}` : ''}\nsource ${p.source}\n${p.claimedBy ? `claimed by ${p.claimedBy}` : 'unclaimed'}`;
    g.append(title, svg('circle', { r: glow, fill: `url(#ph-glow-${st})` }, 'ph-glow'));
    if (state.flash.has(p.id)) g.append(svg('circle', { r: 5 }, 'ph-ring'));
    g.append(svg('circle', { r: 3.5 }, 'ph-core'));
    // Labels near the right edge go to the dot's left.
    if (label && p.claimedBy)
      g.append(
        x > DOT_X1 - 120
          ? svgText(-8, -6, p.claimedBy, 'ph-claimer', 'end')
          : svgText(8, -6, p.claimedBy, 'ph-claimer'),
      );
    g.addEventListener('mouseenter', () => {
      state.hovered = p.id;
      renderDetail(now());
    });
    g.addEventListener('mouseleave', () => {
      if (state.hovered === p.id) state.hovered = null;
      renderDetail(now());
    });
    g.addEventListener('click', () => {
      state.selected = state.selected === p.id ? null : p.id;
      state.selectedEnded = null;
      render();
    });
    dots.append(g);
  }

  // Observers and their lines.
  const lines = svg('g', {}, 'ph-lines');
  const nodes = svg('g', {}, 'ph-agents');
  const step = inner / Math.max(1, agents.length);
  let lineCount = 0;
  let skipped = 0;
  agents.forEach((a, i) => {
    const y = TOP + step * (i + 0.5);
    const node = svg('g', { transform: `translate(${AGENT_X} ${y.toFixed(1)})` }, 'ph-agent');
    node.dataset.observer = a.id;
    const patterns = a.subs.map((s) => s.pattern).join(', ');
    node.append(
      svg('circle', { r: 6 }),
      svgText(-12, -1, a.id, 'ph-agent-name', 'end'),
      svgText(
        -12,
        11,
        patterns.length > 34 ? `${patterns.slice(0, 33)}…` : patterns,
        'ph-agent-patterns',
        'end',
      ),
    );
    const nodeTitle = svg('title');
    nodeTitle.textContent = `${a.id} observes ${a.subs.map((s) => `${s.pattern} (${s.kind})`).join(', ')}`;
    node.append(nodeTitle);
    nodes.append(node);
    // One line per dot: the liveliest observation that matches it.
    const rank = { live: 0, idle: 1, declared: 2 };
    const subs = [...a.subs].sort((x, z) => rank[x.kind] - rank[z.kind]);
    for (const p of drawn) {
      const sub = subs.find((s) => typeMatches(p.type, s.pattern));
      if (!sub) continue;
      if (lineCount >= MAX_LINES) {
        skipped++;
        continue;
      }
      const at = pos.get(p.id);
      const line = svg(
        'line',
        { x1: AGENT_X + 6, y1: y.toFixed(1), x2: at.x.toFixed(1), y2: at.y.toFixed(1) },
        `ph-sub ${sub.kind}`,
      );
      line.dataset.observer = a.id;
      line.dataset.pattern = sub.pattern;
      line.dataset.pheromoneId = p.id;
      line.dataset.kind = sub.kind;
      lines.append(line);
      lineCount++;
    }
  });
  if (rows.length > agents.length)
    nodes.append(
      svgText(AGENT_X - 12, height - 2, `+${rows.length - agents.length} more observers`, 'ph-axis', 'end'),
    );
  if (skipped) nodes.append(svgText(DOT_X1, height - 2, `+${skipped} more lines`, 'ph-axis', 'end'));
  if (!agents.length && state.observersLoaded)
    nodes.append(svgText(AGENT_X - 12, TOP + 20, 'nobody observes', 'ph-empty', 'end'));
  map.replaceChildren(defs, back, lines, dots, nodes);
}

function renderFlow(t) {
  const chart = $('ph-flow');
  const cw = 600;
  const ch = 110;
  const base = 86;
  chart.setAttribute('viewBox', `0 0 ${cw} ${ch}`);
  const minutes = WINDOW_MS / MINUTE;
  const last = Math.floor(t / MINUTE) * MINUTE;
  const columns = [];
  for (let i = minutes - 1; i >= 0; i--) {
    const m = last - i * MINUTE;
    columns.push({ m, ...(state.flow.get(m) ?? { emitted: 0, claimed: 0, ended: 0 }) });
  }
  const max = Math.max(1, ...columns.map((c) => Math.max(c.emitted, c.claimed, c.ended)));
  const x0 = 34;
  const colW = (cw - x0 - 6) / minutes;
  const barW = (colW - 6) / 3;
  const parts = [
    svgText(x0 - 4, 12, String(max), 'ph-axis', 'end'),
    svgText(x0 - 4, base, '0', 'ph-axis', 'end'),
    svg('line', { x1: x0, x2: cw - 6, y1: base, y2: base }, 'ph-grid'),
    svgText(x0, ch - 4, `${minutes} min ago`, 'ph-axis'),
    svgText(cw - 6, ch - 4, 'now', 'ph-axis', 'end'),
    svgText(
      cw / 2,
      ch - 4,
      `per minute: emitted, claimed, ended${state.flowPartial ? ' (history truncated)' : ''}`,
      'ph-axis',
      'middle',
    ),
  ];
  columns.forEach((c, i) => {
    const g = svg('g', {}, 'ph-minute');
    const hhmm = new Date(c.m).toISOString().slice(11, 16);
    g.dataset.minute = hhmm;
    g.dataset.emitted = String(c.emitted);
    g.dataset.claimed = String(c.claimed);
    g.dataset.ended = String(c.ended);
    const title = svg('title');
    title.textContent = `${hhmm} UTC: ${c.emitted} emitted, ${c.claimed} claimed, ${c.ended} ended`;
    g.append(title);
    ['emitted', 'claimed', 'ended'].forEach((k, j) => {
      const h = ((base - 16) * c[k]) / max;
      g.append(
        svg(
          'rect',
          {
            x: (x0 + i * colW + 3 + j * barW).toFixed(1),
            y: (base - h).toFixed(1),
            width: barW.toFixed(1),
            height: h.toFixed(1),
          },
          `ph-bar ${k}`,
        ),
      );
    });
    parts.push(g);
  });
  chart.replaceChildren(...parts);
}

function renderDetail(t) {
  const aside = $('ph-detail');
  const id = state.selected ?? state.hovered;
  if (!id) {
    delete aside.dataset.pheromoneId;
    delete aside.dataset.live;
    aside.replaceChildren(el('p', 'Hover or click a dot.', 'ph-hint'));
    return;
  }
  const live = state.held.get(id);
  const p = live ?? (state.selectedEnded?.id === id && id === state.selected ? state.selectedEnded : null);
  aside.dataset.pheromoneId = id;
  const unpin = () => {
    const b = el('button', 'Unpin');
    b.type = 'button';
    b.addEventListener('click', () => {
      state.selected = null;
      state.selectedEnded = null;
      render();
    });
    return b;
  };
  if (!p) {
    aside.dataset.live = 'false';
    aside.replaceChildren(
      el('p', `${id}: no longer in the field`, 'ph-hint'),
      ...(state.selected === id ? [unpin()] : []),
    );
    return;
  }
  const ttl = !live
    ? `${p.event} ${duration(t - p.eventAt)} ago`
    : p.expiresAt === null
      ? 'permanent'
      : p.expiresAt > t
        ? `${duration(p.expiresAt - t)} left of ${duration((p.ttl ?? 0) * 1000)}`
        : 'expiring';
  const rows = [
    ['type', p.type],
    ['selector', p.selector || '—'],
    ['source', p.source],
    ['ttl', ttl],
    [
      'claimer',
      p.claimedBy ? `${p.claimedBy}${p.claimedAt ? ` (${duration(t - p.claimedAt)} ago)` : ''}` : 'unclaimed',
    ],
    ...(p.taskId ? [['task', p.taskId]] : []),
    ['emitted', `${duration(t - p.timestamp)} ago`],
    ['last event', `${p.event}${p.eventBy ? ` by ${p.eventBy}` : ''}`],
    ['id', p.id],
  ];
  const dl = document.createElement('dl');
  for (const [k, v] of rows) dl.append(el('dt', k), el('dd', v, null, { field: k }));
  const head = el(
    'h3',
    live ? p.type : `${p.type} (${p.event}: no longer in the field)`,
    `ph-head ${live ? dotState(p) : 'gone'}`,
  );
  aside.dataset.live = String(Boolean(live));
  aside.replaceChildren(head, dl, ...(state.selected === id ? [unpin()] : []));
}
