import { describe, expect, it } from 'vitest';
import type { ChildSpecInput } from '../../src/runtime/index.js';
import { exit, Registry, spawnActor, startSupervisor } from '../../src/runtime/index.js';
import { cnt, exitOf, fnStart, HOUR, recorder, unwrap, W, wc, worker } from './support.js';

const flags = { strategy: 'one_for_one' as const, intensity: 2, period: HOUR };

describe('supervisor start-up (docs/runtime.md §2.4)', () => {
  it('A1 starts with no children and exits shutdown on an exit signal', async () => {
    const sup = unwrap(await startSupervisor([], flags));
    exit(sup, 'shutdown');
    expect(await exitOf(sup)).toBe('shutdown');
  });

  it('A4 returns supervisor_data errors for bad flags', async () => {
    const r = await startSupervisor([], { strategy: 'none_for_one' as never });
    expect(r).toEqual({
      ok: false,
      error: { kind: 'supervisor_data', reason: { kind: 'invalid_strategy', value: 'none_for_one' } },
    });
  });

  it('A5 returns start_spec errors for bad child specs, before starting anything', async () => {
    const calls = { n: 0 };
    const r = await startSupervisor(
      [
        { id: 'a', start: W.sequence(['ok'], calls) },
        { id: 'b', start: W.ok(), restart: 'prmanent' as never },
      ],
      flags,
    );
    expect(r).toEqual({
      ok: false,
      error: { kind: 'start_spec', reason: { kind: 'invalid_restart_type', value: 'prmanent' } },
    });
    expect(calls.n).toBe(0);
    const dup = await startSupervisor(
      [
        { id: 'c', start: W.ok() },
        { id: 'c', start: W.ok() },
      ],
      flags,
    );
    expect(dup).toEqual({
      ok: false,
      error: { kind: 'start_spec', reason: { kind: 'duplicate_child_name', id: 'c' } },
    });
  });

  it('A6 getChildSpec returns the spec with every default filled', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          { id: 'child1', start: W.ok() },
          { id: 'child2', start: W.ok(), shutdown: 'brutal_kill' },
          { id: 'child3', start: { kind: 'supervisor', children: [] } },
        ],
        flags,
      ),
    );
    const c1 = unwrap(await sup.getChildSpec('child1'));
    expect([c1.restart, c1.shutdown, c1.type, c1.significant]).toEqual(['permanent', 5000, 'worker', false]);
    expect(unwrap(await sup.getChildSpec('child2')).shutdown).toBe('brutal_kill');
    const c3 = unwrap(await sup.getChildSpec('child3'));
    expect([c3.shutdown, c3.type]).toEqual(['infinity', 'supervisor']);
    expect(await sup.getChildSpec('child4')).toEqual({ ok: false, error: { kind: 'not_found' } });
    await sup.stop();
  });

  it('A7 a child failing to start stops the started ones newest first, with no retry', async () => {
    const order: string[] = [];
    const tracked = (id: string): ChildSpecInput => ({
      id,
      start: fnStart(() => {
        const r = spawnActor(worker);
        r.kind === 'ok' && r.pid.onExit((_p, reason) => order.push(`${id}:${String(reason)}`));
        return r;
      }),
    });
    const calls = { n: 0 };
    const r = await startSupervisor(
      [tracked('A'), tracked('B'), { id: 'C', start: W.sequence(['error'], calls) }],
      flags,
    );
    expect(r).toEqual({ ok: false, error: { kind: 'failed_to_start_child', id: 'C', reason: 'boom' } });
    expect(order).toEqual(['B:shutdown', 'A:shutdown']);
    expect(calls.n).toBe(1);
  });

  it('A7 a throwing start and a bad return value are start failures too', async () => {
    const thrown = new Error('fail');
    expect(await startSupervisor([{ id: 'c', start: W.throws(thrown) }], flags)).toEqual({
      ok: false,
      error: { kind: 'failed_to_start_child', id: 'c', reason: thrown },
    });
    expect(await startSupervisor([{ id: 'c', start: W.bad('invalid') }], flags)).toEqual({
      ok: false,
      error: { kind: 'failed_to_start_child', id: 'c', reason: { kind: 'bad_return', value: 'invalid' } },
    });
  });

  it('A8 an ignored child keeps its spec with pid undefined', async () => {
    const sup = unwrap(await startSupervisor([], flags));
    expect(await sup.startChild({ id: 'child1', start: W.ignore() })).toEqual({
      ok: true,
      value: { pid: undefined },
    });
    const p2 = unwrap(await sup.startChild({ id: 'child2', start: W.ok() })).pid;
    expect(await wc(sup)).toEqual([
      { id: 'child2', pid: p2 },
      { id: 'child1', pid: 'undefined' },
    ]);
    expect(await cnt(sup)).toEqual([2, 1, 0, 2]);
    await sup.stop();
  });

  it('A9 an ignored temporary child is dropped, at init and from startChild', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          { id: 'child1', start: W.ignore(), restart: 'temporary' },
          { id: 'child2', start: W.ok(), restart: 'temporary' },
        ],
        flags,
      ),
    );
    expect((await wc(sup)).map((c) => c.id)).toEqual(['child2']);
    expect(await cnt(sup)).toEqual([1, 1, 0, 1]);
    expect(await sup.startChild({ id: 'child3', start: W.ignore(), restart: 'temporary' })).toEqual({
      ok: true,
      value: { pid: undefined },
    });
    expect(await cnt(sup)).toEqual([1, 1, 0, 1]);
    await sup.stop();
  });

  it('A11 startChild returns start_error for an error, a bad value or a throw, and keeps no spec', async () => {
    const sup = unwrap(await startSupervisor([], flags));
    expect(await sup.startChild({ id: 'c', start: W.error('reason') })).toEqual({
      ok: false,
      error: { kind: 'start_error', reason: 'reason' },
    });
    const r = await sup.startChild({ id: 'c', start: W.bad('error_reason') });
    expect(r.ok || r.error.kind).toBe('start_error');
    expect(await wc(sup)).toEqual([]);
    await sup.stop();
  });

  it('A12 extra start info is passed through by startChild and restartChild', async () => {
    const sup = unwrap(await startSupervisor([], flags));
    const first = unwrap(await sup.startChild({ id: 'child1', start: W.okInfo('extra_return') }));
    expect(first.info).toBe('extra_return');
    unwrap(await sup.terminateChild('child1'));
    const again = unwrap(await sup.restartChild('child1'));
    expect(again.info).toBe('extra_return');
    expect(again.pid).not.toBe(first.pid);
    await sup.stop();
  });

  it('registers its name and refuses a second supervisor with the same name', async () => {
    const registry = new Registry();
    const sup = unwrap(await startSupervisor([], flags, { name: 'top', registry }));
    expect(registry.whereis('top')).toBe(sup);
    expect(await startSupervisor([], flags, { name: 'top', registry })).toEqual({
      ok: false,
      error: { kind: 'already_started', pid: sup },
    });
    await sup.stop();
    expect(registry.whereis('top')).toBeUndefined();
  });

  it('emits a progress report per started child', async () => {
    const seen: string[] = [];
    const sup = unwrap(
      await startSupervisor(
        [
          { id: 'a', start: W.ok() },
          { id: 'b', start: W.ok() },
        ],
        flags,
        {
          onReport: (r) => r.type === 'progress' && seen.push(r.childId ?? '?'),
        },
      ),
    );
    expect(seen).toEqual(['a', 'b']);
    const rec = recorder(sup);
    await sup.stop();
    expect(rec.reports.at(-1)).toMatchObject({ type: 'shutdown', reason: 'shutdown' });
  });

  it('a dead supervisor answers every request with noproc', async () => {
    const sup = unwrap(await startSupervisor([], flags));
    await sup.stop();
    const noproc = { ok: false, error: { kind: 'noproc' } };
    expect(await sup.whichChildren()).toEqual(noproc);
    expect(await sup.startChild({ id: 'x', start: W.ok() })).toEqual(noproc);
    expect(await sup.stop()).toEqual(noproc);
  });
});
