// The header's hub control: whether intake and assignment run, with Pause and Resume (admin).
import { $, api, log, onOpen } from './core.js';

function show(c) {
  $('hub').textContent = `intake ${c.intake}, assignment ${c.assignment}`;
}

onOpen(async () => {
  const control = await api('GET', '/api/hub').catch(() => null);
  if (control) show(control);
  $('pause').hidden = false;
  $('resume').hidden = false;
});

for (const op of ['pause', 'resume'])
  $(op).addEventListener('click', () =>
    api('POST', `/api/hub/${op}`, {}).then(
      (c) => {
        show(c);
        log(`${op}d`);
      },
      (err) => log(`${op}: ${err.message}`),
    ),
  );
