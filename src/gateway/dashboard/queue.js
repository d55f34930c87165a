// The queue panel: queued tasks by named queue and priority with the oldest one's age, and the
// counts by status. The server counts (GET /api/tasks/stats); task events only say "ask again",
// at most once a second.
import { $, api, cell, fill, log, onEvent, onLoad } from './core.js';

let stats = null;

function render() {
  if (!stats) return;
  const rows = Object.entries(stats.queues ?? {}).map(([name, q]) => {
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
  $('counts').textContent = Object.entries(stats.byStatus)
    .map(([k, v]) => `${k} ${v}`)
    .join(' · ');
}

let timer = null;
function refreshSoon() {
  if (timer) return;
  timer = setTimeout(async () => {
    timer = null;
    try {
      stats = await api('GET', '/api/tasks/stats');
      render();
    } catch (err) {
      log(`stats: ${err.message}`);
    }
  }, 1000);
}

onLoad((s) => {
  stats = s.tasks;
  render();
});
onEvent('task', refreshSoon);
