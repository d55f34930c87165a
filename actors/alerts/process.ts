/**
 * @module alerts/process
 * Alerting (run by the hub holding the lease). Every `sampleIntervalMs` (alert config) it asks the
 * TaskQueue for every task record, Presence for every agent, and JetStream for the DLQ's total,
 * measures each rule (conditions.ts), steps each rule's state (state.ts) and writes the states that
 * changed, compare-and-set, to `<p>_alerts` `rule.<name>`. Each event a step decides is written in
 * the rule's outbox with the state, then published on `<p>.alert.<rule>` (core NATS) and POSTed to
 * every webhook that wants it (webhook.ts: retries with backoff, a timeout per attempt), off the
 * sampler's path; once every webhook has had it (or been given up on), it leaves the outbox.
 *
 * Across a failover: the cooldown and the acknowledgement are in the bucket, so a hub that takes
 * over does not notify a firing rule again inside its cooldown; it delivers what the outboxes still
 * hold (to NATS and every webhook: a receiver may see an event twice, with the same id). A crash
 * between a state write and its delivery therefore delays an event, never loses it. What the rules
 * compare with the past (queue growth, DLQ rate) is this hub's memory and starts afresh.
 * A sample that cannot reach an actor or JetStream is logged and leaves the rules it needs as they
 * were; nothing here crash-loops the tree over an outage.
 *
 * Logs (pino, `actor: "alerts"`): phases `start`, `fired`, `resolved`, `config`, `sample_failed`,
 * `webhook_delivered`, `webhook_retry`, `webhook_gave_up`.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import { type LiveValue, openLiveValue } from '../../src/bus/live-value.js';
import { publishCore } from '../../src/bus/subscribe.js';
import {
  ALERT_RULES,
  ALERTS_KEY,
  type AlertConfig,
  AlertConfigSchema,
  type AlertEvent,
  AlertEventSchema,
  type AlertRule,
  DEFAULT_ALERT_CONFIG,
  effectiveRules,
} from '../../src/protocol/alert.js';
import type { AgentRegistration } from '../../src/protocol/registration.js';
import type { TaskRecord } from '../../src/protocol/task.js';
import { call, type Registry } from '../../src/runtime/index.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import {
  type AgentFacts,
  type Condition,
  historyKeepMs,
  measure,
  type Observation,
  type Point,
  pointOf,
  remember,
} from './conditions.js';
import { type AlertSettings, delivered, step } from './state.js';
import { type AlertStore, modifyAlert, openAlertStore, readAlert } from './store.js';
import { deliver, wants } from './webhook.js';

export interface AlertsInput {
  bus: Bus;
  registry: Registry;
  log: Logger;
  /** The TaskQueue's registered name. */
  taskQueue: string;
  /** Presence's registered name. */
  presence: string;
}

export type AlertsMessage = { type: 'sample' } | { type: 'config' };

const CALL_TIMEOUT_MS = 10_000;

