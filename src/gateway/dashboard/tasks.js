// The recent tasks panel: the newest tasks with their status, kept current by `task` events, with
// Cancel for live ones and Retry for finished ones. A row opens the task's detail.
import { api, button, cell, fill, onEvent, onLoad, openTask, taskFromRecord } from './core.js';

const RECENT_MAX = 50;
let tasks = new Map();

const LIVE = new Set(['queued', 'assigned', 'working', 'blocked']);
const RETRYABLE = new Set(['dead', 'failed', 'cancelled']);

function render() {
  const rows = [...tasks.values()]
    .sort((a, b) => (b.at ?? 0) - (a.at ?? 0))
    .slice(0, RECENT_MAX)
    .map((t) => {
      const tr = document.createElement('tr');
      tr.dataset.taskId = t.id;
      tr.dataset.status = t.status;
      tr.addEventListener('click', () => openTask(t.id));
      const action = RETRYABLE.has(t.status)
        ? button('Retry', () => api('POST', `/api/tasks/${encodeURIComponent(t.id)}/retry`))
        : LIVE.has(t.status)
          ? button('Cancel', () => api('POST', `/api/tasks/${encodeURIComponent(t.id)}/cancel`, {}))
          : cell('');
      tr.append(
        cell(t.id),
        cell(t.title),
        cell(t.status, 'status'),
        cell(t.queue),
        cell(t.assignee),
        cell(t.progress?.pct !== undefined ? `${t.progress.pct}%` : ''),
        action,
      );
      return tr;
    });
  fill('tasks', rows);
}

onLoad((s) => {
  tasks = new Map((s.recent ?? []).map((t) => [t.id, taskFromRecord(t)]));
  render();
});

onEvent('task', (data) => {
  if (data.removed) tasks.delete(data.id);
  else tasks.set(data.id, { ...tasks.get(data.id), ...data });
  if (tasks.size > RECENT_MAX * 2) {
    const keep = [...tasks.values()].sort((a, b) => (b.at ?? 0) - (a.at ?? 0)).slice(0, RECENT_MAX);
    tasks = new Map(keep.map((t) => [t.id, t]));
  }
  render();
});
