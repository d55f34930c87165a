/**
 * @module schemas
 * The registry of every wire payload schema. `npm run gen:schemas` writes one JSON Schema per
 * entry to `docs/schemas/<name>.json` (for agents written in other languages), and a test fails
 * when the committed files are stale. Adding a payload is one line in `SCHEMAS`.
 */
import { z } from 'zod';
import {
  AgentHelloSchema,
  GoodbyeSchema,
  HeartbeatSchema,
  InboxMessageSchema,
  ReportSchema,
} from './agent.js';
import {
  AlertAckRequestSchema,
  AlertConfigReplySchema,
  AlertConfigSchema,
  AlertConfigSetRequestSchema,
  AlertEventSchema,
  AlertListReplySchema,
  AlertReplySchema,
  AlertStateSchema,
} from './alert.js';
import {
  AgentListReplySchema,
  AgentRefSchema,
  AgentRemoveReplySchema,
  AgentRestoreReplySchema,
  AgentSuspendReplySchema,
  AgentSuspendRequestSchema,
  EmptyRequestSchema,
  TaskCancelRequestSchema,
  TaskListReplySchema,
  TaskListRequestSchema,
  TaskRefSchema,
  TaskReplySchema,
  TaskStatsReplySchema,
} from './api.js';
import { ControlSchema, HubControlRequestSchema } from './control.js';
import {
  DlqGetRequestSchema,
  DlqListRequestSchema,
  DlqListResponseSchema,
  DlqPurgeRequestSchema,
  DlqPurgeResponseSchema,
  DlqRecordSchema,
  DlqReplayRequestSchema,
  DlqReplayResponseSchema,
} from './dlq.js';
import { WireErrorSchema } from './errors.js';
import {
  FieldClaimReplySchema,
  FieldEmitRequestSchema,
  FieldHistoryReplySchema,
  FieldHistoryRequestSchema,
  FieldListReplySchema,
  FieldListRequestSchema,
  FieldObserveReplySchema,
  FieldObserveRequestSchema,
  FieldObserversReplySchema,
  FieldObserversRequestSchema,
  FieldPromoteRequestSchema,
  FieldRefSchema,
  FieldStatsReplySchema,
  PheromoneReplySchema,
  PheromoneSchema,
} from './field.js';
import { InspectionEventSchema, InspectListenSchema } from './inspect.js';
import { LimitsSchema, SuspensionSchema } from './limits.js';
import {
  ChannelCreateRequestSchema,
  ChannelInviteRequestSchema,
  ChannelLeaveReplySchema,
  ChannelListReplySchema,
  ChannelListRequestSchema,
  ChannelMembersReplySchema,
  ChannelRefRequestSchema,
  ChannelReplySchema,
  ChannelSchema,
  MembershipSchema,
  MessagePushSchema,
  MessageSchema,
  MsgAckReplySchema,
  MsgAckRequestSchema,
  MsgHistoryReplySchema,
  MsgHistoryRequestSchema,
  MsgInboxReplySchema,
  MsgInboxRequestSchema,
  MsgSendReplySchema,
  MsgSendRequestSchema,
  MsgStatusRequestSchema,
  MsgThreadReplySchema,
  MsgThreadRequestSchema,
  StoredMessageSchema,
} from './message.js';
import { AgentRegistrationSchema, HelloReplySchema, HubAliveSchema, LeaseSchema } from './registration.js';
import { ConfigReplySchema, ConfigSetRequestSchema, TimeoutsSchema } from './runtime-config.js';
import {
  ScheduleCreateRequestSchema,
  ScheduleListReplySchema,
  ScheduleRecordSchema,
  ScheduleRefSchema,
  ScheduleReplySchema,
  ScheduleStateSchema,
  ScheduleTriggerReplySchema,
} from './schedule.js';
import { ProgressFileSchema, ResultFileSchema, TaskFileSchema } from './sidecar.js';
import { BusStatusSchema, HubStatsSchema } from './status.js';
import { TaskRecordSchema, TaskSubmitSchema } from './task.js';
import { TokenRecordSchema } from './token.js';

export interface SchemaEntry {
  /** File name stem and `$id`: dotted lowercase, e.g. `task.submit`. */
  readonly name: string;
  readonly schema: z.ZodType;
}

const entry = (name: string, schema: z.ZodType): SchemaEntry => ({ name, schema });

