/**
 * @module cli/alerts
 * `agentcom alerts list|ack|config|set|webhook`: the hub's alert rules (docs/operations.md,
 * "Alerts"), through the API. `set` and `webhook` read the configuration, change one part and
 * write it back (the hub validates it; every hub follows it at once). Webhook secrets are never
 * printed; a configuration read back keeps them.
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { HubClient } from '../bus/hub-client.js';
import {
  ALERT_RULES,
  type AlertConfig,
  type AlertConfigReply,
  AlertConfigSchema,
  type AlertRule,
  AlertRuleSchema,
  AlertSeveritySchema,
  type AlertView,
  THRESHOLD_FIELD,
} from '../protocol/alert.js';
import { parseDurationMs } from '../protocol/duration.js';
import { parseJsonText } from '../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { type ConnectionFlags, withConnectionFlags, withHub } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { flagError, formatAge, formatDuration, parseDuration, parseList, table, truncate } from './format.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

interface SetFlags extends ConnectionFlags {
  threshold?: string;
  window?: string;
  for?: string;
  cooldown?: string;
  severity?: string;
  enabled?: boolean;
  disabled?: boolean;
  param?: string[];
}

interface ConfigFlags extends ConnectionFlags {
  file?: string;
  config?: string;
  sampleInterval?: string;
}

interface WebhookFlags extends ConnectionFlags {
  secret?: string;
  rules?: string;
}

/** A rule name, or a usage error listing them. */
export function parseRule(text: string): AlertRule {
  const r = AlertRuleSchema.safeParse(text);
  if (!r.success)
    throw flagError('rule', `unknown rule ${JSON.stringify(text)}; rules: ${ALERT_RULES.join(', ')}`);
  return r.data;
}

/** `key=value`: true/false, a duration for a `...Ms` key (`10m`), else a number. */
function paramValue(key: string, text: string): boolean | number | string {
  if (text === 'true' || text === 'false') return text === 'true';
  if (key.endsWith('Ms') && !/^\d+$/.test(text)) return parseDuration(text, key);
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}

/** What the flags of `alerts set` change in one rule's settings. @throws AgentComError naming the flag. */
export function ruleChanges(rule: AlertRule, f: SetFlags): Record<string, unknown> {
  if (f.enabled && f.disabled) throw flagError('enabled', 'give at most one of --enabled and --disabled');
  const out: Record<string, unknown> = {};
  for (const p of f.param ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw flagError('param', `--param must be key=value, got ${JSON.stringify(p)}`);
    const key = p.slice(0, eq);
    out[key] = paramValue(key, p.slice(eq + 1));
  }
  if (f.threshold !== undefined) {
    const n = Number(f.threshold);
    if (f.threshold.trim() === '' || !Number.isFinite(n))
      throw flagError('threshold', `--threshold must be a number, got ${JSON.stringify(f.threshold)}`);
    out[THRESHOLD_FIELD[rule]] = n;
  }
  if (f.window !== undefined) {
    if (!['queue_growing', 'high_failure_rate', 'high_error_rate'].includes(rule))
      throw flagError('window', `--window: ${rule} has no window`);
    out.windowMs = parseDuration(f.window, 'window');
  }
  if (f.for !== undefined) {
    const ms = parseDurationMs(f.for);
    if (ms === null)
      throw flagError('for', `--for must be a duration like 0s, 30s or 5m, got ${JSON.stringify(f.for)}`);
    out.forMs = ms;
  }
  if (f.cooldown !== undefined) out.cooldownMs = parseDuration(f.cooldown, 'cooldown');
  if (f.severity !== undefined) {
    const s = AlertSeveritySchema.safeParse(f.severity);
    if (!s.success) throw flagError('severity', '--severity must be info, warning or critical');
    out.severity = s.data;
  }
  if (f.enabled) out.enabled = true;
  if (f.disabled) out.enabled = false;
  if (!Object.keys(out).length)
    throw flagError(
      'threshold',
      'nothing to change: give --threshold, --window, --for, --cooldown, --severity, --enabled/--disabled or --param',
    );
  return out;
}

// --- Text ---

function settingsLine(s: Record<string, unknown>): string {
  return Object.entries(s)
    .filter(([k]) => !['enabled', 'severity'].includes(k))
    .map(([k, v]) =>
      k.endsWith('Ms') && typeof v === 'number' ? `${k.slice(0, -2)} ${formatDuration(v)}` : `${k} ${v}`,
    )
    .join(', ');
}

