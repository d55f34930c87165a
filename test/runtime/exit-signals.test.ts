/**
 * OTP exit signals (`exit/2`) and a trapping actor's own exit reason: `normal` reaches only a
 * process that traps exits, `kill` is the only untrappable signal, and a final state may name the
 * reason it exits with.
 */
import { describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { actorChild, exit, spawnActor, startSupervisor } from '../../src/runtime/index.js';
import { exitOf, HOUR, pidOf, recorder, unwrap, worker } from './support.js';

const flags = { intensity: 5, period: HOUR };

/** Traps exits; on a shutdown request it records the reason and ends in a final state. */
const trapper = (seen: unknown[], output?: unknown) =>
  setup({}).createMachine({
    ...(output === undefined ? {} : { output: () => output }),
    initial: 'running',
    states: {
      running: {
        on: {
          'supervisor.shutdown': {
            target: 'done',
            actions: ({ event }) => seen.push((event as unknown as { reason: unknown }).reason),
          },
        },
      },
      done: { type: 'final' },
    },
  });

describe('exit signals (OTP exit/2)', () => {
  it("exit(pid, 'normal') leaves a process that does not trap exits running", async () => {
    const s = spawnActor(worker);
    if (s.kind !== 'ok') throw new Error('no start');
    exit(s.pid, 'normal');
    expect(s.pid.alive).toBe(true);
    const r = await new Promise<string>((resolve) => s.pid.send({ type: 'ping', reply: resolve } as never));
    expect(r).toBe('pong');
    exit(s.pid, 'kill');
    expect(await exitOf(s.pid)).toBe('killed');
  });

  it("exit(pid, 'normal') reaches a trapping actor as its shutdown event", async () => {
    const seen: unknown[] = [];
    const s = spawnActor(trapper(seen), { trapExit: true });
    if (s.kind !== 'ok') throw new Error('no start');
    exit(s.pid, 'normal');
    expect(await exitOf(s.pid)).toBe('normal');
    expect(seen).toEqual(['normal']);
  });

  it("exit(pid, 'killed') is an ordinary, trappable reason; only 'kill' is untrappable", async () => {
    const seen: unknown[] = [];
    const s = spawnActor(trapper(seen), { trapExit: true });
    if (s.kind !== 'ok') throw new Error('no start');
    exit(s.pid, 'killed');
    expect(seen).toEqual(['killed']); // it was asked, not stopped
    expect(await exitOf(s.pid)).toBe('killed');

    const seen2: unknown[] = [];
    const t = spawnActor(trapper(seen2), { trapExit: true });
    if (t.kind !== 'ok') throw new Error('no start');
    exit(t.pid, 'kill');
    expect(await exitOf(t.pid)).toBe('killed');
    expect(seen2).toEqual([]); // never asked
  });

  it('a supervisor ignores a normal exit signal and stops on any other', async () => {
    const sup = unwrap(await startSupervisor([actorChild('w', worker)], flags));
    exit(sup, 'normal');
    expect(sup.alive).toBe(true);
    exit(sup, 'shutdown');
    expect(await sup.exited).toBe('shutdown');
  });
});

describe("a trapping actor's own exit reason", () => {
  it('a final state that names no reason exits with the reason the shutdown asked for', async () => {
    const seen: unknown[] = [];
    const sup = unwrap(
      await startSupervisor([actorChild('t', trapper(seen), { trapExit: true, shutdown: 2000 })], flags),
    );
    const p = await pidOf(sup, 't');
    const rec = recorder(sup);
    await sup.stop();
    expect(p.exitReason).toBe('shutdown');
    expect(rec.reports.some((r) => r.type === 'shutdown_error')).toBe(false);
  });

  it('the output { exitReason } of a machine that reaches its final state chooses the reason, during a shutdown or not', async () => {
    const seen: unknown[] = [];
    const detail = { kind: 'shutdown', detail: 'flushed' } as const;
    const s = spawnActor(trapper(seen, { exitReason: detail }), { trapExit: true });
    if (s.kind !== 'ok') throw new Error('no start');
    exit(s.pid, 'shutdown');
    expect(await exitOf(s.pid)).toEqual(detail);

    // Chosen as an Erlang process calls exit(normal) on its way out of a supervisor's shutdown:
    // the supervisor reports the unexpected reason as a shutdown_error (OTP does the same).
    const sup = unwrap(
      await startSupervisor(
        [actorChild('n', trapper([], { exitReason: 'normal' }), { trapExit: true, shutdown: 2000 })],
        flags,
      ),
    );
    const p = await pidOf(sup, 'n');
    const rec = recorder(sup);
    await sup.stop();
    expect(p.exitReason).toBe('normal');
    expect(rec.reports.find((r) => r.type === 'shutdown_error')).toMatchObject({
      childId: 'n',
      reason: 'normal',
    });

    // Without a shutdown: a final state that names an error exits with it (a crash).
    const crash = setup({}).createMachine({
      output: () => ({ exitReason: { kind: 'error', error: 'gave up' } }),
      initial: 'a',
      states: { a: { on: { go: 'b' } }, b: { type: 'final' } },
    });
    const c = spawnActor(crash);
    if (c.kind !== 'ok') throw new Error('no start');
    c.pid.send({ type: 'go' });
    expect(await exitOf(c.pid)).toEqual({ kind: 'error', error: 'gave up' });
  });

  it('an output exitReason that is not an exit reason is a crash that says so', async () => {
    const s = spawnActor(trapper([], { exitReason: 'bye' }), { trapExit: true });
    if (s.kind !== 'ok') throw new Error('no start');
    exit(s.pid, 'shutdown');
    const reason = await exitOf(s.pid);
    expect(reason).toMatchObject({ kind: 'error' });
    expect(String((reason as { error: Error }).error.message)).toContain('invalid exitReason');
  });
});
