/**
 * @module protocol
 * Wire contracts shared by the hub, agents, the CLI and the dashboard: names, ids, payload
 * conventions, headers, error codes and the bus's own payload schemas. Imports zod only.
 */
export * from './bus-messages.js';
export * from './dlq.js';
export * from './envelope.js';
export * from './errors.js';
export * from './headers.js';
export * from './ids.js';
export * from './schemas.js';
export * from './status.js';
export * from './subjects.js';