function listRows(alerts: AlertView[], now = Date.now()): string[] {
  return table(
    ['RULE', 'STATUS', 'SEVERITY', 'VALUE', 'THRESHOLD', 'SINCE', 'FIRED', 'MESSAGE'],
    alerts.map((a) => [
      a.rule,
      a.enabled ? (a.status === 'acknowledged' ? `acknowledged (${a.ackedBy})` : a.status) : 'disabled',
      a.severity,
      a.value === null ? '-' : String(a.value),
      a.threshold === null ? '-' : String(a.threshold),
      a.since !== null ? formatAge(a.since, now) : '-',
      String(a.firing),
      truncate(a.message || '-', 100),
    ]),
  );
}

function configLines(r: AlertConfigReply): string[] {
  const c = r.config;
  return [
    `sampled every ${formatDuration(c.sampleIntervalMs)}${r.stored ? '' : ' (defaults: nothing stored)'}`,
    ...ALERT_RULES.map((rule) => {
      const s = r.rules[rule] as Record<string, unknown>;
      return `${rule.padEnd(18)} ${s.enabled ? 'enabled ' : 'disabled'} ${String(s.severity).padEnd(8)} ${settingsLine(s)}`;
    }),
    `delivery: ${c.delivery.attempts} attempts, timeout ${formatDuration(c.delivery.timeoutMs)}, backoff ${formatDuration(c.delivery.backoffMinMs)} to ${formatDuration(c.delivery.backoffMaxMs)}`,
    ...(c.webhooks.length
      ? c.webhooks.map(
          (w) =>
            `webhook ${w.url}${w.secret ? ' (signed)' : ''}${w.rules ? ` rules ${w.rules.join(',')}` : ' (all rules)'}`,
        )
      : ['no webhooks (events are published on NATS only)']),
  ];
}

// --- Commands ---

/** Read, change, write back: the configuration after it. */
async function change(hub: HubClient, fn: (c: AlertConfig) => AlertConfig): Promise<AlertConfigReply> {
  const { config } = await hub.alertConfig();
  return hub.setAlertConfig(fn(config));
}

async function setCommand(ruleText: string, f: SetFlags, out: Output): Promise<ExitCode> {
  const rule = parseRule(ruleText);
  const changes = ruleChanges(rule, f);
  return withHub(f, async (hub) => {
    const r = await change(hub, (c) => ({
      ...c,
      rules: { ...c.rules, [rule]: { ...c.rules[rule], ...changes } },
    }));
    out.result(
      { v: 1, rule, settings: r.rules[rule] },
      `${rule}: ${settingsLine(r.rules[rule] as Record<string, unknown>)}${(r.rules[rule] as { enabled: boolean }).enabled ? '' : ' (disabled)'}`,
    );
    return EXIT.OK;
  });
}

async function configCommand(f: ConfigFlags, out: Output): Promise<ExitCode> {
  if (f.file !== undefined && f.config !== undefined)
    throw flagError('file', 'give at most one of --file and --config');
  const text = f.file !== undefined ? await readFile(f.file, 'utf8') : f.config;
  const replacement =
    text !== undefined ? parseJsonText(AlertConfigSchema, text, f.file ?? '--config') : null;
  const interval = f.sampleInterval !== undefined ? parseDuration(f.sampleInterval, 'sampleInterval') : null;
  return withHub(f, async (hub) => {
    let r: AlertConfigReply;
    if (replacement)
      r = await hub.setAlertConfig(
        interval === null ? replacement : { ...replacement, sampleIntervalMs: interval },
      );
    else if (interval !== null) r = await change(hub, (c) => ({ ...c, sampleIntervalMs: interval }));
    else r = await hub.alertConfig();
    out.result(r, configLines(r));
    return EXIT.OK;
  });
}

