/**
 * @module field
 * The stigmergy field (seed 001): pheromones emitted, observed, claimed (first responder wins),
 * released and expired, with an audit trail; run by the hub holding the lease.
 */
export { registerFieldEndpoints } from './endpoints.js';
export {
  agentObserverName,
  observerOf,
  parseObserverName,
  patternOfFilter,
  scanObservers,
  selectObservers,
  trustedObserverName,
} from './observers.js';
export { completionType, type FieldInput, type FieldMessage, FieldProcess } from './process.js';
export { auditHistory, fieldCounts, listPheromones, livePheromones } from './query.js';
export {
  claim,
  emit,
  end,
  type FieldStore,
  findKey,
  isLive,
  openFieldStore,
  pheromoneKey,
  release,
} from './store.js';