/** One line per payload. Keep sorted by name. */
export const SCHEMAS: readonly SchemaEntry[] = [
  entry('agent.goodbye', GoodbyeSchema),
  entry('agent.heartbeat', HeartbeatSchema),
  entry('agent.hello', AgentHelloSchema),
  entry('agent.hello.reply', HelloReplySchema),
  entry('agent.inbox', InboxMessageSchema),
  entry('agent.list.reply', AgentListReplySchema),
  entry('agent.ref.request', AgentRefSchema),
  entry('agent.registration', AgentRegistrationSchema),
  entry('agent.remove.reply', AgentRemoveReplySchema),
  entry('agent.report', ReportSchema),
  entry('agent.restore.reply', AgentRestoreReplySchema),
  entry('agent.suspend.request', AgentSuspendRequestSchema),
  entry('agent.suspend.reply', AgentSuspendReplySchema),
  entry('alert.ack.request', AlertAckRequestSchema),
  entry('alert.config.reply', AlertConfigReplySchema),
  entry('alert.config.set.request', AlertConfigSetRequestSchema),
  entry('alert.event', AlertEventSchema),
  entry('alert.list.reply', AlertListReplySchema),
  entry('alert.reply', AlertReplySchema),
  entry('alert.state', AlertStateSchema),
  entry('api.empty.request', EmptyRequestSchema),
  entry('bus.status', BusStatusSchema),
  entry('config.alerts', AlertConfigSchema),
  entry('config.control', ControlSchema),
  entry('config.limits', LimitsSchema),
  entry('config.reply', ConfigReplySchema),
  entry('config.set.request', ConfigSetRequestSchema),
  entry('config.suspension', SuspensionSchema),
  entry('config.timeouts', TimeoutsSchema),
  entry('token.record', TokenRecordSchema),
  entry('dlq.get.request', DlqGetRequestSchema),
  entry('dlq.list.request', DlqListRequestSchema),
  entry('dlq.list.response', DlqListResponseSchema),
  entry('dlq.purge.request', DlqPurgeRequestSchema),
  entry('dlq.purge.response', DlqPurgeResponseSchema),
  entry('dlq.record', DlqRecordSchema),
  entry('dlq.replay.request', DlqReplayRequestSchema),
  entry('dlq.replay.response', DlqReplayResponseSchema),
  entry('error', WireErrorSchema),
  entry('field.claim.reply', FieldClaimReplySchema),
  entry('field.emit.request', FieldEmitRequestSchema),
  entry('field.history.reply', FieldHistoryReplySchema),
  entry('field.history.request', FieldHistoryRequestSchema),
  entry('field.list.reply', FieldListReplySchema),
  entry('field.list.request', FieldListRequestSchema),
  entry('field.observe.reply', FieldObserveReplySchema),
  entry('field.observe.request', FieldObserveRequestSchema),
  entry('field.observers.reply', FieldObserversReplySchema),
  entry('field.observers.request', FieldObserversRequestSchema),
  entry('field.pheromone', PheromoneSchema),
  entry('field.promote.request', FieldPromoteRequestSchema),
  entry('field.ref.request', FieldRefSchema),
  entry('field.reply', PheromoneReplySchema),
  entry('field.stats.reply', FieldStatsReplySchema),
  entry('channel.create.request', ChannelCreateRequestSchema),
  entry('channel.invite.request', ChannelInviteRequestSchema),
  entry('channel.leave.reply', ChannelLeaveReplySchema),
  entry('channel.list.reply', ChannelListReplySchema),
  entry('channel.list.request', ChannelListRequestSchema),
  entry('channel.members.reply', ChannelMembersReplySchema),
  entry('channel.ref.request', ChannelRefRequestSchema),
  entry('channel.reply', ChannelReplySchema),
  entry('channel.record', ChannelSchema),
  entry('channel.membership', MembershipSchema),
  entry('msg.ack.reply', MsgAckReplySchema),
  entry('msg.ack.request', MsgAckRequestSchema),
  entry('msg.history.reply', MsgHistoryReplySchema),
  entry('msg.history.request', MsgHistoryRequestSchema),
  entry('msg.inbox.reply', MsgInboxReplySchema),
  entry('msg.inbox.request', MsgInboxRequestSchema),
  entry('msg.message', MessageSchema),
  entry('msg.push', MessagePushSchema),
  entry('msg.send.reply', MsgSendReplySchema),
  entry('msg.send.request', MsgSendRequestSchema),
  entry('msg.status.request', MsgStatusRequestSchema),
  entry('msg.stored', StoredMessageSchema),
  entry('msg.thread.reply', MsgThreadReplySchema),
  entry('msg.thread.request', MsgThreadRequestSchema),
  entry('scheduler.lease', LeaseSchema),
  entry('schedule.create.request', ScheduleCreateRequestSchema),
  entry('schedule.list.reply', ScheduleListReplySchema),
  entry('schedule.record', ScheduleRecordSchema),
  entry('schedule.ref.request', ScheduleRefSchema),
  entry('schedule.reply', ScheduleReplySchema),
  entry('schedule.state', ScheduleStateSchema),
  entry('schedule.trigger.reply', ScheduleTriggerReplySchema),
  entry('hub.alive', HubAliveSchema),
  entry('hub.control.request', HubControlRequestSchema),
  entry('hub.stats', HubStatsSchema),
  entry('inspect.event', InspectionEventSchema),
  entry('inspect.listen', InspectListenSchema),
  entry('sidecar.progress', ProgressFileSchema),
  entry('sidecar.result', ResultFileSchema),
  entry('sidecar.task', TaskFileSchema),
  entry('task.cancel.request', TaskCancelRequestSchema),
  entry('task.list.reply', TaskListReplySchema),
  entry('task.list.request', TaskListRequestSchema),
  entry('task.record', TaskRecordSchema),
  entry('task.ref.request', TaskRefSchema),
  entry('task.reply', TaskReplySchema),
  entry('task.stats.reply', TaskStatsReplySchema),
  entry('task.submit', TaskSubmitSchema),
];

/** `docs/schemas` file name -> file content (stable, pretty JSON with a trailing newline). */
export function renderJsonSchemas(entries: readonly SchemaEntry[] = SCHEMAS): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    if (out.has(`${e.name}.json`)) throw new Error(`duplicate schema name ${e.name}`);
    // Request schemas describe what a sender writes (defaults optional): io 'input'.
    const json = z.toJSONSchema(e.schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    const doc = { $id: `https://agentcom.dev/schemas/${e.name}.json`, title: e.name, ...json };
    out.set(`${e.name}.json`, `${JSON.stringify(doc, null, 2)}\n`);
  }
  return out;
}
