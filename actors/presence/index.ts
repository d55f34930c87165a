/**
 * @module presence
 * The Presence actor: agent hellos, heartbeats and goodbyes; reports agents up and down.
 */
export { type PresenceInput, type PresenceMessage, PresenceProcess } from './process.js';
export {
  clearAgentRemoved,
  clearSuspension,
  markAgentRemoved,
  openSuspensions,
  type RemoveResult,
  suspendAgentFor,
} from './registrations.js';