export class AlertsProcess implements Server<AlertsMessage> {
  private history: Point[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | null = null;
  private sampleAgain = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly deliveries = new Set<Promise<void>>();
  /** Writes of one rule's state run one after another (they would only conflict otherwise). */
  private readonly writes = new Map<AlertRule, Promise<unknown>>();
  /** The last reason a sample was incomplete (logged when it changes, not every sample). */
  private lastProblem = '';
  private readonly log: Logger;
  private config!: LiveValue<AlertConfig>;

  private constructor(
    private readonly input: AlertsInput,
    private readonly store: AlertStore,
    private readonly ctx: ServerContext,
  ) {
    this.log = input.log.child({ actor: 'alerts' });
  }

  static async start(input: AlertsInput, ctx: ServerContext): Promise<AlertsProcess> {
    const store = await openAlertStore(input.bus);
    const p = new AlertsProcess(input, store, ctx);
    p.config = await openLiveValue(input.bus, {
      bucket: input.bus.names.buckets.config,
      key: ALERTS_KEY,
      schema: AlertConfigSchema,
      fallback: DEFAULT_ALERT_CONFIG,
      what: 'alert config',
      kv: store.config,
      onChange: () => ctx.send({ type: 'config' }),
    });
    // What the previous leader decided and had not finished delivering.
    let redelivered = 0;
    for (const rule of ALERT_RULES)
      for (const event of (await readAlert(store, rule)).state.outbox) {
        p.dispatch(event);
        redelivered++;
      }
    p.log.info(
      { phase: 'start', sample_ms: p.config.current.sampleIntervalMs, redelivered },
      'alerts started',
    );
    ctx.send({ type: 'sample' });
    return p;
  }

  handle(msg: AlertsMessage): void {
    if (this.stopped) return;
    if (msg.type === 'config')
      this.log.info(
        { phase: 'config', sample_ms: this.config.current.sampleIntervalMs },
        'alert config changed; sampling now',
      );
    this.requestSample();
  }

  async terminate(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.config.stop();
    // Deliveries end at once; what they had not delivered stays in the outboxes for the next leader.
    this.abort.abort();
    await this.sampling;
    await Promise.allSettled([...this.deliveries]);
  }

  // --- Sampling ---

  /** One sample at a time: one asked for while another runs follows it. */
  private requestSample(): void {
    clearTimeout(this.timer);
    if (this.sampling) {
      this.sampleAgain = true;
      return;
    }
    this.sampling = this.sample()
      .catch((err) => this.log.warn({ err, phase: 'sample_failed' }, 'alert sample failed'))
      .finally(() => {
        this.sampling = null;
        if (this.stopped) return;
        if (this.sampleAgain) {
          this.sampleAgain = false;
          this.requestSample();
          return;
        }
        const t = setTimeout(() => this.ctx.send({ type: 'sample' }), this.config.current.sampleIntervalMs);
        t.unref();
        this.timer = t;
      });
  }

  private async sample(): Promise<void> {
    const config = this.config.current;
    const rules = effectiveRules(config);
    const problems: string[] = [];
    const [tasks, agents, deadLetters] = await Promise.all([
      this.ask<TaskRecord[]>(this.input.taskQueue, { type: 'snapshot' }).catch((err: Error) => {
        problems.push(err.message);
        return null;
      }),
      this.ask<{ registration: AgentRegistration; online: boolean }[]>(this.input.presence, {
        type: 'agents',
      }).then(
        (list): AgentFacts[] =>
          list
            .filter((a) => !a.registration.removed)
            .map(({ registration: r, online }) => ({
              id: r.id,
              online,
              queues: r.hello.queues,
              capabilities: r.hello.capabilities,
            })),
        (err: Error) => {
          problems.push(err.message);
          return null;
        },
      ),
      this.deadLetters().catch((err: Error) => {
        problems.push(`dlq: ${err.message}`);
        return null;
      }),
    ]);
    const problem = problems.join('; ');
    if (problem !== this.lastProblem) {
      if (problem) this.log.warn({ phase: 'sample_failed', problem }, 'alert sample incomplete');
      else this.log.info({ phase: 'sample_failed', problem: null }, 'alert samples complete again');
      this.lastProblem = problem;
    }
    if (this.stopped) return;
    const observation: Observation = { at: Date.now(), tasks, agents, deadLetters };
    this.history = remember(this.history, pointOf(observation), historyKeepMs(rules));
    const conditions = measure(observation, this.history, rules);
    await Promise.all(
      ALERT_RULES.map((rule) => this.evaluate(rule, conditions[rule], rules[rule], observation.at)),
    );
  }

  private async evaluate(
    rule: AlertRule,
    condition: Condition | null,
    settings: AlertSettings,
    now: number,
  ): Promise<void> {
    const r = await this.serial(rule, () =>
      modifyAlert(this.store, rule, (prev) => step(prev, condition, settings, now)),
    );
    for (const event of r.events) {
      const fields = {
        phase: event.status === 'firing' ? 'fired' : 'resolved',
        rule,
        event_id: event.id,
        value: event.value,
        threshold: event.threshold,
        severity: event.severity,
      };
      if (event.status === 'firing') this.log.warn(fields, `alert ${rule}: ${event.message}`);
      else this.log.info(fields, `alert ${rule} resolved: ${event.message}`);
      this.dispatch(event);
    }
  }

  /** Messages ever dead-lettered: the DLQ stream's last sequence (a purge does not lower it). */
  private async deadLetters(): Promise<number> {
    const info = await this.input.bus.jsm.streams.info(this.input.bus.names.streams.dlq);
    return info.state.last_seq;
  }

  private async ask<R>(target: string, msg: { type: string; [k: string]: unknown }): Promise<R> {
    const r = await call<R>(target, msg, { registry: this.input.registry, timeout: CALL_TIMEOUT_MS });
    if (!r.ok) throw new Error(`${target} is not available (${r.error.kind})`);
    return r.value;
  }

  private serial<T>(rule: AlertRule, run: () => Promise<T>): Promise<T> {
    const next = (this.writes.get(rule) ?? Promise.resolve()).then(run, run);
    this.writes.set(
      rule,
      next.catch(() => undefined),
    );
    return next;
  }

  // --- Delivery ---

  /** Publish on NATS and POST to every webhook that wants it, then take it out of the outbox. */
  private dispatch(event: AlertEvent): void {
    const { bus } = this.input;
    try {
      publishCore(bus, bus.names.subjects.alert(event.rule), AlertEventSchema, event);
    } catch (err) {
      this.log.warn({ err, event_id: event.id, rule: event.rule }, 'alert event not published');
    }
    const config = this.config.current;
    const hooks = config.webhooks.filter((h) => wants(h, event));
    const run = (async () => {
      const outcomes = await Promise.all(
        hooks.map((h) => deliver(h, event, config.delivery, this.abort.signal, this.log)),
      );
      if (outcomes.includes('aborted') || this.stopped) return;
      await this.serial(event.rule, () =>
        modifyAlert(this.store, event.rule, (prev) => delivered(prev, event.id)),
      );
    })()
      .catch((err) =>
        this.log.warn({ err, event_id: event.id, rule: event.rule }, 'alert outbox not updated'),
      )
      .finally(() => this.deliveries.delete(run));
    this.deliveries.add(run);
  }
}
