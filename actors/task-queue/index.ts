/**
 * @module task-queue
 * The TaskQueue actor: the only writer of task records. Other actors use these exports only.
 */
export type { AssignReply, TaskChanged, TaskQueueMessage, TaskQueueStats } from './messages.js';
export { TaskQueue, type TaskQueueInput } from './process.js';
export { DEFAULT_RETENTION, type RetentionPolicy } from './retention.js';
export type { ReclaimReason } from './state.js';
