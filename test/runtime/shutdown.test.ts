import { describe, expect, it } from 'vitest';
import { fromCallback, fromPromise, setup } from 'xstate';
import type { ActorPid, ChildSpecInput } from '../../src/runtime/index.js';
import { actorChild, startSupervisor } from '../../src/runtime/index.js';
import { exitOf, HOUR, pidOf, recorder, unwrap, W } from './support.js';

const flags = { intensity: 2, period: HOUR };

/** Handles the shutdown event by doing async cleanup, then reaching a final state. */
const graceful = setup({
  actors: { cleanup: fromPromise(async () => new Promise<void>((r) => setTimeout(r, 20))) },
}).createMachine({
  initial: 'running',
  states: {
    running: { on: { 'supervisor.shutdown': 'cleaning' } },
    cleaning: { invoke: { src: 'cleanup', onDone: 'done' } },
    done: { type: 'final' },
  },
});

describe('shutdown protocol (docs/runtime.md §2.10)', () => {
  it('a trapExit machine that finishes its cleanup in time exits with shutdown', async () => {
    const sup = unwrap(
      await startSupervisor([actorChild('g', graceful, { trapExit: true, shutdown: 2000 })], flags),
    );
    const p = await pidOf(sup, 'g');
    const rec = recorder(sup);
    await sup.stop();
    expect(p.exitReason).toBe('shutdown');
    expect(rec.reports.some((r) => r.type === 'shutdown_error')).toBe(false);
  });

  it('a second stop while the first is under way waits for the exit; a stop after it is noproc', async () => {
    const sup = unwrap(
      await startSupervisor([actorChild('g', graceful, { trapExit: true, shutdown: 2000 })], flags),
    );
    const p = (await pidOf(sup, 'g')) as ActorPid;
    const first = sup.stop();
    // The second stop comes while the supervisor is terminating (its child is cleaning up).
    await new Promise<void>((resolve) => {
      if (p.actor.getSnapshot().matches('cleaning')) return resolve();
      const sub = p.actor.subscribe((s) => {
        if (s.matches('cleaning')) {
          sub.unsubscribe();
          resolve();
        }
      });
    });
    const second = sup.stop();
    expect(await second).toEqual({ ok: true, value: undefined });
    expect(p.exitReason).toBe('shutdown'); // the child was stopped before the second stop answered
    expect(sup.alive).toBe(false);
    expect(await first).toEqual({ ok: true, value: undefined });
    expect(await sup.stop()).toEqual({ ok: false, error: { kind: 'noproc' } });
  });

  it('a child that ignores the shutdown request is killed after its timeout', async () => {
    const sup = unwrap(
      await startSupervisor([{ id: 'busy', start: W.busyOnShutdown(), shutdown: 50 }], flags),
    );
    const p = await pidOf(sup, 'busy');
    const rec = recorder(sup);
    await sup.stop();
    expect(p.exitReason).toBe('killed');
    expect(rec.reports.find((r) => r.type === 'shutdown_error')).toMatchObject({
      childId: 'busy',
      reason: 'killed',
    });
  });

  it('brutal_kill kills at once, without asking, and that is not a shutdown_error', async () => {
    const sup = unwrap(
      await startSupervisor([{ id: 'b', start: W.busyOnShutdown(), shutdown: 'brutal_kill' }], flags),
    );
    const p = await pidOf(sup, 'b');
    const rec = recorder(sup);
    unwrap(await sup.terminateChild('b'));
    expect(p.exitReason).toBe('killed');
    expect(rec.reports.some((r) => r.type === 'shutdown_error')).toBe(false);
    await sup.stop();
  });

  it('onShutdown runs async cleanup (e.g. for a fromCallback) before the stop; its cleanup function runs', async () => {
    const events: string[] = [];
    const cb = fromCallback(() => {
      events.push('started');
      return () => events.push('cleanup');
    });
    const child = actorChild('cb', cb, {
      shutdown: 1000,
      onShutdown: async () => {
        await new Promise((r) => setTimeout(r, 10));
        events.push('flushed');
      },
    });
    const sup = unwrap(await startSupervisor([child], flags));
    await sup.stop();
    expect(events).toEqual(['started', 'flushed', 'cleanup']);
  });

  it('an onShutdown that outlives the timeout gets the actor killed', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          actorChild(
            'slow',
            fromCallback(() => () => {}),
            { shutdown: 30, onShutdown: () => new Promise(() => {}) },
          ),
        ],
        flags,
      ),
    );
    const p = await pidOf(sup, 'slow');
    await sup.stop();
    expect(p.exitReason).toBe('killed');
  });

  it('infinity waits for the child however long it takes', async () => {
    const sup = unwrap(
      await startSupervisor([actorChild('g', graceful, { trapExit: true, shutdown: 'infinity' })], flags),
    );
    const p = await pidOf(sup, 'g');
    await sup.stop();
    expect(p.exitReason).toBe('shutdown');
  });

  it('a child that dies on its own during shutdown does not break it; its reason is its own', async () => {
    const dying = setup({}).createMachine({
      initial: 'running',
      states: {
        running: {
          on: {
            'supervisor.shutdown': {
              actions: () => {
                throw new Error('cleanup failed');
              },
            },
          },
        },
      },
    });
    const specs: ChildSpecInput[] = [
      { id: 'ok', start: W.ok() },
      actorChild('bad', dying, { trapExit: true }),
    ];
    const sup = unwrap(await startSupervisor(specs, flags));
    const bad = await pidOf(sup, 'bad');
    const rec = recorder(sup);
    await sup.stop();
    expect(sup.exitReason).toBe('shutdown');
    expect(bad.exitReason).toMatchObject({ kind: 'error' });
    expect(rec.reports.find((r) => r.type === 'shutdown_error')).toMatchObject({ childId: 'bad' });
  });

  it('stop(reason) exits the supervisor with that reason; children see shutdown', async () => {
    const sup = unwrap(await startSupervisor([{ id: 'c', start: W.ok() }], flags));
    const c = await pidOf(sup, 'c');
    await sup.stop({ kind: 'shutdown', detail: 'maintenance' });
    expect(sup.exitReason).toEqual({ kind: 'shutdown', detail: 'maintenance' });
    expect(await exitOf(c)).toBe('shutdown');
  });
});

