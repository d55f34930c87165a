/**
 * @module server
 * gen_server for I/O-heavy actors: `init(input, ctx)` runs before the start counts as successful
 * (a rejection is a failed start, as in OTP), then every message sent to the process (including
 * `call`s, which carry `reply`) goes to `handle`, and `terminate(reason)` runs within the shutdown
 * timeout when the supervisor stops it. The server is hosted in an XState `fromCallback` root actor,
 * so it is supervised like any other child. A throwing or rejecting `handle`, or `ctx.crash(err)`
 * from background work, ends it with `{ kind: 'error' }`. Messages are handed over in order; an
 * async `handle` is NOT awaited before the next message (servers that need that serialize inside).
 *
 * The process exists, and its name is registered, before `init` runs (OTP's register-before-init):
 * a cast or call to the name while `init` awaits is held and handed to `handle` once `init` has
 * returned, before anything sent later, so nothing sent during a (re)start is lost. `ctx.crash`
 * during `init` is held the same way: it crashes the started server. See docs/runtime.md §1.1.
 */
import { fromCallback } from 'xstate';
import { ActorPid } from './actor-process.js';
import type { ChildOptions, ChildSpecInput, StartResult } from './child-spec.js';
import { childSpec } from './child-spec.js';
import type { ExitReason } from './exit-reason.js';
import { type Attach, defineStartKind, type Launch } from './start-kind.js';

export interface Server<M extends { type: string } = { type: string }> {
  handle(message: M): void | Promise<void>;
  terminate?(reason: ExitReason): void | Promise<void>;
}

export interface ServerContext {
  /** End the process abnormally (e.g. a background loop failed); the supervisor decides what next. */
  crash(error: unknown): void;
  /** Send a message to this process itself (e.g. from a timer), handled like any other. */
  send(message: { type: string }): void;
  /**
   * Whether the process still runs. Background work that `init` started checks it before it
   * starts more: a kill (`exit(pid, 'kill')`, `brutal_kill`) ends the process without `terminate`.
   */
  readonly alive: boolean;
}

type Init<I, M extends { type: string }> = (input: I, ctx: ServerContext) => Server<M> | Promise<Server<M>>;

type ServerStart = {
  readonly kind: 'server';
  readonly init: Init<unknown, { type: string }>;
  readonly input?: unknown;
};

const CRASH = 'server.crash';

const launchServer: Launch = (spec, _extraArgs, _env, attach) => {
  const start = spec.start as unknown as ServerStart;
  return runServer(start.init, start.input, attach);
};

export const serverStartKind = defineStartKind({
  kind: 'server',
  check: (s) => typeof s.init === 'function',
  launch: launchServer,
});

/**
 * A supervised child running a {@link Server}.
 * @example serverChild('scheduler', async (input, ctx) => new Scheduler(input, ctx), input, { name: 'scheduler' })
 */
export function serverChild<I, M extends { type: string }>(
  id: string,
  init: Init<I, M>,
  input: I,
  opts: ChildOptions = {},
): ChildSpecInput {
  const start: ServerStart & { readonly launch: Launch } = {
    kind: 'server',
    init: init as ServerStart['init'],
    input,
    launch: launchServer,
  };
  return childSpec(id, start, opts);
}

/** Start a server outside a supervisor (tests, tools). */
export function startServer<I, M extends { type: string }>(init: Init<I, M>, input: I): Promise<StartResult> {
  return runServer(init, input, () => undefined);
}

async function runServer<I, M extends { type: string }>(
  init: Init<I, M>,
  input: I,
  attach: Attach,
): Promise<StartResult> {
  let server: Server<M> | undefined;
  // What arrives while init runs, in order; undefined once it has been handed over.
  let held: { type: string }[] | undefined = [];
  let initDone: Promise<unknown> = Promise.resolve();
  const logic = fromCallback<M | { type: typeof CRASH; error: unknown }>(({ receive }) => {
    receive((message) => {
      if (held) {
        held.push(message);
        return;
      }
      if (message.type === CRASH) throw (message as { error: unknown }).error;
      const r = server?.handle(message as M);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(ctx.crash);
    });
  });
  const pid = new ActorPid(logic, {
    // A shutdown asked for while init runs waits for it, so what init opened is closed.
    onShutdown: async (_actor, reason) => {
      await initDone;
      await server?.terminate?.(reason);
    },
  });
  const ctx: ServerContext = {
    crash: (error) => pid.send({ type: CRASH, error } as { type: string }),
    send: (message) => pid.send(message),
    get alive() {
      return pid.alive;
    },
  };
  const refused = attach(pid);
  if (refused) return refused;
  const started = pid.start();
  if (!started.ok) return { kind: 'error', reason: started.error };
  try {
    const initialising = Promise.resolve(init(input, ctx));
    initDone = initialising.catch(() => undefined);
    server = await initialising;
  } catch (reason) {
    // A failed start: the name is freed at once; the exit of a process never started is ignored.
    pid._kill();
    return { kind: 'error', reason };
  }
  if (!pid.alive) {
    // Killed while init ran (exit(pid, 'kill')): what init opened is closed, and the start failed.
    await Promise.resolve(server.terminate?.(pid.exitReason as ExitReason)).catch(() => undefined);
    return { kind: 'error', reason: pid.exitReason };
  }
  const pending = held ?? [];
  held = undefined;
  for (const m of pending) pid.send(m);
  return { kind: 'ok', pid };
}
