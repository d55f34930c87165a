export { registerMessagingEndpoints } from './endpoints.js';
export {
  type Caller,
  type MessagingInput,
  type MessagingMessage,
  MessagingProcess,
  type MessagingReply,
} from './process.js';
