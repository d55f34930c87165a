// The "Last hour" panel (docs/gateway.md, "Dashboard"): tasks per minute (done, failed), latency
// (submit -> done p50/p99, queue wait p50/p99) and messages per minute by kind, drawn with uPlot.
// The gateway computes the points (GET /api/dashboard/series, 60 at most); the page loads them
// once, then follows the `series` events of the event stream (the last two minutes, every few
// seconds), and loads the whole series again only when an older minute changed (`rev`) or it
// missed a minute. Bounded: one point per minute of the last hour. Each chart fits its box and is
// redrawn when the box changes size; its figure carries data-points, data-width and, per series,
// data-total-<name> (the sum over the hour) or data-last-<name> (the latest value) for tests.
import uPlot from '/dashboard/vendor/uPlot.esm.js';
import { $, api, onEvent, onOpen } from './core.js';

const MINUTE = 60_000;
const MINUTES = 60;
const HEIGHT = 170;

const CHARTS = [
  {
    id: 'chart-tasks',
    sum: true,
    // Counts per minute as bars, the failed ones narrower, in front.
    series: [
      { key: 'done', label: 'done', stroke: '#2a7a2a', fill: '#2a7a2a99', bars: 0.7, get: (p) => p.done },
      {
        key: 'failed',
        label: 'failed',
        stroke: '#b00020',
        fill: '#b00020cc',
        bars: 0.35,
        get: (p) => p.failed,
      },
    ],
  },
  {
    id: 'chart-latency',
    sum: false,
    // Minutes without a finished task have no value: dots, so that a lone minute shows.
    dots: true,
    series: [
      { key: 'p50', label: 'p50', stroke: '#3366cc', get: (p) => p.latencyP50 },
      { key: 'p99', label: 'p99', stroke: '#b36b00', get: (p) => p.latencyP99 },
      { key: 'wait-p50', label: 'wait p50', stroke: '#6a8caf', dash: [4, 4], get: (p) => p.waitP50 },
      { key: 'wait-p99', label: 'wait p99', stroke: '#c9a36b', dash: [4, 4], get: (p) => p.waitP99 },
    ],
  },
  {
    id: 'chart-messages',
    sum: true,
    series: [
      { key: 'direct', label: 'direct', stroke: '#3366cc', get: (p) => p.messages.direct },
      { key: 'broadcast', label: 'broadcast', stroke: '#b36b00', get: (p) => p.messages.broadcast },
      { key: 'channel', label: 'channel', stroke: '#2a7a2a', get: (p) => p.messages.channel },
      { key: 'presence', label: 'presence', stroke: '#888', get: (p) => p.messages.presence },
    ],
  },
];

/** Minute start (epoch ms) -> point: the last hour only. */
const points = new Map();
/** The `rev` of the last whole series loaded (null: none loaded yet). */
let rev = null;
/** The gateway whose series the page holds (its `rev` means nothing to another). */
let gateway = null;
/** The newest minute held. */
let latest = null;
let reloading = null;
/** Chart id -> its uPlot. */
const plots = new Map();
let observer = null;

const note = (text) => {
  $('charts-note').textContent = text;
};

function keep(p) {
  points.set(p.t, p);
  if (latest === null || p.t > latest) latest = p.t;
}

function prune() {
  for (const t of points.keys()) if (t <= latest - MINUTES * MINUTE) points.delete(t);
}

/** Loads the whole series (one at a time; a load asked for meanwhile waits for it). */
function reload() {
  reloading ??= api('GET', '/api/dashboard/series')
    .then((s) => {
      points.clear();
      latest = null;
      for (const p of s.points) keep(p);
      rev = s.rev;
      gateway = s.gateway;
      $('charts-panel').dataset.rev = String(rev);
      $('charts-panel').dataset.backfilled = String(s.backfilled);
      note(s.backfilled ? '' : '(older minutes may be incomplete: the gateway is still reading them)');
      draw();
    })
    .catch((err) => note(`(unavailable: ${err.message})`))
    .finally(() => {
      reloading = null;
    });
  return reloading;
}

