/**
 * The sidecar machine alone, with its I/O replaced by controllable actors and a simulated clock:
 * connect retries wait 1 s, 2 s, 4 s ... 60 s; a relay failure goes back to connecting; STOP from
 * any state says goodbye exactly once and ends in the final state.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock } from 'xstate';
import {
  connectDelay,
  DEFAULT_SIDECAR_BACKOFF,
  type SidecarEvent,
  sidecarMachine,
} from '../../machines/sidecar.js';

function harness(opts: { connectFailures?: number; loadFails?: boolean } = {}) {
  const clock = new SimulatedClock();
  const calls = { connect: 0, shutdown: 0, serveStarted: 0, serveStopped: 0 };
  let send: ((e: SidecarEvent) => void) | undefined;
  const logic = sidecarMachine.provide({
    actors: {
      loadQueue: fromPromise(async () => {
        if (opts.loadFails) throw new Error('EACCES queue.json');
        return { held: 2 };
      }),
      connect: fromPromise(async () => {
        calls.connect++;
        if (calls.connect <= (opts.connectFailures ?? 0)) throw new Error(`refused #${calls.connect}`);
      }),
      serve: fromCallback<SidecarEvent>(({ sendBack }) => {
        calls.serveStarted++;
        send = sendBack;
        return () => {
          calls.serveStopped++;
        };
      }),
      shutdown: fromPromise(async () => {
        calls.shutdown++;
      }),
    },
  });
  const errors: unknown[] = [];
  const actor = createActor(logic, { input: { agentId: 'a1' }, clock });
  actor.subscribe({ error: (e) => errors.push(e) });
  actor.start();
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { actor, clock, calls, errors, settle, relay: (e: SidecarEvent) => send?.(e) };
}

describe('sidecar machine', () => {
  it('connect delays double from 1 s and cap at 60 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => connectDelay(n, DEFAULT_SIDECAR_BACKOFF))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
    ]);
  });

  it('loads, connects, and serves', async () => {
    const h = harness();
    await h.settle();
    await h.settle();
    expect(h.actor.getSnapshot().value).toEqual({ online: 'connected' });
    expect(h.actor.getSnapshot().context).toMatchObject({ recovered: 2, held: 2, attempt: 0 });
    expect(h.calls.serveStarted).toBe(1);
  });

  it('retries a failed connect after 1 s, 2 s, 4 s', async () => {
    const h = harness({ connectFailures: 3 });
    for (let i = 0; i < 3; i++) await h.settle();
    expect(h.actor.getSnapshot().value).toBe('backoff');
    expect(h.actor.getSnapshot().context).toMatchObject({ attempt: 1, lastError: 'refused #1' });
    h.clock.increment(999);
    expect(h.calls.connect).toBe(1);
    h.clock.increment(1);
    await h.settle();
    expect(h.calls.connect).toBe(2);
    expect(h.actor.getSnapshot().context.attempt).toBe(2);
    h.clock.increment(1_999);
    expect(h.calls.connect).toBe(2);
    h.clock.increment(1);
    await h.settle();
    expect(h.calls.connect).toBe(3);
    h.clock.increment(4_000);
    await h.settle();
    await h.settle();
    expect(h.calls.connect).toBe(4);
    expect(h.actor.getSnapshot().value).toEqual({ online: 'connected' });
    expect(h.actor.getSnapshot().context).toMatchObject({ attempt: 0, lastError: null });
  });

  it('mirrors the connection and counts the relay’s work', async () => {
    const h = harness();
    await h.settle();
    await h.settle();
    h.relay({ type: 'DISCONNECTED' });
    expect(h.actor.getSnapshot().value).toEqual({ online: 'disconnected' });
    h.relay({ type: 'RECONNECTED' });
    h.relay({ type: 'TASK_RECEIVED', taskId: 't1', held: 3 });
    h.relay({ type: 'TASK_REPORTED', taskId: 't1', outcome: 'completed', held: 2 });
    h.relay({ type: 'TASK_CANCELLED', taskId: 't2', held: 1 });
    expect(h.actor.getSnapshot().value).toEqual({ online: 'connected' });
    expect(h.actor.getSnapshot().context).toMatchObject({ received: 1, reported: 1, cancelled: 1, held: 1 });
  });

  it('a relay failure stops serving and reconnects after the backoff', async () => {
    const h = harness();
    await h.settle();
    await h.settle();
    h.relay({ type: 'SERVE_FAILED', error: 'connection closed' });
    expect(h.actor.getSnapshot().value).toBe('backoff');
    expect(h.calls.serveStopped).toBe(1);
    h.clock.increment(1_000);
    await h.settle();
    await h.settle();
    expect(h.calls.connect).toBe(2);
    expect(h.calls.serveStarted).toBe(2);
  });

  it.each([
    ['online', 0],
    ['backoff', 5],
  ])('STOP while %s says goodbye once and ends', async (_state, failures) => {
    const h = harness({ connectFailures: failures });
    await h.settle();
    await h.settle();
    h.actor.send({ type: 'STOP' });
    h.actor.send({ type: 'supervisor.shutdown' });
    await h.settle();
    expect(h.actor.getSnapshot().status).toBe('done');
    expect(h.actor.getSnapshot().value).toBe('stopped');
    expect(h.calls.shutdown).toBe(1);
  });

  it('a queue it cannot read is a crash, left to the supervisor', async () => {
    const h = harness({ loadFails: true });
    await h.settle();
    await h.settle();
    expect(h.actor.getSnapshot().status).toBe('error');
    expect(String(h.errors[0])).toContain('EACCES');
    expect(h.calls.connect).toBe(0);
  });
});