export function registerAlertsCommands(program: Command): void {
  const alerts = program
    .command('alerts')
    .description(
      'alert rules with thresholds, cooldowns and acknowledgement; webhooks (docs/operations.md, "Alerts")',
    );

  withConnectionFlags(alerts.command('list'))
    .description('every rule: ok, firing or acknowledged, the value measured and the threshold')
    .action((f: ConnectionFlags) =>
      runCommand('alerts list', f, (out) =>
        withHub(f, async (hub) => {
          const r = await hub.alerts();
          out.result(r, listRows(r.alerts));
          return EXIT.OK;
        }),
      ),
    );

  withConnectionFlags(alerts.command('ack'))
    .description('acknowledge a firing rule: no more notifications until it resolves')
    .argument('<rule>', `one of ${ALERT_RULES.join(', ')}`)
    .option('--by <name>', 'who acknowledges (default: your user name)')
    .action((ruleText: string, f: ConnectionFlags & { by?: string }) =>
      runCommand('alerts ack', f, (out) => {
        const rule = parseRule(ruleText);
        const by = (f.by ?? `cli:${userInfo().username}`).slice(0, 64);
        return withHub(f, async (hub) => {
          const alert = await hub.alertAck(rule, by);
          out.result({ v: 1, alert }, `${rule} acknowledged by ${alert.ackedBy}: silent until it resolves`);
          return EXIT.OK;
        });
      }),
    );

  withConnectionFlags(alerts.command('config'))
    .description('show the configuration (defaults filled in); or replace it with --file / --config')
    .option(
      '--file <path>',
      'replace the whole document with this JSON file (schema: docs/schemas/config.alerts.json)',
    )
    .option(
      '--config <document>',
      `replace the whole document, e.g. '{"v":1,"rules":{"stuck_tasks":{"noProgressMs":1200000}}}'`,
    )
    .option('--sample-interval <duration>', 'how often the rules are evaluated, e.g. 5s')
    .action((f: ConfigFlags) => runCommand('alerts config', f, (out) => configCommand(f, out)));

  withConnectionFlags(alerts.command('set'))
    .description('change one rule: its threshold, window, for, cooldown, severity, or turn it on or off')
    .argument('<rule>', `one of ${ALERT_RULES.join(', ')}`)
    .option(
      '--threshold <n>',
      `the rule's main threshold (${ALERT_RULES.map((r) => `${r}: ${THRESHOLD_FIELD[r]}`).join('; ')})`,
    )
    .option('--window <duration>', 'queue_growing, high_failure_rate, high_error_rate: the window, e.g. 5m')
    .option('--for <duration>', 'how long the condition must hold before it fires (0s: at once)')
    .option('--cooldown <duration>', 'at most one notification per this long while it keeps firing, e.g. 15m')
    .option('--severity <level>', 'info|warning|critical')
    .option('--enabled', 'evaluate the rule')
    .option('--disabled', 'stop evaluating it (a firing one resolves)')
    .option(
      '--param <key=value>',
      'any other setting of the rule, e.g. noProgressMs=20m, minFinished=20 (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .action((rule: string, f: SetFlags) => runCommand('alerts set', f, (out) => setCommand(rule, f, out)));

  const webhook = alerts.command('webhook').description('where alert events are POSTed');
  withConnectionFlags(webhook.command('add'))
    .description('add a webhook (or change the one with this url)')
    .argument('<url>', 'http or https url')
    .option('--secret <secret>', 'sign each POST: X-AgentCom-Signature: sha256=<hex HMAC-SHA256 of the body>')
    .option('--rules <list>', 'only these rules, comma separated (default all)')
    .action((url: string, f: WebhookFlags) =>
      runCommand('alerts webhook add', f, (out) => {
        const rules = f.rules !== undefined ? parseList(f.rules).map(parseRule) : undefined;
        return withHub(f, async (hub) => {
          const r = await change(hub, (c) => ({
            ...c,
            webhooks: [
              ...c.webhooks.filter((w) => w.url !== url),
              { url, ...(f.secret !== undefined ? { secret: f.secret } : {}), ...(rules ? { rules } : {}) },
            ],
          }));
          out.result(
            { v: 1, webhooks: r.config.webhooks },
            configLines(r).filter((l) => l.startsWith('webhook')),
          );
          return EXIT.OK;
        });
      }),
    );
  withConnectionFlags(webhook.command('remove'))
    .description('remove the webhook with this url')
    .argument('<url>', 'its url, as added')
    .action((url: string, f: ConnectionFlags) =>
      runCommand('alerts webhook remove', f, (out) =>
        withHub(f, async (hub) => {
          const { config } = await hub.alertConfig();
          if (!config.webhooks.some((w) => w.url === url))
            throw new AgentComError(ERROR_CODES.NOT_FOUND, `no webhook ${url}`);
          const r = await hub.setAlertConfig({
            ...config,
            webhooks: config.webhooks.filter((w) => w.url !== url),
          });
          out.result({ v: 1, webhooks: r.config.webhooks }, `removed webhook ${url}`);
          return EXIT.OK;
        }),
      ),
    );
}
