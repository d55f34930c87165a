// Dead tasks (Retry) and dead letters (Replay): what needs an operator's hand.
import { api, button, cell, fill, onEvent, onLoad, openTask, taskFromRecord } from './core.js';

let dead = [];
let dlq = [];

function render() {
  fill(
    'dead',
    dead.map((t) => {
      const tr = document.createElement('tr');
      tr.dataset.taskId = t.id;
      tr.addEventListener('click', () => openTask(t.id));
      tr.append(
        cell(t.id),
        cell(t.title),
        cell(t.error?.message ?? ''),
        button('Retry', async () => {
          await api('POST', `/api/tasks/${encodeURIComponent(t.id)}/retry`);
          dead = dead.filter((x) => x.id !== t.id);
          render();
        }),
      );
      return tr;
    }),
  );
  fill(
    'dlq',
    dlq.map((d) => {
      const tr = document.createElement('tr');
      tr.dataset.seq = String(d.seq);
      tr.append(
        cell(d.seq),
        cell(d.subject),
        cell(`${d.reason.code}: ${d.reason.message}`),
        button('Replay', async () => {
          await api('POST', `/api/dlq/${d.seq}/replay`, {});
          dlq = dlq.filter((x) => x.seq !== d.seq);
          render();
        }),
      );
      return tr;
    }),
  );
}

onLoad(async (s) => {
  dlq = s.dlq?.oldest ?? [];
  const list = await api('GET', '/api/tasks?status=dead&limit=50').catch(() => null);
  dead = (list?.tasks ?? []).map(taskFromRecord);
  render();
});

onEvent('task', (data) => {
  if (data.removed) dead = dead.filter((t) => t.id !== data.id);
  else if (data.status === 'dead') {
    if (!dead.some((t) => t.id === data.id)) dead.unshift(data);
  } else dead = dead.filter((t) => t.id !== data.id);
  render();
});
