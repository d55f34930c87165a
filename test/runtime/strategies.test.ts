import { describe, expect, it } from 'vitest';
import type { ChildSpecInput, ExitReason } from '../../src/runtime/index.js';
import { spawnActor, startSupervisor } from '../../src/runtime/index.js';
import { cnt, crash, exitOf, fnStart, HOUR, pidOf, recorder, unwrap, W, wc, worker } from './support.js';

/** A child whose every incarnation records its exit reason, and whose starts are counted. */
function tracked(id: string, log: string[], extra: Partial<ChildSpecInput> = {}): ChildSpecInput {
  return {
    id,
    shutdown: 1000,
    ...extra,
    start: fnStart(() => {
      const r = spawnActor(worker);
      if (r.kind === 'ok') {
        log.push(`start:${id}`);
        r.pid.onExit((_p, reason: ExitReason) =>
          log.push(`exit:${id}:${typeof reason === 'string' ? reason : reason.kind}`),
        );
      }
      return r;
    }),
  };
}

describe('restart strategies (docs/runtime.md §2.5)', () => {
  it('E28 one_for_all restarts everyone; two more crashes end the supervisor', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          { id: 'child1', start: W.ok() },
          { id: 'child2', start: W.ok() },
        ],
        {
          strategy: 'one_for_all',
          intensity: 2,
          period: HOUR,
        },
      ),
    );
    const p1 = await pidOf(sup, 'child1');
    const p2 = await pidOf(sup, 'child2');
    crash(p1);
    expect(await exitOf(p2)).toBe('shutdown');
    const after = await wc(sup);
    expect(after.map((c) => c.pid)).not.toContain(p1);
    expect(after.map((c) => c.pid)).not.toContain(p2);
    expect(await cnt(sup)).toEqual([2, 2, 0, 2]);
    crash(await pidOf(sup, 'child1'));
    await sup.countChildren(); // queued behind the exit: the restart has happened
    expect(sup.alive).toBe(true);
    crash(await pidOf(sup, 'child1'));
    expect(await exitOf(sup)).toBe('shutdown');
  });

  it('E29 rest_for_one with the middle child failing restarts it and the later ones only', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          { id: 'child1', start: W.ok() },
          { id: 'child2', start: W.ok() },
          { id: 'child3', start: W.ok() },
        ],
        { strategy: 'rest_for_one', intensity: 2, period: HOUR },
      ),
    );
    const [p1, p2, p3] = [await pidOf(sup, 'child1'), await pidOf(sup, 'child2'), await pidOf(sup, 'child3')];
    crash(p2);
    expect(await exitOf(p3)).toBe('shutdown');
    expect(await pidOf(sup, 'child1')).toBe(p1);
    expect(await pidOf(sup, 'child2')).not.toBe(p2);
    expect(await pidOf(sup, 'child3')).not.toBe(p3);
    expect(await cnt(sup)).toEqual([3, 3, 0, 3]);
    crash(await pidOf(sup, 'child3'));
    await sup.countChildren();
    crash(await pidOf(sup, 'child2'));
    expect(await exitOf(sup)).toBe('shutdown');
  });

  it('E30 order_of_children: rest_for_one stops later children newest first, shutdown stops all newest first', async () => {
    const log: string[] = [];
    const ids = ['ch7', 'ch3', 'ch10', 'ch2', 'ch5'];
    const sup = unwrap(
      await startSupervisor(
        ids.map((id) => tracked(id, log)),
        { strategy: 'rest_for_one', intensity: 3, period: HOUR },
      ),
    );
    expect(log).toEqual(ids.map((id) => `start:${id}`));
    const keep = [await pidOf(sup, 'ch7'), await pidOf(sup, 'ch3')];
    log.length = 0;
    crash(await pidOf(sup, 'ch10'));
    await sup.countChildren();
    expect(log).toEqual([
      'exit:ch10:error',
      'exit:ch5:shutdown',
      'exit:ch2:shutdown',
      'start:ch10',
      'start:ch2',
      'start:ch5',
    ]);
    expect([await pidOf(sup, 'ch7'), await pidOf(sup, 'ch3')]).toEqual(keep);
    log.length = 0;
    await sup.stop();
    expect(log).toEqual(['ch5', 'ch2', 'ch10', 'ch3', 'ch7'].map((id) => `exit:${id}:shutdown`));
  });

  it('one_for_all also starts children left undefined by terminateChild (OTP tree)', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          { id: 'a', start: W.ok() },
          { id: 'b', start: W.ok(), restart: 'transient' },
        ],
        { strategy: 'one_for_all', intensity: 3, period: HOUR },
      ),
    );
    unwrap(await sup.terminateChild('b'));
    crash(await pidOf(sup, 'a'));
    await sup.countChildren();
    expect(await cnt(sup)).toEqual([2, 2, 0, 2]);
    await sup.stop();
  });

  it('a one_for_all or rest_for_one cycle counts as one restart', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          { id: 'a', start: W.ok() },
          { id: 'b', start: W.ok() },
          { id: 'c', start: W.ok() },
        ],
        { strategy: 'one_for_all', intensity: 1, period: HOUR },
      ),
    );
    crash(await pidOf(sup, 'a'));
    await sup.countChildren();
    expect(sup.alive).toBe(true);
    expect(await cnt(sup)).toEqual([3, 3, 0, 3]);
    await sup.stop();
  });
});

