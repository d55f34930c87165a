/**
 * Child kinds are open: a start carries its own launch function, or names a kind defined in the
 * table; the kernel knows none of them by name (docs/runtime.md §1.2).
 */
import { describe, expect, it } from 'vitest';
import type { Launch } from '../../src/runtime/index.js';
import {
  actorStartKind,
  defineStartKind,
  Registry,
  spawnActor,
  startDynamicSupervisor,
  startSupervisor,
  validateChildSpec,
} from '../../src/runtime/index.js';
import { crash, exitOf, HOUR, pidOf, unwrap, worker } from './support.js';

/** A custom kind: starts the test worker, counting its launches. */
function counted() {
  const calls = { n: 0, extraArgs: [] as unknown[][] };
  const launch: Launch = (_spec, extraArgs, _env, attach) => {
    calls.n++;
    calls.extraArgs.push([...extraArgs]);
    const r = spawnActor(worker);
    if (r.kind === 'ok') {
      const refused = attach(r.pid);
      if (refused) return refused;
    }
    return r.kind === 'ok' ? r : { kind: 'error', reason: r.reason };
  };
  return { calls, start: { kind: 'counted', launch } };
}

describe('child kinds', () => {
  it('a start of a kind the runtime does not know runs through its own launch, restarts included', async () => {
    const { calls, start } = counted();
    const sup = unwrap(
      await startSupervisor([{ id: 'c', start, name: 'c' }], { intensity: 3, period: HOUR }),
    );
    const first = await pidOf(sup, 'c');
    expect(calls.n).toBe(1);
    crash(first);
    await exitOf(first);
    const second = await pidOf(sup, 'c');
    expect(second).not.toBe(first);
    expect(calls.n).toBe(2);
    expect(unwrap(await sup.getChildSpec('c')).type).toBe('worker');
    await sup.stop();

    const dyn = unwrap(await startDynamicSupervisor({ extraArgs: ['x'] }));
    unwrap(await dyn.startChild({ id: 'ignored', start }));
    expect(calls.extraArgs.at(-1)).toEqual(['x']);
    await dyn.stop();
  });

  it('its attach registers the name before the process runs; a taken name fails the start', async () => {
    const registry = new Registry();
    const holder = spawnActor(worker);
    if (holder.kind !== 'ok') throw new Error('start');
    registry.register('taken', holder.pid);
    const { calls, start } = counted();
    const sup = unwrap(await startSupervisor([], {}, { registry }));
    expect(await sup.startChild({ id: 'c', start, name: 'taken' })).toEqual({
      ok: false,
      error: { kind: 'already_started', pid: holder.pid },
    });
    expect(calls.n).toBe(0); // checked before the launch ran
    await sup.stop();
    holder.pid._kill();
  });

  it('an unknown kind without a launch, or a launch that is not a function, is invalid_start', () => {
    for (const start of [
      { kind: 'mystery' },
      { kind: 'mystery', launch: 'nope' },
      { kind: 3, launch: () => {} },
    ])
      expect(validateChildSpec({ id: 'x', start })).toEqual({
        ok: false,
        error: { kind: 'invalid_start', value: start },
      });
  });

  it('a launch that returns something else is bad_return; one that throws or rejects is a start error', async () => {
    const sup = unwrap(await startSupervisor([]));
    const returns =
      (v: unknown): Launch =>
      () =>
        v as never;
    expect(await sup.startChild({ id: 'a', start: { kind: 'k', launch: returns(42) } })).toEqual({
      ok: false,
      error: { kind: 'start_error', reason: { kind: 'bad_return', value: 42 } },
    });
    const boom = new Error('boom');
    const throwing: Launch = () => {
      throw boom;
    };
    const rejecting: Launch = async () => {
      throw boom;
    };
    for (const launch of [throwing, rejecting])
      expect(await sup.startChild({ id: 'b', start: { kind: 'k', launch } })).toEqual({
        ok: false,
        error: { kind: 'start_error', reason: boom },
      });
    await sup.stop();
  });

  it('a kind is defined once: redefining it with another definition throws', () => {
    expect(defineStartKind(actorStartKind)).toBe(actorStartKind);
    expect(() => defineStartKind({ ...actorStartKind })).toThrow(/already defined/);
  });
});
