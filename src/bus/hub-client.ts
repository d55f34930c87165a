/**
 * @module bus/hub-client
 * The hub's request/reply API (actors/api) as typed calls, for the CLI, the gateway and scripts. Each call
 * validates its reply; errors arrive as AgentComError with the hub's code (`not_found`,
 * `invalid_state`...), or `unavailable`/`timeout` when no hub answers.
 */
import { z } from 'zod';
import {
  type AlertConfigInput,
  type AlertConfigReply,
  AlertConfigReplySchema,
  type AlertListReply,
  AlertListReplySchema,
  AlertReplySchema,
  type AlertRule,
  type AlertView,
} from '../protocol/alert.js';
import {
  type AgentListReply,
  AgentListReplySchema,
  type AgentRemoveReply,
  AgentRemoveReplySchema,
  type AgentRestoreReply,
  AgentRestoreReplySchema,
  type TaskListReply,
  TaskListReplySchema,
  type TaskListRequest,
  TaskReplySchema,
  type TaskStatsReply,
  TaskStatsReplySchema,
} from '../protocol/api.js';
import { type Control, ControlSchema, type HubControlRequestInput } from '../protocol/control.js';
import {
  type DlqListResponse,
  DlqListResponseSchema,
  DlqPurgeResponseSchema,
  type DlqRecord,
  DlqRecordSchema,
  type DlqReplayResponse,
  DlqReplayResponseSchema,
} from '../protocol/dlq.js';
import {
  FieldHistoryReplySchema,
  FieldListReplySchema,
  FieldStatsReplySchema,
  type Pheromone,
  PheromoneReplySchema,
} from '../protocol/field.js';
import type { TaskId } from '../protocol/ids.js';
import {
  type ConfigReply,
  ConfigReplySchema,
  type ConfigSetRequestInput,
} from '../protocol/runtime-config.js';
import {
  ScheduleListReplySchema,
  ScheduleReplySchema,
  type ScheduleSpecInput,
  ScheduleTriggerReplySchema,
  type ScheduleView,
} from '../protocol/schedule.js';
import type { TaskRecord, TaskSubmitInput } from '../protocol/task.js';
import type { Bus } from './connection.js';
import { request } from './service.js';

export class HubClient {
  /**
   * `submitter`: the agent id when `bus` is an agent's connection: its submissions go to its own
   * `task.submit.<id>` (the only submit endpoint its permissions allow).
   */
  constructor(
    readonly bus: Bus,
    private readonly timeoutMs = 5_000,
    private readonly submitter?: string,
  ) {}

  private call<O>(endpoint: string, input: unknown, schema: z.ZodType<O>): Promise<O> {
    return request(this.bus, endpoint, input, schema, { timeoutMs: this.timeoutMs });
  }