describe('failed restarts (docs/runtime.md §2.7)', () => {
  it('retries a child that fails to start again; each retry counts toward intensity', async () => {
    const calls = { n: 0 };
    const sup = unwrap(
      await startSupervisor([{ id: 'c', start: W.sequence(['ok', 'error'], calls) }], {
        intensity: 3,
        period: HOUR,
      }),
    );
    const rec = recorder(sup);
    crash(await pidOf(sup, 'c'));
    expect(await exitOf(sup)).toBe('shutdown');
    // 1 initial start + 3 failed restart attempts; the 4th attempt exceeds intensity 3.
    expect(calls.n).toBe(4);
    expect(rec.reports.filter((r) => r.type === 'start_error')).toHaveLength(3);
    expect(rec.reports.some((r) => r.type === 'reached_max_restart_intensity' && r.childId === 'c')).toBe(
      true,
    );
  });

  it('a child that keeps failing to start never starves the event loop: timers fire between retries', async () => {
    const calls = { n: 0 };
    const sup = unwrap(
      await startSupervisor([{ id: 'c', start: W.sequence(['ok', 'error'], calls) }], {
        intensity: 20_000,
        period: HOUR,
      }),
    );
    crash(await pidOf(sup, 'c'));
    // A timer set now fires while the supervisor is still retrying, long before the 20,000th try.
    const atTimer = await new Promise<number>((r) => setTimeout(() => r(calls.n), 5));
    expect(atTimer).toBeGreaterThan(1);
    expect(atTimer).toBeLessThan(20_000);
    expect(sup.alive).toBe(true);
    await sup.stop();
  });

  it('a restarting child is reported `restarting`, refuses restart/delete, and terminateChild stops the loop', async () => {
    const calls = { n: 0 };
    const spec: ChildSpecInput = { id: 'c', start: W.sequence(['ok', 'error'], calls) };
    const sup = unwrap(await startSupervisor([spec], { intensity: 1000, period: HOUR }));
    crash(await pidOf(sup, 'c'));
    // Queued behind the exit: each runs between two retries, as OTP's try_again_restart cast.
    const [which, count, restart, del, start, term] = await Promise.all([
      sup.whichChildren(),
      sup.countChildren(),
      sup.restartChild('c'),
      sup.deleteChild('c'),
      sup.startChild(spec),
      sup.terminateChild('c'),
    ]);
    expect(unwrap(which)).toEqual([{ id: 'c', pid: 'restarting', type: 'worker' }]);
    expect(unwrap(count)).toEqual({ specs: 1, active: 0, supervisors: 0, workers: 1 });
    expect(restart).toEqual({ ok: false, error: { kind: 'restarting' } });
    expect(del).toEqual({ ok: false, error: { kind: 'restarting' } });
    expect(start).toEqual({ ok: false, error: { kind: 'already_present' } });
    expect(term).toEqual({ ok: true, value: undefined });
    const attempts = calls.n;
    expect(await wc(sup)).toEqual([{ id: 'c', pid: 'undefined' }]);
    await sup.countChildren();
    expect(calls.n).toBe(attempts);
    expect(sup.alive).toBe(true);
    await sup.stop();
  });

  it('a supervisor stuck in a restart loop still shuts down cleanly', async () => {
    const sup = unwrap(
      await startSupervisor([{ id: 'c', start: W.sequence(['ok', 'error']) }], {
        intensity: 1_000_000,
        period: HOUR,
      }),
    );
    crash(await pidOf(sup, 'c'));
    expect(await sup.stop()).toEqual({ ok: true, value: undefined });
    expect(sup.exitReason).toBe('shutdown');
  });

  it('one_for_all: when another child fails to restart, the retry stops everyone again', async () => {
    const log: string[] = [];
    const calls = { n: 0 };
    const sup = unwrap(
      await startSupervisor(
        [tracked('child1', log), { id: 'child2', start: W.sequence(['ok', 'error', 'ok'], calls) }],
        { strategy: 'one_for_all', intensity: 10, period: HOUR },
      ),
    );
    log.length = 0;
    crash(await pidOf(sup, 'child1'));
    await sup.countChildren();
    await sup.countChildren();
    // child1 restarted, child2 failed; the retry terminated the fresh child1 and restarted both.
    expect(log).toEqual(['exit:child1:error', 'start:child1', 'exit:child1:shutdown', 'start:child1']);
    expect(calls.n).toBe(3);
    expect(await cnt(sup)).toEqual([2, 2, 0, 2]);
    await sup.stop();
  });

  it('rest_for_one: the retry restarts the failed child and the later ones only', async () => {
    const log: string[] = [];
    const calls = { n: 0 };
    const sup = unwrap(
      await startSupervisor(
        [
          tracked('c1', log),
          { id: 'c2', start: W.sequence(['ok', 'error', 'ok'], calls) },
          tracked('c3', log),
        ],
        { strategy: 'rest_for_one', intensity: 10, period: HOUR },
      ),
    );
    log.length = 0;
    crash(await pidOf(sup, 'c1'));
    const during = await wc(sup);
    expect(during.map((c) => [c.id, typeof c.pid === 'string' ? c.pid : 'pid'])).toEqual([
      ['c3', 'undefined'],
      ['c2', 'restarting'],
      ['c1', 'pid'],
    ]);
    await sup.countChildren();
    expect(log).toEqual(['exit:c1:error', 'exit:c3:shutdown', 'start:c1', 'start:c3']);
    expect(await cnt(sup)).toEqual([3, 3, 0, 3]);
    await sup.stop();
  });
});
