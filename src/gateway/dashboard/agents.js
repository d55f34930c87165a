// The agents panel: each agent with its FSM state, tasks, slots, completions, flags and queues,
// kept current by `agent` events. A row opens the agent's state diagram.
import { cell, fill, onEvent, onLoad, openAgent } from './core.js';

let agents = new Map();

function render() {
  const rows = [...agents.values()]
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((a) => {
      const tr = document.createElement('tr');
      tr.dataset.agentId = a.id;
      tr.dataset.state = a.online === false ? 'offline' : a.state;
      tr.addEventListener('click', () => openAgent(a.id));
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

onLoad((s) => {
  agents = new Map(
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
  render();
});

onEvent('agent', (data) => {
  if (data.removed) agents.delete(data.id);
  else {
    const a = agents.get(data.id) ?? { id: data.id, state: 'offline', tasks: [] };
    if (data.state !== undefined) {
      a.state = typeof data.state === 'string' ? data.state : JSON.stringify(data.state);
      a.tasks = data.tasks ?? a.tasks;
      a.online = a.state !== 'offline';
    }
    if (data.registered) a.queues = data.queues;
    agents.set(data.id, a);
  }
  render();
});
