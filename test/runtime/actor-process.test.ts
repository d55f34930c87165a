import { describe, expect, it } from 'vitest';
import { fromCallback, fromPromise, setup } from 'xstate';
import { actorChild, startSupervisor } from '../../src/runtime/index.js';
import { exitOf, HOUR, pidOf, recorder, unwrap } from './support.js';

const flags = { intensity: 5, period: HOUR };

describe('XState actors as supervised processes (docs/runtime.md §1.1, §2.1)', () => {
  it('maps a thrown action, a throwing guard and an unhandled invoked failure to { kind: error }', async () => {
    const boom = new Error('boom');
    const machines = {
      action: setup({}).createMachine({
        on: {
          go: {
            actions: () => {
              throw boom;
            },
          },
        },
      }),
      guard: setup({
        guards: {
          bad: () => {
            throw boom;
          },
        },
      }).createMachine({ on: { go: { guard: 'bad', actions: () => {} } } }),
      invoke: setup({
        actors: {
          job: fromPromise(async () => {
            throw boom;
          }),
        },
      }).createMachine({
        initial: 'idle',
        states: { idle: { on: { go: 'working' } }, working: { invoke: { src: 'job' } } },
      }),
    };
    for (const [name, logic] of Object.entries(machines)) {
      const sup = unwrap(await startSupervisor([actorChild(name, logic, { restart: 'temporary' })], flags));
      const p = await pidOf(sup, name);
      p.send({ type: 'go' });
      const reason = await exitOf(p);
      expect(reason).toMatchObject({ kind: 'error' });
      await sup.stop();
    }
  });

  it('maps reaching a final state to normal (a transient child is then not restarted)', async () => {
    const m = setup({}).createMachine({
      initial: 'a',
      states: { a: { on: { go: 'b' } }, b: { type: 'final' } },
    });
    const sup = unwrap(await startSupervisor([actorChild('m', m, { restart: 'transient' })], flags));
    const p = await pidOf(sup, 'm');
    p.send({ type: 'go' });
    expect(await exitOf(p)).toBe('normal');
    expect(unwrap(await sup.whichChildren())[0]?.pid).toBe('undefined');
    await sup.stop();
  });

  it('an error in the initial state is a failed start, not a crash loop', async () => {
    const m = setup({}).createMachine({
      entry: () => {
        throw new Error('bad init');
      },
    });
    const r = await startSupervisor([actorChild('m', m)], flags);
    expect(!r.ok && r.error).toMatchObject({ kind: 'failed_to_start_child', id: 'm' });
  });

  it('stops the orphaned children of a crashed actor', async () => {
    let cleanedUp = 0;
    const ticker = fromCallback(() => {
      const t = setInterval(() => {}, 1000);
      return () => {
        clearInterval(t);
        cleanedUp++;
      };
    });
    const m = setup({ actors: { ticker } }).createMachine({
      invoke: { src: 'ticker' },
      on: {
        crash: {
          actions: () => {
            throw new Error('died');
          },
        },
      },
    });
    const sup = unwrap(await startSupervisor([actorChild('m', m)], flags));
    const p = await pidOf(sup, 'm');
    p.send({ type: 'crash' });
    await exitOf(p);
    // XState leaves the invoked callback running after the parent errors; the runtime stops it.
    expect(cleanedUp).toBe(1);
    await sup.stop();
    expect(cleanedUp).toBe(2); // the restarted incarnation's ticker, on shutdown
  });

  it('a throwing inspect callback never breaks the actor', async () => {
    const m = setup({}).createMachine({
      initial: 'a',
      states: { a: { on: { go: 'b' } }, b: { on: { go: 'a' } } },
    });
    const sup = unwrap(
      await startSupervisor(
        [
          actorChild('m', m, {
            inspect: () => {
              throw new Error('inspector bug');
            },
          }),
        ],
        flags,
      ),
    );
    const rec = recorder(sup);
    const p = await pidOf(sup, 'm');
    for (let i = 0; i < 3; i++) p.send({ type: 'go' });
    const actor = (p as unknown as { actor: { getSnapshot(): { status: string; value: unknown } } }).actor;
    expect(actor.getSnapshot()).toMatchObject({ status: 'active', value: 'b' });
    expect(p.alive).toBe(true);
    expect(rec.reports).toEqual([]);
    await sup.stop();
  });

  it('a crash with no observer of its own never reaches the process as an uncaught exception', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      const m = setup({}).createMachine({
        on: {
          go: {
            actions: () => {
              throw new Error('x');
            },
          },
        },
      });
      const sup = unwrap(await startSupervisor([actorChild('m', m, { restart: 'temporary' })], flags));
      const p = await pidOf(sup, 'm');
      p.send({ type: 'go' });
      await exitOf(p);
      // XState rethrows unobserved errors in a setTimeout; give it that turn before checking.
      await new Promise<void>((r) => setImmediate(r));
      await new Promise<void>((r) => setTimeout(r, 0));
      expect(uncaught).toEqual([]);
      await sup.stop();
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
