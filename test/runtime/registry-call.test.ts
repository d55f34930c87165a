import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import type { CallEvent, Pid, ReplyFn } from '../../src/runtime/index.js';
import {
  actorChild,
  call,
  cast,
  exit,
  processChild,
  Registry,
  spawnActor,
  startDynamicSupervisor,
  startSupervisor,
} from '../../src/runtime/index.js';
import { exitOf, fnStart, pidOf, unwrap, W, worker } from './support.js';

type CounterEvent =
  | { type: 'inc' }
  | CallEvent<{ type: 'get' }, number>
  | CallEvent<{ type: 'slow' }, string>
  | CallEvent<{ type: 'die' }, never>
  | CallEvent<{ type: 'callMe' }, unknown>
  | { type: 'answer' };

/** Answers `get` at once; `slow` is answered later, on `answer` (OTP noreply + reply/2). */
const counter = setup({
  types: { context: {} as { n: number; pending: ReplyFn<string> | undefined }, events: {} as CounterEvent },
}).createMachine({
  context: { n: 0, pending: undefined },
  on: {
    inc: { actions: assign({ n: ({ context }) => context.n + 1 }) },
    get: { actions: ({ context, event }) => event.reply(context.n) },
    slow: {
      actions: assign(({ event }) => ({ pending: (event as CallEvent<{ type: 'slow' }, string>).reply })),
    },
    answer: { actions: ({ context }) => context.pending?.('late') },
    die: {
      actions: () => {
        throw new Error('died mid-call');
      },
    },
  },
});

describe('registry (docs/runtime.md §2.13)', () => {
  it('names are unique; lookups never return a dead pid; the name is freed on exit', async () => {
    const reg = new Registry();
    const a = spawnActor(worker);
    const b = spawnActor(worker);
    if (a.kind !== 'ok' || b.kind !== 'ok') throw new Error('start');
    expect(reg.register('n', a.pid)).toEqual({ ok: true, value: a.pid });
    expect(reg.register('n', b.pid)).toEqual({
      ok: false,
      error: { kind: 'already_registered', pid: a.pid },
    });
    expect(reg.register('n', a.pid)).toEqual({
      ok: false,
      error: { kind: 'already_registered', pid: a.pid },
    });
    expect(reg.register('m', a.pid).ok).toBe(true);
    expect(reg.keys(a.pid).sort()).toEqual(['m', 'n']);
    expect(reg.whereis('n')).toBe(a.pid);
    exit(a.pid, 'kill');
    expect(reg.whereis('n')).toBeUndefined();
    expect(reg.names()).toEqual([]);
    expect(reg.register('n', b.pid).ok).toBe(true);
    expect(reg.entries()).toEqual([['n', b.pid]]);
    expect(reg.unregister('n')).toBe(true);
    expect(reg.unregister('n')).toBe(false);
    exit(b.pid, 'kill');
  });

  it('a restarted child is re-registered under its name with its new pid', async () => {
    const registry = new Registry();
    const sup = unwrap(
      await startSupervisor([actorChild('c', counter, { name: 'counter' })], {}, { registry }),
    );
    const first = registry.whereis('counter');
    expect(first).toBe(await pidOf(sup, 'c'));
    first!.send({ type: 'die' });
    expect(registry.whereis('counter')).toBeUndefined();
    await sup.countChildren();
    const second = registry.whereis('counter');
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expect(await call('counter', { type: 'get' }, { registry })).toEqual({ ok: true, value: 0 });
    await sup.stop();
    expect(registry.whereis('counter')).toBeUndefined();
  });

  it('a start whose name is held by a live process fails with already_started', async () => {
    const registry = new Registry();
    const holder = spawnActor(worker);
    if (holder.kind !== 'ok') throw new Error('start');
    registry.register('taken', holder.pid);
    const sup = unwrap(await startSupervisor([], {}, { registry }));
    expect(await sup.startChild({ id: 'c', start: W.ok(), name: 'taken' })).toEqual({
      ok: false,
      error: { kind: 'already_started', pid: holder.pid },
    });
    expect(unwrap(await sup.whichChildren())).toEqual([]);
    await sup.stop();
    exit(holder.pid, 'kill');
  });

  it('a custom-function or OS-process child whose name is taken is never started', async () => {
    const registry = new Registry();
    const holder = spawnActor(worker);
    if (holder.kind !== 'ok') throw new Error('start');
    registry.register('taken', holder.pid);
    const sup = unwrap(await startSupervisor([], {}, { registry }));
    let starts = 0;
    const fn = fnStart(() => {
      starts++;
      return spawnActor(worker);
    });
    expect(await sup.startChild({ id: 'f', start: fn, name: 'taken' })).toEqual({
      ok: false,
      error: { kind: 'already_started', pid: holder.pid },
    });
    expect(starts).toBe(0);
    const proc = processChild('p', {
      command: process.execPath,
      args: ['-e', 'setTimeout(() => {}, 60000)'],
    });
    expect(await sup.startChild({ ...proc, name: 'taken' })).toEqual({
      ok: false,
      error: { kind: 'already_started', pid: holder.pid },
    });
    expect(unwrap(await sup.whichChildren())).toEqual([]);

    // Free, the name is registered for the function's pid.
    registry.unregister('taken');
    expect(unwrap(await sup.startChild({ id: 'f', start: fn, name: 'taken' })).pid).toBe(
      registry.whereis('taken'),
    );
    expect(starts).toBe(1);

    // Taken while an async start ran: the start loses, and what it started is stopped.
    let raced: Pid | undefined;
    let other: Pid | undefined;
    const racing = fnStart(async () => {
      const o = spawnActor(worker);
      if (o.kind !== 'ok') throw new Error('start');
      other = o.pid;
      registry.register('race', o.pid);
      const r = spawnActor(worker);
      if (r.kind === 'ok') raced = r.pid;
      return r;
    });
    expect(await sup.startChild({ id: 'r', start: racing, name: 'race' })).toEqual({
      ok: false,
      error: { kind: 'already_started', pid: other },
    });
    expect(raced?.alive).toBe(false);
    if (other) exit(other, 'kill');
    await sup.stop();
    exit(holder.pid, 'kill');
  });
});

