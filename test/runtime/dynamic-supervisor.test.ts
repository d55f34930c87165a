import { describe, expect, it } from 'vitest';
import type { ChildSpecInput, StartResult } from '../../src/runtime/index.js';
import {
  dynamicSupervisorChild,
  exit,
  spawnActor,
  startDynamicSupervisor,
  startSupervisor,
} from '../../src/runtime/index.js';
import { cnt, crash, exitOf, fnStart, HOUR, recorder, stopNormal, unwrap, W, wc, worker } from './support.js';

const spec = (extra: Partial<ChildSpecInput> = {}): ChildSpecInput => ({
  id: 'ignored',
  start: W.ok(),
  ...extra,
});

describe('startDynamicSupervisor (docs/runtime.md §2.9)', () => {
  it('starts children on demand; ids need not be unique; whichChildren ids are undefined', async () => {
    const sup = unwrap(await startDynamicSupervisor({ intensity: 2, period: HOUR }));
    expect(await cnt(sup)).toEqual([0, 0, 0, 0]);
    const a = unwrap(await sup.startChild(spec())).pid!;
    const b = unwrap(await sup.startChild(spec())).pid!;
    expect(await cnt(sup)).toEqual([2, 2, 0, 2]);
    expect(new Set((await wc(sup)).map((c) => c.pid))).toEqual(new Set([a, b]));
    expect((await wc(sup)).every((c) => c.id === undefined)).toBe(true);
    expect(unwrap(await sup.getChildSpec(a)).restart).toBe('permanent');
    await sup.stop();
  });

  it('terminateChild takes a pid: ok, then not_found for the same pid', async () => {
    const sup = unwrap(await startDynamicSupervisor());
    const a = unwrap(await sup.startChild(spec())).pid!;
    expect(await sup.terminateChild(a)).toEqual({ ok: true, value: undefined });
    expect(a.exitReason).toBe('shutdown');
    expect(await sup.terminateChild(a)).toEqual({ ok: false, error: { kind: 'not_found' } });
    const other = spawnActor(worker);
    if (other.kind !== 'ok') throw new Error('start');
    expect(await sup.terminateChild(other.pid)).toEqual({ ok: false, error: { kind: 'not_found' } });
    expect(other.pid.alive).toBe(true);
    exit(other.pid, 'shutdown');
    await sup.stop();
  });

  it('enforces maxChildren, counting children waiting to restart', async () => {
    const none = unwrap(await startDynamicSupervisor({ maxChildren: 0 }));
    expect(await none.startChild(spec())).toEqual({ ok: false, error: { kind: 'max_children' } });
    const sup = unwrap(await startDynamicSupervisor({ maxChildren: 1, intensity: 100, period: HOUR }));
    const p = unwrap(await sup.startChild(spec({ start: W.sequence(['ok', 'error']) }))).pid!;
    crash(p);
    const [count, second] = await Promise.all([sup.countChildren(), sup.startChild(spec())]);
    expect(unwrap(count)).toMatchObject({ specs: 1, active: 0 });
    expect(second).toEqual({ ok: false, error: { kind: 'max_children' } });
    // A restarting child can be terminated by its old pid.
    expect(await sup.terminateChild(p)).toEqual({ ok: true, value: undefined });
    expect(await cnt(sup)).toEqual([0, 0, 0, 0]);
    await Promise.all([sup.stop(), none.stop()]);
  });

  it('prepends extraArgs to the start arguments, on start and on restart', async () => {
    const seen: unknown[][] = [];
    const start = {
      kind: 'fn' as const,
      fn: (...args: unknown[]): StartResult => {
        seen.push(args);
        return spawnActor(worker);
      },
      args: ['a'],
    };
    const sup = unwrap(await startDynamicSupervisor({ extraArgs: ['x'], intensity: 3, period: HOUR }));
    const p = unwrap(await sup.startChild({ id: 'c', start })).pid!;
    crash(p);
    await sup.countChildren();
    expect(seen).toEqual([
      ['x', 'a'],
      ['x', 'a'],
    ]);
    await sup.stop();
  });

  it('extraArgs reach an actor through inputFrom', async () => {
    const sup = unwrap(await startDynamicSupervisor({ extraArgs: [{ agentId: 'a1' }] }));
    let input: unknown;
    const p = unwrap(
      await sup.startChild({
        id: 'c',
        start: {
          kind: 'actor',
          logic: worker,
          inputFrom: (...extra) => {
            input = extra[0];
            return extra[0];
          },
        },
      }),
    ).pid!;
    expect(p.alive).toBe(true);
    expect(input).toEqual({ agentId: 'a1' });
    await sup.stop();
  });

  it('restarts per restart type; exceeding intensity ends it with shutdown', async () => {
    const sup = unwrap(await startDynamicSupervisor({ intensity: 2, period: HOUR }));
    const perm = unwrap(await sup.startChild(spec())).pid!;
    const trans = unwrap(await sup.startChild(spec({ restart: 'transient' }))).pid!;
    const temp = unwrap(await sup.startChild(spec({ restart: 'temporary' }))).pid!;
    stopNormal(trans);
    crash(temp);
    await sup.countChildren();
    expect(await cnt(sup)).toEqual([1, 1, 0, 1]);
    crash(perm);
    await sup.countChildren();
    const [perm2] = (await wc(sup)).map((c) => c.pid);
    expect(perm2).not.toBe(perm);
    expect(typeof perm2 === 'object' && perm2.alive).toBe(true);
    const rec = recorder(sup);
    crash(perm2 as never);
    await sup.countChildren();
    const [perm3] = (await wc(sup)).map((c) => c.pid);
    crash(perm3 as never);
    expect(await exitOf(sup)).toBe('shutdown');
    expect(rec.reports.some((r) => r.type === 'reached_max_restart_intensity')).toBe(true);
  });

  it('drops a child whose restart returns ignore', async () => {
    const sup = unwrap(await startDynamicSupervisor({ intensity: 10, period: HOUR }));
    const p = unwrap(await sup.startChild(spec({ start: W.sequence(['ok', 'ignore']) }))).pid!;
    crash(p);
    await sup.countChildren();
    expect(await wc(sup)).toEqual([]);
    expect(sup.alive).toBe(true);
    await sup.stop();
  });

  it('returns ignore as pid undefined and start errors unwrapped; rejects significant children', async () => {
    const sup = unwrap(await startDynamicSupervisor());
    expect(await sup.startChild(spec({ start: W.ignore() }))).toEqual({
      ok: true,
      value: { pid: undefined },
    });
    expect(await sup.startChild(spec({ start: W.error('reason') }))).toEqual({
      ok: false,
      error: { kind: 'start_error', reason: 'reason' },
    });
    expect(await sup.startChild(spec({ restart: 'transient', significant: true }))).toEqual({
      ok: false,
      error: { kind: 'invalid_significant', value: true },
    });
    expect(await cnt(sup)).toEqual([0, 0, 0, 0]);
    await sup.stop();
  });

  it('shuts its children down concurrently: total time is one timeout, not one per child', async () => {
    const sup = unwrap(await startDynamicSupervisor());
    const pids = [];
    for (let i = 0; i < 5; i++)
      pids.push(unwrap(await sup.startChild(spec({ start: W.busyOnShutdown(), shutdown: 100 }))).pid!);
    const t0 = Date.now();
    await sup.stop();
    // Sequential would be >= 500 ms; this is a structural check with a wide margin, not a timing floor.
    expect(Date.now() - t0).toBeLessThan(450);
    expect(pids.map((p) => p.exitReason)).toEqual(Array(5).fill('killed'));
  });

  it('once stopped, holds nothing of its children: their exits during the stop are not queued', async () => {
    const sup = unwrap(await startDynamicSupervisor());
    for (let i = 0; i < 20_000; i++) unwrap(await sup.startChild(spec()));
    await sup.stop();
    // A stopped supervisor whose mailbox still held 20k exit notices kept every child reachable
    // until the queue drained, which waits on the event loop.
    expect((sup as unknown as { queue: { pending: number } }).queue.pending).toBe(0);
  });

  it('validates its options', async () => {
    expect(await startDynamicSupervisor({ intensity: -1 })).toMatchObject({
      ok: false,
      error: { kind: 'supervisor_data', reason: { kind: 'invalid_intensity' } },
    });
    expect(await startDynamicSupervisor({ maxChildren: -1 })).toMatchObject({
      ok: false,
      error: { kind: 'supervisor_data', reason: { kind: 'invalid_max_children' } },
    });
    // An option it does not have is an error, never silently ignored (Elixir's DynamicSupervisor
    // has no automatic shutdown); `strategy` is only ever one_for_one.
    for (const key of ['autoShutdown', 'maxchildren', 'significant'])
      expect(await startDynamicSupervisor({ [key]: 'any_significant' } as never)).toEqual({
        ok: false,
        error: { kind: 'supervisor_data', reason: { kind: 'unknown_option', key } },
      });
    expect(await startDynamicSupervisor({ strategy: 'one_for_all' } as never)).toEqual({
      ok: false,
      error: { kind: 'supervisor_data', reason: { kind: 'invalid_strategy', value: 'one_for_all' } },
    });
    const sup = unwrap(await startDynamicSupervisor({ strategy: 'one_for_one', name: undefined }));
    await sup.stop();
    // As a child of a static supervisor, the same error fails the start.
    const parent = await startSupervisor([
      dynamicSupervisorChild('d', { autoShutdown: 'any_significant' } as never),
    ]);
    expect(parent).toMatchObject({
      ok: false,
      error: {
        kind: 'failed_to_start_child',
        id: 'd',
        reason: { kind: 'supervisor_data', reason: { kind: 'unknown_option', key: 'autoShutdown' } },
      },
    });
  });

  it('a start function that throws is a start error', async () => {
    const sup = unwrap(await startDynamicSupervisor());
    const boom = new Error('boom');
    expect(
      await sup.startChild(
        spec({
          start: fnStart(() => {
            throw boom;
          }),
        }),
      ),
    ).toEqual({
      ok: false,
      error: { kind: 'start_error', reason: boom },
    });
    await sup.stop();
  });

  it('a child that keeps failing to restart never starves the event loop: timers fire between retries', async () => {
    const calls = { n: 0 };
    const sup = unwrap(await startDynamicSupervisor({ intensity: 20_000, period: HOUR }));
    const p = unwrap(await sup.startChild(spec({ start: W.sequence(['ok', 'error'], calls) }))).pid!;
    crash(p);
    const atTimer = await new Promise<number>((r) => setTimeout(() => r(calls.n), 5));
    expect(atTimer).toBeGreaterThan(1);
    expect(atTimer).toBeLessThan(20_000);
    expect(sup.alive).toBe(true);
    await sup.stop();
  });
});
