/**
 * @module agents
 * The Agents actor: one AgentFSM per agent under a dynamic supervisor.
 */
export { type AgentsInput, type AgentsMessage, AgentsProcess } from './process.js';
