// The README's "Supervision runtime" example, kept line for line (only the import path differs),
// so the documented example cannot rot.
import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import type { CallEvent } from '../../src/runtime/index.js';
import { actorChild, call, cast, startSupervisor, supervisorChild } from '../../src/runtime/index.js';

describe('README example', () => {
  it('runs', async () => {
    // --- README example start ---
    // A machine that answers calls: the runtime adds a `reply` function to the event.
    const counter = setup({
      types: {
        context: {} as { n: number },
        events: {} as { type: 'inc' } | CallEvent<{ type: 'get' }, number>,
      },
    }).createMachine({
      context: { n: 0 },
      on: {
        inc: { actions: assign({ n: ({ context }) => context.n + 1 }) },
        get: { actions: ({ context, event }) => event.reply(context.n) },
      },
    });

    const started = await startSupervisor(
      [
        actorChild('counter', counter, { name: 'counter' }), // registered: reachable by name across restarts
        supervisorChild('workers', [actorChild('w1', counter), actorChild('w2', counter)], {
          strategy: 'one_for_all',
        }),
      ],
      { strategy: 'one_for_one', intensity: 3, period: 5000 },
    );
    if (!started.ok) throw new Error(`supervisor failed to start: ${started.error.kind}`);
    const sup = started.value;

    cast('counter', { type: 'inc' });
    const r = await call<number>('counter', { type: 'get' }, { timeout: 1000 }); // { ok: true, value: 1 }

    const children = await sup.whichChildren(); // newest first: workers, then counter
    await sup.stop(); // stops workers (w2, then w1), then counter; resolves when the tree is down
    // --- README example end ---
    expect(r).toEqual({ ok: true, value: 1 });
    expect(children.ok && children.value.map((c) => c.id)).toEqual(['workers', 'counter']);
    expect(sup.exitReason).toBe('shutdown');
  });
});
