import { describe, expect, it } from 'vitest';
import type { OsProcessPid } from '../../src/runtime/index.js';
import { exit, processChild, startSupervisor } from '../../src/runtime/index.js';
import { eventually } from '../support/eventually.js';
import { exitOf, HOUR, pidOf, recorder, unwrap } from './support.js';

const node = process.execPath;
const flags = { intensity: 3, period: HOUR };
const sleeper = (id: string, extra = {}) =>
  processChild(
    id,
    { command: node, args: ['-e', 'setInterval(() => {}, 1000)'] },
    { shutdown: 2000, ...extra },
  );

describe('OS-process children', () => {
  it('exposes the OS pid and output lines, and stops with SIGTERM -> shutdown', async () => {
    const lines: string[] = [];
    const sup = unwrap(
      await startSupervisor(
        [
          processChild(
            'echo',
            {
              command: node,
              args: ['-e', 'console.log("hello"); console.error("warn"); setInterval(() => {}, 1000)'],
              onLine: (line, stream) => lines.push(`${stream}:${line}`),
            },
            { shutdown: 2000 },
          ),
        ],
        flags,
      ),
    );
    const p = (await pidOf(sup, 'echo')) as OsProcessPid;
    expect(typeof p.osPid).toBe('number');
    await eventually(() => expect(lines.sort()).toEqual(['stderr:warn', 'stdout:hello']), { timeout: 5000 });
    await sup.stop();
    expect(p.exitReason).toBe('shutdown');
  });

  it('exit code 0 is normal, a non-zero code is abnormal and restarts a transient child', async () => {
    const sup = unwrap(
      await startSupervisor(
        [
          processChild('ok', { command: node, args: ['-e', 'process.exit(0)'] }, { restart: 'transient' }),
          processChild(
            'fail',
            { command: node, args: ['-e', 'setTimeout(() => process.exit(3), 50)'] },
            { restart: 'transient' },
          ),
        ],
        { intensity: 1, period: HOUR },
      ),
    );
    const rec = recorder(sup);
    const failed = await rec.next((r) => r.type === 'child_terminated' && r.childId === 'fail');
    expect(failed).toMatchObject({ reason: { kind: 'exit', code: 3, signal: null } });
    await rec.next((r) => r.type === 'restarted' && r.childId === 'fail');
    expect(await exitOf(sup, 10_000)).toBe('shutdown'); // the restarted one fails again: intensity 1
    expect(rec.reports.some((r) => r.type === 'child_terminated' && r.childId === 'ok')).toBe(false);
  });

  it('a program that ignores SIGTERM is SIGKILLed after the shutdown timeout', async () => {
    const stubborn = processChild(
      'stubborn',
      {
        command: node,
        args: ['-e', 'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000)'],
        ready: (proc) =>
          new Promise<void>((resolve) => {
            proc.onLine((l) => l === 'ready' && resolve());
          }),
      },
      { shutdown: 200 },
    );
    const sup = unwrap(await startSupervisor([stubborn], flags));
    const p = await pidOf(sup, 'stubborn');
    const rec = recorder(sup);
    await sup.stop();
    expect(p.exitReason).toBe('killed');
    expect(rec.reports.find((r) => r.type === 'shutdown_error')).toMatchObject({ reason: 'killed' });
  });

  it('brutal_kill sends SIGKILL at once', async () => {
    const sup = unwrap(await startSupervisor([sleeper('s', { shutdown: 'brutal_kill' })], flags));
    const p = await pidOf(sup, 's');
    unwrap(await sup.terminateChild('s'));
    expect(p.exitReason).toBe('killed');
    await sup.stop();
  });

  it('a readiness check that fails, or a program that exits before ready, fails the start', async () => {
    const r = await startSupervisor(
      [
        processChild('x', {
          command: node,
          args: ['-e', 'process.exit(1)'],
          ready: () => new Promise(() => {}),
        }),
      ],
      flags,
    );
    expect(!r.ok && r.error).toMatchObject({
      kind: 'failed_to_start_child',
      reason: { kind: 'exited_before_ready' },
    });
    const missing = await startSupervisor([processChild('y', { command: '/nonexistent/program' })], flags);
    expect(!missing.ok && missing.error).toMatchObject({ kind: 'failed_to_start_child', id: 'y' });
  });

  it('an external kill of the program is an abnormal exit and it is restarted', async () => {
    const sup = unwrap(await startSupervisor([sleeper('s')], flags));
    const p = (await pidOf(sup, 's')) as OsProcessPid;
    const rec = recorder(sup);
    process.kill(p.osPid!, 'SIGKILL');
    const t = await rec.next((r) => r.type === 'child_terminated');
    expect(t).toMatchObject({ reason: { kind: 'exit', signal: 'SIGKILL' } });
    await rec.next((r) => r.type === 'restarted');
    const p2 = await pidOf(sup, 's');
    expect(p2).not.toBe(p);
    exit(sup, 'shutdown');
    expect(await exitOf(sup)).toBe('shutdown');
  });
});
