import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startSupervisor } from '../../src/runtime/index.js';
import { crash, HOUR, pidOf, unwrap, W } from './support.js';

describe('supervision reports', () => {
  it('are logged with pino (actor, phase, child_id, reason) and a throwing listener breaks nothing', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    });
    const logger = pino({ level: 'debug' }, sink);
    const sup = unwrap(
      await startSupervisor(
        [{ id: 'c', start: W.ok() }],
        { intensity: 3, period: HOUR },
        { name: 'reports-sup', logger },
      ),
    );
    sup.subscribe(() => {
      throw new Error('listener bug');
    });
    crash(await pidOf(sup, 'c'));
    await sup.countChildren();
    expect(sup.alive).toBe(true);
    expect((await pidOf(sup, 'c')).alive).toBe(true);
    await sup.stop();
    const phases = lines.filter((l) => l.actor === 'reports-sup').map((l) => l.phase);
    expect(phases).toEqual(
      expect.arrayContaining(['progress', 'child_terminated', 'restarted', 'shutdown', 'report_listener']),
    );
    const terminated = lines.find((l) => l.phase === 'child_terminated');
    expect(terminated).toMatchObject({ child_id: 'c', reason: { kind: 'error', message: 'died' } });
  });
});
