/**
 * @module api/process
 * The hub's request/reply API as a NATS micro service (`$SRV.PING|INFO|STATS.agentcom`): each
 * endpoint validates its input, asks the actor that owns the answer (by `call`), and replies with a
 * typed payload or a structured error. Requests are answered by any one hub (queue group). It holds
 * no state of its own.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import { registerDlqEndpoints } from '../../src/bus/dlq.js';
import { type LiveLimits, openLiveLimits } from '../../src/bus/live-limits.js';
import { type AgentcomService, createService } from '../../src/bus/service.js';
import {
  type AgentListReply,
  AgentRefSchema,
  type AgentRemoveReply,
  type AgentRestoreReply,
  type AgentSuspendReply,
  AgentSuspendRequestSchema,
  EmptyRequestSchema,
  TaskCancelRequestSchema,
  type TaskListReply,
  TaskListRequestSchema,
  TaskRefSchema,
  type TaskStatsReply,
  TaskSubmitRequestSchema,
} from '../../src/protocol/api.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import type { TaskId } from '../../src/protocol/ids.js';
import type { Suspension } from '../../src/protocol/limits.js';
import type { AgentRegistration } from '../../src/protocol/registration.js';
import type { TimeoutValues } from '../../src/protocol/runtime-config.js';
import { parseSubmitSubject } from '../../src/protocol/subjects.js';
import type { TaskRecord, TaskSubmitInput } from '../../src/protocol/task.js';
import { call, cast, type Registry } from '../../src/runtime/index.js';
import type { Server } from '../../src/runtime/server.js';
import { openAlertStore, registerAlertEndpoints } from '../alerts/index.js';
import { openFieldStore, registerFieldEndpoints } from '../field/index.js';
import { registerMessagingEndpoints } from '../messaging/index.js';
import { clearAgentRemoved, clearSuspension, markAgentRemoved, suspendAgentFor } from '../presence/index.js';
import type { SchedulerStatsReply } from '../scheduler/index.js';
import { openScheduleStore, registerScheduleEndpoints } from '../schedules/index.js';
import type { AssignReply, TaskQueueMessage, TaskQueueStats } from '../task-queue/index.js';
import { type ControlEndpoints, registerControlEndpoints } from './control.js';

export interface ApiInput {
  bus: Bus;
  registry: Registry;
  log: Logger;
  hubId: string;
  version: string;
  names: {
    taskQueue: string;
    scheduler: string;
    presence: string;
    agents: string;
    field: string;
    messaging: string;
  };
  /** The hub's configured scheduler timeouts (`config.get` shows them beside the runtime overrides). */
  timeouts: TimeoutValues;
}

export class ApiProcess implements Server {
  private constructor(
    private readonly service: AgentcomService,
    private readonly limits: LiveLimits,
    private readonly controls: ControlEndpoints,
  ) {}

