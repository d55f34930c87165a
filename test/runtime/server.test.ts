/**
 * The gen_server child (src/runtime/server.ts): its name is registered before `init` runs, and
 * what is sent to it meanwhile is handled once `init` has returned, in order (OTP's
 * register-before-init; docs/runtime.md §1.1).
 */
import { describe, expect, it } from 'vitest';
import type { ReplyFn, Server, ServerContext } from '../../src/runtime/index.js';
import {
  call,
  cast,
  exit,
  Registry,
  serverChild,
  startDynamicSupervisor,
  startSupervisor,
} from '../../src/runtime/index.js';
import { eventually } from '../support/eventually.js';
import { pidOf, unwrap } from './support.js';

type Msg = { type: 'note'; n: number } | { type: 'seen'; reply: ReplyFn<number[]> };

/** A server whose init waits until the test releases it; it records the notes it handles. */
function gatedServer() {
  let release: (() => void) | undefined;
  let fail: ((e: Error) => void) | undefined;
  const log = { inits: 0, terminated: [] as unknown[], ctx: undefined as ServerContext | undefined };
  const init = async (_input: undefined, ctx: ServerContext): Promise<Server<Msg>> => {
    log.inits++;
    log.ctx = ctx;
    await new Promise<void>((resolve, reject) => {
      release = resolve;
      fail = reject;
    });
    const seen: number[] = [];
    return {
      handle(m) {
        if (m.type === 'note') seen.push(m.n);
        else m.reply([...seen]);
      },
      terminate(reason) {
        log.terminated.push(reason);
      },
    };
  };
  return {
    init,
    log,
    get waiting() {
      return release !== undefined;
    },
    release: () => release?.(),
    fail: (e: Error) => fail?.(e),
  };
}

/** A gated server started (temporary) under a dynamic supervisor, waiting in its init. */
async function startingUnderDynamic() {
  const registry = new Registry();
  const g = gatedServer();
  const dyn = unwrap(await startDynamicSupervisor({ registry }));
  const starting = dyn.startChild(serverChild('s', g.init, undefined, { name: 's', restart: 'temporary' }));
  await eventually(() => expect(g.waiting).toBe(true));
  const pid = registry.whereis('s');
  if (!pid) throw new Error('not registered');
  return { registry, g, dyn, starting, pid };
}

describe('serverChild: register before init', () => {
  it('holds casts and calls made to its name while init runs and handles them after, in order', async () => {
    const registry = new Registry();
    const g = gatedServer();
    const starting = startSupervisor([serverChild('s', g.init, undefined, { name: 's' })], {}, { registry });
    await eventually(() => expect(g.waiting).toBe(true));
    expect(registry.whereis('s')).toBeDefined();
    expect(cast('s', { type: 'note', n: 1 }, registry)).toBe(true);
    g.log.ctx?.send({ type: 'note', n: 2 } as { type: string });
    const answer = call<number[]>('s', { type: 'seen' }, { registry, timeout: 5_000 });
    cast('s', { type: 'note', n: 3 }, registry);
    g.release();
    const sup = unwrap(await starting);
    cast('s', { type: 'note', n: 4 }, registry);
    expect(unwrap(await answer)).toEqual([1, 2]);
    expect(unwrap(await call<number[]>('s', { type: 'seen' }, { registry }))).toEqual([1, 2, 3, 4]);
    await sup.stop();
    expect(g.log.terminated).toEqual(['shutdown']);
  });

  it('a failed init is a failed start and frees the name at once', async () => {
    const { registry, g, dyn, starting, pid: held } = await startingUnderDynamic();
    expect(held.alive).toBe(true);
    g.fail(new Error('no store'));
    const r = await starting;
    expect(r.ok).toBe(false);
    expect(registry.whereis('s')).toBeUndefined();
    expect(held.alive).toBe(false);
    expect(unwrap(await dyn.countChildren()).active).toBe(0);
    await dyn.stop();
  });

  it('a name already taken fails the start before init runs', async () => {
    const registry = new Registry();
    const first = gatedServer();
    const second = gatedServer();
    // Two supervisors: one supervisor starts its children one at a time.
    const one = unwrap(await startDynamicSupervisor({ registry }));
    const other = unwrap(await startDynamicSupervisor({ registry }));
    const a = one.startChild(serverChild('a', first.init, undefined, { name: 's' }));
    await eventually(() => expect(first.waiting).toBe(true));
    const b = await other.startChild(serverChild('b', second.init, undefined, { name: 's' }));
    expect(b).toMatchObject({ ok: false, error: { kind: 'already_started' } });
    expect(second.log.inits).toBe(0);
    first.release();
    expect((await a).ok).toBe(true);
    await Promise.all([one.stop(), other.stop()]);
  });

  it('ctx.crash during init crashes the started server, which its supervisor restarts', async () => {
    const registry = new Registry();
    const g = gatedServer();
    const starting = startSupervisor([serverChild('s', g.init, undefined, { name: 's' })], {}, { registry });
    await eventually(() => expect(g.waiting).toBe(true));
    g.log.ctx?.crash(new Error('background loop failed'));
    g.release();
    const sup = unwrap(await starting);
    // The restart runs init again (and waits in it): the crash was after the start, not instead of it.
    await eventually(() => expect(g.log.inits).toBe(2));
    g.release();
    await eventually(async () => expect((await pidOf(sup, 's')).alive).toBe(true));
    await sup.stop();
  });

  it('a shutdown asked for while init runs waits for it and terminates the server', async () => {
    const { g, dyn, starting, pid } = await startingUnderDynamic();
    exit(pid, 'shutdown');
    expect(pid.alive).toBe(true);
    g.release();
    expect(await pid.exited).toBe('shutdown');
    expect(g.log.terminated).toEqual(['shutdown']);
    await starting;
    await dyn.stop();
  });

  it('killed while init runs: the start fails and what init opened is closed', async () => {
    const { registry, g, dyn, starting, pid } = await startingUnderDynamic();
    exit(pid, 'kill');
    expect(registry.whereis('s')).toBeUndefined();
    g.release();
    const r = await starting;
    expect(r.ok).toBe(false);
    expect(g.log.terminated).toEqual(['killed']);
    expect(unwrap(await dyn.countChildren()).active).toBe(0);
    await dyn.stop();
  });
});
