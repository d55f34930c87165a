/**
 * @module task-mirror
 * The TaskMirror actor: the task records kept warm on every hub, for the TaskQueue of a hub that
 * takes over.
 */
export {
  TAKE_WAIT_MS,
  TaskMirror,
  type TaskMirrorInput,
  type TaskMirrorMessage,
  type TaskMirrorStatus,
} from './process.js';
export { type MirroredTask, MirrorState } from './state.js';
