/**
 * @module agent/sidecar/main
 * `startSidecar`: the sidecar's supervision tree.
 *
 *   sidecar        rest_for_one   the relay depends on the wakers (it starts wake commands there);
 *   ├─ wakers      dynamic         a relay crash restarts only the relay, whose recovery re-wakes
 *   └─ relay       the sidecar machine (transient, significant): ending normally after a
 *                  goodbye ends the whole sidecar (autoShutdown any_significant)
 *
 * A relay crash (an unreadable queue file, a bug) restarts the relay alone: it reloads queue.json
 * and reports what it holds, so nothing is lost; running wake commands keep running.
 */
import { type Logger, pino } from 'pino';
import { type AnyActorRef, fromCallback, fromPromise } from 'xstate';
import { type SidecarBackoff, type SidecarEvent, sidecarMachine } from '../../../machines/sidecar.js';
import { spawnActor } from '../../runtime/actor-process.js';
import {
  dynamicSupervisorChild,
  type ExitReason,
  fnChild,
  Registry,
  type Supervisor,
  startSupervisor,
} from '../../runtime/index.js';
import type { ResolvedSidecarConfig } from '../sidecar-config.js';
import { Sidecar } from './sidecar.js';
import { WAKERS_NAME } from './wakers.js';

export const RELAY_NAME = 'sidecar-relay';

export interface SidecarOptions {
  logger?: Logger;
  /** Connect retry waits (default 1 s ... 60 s). */
  backoff?: Partial<SidecarBackoff>;
  /** Results dir scan period, ms (default 1000). */
  pollMs?: number;
}

export interface SidecarHandle {
  readonly supervisor: Supervisor;
  readonly registry: Registry;
  /** The running machine (changes when the relay restarts). */
  machine(): AnyActorRef | undefined;
  /** The current relay's state value and context, for status displays and tests. */
  snapshot(): { value: unknown; context: Record<string, unknown> } | undefined;
  /** Say goodbye and stop everything; resolves with the tree's exit reason. */
  stop(): Promise<ExitReason>;
  readonly exited: Promise<ExitReason>;
}

export async function startSidecar(
  config: ResolvedSidecarConfig,
  opts: SidecarOptions = {},
): Promise<SidecarHandle> {
  const log = (opts.logger ?? pino()).child({ agent_id: config.agentId, actor: 'sidecar' });
  const registry = new Registry();
  let machine: AnyActorRef | undefined;

  const startRelay = () => {
    const sc = new Sidecar(config, { registry, log, ...(opts.pollMs ? { pollMs: opts.pollMs } : {}) });
    const logic = sidecarMachine.provide({
      actors: {
        loadQueue: fromPromise(() => sc.load()),
        connect: fromPromise(({ input }: { input: { attempt: number } }) => sc.connect(input.attempt)),
        serve: fromCallback<SidecarEvent>(({ sendBack }) => sc.serve(sendBack)),
        shutdown: fromPromise(() => sc.shutdown()),
      },
    });
    const r = spawnActor(logic, {
      input: { agentId: config.agentId, ...(opts.backoff ? { backoff: opts.backoff } : {}) },
      trapExit: true,
    });
    if (r.kind === 'ok') {
      machine = r.pid.actor;
      sc.setMachine(r.pid.actor);
      let last = '';
      r.pid.actor.subscribe((s) => {
        const v = JSON.stringify(s.value);
        if (v === last) return;
        last = v;
        log.info(
          {
            phase: 'state',
            state: s.value,
            attempt: s.context.attempt,
            last_error: s.context.lastError ?? undefined,
          },
          'sidecar state',
        );
      });
    }
    return r;
  };

  const started = await startSupervisor(
    [
      dynamicSupervisorChild('wakers', { intensity: 100, period: 60_000 }, { name: WAKERS_NAME }),
      fnChild('relay', startRelay, [], {
        restart: 'transient',
        significant: true,
        shutdown: 20_000,
        name: RELAY_NAME,
      }),
    ],
    { strategy: 'rest_for_one', intensity: 5, period: 60_000, autoShutdown: 'any_significant' },
    { name: 'sidecar', registry, logger: log },
  );
  if (!started.ok) throw new Error(`sidecar did not start: ${JSON.stringify(started.error)}`);
  const supervisor = started.value;
  return {
    supervisor,
    registry,
    machine: () => machine,
    snapshot: () => {
      const s = machine?.getSnapshot() as { value: unknown; context: Record<string, unknown> } | undefined;
      return s ? { value: s.value, context: s.context } : undefined;
    },
    stop: async () => {
      await supervisor.stop();
      return supervisor.exited;
    },
    exited: supervisor.exited,
  };
}
