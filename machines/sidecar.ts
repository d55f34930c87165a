/**
 * @module machines/sidecar
 * The sidecar's life (seed 002 phase 0): load the local queue, connect and say hello (retrying
 * 1 s, 2 s, 4 s ... capped at 60 s), then serve (relay assignments to the agent and its results to
 * the hub) while reflecting the connection, until told to stop, when it says goodbye and ends.
 *
 *   loading ──▶ connecting ──▶ online ──────────────▶ stopping ──▶ stopped (final)
 *                 ▲      │      ├ connected ⇄ disconnected   ▲
 *                 │      ▼      │                            │ STOP / supervisor.shutdown,
 *                 └── backoff ◀─┘ (the relay failed)         │ from any state
 *
 * The machine does no I/O: `loadQueue`, `connect`, `serve` and `shutdown` are actors the sidecar
 * process provides with `.provide()`. Reconnects after the first connect are the NATS client's job
 * (with the same backoff, minus jitter); `serve` reports them as DISCONNECTED/RECONNECTED. A failed load is a
 * crash, left to the supervisor.
 */
import { assign, fromCallback, fromPromise, setup } from 'xstate';
import { exponentialDelay } from '../src/runtime/backoff.js';

export interface SidecarBackoff {
  /** First wait after a failed connect, ms (default 1000). */
  minMs: number;
  /** Cap, ms (default 60000). */
  maxMs: number;
}

export const DEFAULT_SIDECAR_BACKOFF: SidecarBackoff = { minMs: 1_000, maxMs: 60_000 };

/**
 * Wait before connect attempt number `attempt` + 1, after `attempt` failures: min, 2*min ... max.
 * No jitter, so the machine stays deterministic: the hello retries inside a connect have it.
 */
export function connectDelay(attempt: number, b: SidecarBackoff): number {
  return exponentialDelay(attempt - 1, { min: b.minMs, max: b.maxMs });
}

export interface SidecarInput {
  agentId: string;
  backoff?: Partial<SidecarBackoff>;
}

export interface SidecarContext {
  agentId: string;
  backoff: SidecarBackoff;
  /** Failed connect attempts since the last success. */
  attempt: number;
  lastError: string | null;
  /** Assignments in the local queue found at start. */
  recovered: number;
  /** Assignments held now. */
  held: number;
  /** This run's counters. */
  received: number;
  reported: number;
  cancelled: number;
}

export type SidecarEvent =
  | { type: 'STOP' }
  | { type: 'supervisor.shutdown' }
  | { type: 'DISCONNECTED' }
  | { type: 'RECONNECTED' }
  | { type: 'TASK_RECEIVED'; taskId: string; held: number }
  | { type: 'TASK_REPORTED'; taskId: string; outcome: string; held: number }
  | { type: 'TASK_CANCELLED'; taskId: string; held: number }
  | { type: 'SERVE_FAILED'; error: string };

export interface LoadedQueueInfo {
  held: number;
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export const sidecarMachine = setup({
  types: {
    context: {} as SidecarContext,
    events: {} as SidecarEvent,
    input: {} as SidecarInput,
  },
  actors: {
    loadQueue: fromPromise<LoadedQueueInfo>(async () => {
      throw new Error('loadQueue not provided');
    }),
    connect: fromPromise<void, { attempt: number }>(async () => {
      throw new Error('connect not provided');
    }),
    serve: fromCallback<SidecarEvent>(() => {
      throw new Error('serve not provided');
    }),
    shutdown: fromPromise<void>(async () => {}),
  },
  delays: {
    retryDelay: ({ context }) => connectDelay(context.attempt, context.backoff),
  },
}).createMachine({
  id: 'sidecar',
  context: ({ input }) => ({
    agentId: input.agentId,
    backoff: { ...DEFAULT_SIDECAR_BACKOFF, ...input.backoff },
    attempt: 0,
    lastError: null,
    recovered: 0,
    held: 0,
    received: 0,
    reported: 0,
    cancelled: 0,
  }),
  initial: 'loading',
  on: {
    STOP: '.stopping',
    'supervisor.shutdown': '.stopping',
  },
  states: {
    loading: {
      invoke: {
        src: 'loadQueue',
        onDone: {
          target: 'connecting',
          actions: assign(({ event }) => ({ recovered: event.output.held, held: event.output.held })),
        },
        // A queue we cannot even read (permissions, I/O error): crash, the supervisor decides.
        onError: {
          actions: ({ event }) => {
            throw event.error;
          },
        },
      },
    },
    connecting: {
      invoke: {
        src: 'connect',
        input: ({ context }) => ({ attempt: context.attempt }),
        onDone: { target: 'online', actions: assign({ attempt: 0, lastError: null }) },
        onError: {
          target: 'backoff',
          actions: assign(({ context, event }) => ({
            attempt: context.attempt + 1,
            lastError: errorText(event.error),
          })),
        },
      },
    },
    backoff: {
      after: { retryDelay: 'connecting' },
    },
    online: {
      invoke: { src: 'serve' },
      initial: 'connected',
      states: {
        connected: { on: { DISCONNECTED: 'disconnected' } },
        disconnected: { on: { RECONNECTED: 'connected' } },
      },
      on: {
        TASK_RECEIVED: {
          actions: assign(({ context, event }) => ({ received: context.received + 1, held: event.held })),
        },
        TASK_REPORTED: {
          actions: assign(({ context, event }) => ({ reported: context.reported + 1, held: event.held })),
        },
        TASK_CANCELLED: {
          actions: assign(({ context, event }) => ({ cancelled: context.cancelled + 1, held: event.held })),
        },
        SERVE_FAILED: {
          target: 'backoff',
          actions: assign(({ context, event }) => ({ attempt: context.attempt + 1, lastError: event.error })),
        },
      },
    },
    stopping: {
      invoke: { src: 'shutdown', onDone: 'stopped', onError: 'stopped' },
      // Already stopping: a second signal must not restart the goodbye.
      on: { STOP: {}, 'supervisor.shutdown': {} },
    },
    stopped: { type: 'final' },
  },
});