  async submit(task: Omit<TaskSubmitInput, 'v'>): Promise<TaskRecord> {
    // An agent names the queue too: its permissions may allow only some queues.
    const endpoint = this.submitter
      ? `task.submit.${this.submitter}.${task.queue ?? 'default'}`
      : 'task.submit';
    return (await this.call(endpoint, { v: 1, ...task }, TaskReplySchema)).task;
  }
  async get(id: TaskId | string): Promise<TaskRecord> {
    return (await this.call('task.get', { v: 1, id }, TaskReplySchema)).task;
  }
  list(req: Partial<Omit<TaskListRequest, 'v'>> = {}): Promise<TaskListReply> {
    return this.call('task.list', { v: 1, ...req }, TaskListReplySchema);
  }
  async cancel(id: TaskId | string, reason?: string): Promise<TaskRecord> {
    return (await this.call('task.cancel', { v: 1, id, ...(reason ? { reason } : {}) }, TaskReplySchema))
      .task;
  }
  async retry(id: TaskId | string): Promise<TaskRecord> {
    return (await this.call('task.retry', { v: 1, id }, TaskReplySchema)).task;
  }
  stats(): Promise<TaskStatsReply> {
    return this.call('task.stats', { v: 1 }, TaskStatsReplySchema);
  }
  agents(): Promise<AgentListReply> {
    return this.call('agent.list', { v: 1 }, AgentListReplySchema);
  }
  /** Forget the agent (its tasks are reclaimed at once); `not_found` when the hub never knew it. */
  removeAgent(id: string): Promise<AgentRemoveReply> {
    return this.call('agent.remove', { v: 1, id }, AgentRemoveReplySchema);
  }
  /** Let a removed agent hello again. */
  restoreAgent(id: string): Promise<AgentRestoreReply> {
    return this.call('agent.restore', { v: 1, id }, AgentRestoreReplySchema);
  }
  dlqList(req: { stream?: string; limit?: number; after_seq?: number } = {}): Promise<DlqListResponse> {
    return this.call('dlq.list', { v: 1, ...req }, DlqListResponseSchema);
  }
  dlqGet(seq: number): Promise<DlqRecord> {
    return this.call('dlq.get', { v: 1, seq }, DlqRecordSchema);
  }
  dlqReplay(seq: number, opts: { keep?: boolean } = {}): Promise<DlqReplayResponse> {
    return this.call('dlq.replay', { v: 1, seq, ...opts }, DlqReplayResponseSchema);
  }
  dlqPurge(req: { seq?: number; stream?: string } = {}): Promise<z.infer<typeof DlqPurgeResponseSchema>> {
    return this.call('dlq.purge', { v: 1, ...req }, DlqPurgeResponseSchema);
  }
  async scheduleCreate(spec: Omit<ScheduleSpecInput, 'v'>, opts: { replace?: boolean } = {}) {
    const req = { v: 1, spec: { v: 1, ...spec }, replace: opts.replace ?? false };
    return (await this.call('schedule.create', req, ScheduleReplySchema)).schedule;
  }
  async schedules(): Promise<ScheduleView[]> {
    return (await this.call('schedule.list', { v: 1 }, ScheduleListReplySchema)).schedules;
  }
  /** `get`, `pause` or `resume` one schedule: the schedule after it. */
  async schedule(op: 'get' | 'pause' | 'resume', name: string): Promise<ScheduleView> {
    return (await this.call(`schedule.${op}`, { v: 1, name }, ScheduleReplySchema)).schedule;
  }
  async scheduleRemove(name: string): Promise<void> {
    await this.call('schedule.remove', { v: 1, name }, z.object({ v: z.literal(1), name: z.string() }));
  }
  /** Fire the schedule's action now, once: the task id, or the pheromone id. */
  async scheduleTrigger(name: string): Promise<string> {
    const r = await this.call('schedule.trigger', { v: 1, name }, ScheduleTriggerReplySchema);
    return r.taskId ?? r.pheromoneId ?? '';
  }
  /** Live pheromones matching `pattern`, newest first. */
  fieldList(req: { pattern?: string; claimed?: boolean; limit?: number } = {}) {
    return this.call('field.list', { v: 1, ...req }, FieldListReplySchema);
  }
  fieldStats() {
    return this.call('field.stats', { v: 1 }, FieldStatsReplySchema);
  }
  fieldHistory(req: { pattern?: string; since?: number; until?: number; limit?: number } = {}) {
    return this.call('field.history', { v: 1, ...req }, FieldHistoryReplySchema);
  }
  /** `get` or `remove` a pheromone: its record (the last one for remove). */
  async pheromone(op: 'get' | 'remove', id: string, by?: string): Promise<Pheromone> {
    return (await this.call(`field.${op}`, { v: 1, id, ...(by ? { by } : {}) }, PheromoneReplySchema))
      .pheromone;
  }
  async fieldPromote(req: {
    id: string;
    queue?: string;
    priority?: string;
    title?: string;
  }): Promise<Pheromone> {
    return (await this.call('field.promote', { v: 1, ...req }, PheromoneReplySchema)).pheromone;
  }

  // --- Runtime control and config ---

  /**
   * Pause intake and/or assignment (both when neither is named); the control value after it, once
   * the leading hub follows it.
   */
  pause(opts: Omit<HubControlRequestInput, 'v'> = {}): Promise<Control> {
    return this.call('hub.pause', { v: 1, ...opts }, ControlSchema);
  }
  /** Resume intake and/or assignment (both when neither is named). */
  resume(opts: Omit<HubControlRequestInput, 'v'> = {}): Promise<Control> {
    return this.call('hub.resume', { v: 1, ...opts }, ControlSchema);
  }
  /** Whether intake and assignment run. */
  control(): Promise<Control> {
    return this.call('hub.control', { v: 1 }, ControlSchema);
  }
  /** The runtime settings in force: timeouts (with their source), limits, control. */
  config(): Promise<ConfigReply> {
    return this.call('config.get', { v: 1 }, ConfigReplySchema);
  }
  /** Change runtime settings (timeouts: ms or a duration; null back to the hub's value); all or nothing. */
  setConfig(patch: Omit<ConfigSetRequestInput, 'v'>): Promise<ConfigReply> {
    return this.call('config.set', { v: 1, ...patch }, ConfigReplySchema);
  }

  // --- Alerts ---

  /** Every alert rule with its state (ok, firing, acknowledged), in rule order. */
  alerts(): Promise<AlertListReply> {
    return this.call('alert.list', { v: 1 }, AlertListReplySchema);
  }
  /** Acknowledge a firing rule (no notifications until it resolves); `invalid_state` when it is ok. */
  async alertAck(rule: AlertRule, by?: string): Promise<AlertView> {
    return (await this.call('alert.ack', { v: 1, rule, ...(by ? { by } : {}) }, AlertReplySchema)).alert;
  }
  /** The alert configuration in force (webhook secrets redacted) and every rule's effective settings. */
  alertConfig(): Promise<AlertConfigReply> {
    return this.call('alert.config.get', { v: 1 }, AlertConfigReplySchema);
  }
  /**
   * Replace the alert configuration (validated by the hub: `invalid_payload` with the path). A
   * webhook secret sent back as "<redacted>" keeps the stored one.
   */
  setAlertConfig(config: AlertConfigInput): Promise<AlertConfigReply> {
    return this.call('alert.config.set', { v: 1, config }, AlertConfigReplySchema);
  }
}
