import { describe, expect, it } from 'vitest';
import type { ChildSpecInput, Restart, Strategy } from '../../src/runtime/index.js';
import { exit, startSupervisor } from '../../src/runtime/index.js';
import { cnt, crash, exitOf, HOUR, pidOf, recorder, stopNormal, unwrap, W, wc } from './support.js';

const flags = { strategy: 'one_for_one' as const, intensity: 2, period: HOUR };

describe('admin API (docs/runtime.md §2.12)', () => {
  it('follows OTP return values step by step', async () => {
    const spec: ChildSpecInput = { id: 'child1', start: W.ok(), shutdown: 1000 };
    const sup = unwrap(await startSupervisor([spec], flags));
    const p = await pidOf(sup, 'child1');
    expect(await sup.startChild(spec)).toEqual({ ok: false, error: { kind: 'already_started', pid: p } });
    expect(await sup.terminateChild('hej')).toEqual({ ok: false, error: { kind: 'not_found' } });
    expect(await sup.terminateChild('child1')).toEqual({ ok: true, value: undefined });
    expect(p.exitReason).toBe('shutdown');
    expect(await wc(sup)).toEqual([{ id: 'child1', pid: 'undefined' }]);
    expect(await cnt(sup)).toEqual([1, 0, 0, 1]);
    expect(await sup.terminateChild('child1')).toEqual({ ok: true, value: undefined });
    expect(await sup.startChild(spec)).toEqual({ ok: false, error: { kind: 'already_present' } });
    const p2 = unwrap(await sup.restartChild('child1')).pid!;
    expect(p2).not.toBe(p);
    expect(p2.alive).toBe(true);
    expect(await cnt(sup)).toEqual([1, 1, 0, 1]);
    expect(await sup.restartChild('child1')).toEqual({ ok: false, error: { kind: 'running' } });
    expect(await sup.restartChild('child2')).toEqual({ ok: false, error: { kind: 'not_found' } });
    expect(await sup.deleteChild('child1')).toEqual({ ok: false, error: { kind: 'running' } });
    expect(await sup.deleteChild('hej')).toEqual({ ok: false, error: { kind: 'not_found' } });
    unwrap(await sup.terminateChild('child1'));
    expect(await sup.deleteChild('child1')).toEqual({ ok: true, value: undefined });
    expect(await sup.restartChild('child1')).toEqual({ ok: false, error: { kind: 'not_found' } });
    expect(await wc(sup)).toEqual([]);
    expect(await cnt(sup)).toEqual([0, 0, 0, 0]);
    const p3 = unwrap(await sup.startChild(spec)).pid!;
    // A pid is not an id on a static supervisor: not_found, and the child stays alive.
    expect(await sup.terminateChild(p3)).toEqual({ ok: false, error: { kind: 'not_found' } });
    expect(p3.alive).toBe(true);
    await sup.stop();
  });

  it('restartChild reports a failed start and leaves the child undefined', async () => {
    const calls = { n: 0 };
    const sup = unwrap(
      await startSupervisor([{ id: 'c', start: W.sequence(['ok', 'error'], calls) }], flags),
    );
    unwrap(await sup.terminateChild('c'));
    expect(await sup.restartChild('c')).toEqual({
      ok: false,
      error: { kind: 'start_error', reason: 'boom' },
    });
    expect(await wc(sup)).toEqual([{ id: 'c', pid: 'undefined' }]);
    await sup.stop();
  });

  it('terminateChild never restarts the child, and a name clash from the child passes through', async () => {
    const sup = unwrap(await startSupervisor([{ id: 'c', start: W.ok() }], { ...flags, intensity: 0 }));
    const rec = recorder(sup);
    unwrap(await sup.terminateChild('c'));
    expect(rec.reports.filter((r) => r.type === 'child_terminated' || r.type === 'restarted')).toEqual([]);
    expect(sup.alive).toBe(true);
    await sup.stop();
  });
});

