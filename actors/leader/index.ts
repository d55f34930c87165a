/**
 * @module leader
 * The Leader actor: holds the deployment's lease and runs the hub's work tree while it does.
 */
export { LEASE_KEY, LeaseClock, LeaseKeeper } from './lease.js';
export { type HubRole, type LeaderInput, type LeaderMessage, LeaderProcess } from './process.js';
