/**
 * @module api/control
 * The API's runtime-settings endpoints (docs/operations.md, "Pausing the hub" and "Changing
 * timeouts at runtime"): `hub.pause`, `hub.resume` and `hub.control` (the control value,
 * protocol/control.ts), `config.get` and `config.set` (the timeouts with where each comes from, the
 * limits and the control value; protocol/runtime-config.ts). Changes are written to the config
 * bucket with compare-and-set, and answered once this hub's TaskQueue and Scheduler follow them, so
 * after `agentcom pause --intake` returns nothing more is taken in. When an actor does not confirm
 * within SYNC_TIMEOUT_MS (restarting, or a slow stop) the change is still stored and still followed
 * by every hub; the reply does not wait longer. It also tells the submit endpoints whether intake is
 * paused (`assertIntake`).
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import {
  changeKey,
  openControlKv,
  openLiveControl,
  openLiveTimeouts,
  openTimeoutsKv,
} from '../../src/bus/live-config.js';
import type { LiveLimits } from '../../src/bus/live-limits.js';
import type { AgentcomService } from '../../src/bus/service.js';
import { EmptyRequestSchema } from '../../src/protocol/api.js';
import {
  CONTROL_KEY,
  type Control,
  ControlSchema,
  changeControl,
  DEFAULT_CONTROL,
  describeControl,
  type HubControlRequest,
  HubControlRequestSchema,
} from '../../src/protocol/control.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import {
  type ConfigReply,
  ConfigReplySchema,
  ConfigSetRequestSchema,
  describeTimeouts,
  patchTimeouts,
  TIMEOUTS_KEY,
  type TimeoutValues,
} from '../../src/protocol/runtime-config.js';
import { call, type Registry } from '../../src/runtime/index.js';

/** How long a change waits for this hub's actors to follow it before it is answered anyway. */
const SYNC_TIMEOUT_MS = 5_000;

export interface ControlEndpointDeps {
  bus: Bus;
  registry: Registry;
  log: Logger;
  names: { taskQueue: string; scheduler: string };
  /** The hub's configured timeouts (what a runtime override replaces). */
  timeouts: TimeoutValues;
  limits: LiveLimits;
}

export interface ControlEndpoints {
  /** @throws AgentComError `unavailable` while intake is paused: API submissions are refused. */
  assertIntake(): void;
  stop(): void;
}

export async function registerControlEndpoints(
  svc: AgentcomService,
  deps: ControlEndpointDeps,
): Promise<ControlEndpoints> {
  const { bus, registry } = deps;
  const log = deps.log.child({ actor: 'api' });
  const [controlKv, timeoutsKv, control, overrides] = await Promise.all([
    openControlKv(bus),
    openTimeoutsKv(bus),
    openLiveControl(bus),
    openLiveTimeouts(bus),
  ]);

  /** Waits (bounded) until this API and the given actors follow `revision` of `key`. */
  const sync = async (key: 'control' | 'timeouts', revision: number): Promise<void> => {
    const ask = async (target: string, msg: { type: string; [k: string]: unknown }) => {
      const r = await call<boolean>(target, msg, { registry, timeout: SYNC_TIMEOUT_MS + 1_000 });
      return r.ok && r.value;
    };
    const timeoutMs = SYNC_TIMEOUT_MS;
    const waits: Promise<boolean>[] = [
      (key === 'control' ? control : overrides).waitFor(revision, timeoutMs),
      ask(deps.names.scheduler, { type: 'sync_config', key, revision, timeoutMs }),
    ];
    if (key === 'control')
      waits.push(ask(deps.names.taskQueue, { type: 'sync_control', revision, timeoutMs }));
    const followed = await Promise.all(waits);
    if (followed.some((ok) => !ok))
      log.warn(
        { phase: 'config_sync', key, revision, followed },
        'a change is stored but not yet followed by every actor of this hub; it applies when they catch up',
      );
  };

  const setControl = async (op: 'pause' | 'resume', req: HubControlRequest): Promise<Control> => {
    const r = await changeKey(controlKv, CONTROL_KEY, (cur) =>
      changeControl(cur ?? DEFAULT_CONTROL, op, req, Date.now()),
    );
    const value = r.value ?? DEFAULT_CONTROL;
    if (r.changed && r.revision !== null) {
      log.info(
        { phase: op === 'pause' ? 'paused' : 'resumed', ...value },
        `hub ${op === 'pause' ? 'paused' : 'resumed'}: ${describeControl(value)}`,
      );
      await sync('control', r.revision);
    }
    return value;
  };

  const config = (): ConfigReply => ({
    v: 1,
    timeouts: describeTimeouts(deps.timeouts, overrides.current),
    stored: overrides.current,
    limits: deps.limits.current,
    control: control.current,
  });

  svc.addEndpoint('hub.pause', {
    input: HubControlRequestSchema,
    output: ControlSchema,
    description:
      'Pause intake and/or assignment (default both); replies with the control value once this hub follows it.',
    handler: (req) => setControl('pause', req),
  });
  svc.addEndpoint('hub.resume', {
    input: HubControlRequestSchema,
    output: ControlSchema,
    description:
      'Resume intake and/or assignment (default both): waiting submissions and queued tasks move at once.',
    handler: (req) => setControl('resume', req),
  });
  svc.addEndpoint('hub.control', {
    input: EmptyRequestSchema,
    output: ControlSchema,
    description: 'Whether intake and assignment run, who changed that last, when and why.',
    handler: () => control.current,
  });
  svc.addEndpoint('config.get', {
    input: EmptyRequestSchema,
    output: ConfigReplySchema,
    description: 'The runtime settings in force: timeouts (with where each comes from), limits, control.',
    handler: config,
  });
  svc.addEndpoint('config.set', {
    input: ConfigSetRequestSchema,
    output: ConfigReplySchema,
    description:
      'Change the scheduler timeouts at runtime (null: back to the hub’s value); all or nothing. Replies as config.get.',
    handler: async (req) => {
      const patch = req.timeouts;
      if (patch) {
        const r = await changeKey(timeoutsKv, TIMEOUTS_KEY, (cur) =>
          patchTimeouts(cur, patch, req.by, Date.now()),
        );
        if (r.changed && r.revision !== null) {
          log.info({ phase: 'config_set', timeouts: r.value, by: req.by }, 'runtime timeouts changed');
          await sync('timeouts', r.revision);
        }
      }
      return config();
    },
  });

  return {
    assertIntake() {
      const c = control.current;
      if (c.intake === 'paused')
        throw new AgentComError(
          ERROR_CODES.UNAVAILABLE,
          `intake is paused (${describeControl(c)}); submissions are refused until it is resumed (agentcom resume --intake)`,
        );
    },
    stop() {
      control.stop();
      overrides.stop();
    },
  };
}
