// The alerts panel: every rule that is firing, acknowledged or has resolved, with its severity,
// since when, what it measured against its threshold and its message; Acknowledge on a firing
// rule (admin: another token's 403 is shown in the log and the button stays). It opens on
// GET /api/alerts and follows `alert` events (a rule's stored state, key `rule.<name>`); the
// heading's badge counts the rules firing and not yet acknowledged. Six rules at most: bounded.
import { $, api, button, cell, fill, onEvent, onLoad } from './core.js';

/** rule -> what the panel shows of it (the state's fields, the severity, enabled). */
let alerts = new Map();
let loadError = null;

const ORDER = { firing: 0, acknowledged: 1, resolved: 2 };
const SEVERITY = { critical: 0, warning: 1, info: 2 };
const MESSAGE_MAX = 300;

/** What the panel calls a rule's state: firing, acknowledged, resolved (was firing), or ok. */
function shown(a) {
  if (a.status === 'firing' || a.status === 'acknowledged') return a.status;
  return a.resolvedAt ? 'resolved' : 'ok';
}

function time(ms) {
  if (typeof ms !== 'number') return '';
  const d = new Date(ms);
  const today = d.toDateString() === new Date().toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** The fields of a state (an event's data or a list entry) the panel keeps; never the outbox. */
function pick(x) {
  const keep = {};
  for (const k of [
    'status',
    'since',
    'value',
    'threshold',
    'message',
    'ackedBy',
    'ackedAt',
    'resolvedAt',
    'firing',
    'checkedAt',
    'enabled',
    'severity',
  ])
    if (x[k] !== undefined) keep[k] = x[k];
  if (typeof keep.message === 'string') keep.message = keep.message.slice(0, MESSAGE_MAX);
  return keep;
}

function statusText(a, s) {
  if (s === 'acknowledged') return `acknowledged${a.ackedBy ? ` by ${a.ackedBy}` : ''} ${time(a.ackedAt)}`;
  if (s === 'resolved') return 'resolved';
  return s;
}

function acknowledge(rule) {
  return async () => {
    const r = await api('POST', `/api/alerts/${encodeURIComponent(rule)}/ack`, {});
    alerts.set(rule, { ...alerts.get(rule), rule, ...pick(r.alert) });
    render();
  };
}

function render() {
  const list = [...alerts.values()]
    .map((a) => ({ a, s: shown(a) }))
    .filter(({ s }) => s !== 'ok')
    .sort(
      (x, y) =>
        ORDER[x.s] - ORDER[y.s] ||
        (SEVERITY[x.a.severity] ?? 3) - (SEVERITY[y.a.severity] ?? 3) ||
        (x.a.rule < y.a.rule ? -1 : 1),
    );
  fill(
    'alerts',
    list.map(({ a, s }) => {
      const tr = document.createElement('tr');
      tr.dataset.rule = a.rule;
      tr.dataset.status = s;
      tr.dataset.severity = a.severity ?? '';
      const measured =
        typeof a.value === 'number'
          ? `${a.value}${typeof a.threshold === 'number' ? ` / ${a.threshold}` : ''}`
          : '';
      const since = s === 'resolved' ? a.resolvedAt : a.since;
      const sinceCell = cell(time(since));
      if (typeof since === 'number') sinceCell.title = new Date(since).toISOString();
      tr.append(
        cell(a.rule, 'rule'),
        cell(a.severity ?? '', 'severity'),
        cell(statusText(a, s), 'alert-status'),
        sinceCell,
        cell(measured),
        cell(a.message ?? '', 'message'),
        s === 'firing' ? button('Acknowledge', acknowledge(a.rule)) : cell(''),
      );
      return tr;
    }),
  );
  const firing = list.filter(({ s }) => s === 'firing');
  const acked = list.filter(({ s }) => s === 'acknowledged').length;
  const badge = $('alerts-count');
  badge.textContent = String(firing.length);
  badge.dataset.count = String(firing.length);
  badge.dataset.severity = firing[0]?.a.severity ?? '';
  badge.title = `${firing.length} firing, ${acked} acknowledged`;
  const summary = $('alerts-summary');
  if (loadError) summary.textContent = `alerts unavailable: ${loadError}`;
  else if (list.length === 0) {
    const off = [...alerts.values()].filter((a) => a.enabled === false).length;
    summary.textContent = `All rules ok${off ? ` (${off} disabled)` : ''}.`;
  } else summary.textContent = '';
  summary.hidden = summary.textContent === '';
}

onLoad(async () => {
  try {
    const r = await api('GET', '/api/alerts');
    alerts = new Map(r.alerts.map((a) => [a.rule, { rule: a.rule, ...pick(a) }]));
    loadError = null;
  } catch (err) {
    loadError = err.message;
  }
  render();
});

onEvent('alert', (data) => {
  const key = typeof data.key === 'string' ? data.key : '';
  if (!key.startsWith('rule.')) return;
  const rule = key.slice(5);
  if (data.removed) alerts.delete(rule);
  else {
    const prev = alerts.get(rule);
    // The state carries no severity (it is configuration): the latest event in its outbox does.
    const last = Array.isArray(data.outbox) ? data.outbox.at(-1) : undefined;
    const severity = typeof last?.severity === 'string' ? last.severity : prev?.severity;
    alerts.set(rule, { ...prev, rule, ...pick(data), ...(severity ? { severity } : {}) });
  }
  render();
});