describe('call and cast (docs/runtime.md §2.14)', () => {
  async function counterPid() {
    const r = spawnActor(counter);
    if (r.kind !== 'ok') throw new Error('start');
    return r.pid;
  }

  it('returns the reply; cast delivers without waiting', async () => {
    const p = await counterPid();
    expect(cast(p, { type: 'inc' })).toBe(true);
    expect(await call<number>(p, { type: 'get' })).toEqual({ ok: true, value: 1 });
    exit(p, 'shutdown');
    expect(cast(p, { type: 'inc' })).toBe(false);
  });

  it('fails with noproc for a dead pid or an unknown name', async () => {
    const p = await counterPid();
    exit(p, 'shutdown');
    expect(await call(p, { type: 'get' })).toEqual({ ok: false, error: { kind: 'noproc' } });
    expect(await call('nobody', { type: 'get' }, { registry: new Registry() })).toEqual({
      ok: false,
      error: { kind: 'noproc' },
    });
  });

  it('fails with timeout, and the late reply is dropped, never delivered to a later call', async () => {
    const p = await counterPid();
    expect(await call(p, { type: 'slow' }, { timeout: 20 })).toEqual({
      ok: false,
      error: { kind: 'timeout' },
    });
    const next = call(p, { type: 'get' }, { timeout: 1000 });
    p.send({ type: 'answer' }); // replies 'late' to the timed-out call
    expect(await next).toEqual({ ok: true, value: 0 });
    exit(p, 'shutdown');
  });

  it('fails with the callee exit reason when it dies mid-call', async () => {
    const p = await counterPid();
    const r = await call(p, { type: 'die' });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatchObject({ kind: 'exit', reason: { kind: 'error' } });
    const q = await counterPid();
    const pending = call(q, { type: 'slow' });
    exit(q, 'kill');
    expect(await pending).toEqual({ ok: false, error: { kind: 'exit', reason: 'killed' } });
  });

  it('fails with calling_self, given `from` or when called from inside the actor itself', async () => {
    const p = await counterPid();
    expect(await call(p, { type: 'get' }, { from: p })).toEqual({
      ok: false,
      error: { kind: 'calling_self' },
    });
    let inner: Promise<unknown> | undefined;
    let self: Pid | undefined;
    const selfCaller = setup({}).createMachine({
      on: {
        go: {
          actions: () => {
            inner = call(self!, { type: 'x' });
          },
        },
      },
    });
    const holder = spawnActor(selfCaller);
    if (holder.kind !== 'ok') throw new Error('start');
    self = holder.pid;
    holder.pid.send({ type: 'go' });
    expect(await inner).toEqual({ ok: false, error: { kind: 'calling_self' } });
    exit(p, 'shutdown');
    exit(holder.pid, 'shutdown');
  });

  it('a call into a busy actor from another one nested in its step is not calling_self: it is answered after that step', async () => {
    // B's action casts to A; A's action, running inside B's step, calls B.
    let a: Pid | undefined;
    let b: Pid | undefined;
    let answer: Promise<unknown> | undefined;
    const machineA = setup({}).createMachine({
      on: {
        poke: {
          actions: () => {
            answer = call(b!, { type: 'get' }, { timeout: 1000 });
          },
        },
      },
    });
    const machineB = setup({}).createMachine({
      on: {
        go: { actions: () => cast(a!, { type: 'poke' }) },
        get: { actions: ({ event }) => (event as unknown as { reply: (v: string) => void }).reply('from b') },
      },
    });
    const ha = spawnActor(machineA);
    const hb = spawnActor(machineB);
    if (ha.kind !== 'ok' || hb.kind !== 'ok') throw new Error('start');
    a = ha.pid;
    b = hb.pid;
    b.send({ type: 'go' });
    expect(await answer).toEqual({ ok: true, value: 'from b' });
    exit(a, 'shutdown');
    exit(b, 'shutdown');
  });

  it('a call through a dynamic supervisor child works and the default timeout is 5000 ms', async () => {
    const sup = unwrap(await startDynamicSupervisor());
    const p = unwrap(await sup.startChild({ id: 'c', start: { kind: 'actor', logic: worker } })).pid!;
    expect(await call(p, { type: 'ping' })).toEqual({ ok: true, value: 'pong' });
    await sup.stop();
    expect(await exitOf(p)).toBe('shutdown');
  });
});
