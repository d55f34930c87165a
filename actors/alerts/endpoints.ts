/**
 * @module alerts/endpoints
 * The `alert.*` endpoints of the hub's API: list every rule's state, acknowledge a firing rule,
 * read and replace the configuration (config bucket, key `alerts`; the lease holder's
 * AlertsProcess follows it at once). A configuration its schema refuses is answered
 * `invalid_payload` with the offending path, and nothing is stored. Webhook secrets are never
 * shown: they read as "<redacted>", and writing that back keeps the stored secret.
 */
import type { AgentcomService } from '../../src/bus/service.js';
import {
  AlertAckRequestSchema,
  type AlertConfig,
  AlertConfigReplySchema,
  AlertConfigSetRequestSchema,
  AlertListReplySchema,
  AlertReplySchema,
  effectiveRules,
  redactAlertConfig,
} from '../../src/protocol/alert.js';
import { EmptyRequestSchema } from '../../src/protocol/api.js';
import { type AlertStore, acknowledgeAlert, listAlerts, readAlertConfig, storeAlertConfig } from './store.js';

const configReply = (config: AlertConfig, stored: boolean) => ({
  v: 1 as const,
  config: redactAlertConfig(config),
  rules: effectiveRules(config),
  stored,
});

export function registerAlertEndpoints(svc: AgentcomService, store: AlertStore): void {
  svc.addEndpoint('alert.list', {
    input: EmptyRequestSchema,
    output: AlertListReplySchema,
    description: 'Every alert rule with its state (ok, firing, acknowledged), last value and threshold.',
    handler: async () => ({ v: 1 as const, alerts: await listAlerts(store) }),
  });
  svc.addEndpoint('alert.ack', {
    input: AlertAckRequestSchema,
    output: AlertReplySchema,
    description:
      'Acknowledge a firing rule: no more notifications until it resolves (invalid_state when ok).',
    handler: async ({ rule, by }) => ({
      v: 1 as const,
      alert: await acknowledgeAlert(store, rule, by ?? 'api'),
    }),
  });
  svc.addEndpoint('alert.config.get', {
    input: EmptyRequestSchema,
    output: AlertConfigReplySchema,
    description:
      'The alert configuration in force (webhook secrets redacted) and every rule with its defaults.',
    handler: async () => {
      const { config, stored } = await readAlertConfig(store);
      return configReply(config, stored);
    },
  });
  svc.addEndpoint('alert.config.set', {
    input: AlertConfigSetRequestSchema,
    output: AlertConfigReplySchema,
    description: 'Replace the alert configuration (validated first; every hub follows it at once).',
    handler: async ({ config }) => configReply(await storeAlertConfig(store, config), true),
  });
}
