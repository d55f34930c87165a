import { describe, expect, it } from 'vitest';
import type { Supervisor } from '../../src/runtime/index.js';
import { ManualClock, startSupervisor, supervisorChild } from '../../src/runtime/index.js';
import { crash, exitOf, HOUR, pidOf, recorder, unwrap, W, wc } from './support.js';

describe('restart intensity and escalation (docs/runtime.md §2.6)', () => {
  it('the (N+1)-th restart within the period ends the supervisor with shutdown', async () => {
    const sup = unwrap(await startSupervisor([{ id: 'c', start: W.ok() }], { intensity: 2, period: HOUR }));
    const rec = recorder(sup);
    for (let i = 0; i < 2; i++) {
      crash(await pidOf(sup, 'c'));
      await sup.countChildren();
      expect(sup.alive).toBe(true);
    }
    const last = await pidOf(sup, 'c');
    crash(last);
    expect(await exitOf(sup)).toBe('shutdown');
    expect(rec.reports.map((r) => r.type).slice(-2)).toEqual(['reached_max_restart_intensity', 'shutdown']);
  });

  it('restarts older than the period no longer count (sliding window, injected clock)', async () => {
    const clock = new ManualClock(0);
    const sup = unwrap(
      await startSupervisor([{ id: 'c', start: W.ok() }], { intensity: 1, period: 1000 }, { clock }),
    );
    crash(await pidOf(sup, 'c'));
    await sup.countChildren();
    clock.advance(1001);
    crash(await pidOf(sup, 'c'));
    await sup.countChildren();
    expect(sup.alive).toBe(true);
    clock.advance(500);
    crash(await pidOf(sup, 'c'));
    expect(await exitOf(sup)).toBe('shutdown');
  });

  it('intensity is shared by all children of one supervisor', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          { id: 'a', start: W.ok() },
          { id: 'b', start: W.ok() },
        ],
        { intensity: 1, period: HOUR },
      ),
    );
    crash(await pidOf(sup, 'a'));
    await sup.countChildren();
    crash(await pidOf(sup, 'b'));
    expect(await exitOf(sup)).toBe('shutdown');
  });

  it('temporary exits, transient normal exits and terminateChild do not count', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          { id: 'p', start: W.ok() },
          { id: 't', start: W.ok(), restart: 'temporary' },
          { id: 'tr', start: W.ok(), restart: 'transient' },
        ],
        { intensity: 0, period: HOUR },
      ),
    );
    crash(await pidOf(sup, 't'));
    (await pidOf(sup, 'tr')).send({ type: 'stop' });
    unwrap(await sup.terminateChild('p'));
    unwrap(await sup.restartChild('p'));
    await sup.countChildren();
    expect(sup.alive).toBe(true);
    await sup.stop();
  });

  it('a permanent nested supervisor that gives up is restarted by its parent from its init spec', async () => {
    const top = unwrap(
      await startSupervisor(
        [supervisorChild('sub', [{ id: 'w', start: W.ok() }], { intensity: 0, period: HOUR })],
        {
          intensity: 3,
          period: HOUR,
        },
      ),
    );
    const sub = (await pidOf(top, 'sub')) as Supervisor;
    unwrap(await sub.startChild({ id: 'extra', start: W.ok() }));
    crash(await pidOf(sub, 'w'));
    expect(await exitOf(sub)).toBe('shutdown');
    await top.countChildren();
    const sub2 = (await pidOf(top, 'sub')) as Supervisor;
    expect(sub2).not.toBe(sub);
    // Children added with startChild are lost across the restart (OTP `tree`).
    expect((await wc(sub2)).map((c) => c.id)).toEqual(['w']);
    await top.stop();
  });

  it('a transient nested supervisor that gives up is not restarted (stops the cascade)', async () => {
    const top = unwrap(
      await startSupervisor(
        [
          supervisorChild(
            'sub',
            [{ id: 'w', start: W.ok() }],
            { intensity: 0, period: HOUR },
            { restart: 'transient' },
          ),
        ],
        { intensity: 3, period: HOUR },
      ),
    );
    const sub = (await pidOf(top, 'sub')) as Supervisor;
    crash(await pidOf(sub, 'w'));
    await exitOf(sub);
    expect(await wc(top)).toEqual([{ id: 'sub', pid: 'undefined' }]);
    expect(top.alive).toBe(true);
    await top.stop();
  });

  it('escalation multiplies: each give-up of the child counts once against the parent', async () => {
    const top = unwrap(
      await startSupervisor(
        [supervisorChild('sub', [{ id: 'w', start: W.ok() }], { intensity: 0, period: HOUR })],
        {
          intensity: 1,
          period: HOUR,
        },
      ),
    );
    const rec = recorder(top);
    const restarted = rec.next((r) => r.type === 'restarted' && r.childId === 'sub');
    crash(await pidOf((await pidOf(top, 'sub')) as Supervisor, 'w'));
    await restarted; // the parent sees the child supervisor's exit asynchronously (as in OTP)
    expect(top.alive).toBe(true);
    crash(await pidOf((await pidOf(top, 'sub')) as Supervisor, 'w'));
    expect(await exitOf(top)).toBe('shutdown');
  });

  it('stopping the top supervisor stops the whole tree, deepest last-started first', async () => {
    const top = unwrap(
      await startSupervisor(
        [
          { id: 'a', start: W.ok() },
          supervisorChild('sub', [
            { id: 'x', start: W.ok() },
            { id: 'y', start: W.ok() },
          ]),
        ],
        {},
      ),
    );
    const sub = (await pidOf(top, 'sub')) as Supervisor;
    const order: string[] = [];
    for (const [id, pid] of [
      ['a', await pidOf(top, 'a')],
      ['sub', sub],
      ['x', await pidOf(sub, 'x')],
      ['y', await pidOf(sub, 'y')],
    ] as const) {
      pid.onExit(() => order.push(id));
    }
    await top.stop();
    expect(order).toEqual(['y', 'x', 'sub', 'a']);
  });
});
