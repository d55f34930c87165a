/**
 * @module server
 * gen_server for I/O-heavy actors: `init(input, ctx)` runs before the start counts as successful
 * (a rejection is a failed start, as in OTP), then every message sent to the process (including
 * `call`s, which carry `reply`) goes to `handle`, and `terminate(reason)` runs within the shutdown
 * timeout when the supervisor stops it. The server is hosted in an XState `fromCallback` root actor,
 * so it is supervised like any other child. A throwing or rejecting `handle`, or `ctx.crash(err)`
 * from background work, ends it with `{ kind: 'error' }`. Messages are handed over in order; an
 * async `handle` is NOT awaited before the next message (servers that need that serialize inside).
 * See docs/runtime.md §1.1.
 */
import { type AnyActorRef, fromCallback } from 'xstate';
import { spawnActor } from './actor-process.js';
import type { ChildOptions, ChildSpecInput, StartResult } from './child-spec.js';
import type { ExitReason } from './exit-reason.js';
import { fnChild } from './fn-child.js';

export interface Server<M extends { type: string } = { type: string }> {
  handle(message: M): void | Promise<void>;
  terminate?(reason: ExitReason): void | Promise<void>;
}

export interface ServerContext {
  /** End the process abnormally (e.g. a background loop failed); the supervisor decides what next. */
  crash(error: unknown): void;
  /** Send a message to this process itself (e.g. from a timer), handled like any other. */
  send(message: { type: string }): void;
}

const CRASH = 'server.crash';

/**
 * A supervised child running a {@link Server}.
 * @example serverChild('scheduler', async (input, ctx) => new Scheduler(input, ctx), input, { name: 'scheduler' })
 */
export function serverChild<I, M extends { type: string }>(
  id: string,
  init: (input: I, ctx: ServerContext) => Server<M> | Promise<Server<M>>,
  input: I,
  opts: ChildOptions = {},
): ChildSpecInput {
  return fnChild(id, () => startServer(init, input), [], opts);
}

/** Start a server outside a supervisor (tests, tools). */
export async function startServer<I, M extends { type: string }>(
  init: (input: I, ctx: ServerContext) => Server<M> | Promise<Server<M>>,
  input: I,
): Promise<StartResult> {
  let self: AnyActorRef | undefined;
  let early: { type: string }[] = [];
  const ctx: ServerContext = {
    crash: (error) => ctx.send({ type: CRASH, error } as { type: string }),
    send: (message) => {
      if (self) self.send(message);
      else early.push(message);
    },
  };
  let server: Server<M>;
  try {
    server = await init(input, ctx);
  } catch (reason) {
    return { kind: 'error', reason };
  }
  const logic = fromCallback<M | { type: typeof CRASH; error: unknown }>(({ receive, self: me }) => {
    receive((message) => {
      if (message.type === CRASH) throw (message as { error: unknown }).error;
      const r = server.handle(message as M);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).catch(ctx.crash);
    });
    self = me;
    // Messages sent during init are delivered after the receive hook exists.
    queueMicrotask(() => {
      const pending = early;
      early = [];
      for (const m of pending) me.send(m as M);
    });
  });
  return spawnActor(logic, { onShutdown: (_actor, reason) => server.terminate?.(reason) });
}
