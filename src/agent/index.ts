/**
 * @module agent
 * The agent SDK (`agentcom/agent`): connect an agent to a hub and work on what it is assigned;
 * the field; messaging.
 */
export {
  AgentClient,
  type AgentClientOptions,
  type TaskContext,
  type TaskHandler,
  type TaskOutcome,
} from './client.js';
export { FieldClient, type Observation, type Observed } from './field.js';
export {
  type ChannelMembers,
  type HistoryQuery,
  type IncomingOptions,
  isTransientError,
  type MessageChannels,
  type MessageHandler,
  type MessageStream,
  type MessageSubscription,
  Messages,
  type MessagesOptions,
  type SendOptions,
  type SendRequest,
} from './messages.js';
export { type SubmitOptions, submitTask } from './submit.js';
