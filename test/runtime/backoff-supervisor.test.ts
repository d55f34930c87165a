import { describe, expect, it } from 'vitest';
import { startDynamicSupervisor, startSupervisor } from '../../src/runtime/index.js';
import { crash, exitOf, HOUR, pidOf, recorder, unwrap, W, wc } from './support.js';

const backoff = { min: 20, max: 80, jitter: 0, resetAfter: HOUR };

describe('backoff restarts (opt-in, docs/runtime.md §2.8)', () => {
  it('schedules growing delays, reports the child `restarting` while waiting, then restarts it', async () => {
    const sup = unwrap(
      await startSupervisor([{ id: 'c', start: W.ok(), backoff }], { intensity: 10, period: HOUR }),
    );
    const rec = recorder(sup);
    crash(await pidOf(sup, 'c'));
    const first = await rec.next((r) => r.type === 'restart_scheduled');
    expect(first).toMatchObject({ delay: 20, attempt: 0 });
    expect(await wc(sup)).toEqual([{ id: 'c', pid: 'restarting' }]);
    expect(unwrap(await sup.countChildren()).active).toBe(0);
    await rec.next((r) => r.type === 'restarted');
    crash(await pidOf(sup, 'c'));
    expect(await rec.next((r) => r.type === 'restart_scheduled')).toMatchObject({ delay: 40, attempt: 1 });
    await rec.next((r) => r.type === 'restarted');
    await sup.stop();
  });

  it('each attempt counts toward intensity at attempt time; a hopeless child ends the supervisor', async () => {
    const calls = { n: 0 };
    const sup = unwrap(
      await startSupervisor([{ id: 'c', start: W.sequence(['ok', 'error'], calls), backoff }], {
        intensity: 2,
        period: HOUR,
      }),
    );
    crash(await pidOf(sup, 'c'));
    expect(await exitOf(sup)).toBe('shutdown');
    expect(calls.n).toBe(3); // initial + 2 attempts; the third attempt is refused
  });

  it('terminateChild cancels a scheduled restart', async () => {
    const sup = unwrap(
      await startSupervisor([{ id: 'c', start: W.ok(), backoff: { ...backoff, min: 50 } }], {}),
    );
    const rec = recorder(sup);
    crash(await pidOf(sup, 'c'));
    await rec.next((r) => r.type === 'restart_scheduled');
    unwrap(await sup.terminateChild('c'));
    expect(await wc(sup)).toEqual([{ id: 'c', pid: 'undefined' }]);
    await sup.stop();
    expect(rec.reports.some((r) => r.type === 'restarted')).toBe(false);
  });

  it('works under a dynamic supervisor', async () => {
    const sup = unwrap(await startDynamicSupervisor({ intensity: 5, period: HOUR }));
    const rec = recorder(sup);
    const p = unwrap(await sup.startChild({ id: 'c', start: W.ok(), backoff })).pid!;
    crash(p);
    await rec.next((r) => r.type === 'restart_scheduled');
    expect((await wc(sup)).map((c) => c.pid)).toEqual(['restarting']);
    await rec.next((r) => r.type === 'restarted');
    expect(unwrap(await sup.countChildren()).active).toBe(1);
    await sup.stop();
  });
});