function onSeries(s) {
  const first = s.points[0];
  // A minute missed (the stream was down), or an older minute changed: the whole series again.
  const missed = latest !== null && first !== undefined && first.t > latest + MINUTE;
  for (const p of s.points) keep(p);
  prune();
  $('charts-panel').dataset.backfilled = String(s.backfilled);
  if (s.backfilled && rev !== null) note('');
  draw();
  // `rev` counts per gateway: behind a load balancer the stream and a reload may reach different
  // ones, and reloading on their difference would never end; a minute missed still reloads.
  const changed = rev !== null && s.gateway === gateway && s.rev !== rev;
  if (missed || changed) void reload();
}

/** uPlot's columns: minute starts in seconds, then each series' values (null: none that minute). */
function columns(chart) {
  const xs = [];
  const ys = chart.series.map(() => []);
  if (latest === null) return [xs, ...ys];
  for (let t = latest - (MINUTES - 1) * MINUTE; t <= latest; t += MINUTE) {
    const p = points.get(t);
    xs.push(t / 1000);
    chart.series.forEach((s, i) => {
      const v = p ? s.get(p) : null;
      ys[i].push(v === undefined ? null : v);
    });
  }
  return [xs, ...ys];
}

function widthOf(fig) {
  return Math.max(120, Math.floor(fig.querySelector('.plot').clientWidth));
}

function options(chart, width) {
  return {
    width,
    height: HEIGHT,
    scales: {
      // Half a minute either side, so that the first and the current minute are drawn whole.
      x: { time: true, range: (_u, min, max) => [min - 30, max + 30] },
      y: { range: (_u, _min, max) => [0, Math.max(chart.sum ? 1 : 10, max)] },
    },
    axes: [{}, { size: 48 }],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    series: [
      {},
      ...chart.series.map((s) => ({
        label: s.label,
        stroke: s.stroke,
        width: 1.5,
        ...(s.fill ? { fill: s.fill } : {}),
        ...(s.dash ? { dash: s.dash } : {}),
        ...(s.bars ? { paths: uPlot.paths.bars({ size: [s.bars, 100] }) } : {}),
        spanGaps: false,
        points: { show: chart.dots === true, size: 5 },
      })),
    ],
  };
}

function describe(fig, chart, data) {
  fig.dataset.points = String(data[0].length);
  chart.series.forEach((s, i) => {
    const ys = data[i + 1];
    if (chart.sum) fig.dataset[camel(`total-${s.key}`)] = String(ys.reduce((a, v) => a + (v ?? 0), 0));
    else {
      const last = ys.findLast((v) => v !== null);
      fig.dataset[camel(`last-${s.key}`)] = last === undefined ? '' : String(last);
    }
  });
}

const camel = (s) => s.replace(/-([a-z0-9])/g, (_m, c) => c.toUpperCase());

function draw() {
  for (const chart of CHARTS) {
    const fig = $(chart.id);
    const data = columns(chart);
    let u = plots.get(chart.id);
    if (!u) {
      u = new uPlot(options(chart, widthOf(fig)), data, fig.querySelector('.plot'));
      plots.set(chart.id, u);
      fig.dataset.width = String(u.width);
    } else u.setData(data);
    // The legend shows the current minute unless the pointer is on the chart.
    if (!(u.cursor.left >= 0) && data[0].length > 0) u.setLegend({ idx: data[0].length - 1 });
    describe(fig, chart, data);
  }
  observe();
}

/** Each chart follows its box's width. */
function observe() {
  if (observer || typeof ResizeObserver === 'undefined') return;
  observer = new ResizeObserver(() => {
    for (const chart of CHARTS) {
      const u = plots.get(chart.id);
      const fig = $(chart.id);
      if (!u) continue;
      const width = widthOf(fig);
      if (width === u.width) continue;
      u.setSize({ width, height: HEIGHT });
      fig.dataset.width = String(width);
    }
  });
  for (const chart of CHARTS) observer.observe($(chart.id));
}

onOpen(() => {
  // Not awaited: the page goes live at once; the charts fill when the series comes.
  rev = null;
  void reload();
});
onEvent('series', onSeries);
