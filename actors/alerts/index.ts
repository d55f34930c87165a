/**
 * @module alerts
 * Alerting: rules over the queue, the agents and the DLQ, with thresholds, cooldowns and
 * acknowledgement, delivered to webhooks and published on NATS (run by the hub holding the lease);
 * its API endpoints.
 */
export { type AgentFacts, type Condition, measure, type Observation } from './conditions.js';
export { registerAlertEndpoints } from './endpoints.js';
export { type AlertsInput, type AlertsMessage, AlertsProcess } from './process.js';
export { acknowledge, step } from './state.js';
export {
  type AlertStore,
  acknowledgeAlert,
  listAlerts,
  openAlertStore,
  readAlert,
  readAlertConfig,
  storeAlertConfig,
} from './store.js';
export { SIGNATURE_HEADER, signature } from './webhook.js';