  static async start(input: ApiInput): Promise<ApiProcess> {
    const { bus, registry } = input;
    const svc = await createService(bus, {
      version: input.version,
      description: 'AgentCom hub API',
      metadata: { hub: input.hubId },
    });
    const ask = async <R>(target: string, msg: { type: string; [k: string]: unknown }): Promise<R> => {
      const r = await call<R>(target, msg, { registry, timeout: 10_000 });
      if (!r.ok)
        throw new AgentComError(ERROR_CODES.UNAVAILABLE, `${target} is not available (${r.error.kind})`);
      return r.value;
    };
    const tq = <R>(msg: TaskQueueMessage) => ask<R>(input.names.taskQueue, msg as never);
    const taskOrThrow = (r: AssignReply) => {
      if (!r.ok) throw AgentComError.fromWire(r.error);
      return { v: 1 as const, task: r.task };
    };
    // Before the submit endpoints: they refuse while intake is paused (api/control.ts).
    const limits = await openLiveLimits(bus);
    const controls = await registerControlEndpoints(svc, { ...input, limits });

    svc.addEndpoint('task.submit', {
      input: TaskSubmitRequestSchema,
      description: 'Submit a task; replies with its record (idempotent with idempotencyKey).',
      handler: async (submit) => {
        controls.assertIntake();
        return taskOrThrow(await tq<AssignReply>({ type: 'submit', submit }));
      },
    });
    // An agent allowed to submit calls `task.submit.<its id>`, the only one its permissions allow:
    // the hub reads the submitter from the subject (idempotency keys and rates are per submitter).
    svc.addEndpoint('task.submit.>', {
      input: TaskSubmitRequestSchema,
      description:
        'Submit a task as the agent named by the subject (task.submit.<id>[.<queue>]; per-agent permissions).',
      handler: async (submit, ctx) => {
        controls.assertIntake();
        const from = parseSubmitSubject(bus.names, ctx.subject);
        if (!from?.submitter)
          throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, `not a submit subject: ${ctx.subject}`);
        return taskOrThrow(
          await tq<AssignReply>({
            type: 'submit',
            submit,
            submitter: from.submitter,
            ...(from.queue !== undefined ? { queue: from.queue } : {}),
          }),
        );
      },
    });
    svc.addEndpoint('task.get', {
      input: TaskRefSchema,
      description: 'One task record.',
      handler: async ({ id }) => {
        const task = await tq<TaskRecord | null>({ type: 'get', taskId: id });
        if (!task) throw new AgentComError(ERROR_CODES.NOT_FOUND, `task ${id} not found`);
        return { v: 1, task };
      },
    });
    svc.addEndpoint('task.list', {
      input: TaskListRequestSchema,
      description: 'Tasks filtered by status, assignee, priority, queue; newest first, paged.',
      handler: (request) => tq<TaskListReply>({ type: 'list', request }),
    });
    svc.addEndpoint('task.cancel', {
      input: TaskCancelRequestSchema,
      description: 'Cancel an unfinished task (the agent holding it is told to stop).',
      handler: async ({ id, reason }) =>
        taskOrThrow(await tq<AssignReply>({ type: 'cancel', taskId: id, reason, by: 'api' })),
    });
    svc.addEndpoint('task.retry', {
      input: TaskRefSchema,
      description: 'Requeue a dead, failed or cancelled task with a fresh retry budget.',
      handler: async ({ id }) => taskOrThrow(await tq<AssignReply>({ type: 'retry', taskId: id, by: 'api' })),
    });
    svc.addEndpoint('task.stats', {
      input: EmptyRequestSchema,
      description: 'Counts by status, queue and priority, and the scheduler state.',
      handler: async (): Promise<TaskStatsReply> => {
        const s = await tq<TaskQueueStats>({ type: 'stats' });
        const sched = await call<SchedulerStatsReply>(input.names.scheduler, { type: 'stats' }, { registry });
        return {
          v: 1,
          ...s,
          scheduler: sched.ok
            ? {
                leader: sched.value.leader,
                ready: sched.value.ready,
                delayed: sched.value.delayed,
                agents: sched.value.agents,
                reportsLagMs: sched.value.reportsLagMs,
              }
            : null,
        };
      },
    });
    svc.addEndpoint('agent.list', {
      input: EmptyRequestSchema,
      description: 'Every registered agent with its state and the tasks it holds.',
      handler: async (): Promise<AgentListReply> => {
        const regs = await ask<
          { registration: AgentRegistration; online: boolean; lastHeartbeat: number | null }[]
        >(input.names.presence, { type: 'agents' });
        const agents = await Promise.all(
          regs.map(async ({ registration, online, lastHeartbeat }) => {
            const fsm = await call<{ value: unknown; context: Record<string, unknown> } | null>(
              input.names.agents,
              { type: 'state', agentId: registration.id },
              { registry },
            );
            const snap = fsm.ok ? fsm.value : null;
            const ctx = (snap?.context ?? {}) as {
              tasks?: Record<string, unknown>;
              completed?: number;
              flags?: number;
            };
            return {
              id: registration.id,
              online,
              state: typeof snap?.value === 'string' ? snap.value : online ? 'idle' : 'offline',
              hello: registration.hello,
              tasks: Object.keys(ctx.tasks ?? {}) as never[],
              completed: ctx.completed ?? 0,
              flags: ctx.flags ?? 0,
              lastHeartbeat,
            };
          }),
        );
        const suspended = await ask<Suspension[]>(input.names.presence, { type: 'suspended' });
        return { v: 1, agents, suspended };
      },
    });
    const heldTasks = async (agentId: string): Promise<string[]> => {
      const fsm = await call<{ context: Record<string, unknown> } | null>(
        input.names.agents,
        { type: 'state', agentId },
        { registry },
      );
      const tasks = (fsm.ok ? fsm.value?.context.tasks : undefined) as Record<string, unknown> | undefined;
      return Object.keys(tasks ?? {});
    };
    svc.addEndpoint('agent.remove', {
      input: AgentRefSchema,
      description:
        'Forget an agent: its tasks are reclaimed at once and its hellos refused until agent.restore.',
      handler: async ({ id }): Promise<AgentRemoveReply> => {
        // Read before marking: presence reacts to the mark by reclaiming, which empties the FSM.
        const tasks = await heldTasks(id);
        const r = await markAgentRemoved(bus, id);
        if (!r.found) throw new AgentComError(ERROR_CODES.NOT_FOUND, `agent ${id} is not registered`);
        // No more messages to it (messaging keeps the agents it knows in memory).
        cast(input.names.messaging, { type: 'agent_removed', agentId: id }, registry);
        input.log
          .child({ actor: 'api' })
          .info({ agent_id: id, phase: 'removed', tasks: tasks.length }, 'agent removed');
        return {
          v: 1,
          id,
          alreadyRemoved: r.alreadyRemoved,
          tasks: r.alreadyRemoved ? [] : (tasks as TaskId[]),
        };
      },
    });
    svc.addEndpoint('agent.restore', {
      input: AgentRefSchema,
      description: 'Allow a removed or suspended agent to hello again (it registers afresh).',
      handler: async ({ id }): Promise<AgentRestoreReply> => {
        const unremoved = await clearAgentRemoved(bus, id);
        const unsuspended = await clearSuspension(bus, id);
        if (unsuspended)
          input.log
            .child({ actor: 'api' })
            .info({ agent_id: id, phase: 'restored' }, 'agent suspension ended by an operator');
        return { v: 1, id, restored: unremoved || unsuspended, unsuspended };
      },
    });
    svc.addEndpoint('agent.suspend', {
      input: AgentSuspendRequestSchema,
      description: 'Suspend an agent for a while: forgotten on every hub, hellos refused until then.',
      handler: async ({ id, forMs, reason }): Promise<AgentSuspendReply> => {
        const regs = await ask<{ registration: AgentRegistration }[]>(input.names.presence, {
          type: 'agents',
        });
        // A suspended agent is forgotten by presence, yet may be suspended again (for longer).
        const suspended = await ask<Suspension[]>(input.names.presence, { type: 'suspended' });
        if (!regs.some((r) => r.registration.id === id) && !suspended.some((x) => x.agentId === id))
          throw new AgentComError(ERROR_CODES.NOT_FOUND, `agent ${id} is not registered`);
        const suspension = await suspendAgentFor(bus, id, forMs, reason);
        input.log
          .child({ actor: 'api' })
          .info(
            { agent_id: id, phase: 'suspended', until: suspension.until },
            'agent suspended by an operator',
          );
        return { v: 1, suspension };
      },
    });
    registerDlqEndpoints(svc, bus);
    const submitTrusted = (submit: TaskSubmitInput) => tq<AssignReply>({ type: 'submit', submit });
    const field = await openFieldStore(bus);
    registerScheduleEndpoints(svc, await openScheduleStore(bus), { submit: submitTrusted, field });
    registerAlertEndpoints(svc, await openAlertStore(bus));
    registerFieldEndpoints(svc, field, submitTrusted, limits, async (id) => {
      const r = await call<string | null>(
        input.names.field,
        { type: 'key_of', id },
        { registry, timeout: 2_000 },
      );
      return r.ok ? r.value : undefined;
    });
    registerMessagingEndpoints(svc, { names: bus.names, registry, messaging: input.names.messaging, limits });
    input.log.child({ actor: 'api' }).info({ phase: 'start' }, 'api service started');
    return new ApiProcess(svc, limits, controls);
  }

  handle(): void {}

  async terminate(): Promise<void> {
    await this.service.stop();
    this.limits.stop();
    this.controls.stop();
  }
}