describe('significant children and autoShutdown (docs/runtime.md §2.11)', () => {
  const sig = (id: string, restart: 'transient' | 'temporary'): ChildSpecInput => ({
    id,
    start: W.ok(),
    restart,
    significant: true,
  });

  it('rejects significant children under autoShutdown never, at init and in startChild', async () => {
    const bad = { kind: 'bad_combination', value: { autoShutdown: 'never', significant: true } };
    expect(await startSupervisor([sig('s', 'transient')], flags)).toEqual({
      ok: false,
      error: { kind: 'start_spec', reason: bad },
    });
    const sup = unwrap(await startSupervisor([], flags));
    expect(await sup.startChild(sig('s', 'transient'))).toEqual({ ok: false, error: bad });
    await sup.stop();
  });

  it('any_significant: a temporary significant child ending for any reason shuts the supervisor down', async () => {
    const sup = unwrap(
      await startSupervisor([{ id: 'w', start: W.ok() }, sig('s', 'temporary')], {
        ...flags,
        autoShutdown: 'any_significant',
      }),
    );
    const w = await pidOf(sup, 'w');
    (await pidOf(sup, 's')).send({ type: 'crash' });
    expect(await exitOf(sup)).toBe('shutdown');
    expect(w.exitReason).toBe('shutdown');
  });

  it('a transient significant child restarts on an abnormal exit and triggers on a normal one', async () => {
    const sup = unwrap(
      await startSupervisor([sig('s', 'transient')], { ...flags, autoShutdown: 'any_significant' }),
    );
    (await pidOf(sup, 's')).send({ type: 'crash' });
    await sup.countChildren();
    expect(sup.alive).toBe(true);
    (await pidOf(sup, 's')).send({ type: 'stop' });
    expect(await exitOf(sup)).toBe('shutdown');
  });

  it('all_significant waits until the last significant child has ended', async () => {
    const sup = unwrap(
      await startSupervisor([sig('a', 'transient'), sig('b', 'transient')], {
        ...flags,
        autoShutdown: 'all_significant',
      }),
    );
    (await pidOf(sup, 'a')).send({ type: 'stop' });
    await sup.countChildren();
    expect(sup.alive).toBe(true);
    (await pidOf(sup, 'b')).send({ type: 'stop' });
    expect(await exitOf(sup)).toBe('shutdown');
  });

  it('terminateChild never triggers auto shutdown, and neither does a bystander exit', async () => {
    const sup = unwrap(
      await startSupervisor([{ id: 'w', start: W.ok() }, sig('s', 'transient')], {
        ...flags,
        strategy: 'one_for_all',
        autoShutdown: 'any_significant',
      }),
    );
    (await pidOf(sup, 'w')).send({ type: 'crash' }); // s is stopped as a bystander and restarted
    await sup.countChildren();
    unwrap(await sup.terminateChild('s'));
    expect(sup.alive).toBe(true);
    await sup.stop();
  });

  it('cascades: a significant transient supervisor that auto-shuts down ends its parent too', async () => {
    const inner = {
      id: 'inner',
      start: {
        kind: 'supervisor' as const,
        children: [sig('s', 'temporary')],
        flags: { autoShutdown: 'any_significant' as const },
      },
      restart: 'transient' as const,
      significant: true,
    };
    const top = unwrap(await startSupervisor([inner], { ...flags, autoShutdown: 'any_significant' }));
    const innerSup = await pidOf(top, 'inner');
    const s = await pidOf(innerSup as never, 's');
    s.send({ type: 'stop' });
    expect(await exitOf(top)).toBe('shutdown');
  });
});