describe('restart types x exit reasons (docs/runtime.md §2.1)', () => {
  const endings: [string, (p: import('../../src/runtime/index.js').Pid) => void, boolean][] = [
    ['normal (final state)', stopNormal, true],
    ['shutdown', (p) => exit(p, 'shutdown'), true],
    ['{shutdown, detail}', (p) => exit(p, { kind: 'shutdown', detail: 'some_info' }), true],
    ['an error', crash, false],
    ['killed', (p) => exit(p, 'kill'), false],
  ];
  const expected: Record<Restart, (normal: boolean) => 'restarted' | 'undefined' | 'removed'> = {
    permanent: () => 'restarted',
    transient: (normal) => (normal ? 'undefined' : 'restarted'),
    temporary: () => 'removed',
  };
  for (const restart of ['permanent', 'transient', 'temporary'] as const) {
    for (const [what, end, normal] of endings) {
      const outcome = expected[restart](normal);
      it(`a ${restart} child ending with ${what} is ${outcome}`, async () => {
        const sup = unwrap(await startSupervisor([{ id: 'child1', start: W.ok(), restart }], flags));
        const rec = recorder(sup);
        const p = await pidOf(sup, 'child1');
        end(p);
        await exitOf(p);
        const after = await wc(sup);
        if (outcome === 'restarted') {
          expect(after).toHaveLength(1);
          expect(after[0]!.pid).not.toBe(p);
          expect(typeof after[0]!.pid === 'object' && after[0]!.pid.alive).toBe(true);
          expect(await cnt(sup)).toEqual([1, 1, 0, 1]);
        } else if (outcome === 'undefined') {
          expect(after).toEqual([{ id: 'child1', pid: 'undefined' }]);
          expect(await cnt(sup)).toEqual([1, 0, 0, 1]);
          expect(unwrap(await sup.restartChild('child1')).pid?.alive).toBe(true);
        } else {
          expect(after).toEqual([]);
          expect(await cnt(sup)).toEqual([0, 0, 0, 0]);
          expect((await sup.startChild({ id: 'child1', start: W.ok(), restart })).ok).toBe(true);
        }
        // child_terminated: permanent always; others only for abnormal reasons (§1.18)
        const reported = rec.reports.some((r) => r.type === 'child_terminated');
        expect(reported).toBe(restart === 'permanent' || !normal);
        await sup.stop();
      });
    }
  }
});

describe('C22 do_not_save_child_specs_for_temporary_children', () => {
  const strategies: Strategy[] = ['one_for_one', 'one_for_all', 'rest_for_one'];
  for (const strategy of strategies) {
    it(`under ${strategy}: startChild(sameSpec) after each kind of termination`, async () => {
      for (const restart of ['permanent', 'transient', 'temporary'] as const) {
        for (const how of ['kill', 'normal', 'abnormal', 'terminate_child'] as const) {
          const spec: ChildSpecInput = { id: 'c', start: W.ok(), restart };
          const sup = unwrap(await startSupervisor([spec], { strategy, intensity: 10, period: HOUR }));
          const p = await pidOf(sup, 'c');
          if (how === 'terminate_child') unwrap(await sup.terminateChild('c'));
          else {
            if (how === 'kill') exit(p, 'kill');
            if (how === 'normal') stopNormal(p);
            if (how === 'abnormal') crash(p);
            await exitOf(p);
          }
          const r = await sup.startChild(spec);
          const kind = r.ok ? 'ok' : r.error.kind;
          const restarted =
            restart === 'permanent' ? how !== 'terminate_child' : how === 'kill' || how === 'abnormal';
          const want = restart === 'temporary' ? 'ok' : restarted ? 'already_started' : 'already_present';
          expect({ restart, how, kind }).toEqual({ restart, how, kind: want });
          if (want === 'already_present') expect(unwrap(await sup.restartChild('c')).pid?.alive).toBe(true);
          await sup.stop();
        }
      }
    });
  }
});

describe('C23 temporary_bystander', () => {
  for (const strategy of ['one_for_all', 'rest_for_one'] as const) {
    it(`under ${strategy} a temporary sibling is stopped and removed, never restarted`, async () => {
      const sup = unwrap(
        await startSupervisor([{ id: 'child1', start: W.ok(), shutdown: 100 }], {
          strategy,
          intensity: 2,
          period: 300,
        }),
      );
      unwrap(await sup.startChild({ id: 'child2', start: W.ok(), restart: 'temporary' }));
      const p1 = await pidOf(sup, 'child1');
      const p2 = await pidOf(sup, 'child2');
      stopNormal(p1);
      expect(await exitOf(p2)).toBe('shutdown');
      const after = await wc(sup);
      expect(after.map((c) => c.id)).toEqual(['child1']);
      expect(after[0]!.pid).not.toBe(p1);
      expect(sup.alive).toBe(true);
      await sup.stop();
    });
  }
});
