/**
 * @module gateway/metrics
 * Prometheus metrics of a deployment, gathered over NATS like any other client does (the gateway
 * may run inside a hub or alone), in a registry of its own per instance (never prom-client's global
 * one). Every metric is listed in docs/operations.md, "Metrics". Three sources:
 * - at scrape time, the hub's API (`task.stats`, `agent.list`) and JetStream stream info: queue
 *   depth and age, tasks by state, agents by state and their utilisation, DLQ size. Each call is
 *   bounded (`timeoutMs`); a hub that does not answer makes `agentcom_hub_up 0` and leaves its
 *   gauges out of that scrape, and the scrape still succeeds;
 * - the gateway's tail of the tasks bucket (events.ts; revisions stored after the gateway started,
 *   each decoded once for every reader of it): the transition counters and the latency
 *   histograms, each transition counted once per gateway (metrics-tasks.ts). They count from the
 *   gateway's start, as Prometheus counters do; a gateway that was down misses what happened then;
 * - every hub's own gauge on `<p>.hub.<id>.stats` (src/hub/hub-stats.ts) with a `hub` label, a hub
 *   silent for `hubStaleIntervals` of its periods forgotten; and a watch of the leases bucket.
 * It does not push anything anywhere, and it never fails a scrape for a missing source.
 */
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { LEASE_KEY } from '../../actors/leader/index.js';
import type { Bus } from '../bus/connection.js';
import type { HubClient } from '../bus/hub-client.js';
import { type KvChange, type KvWatch, openKv } from '../bus/kv.js';
import { sampleBusStatus } from '../bus/status.js';
import { type CoreSubscription, subscribeTyped } from '../bus/subscribe.js';
import type { AgentListReply, TaskStatsReply } from '../protocol/api.js';
import { LeaseSchema } from '../protocol/registration.js';
import { type BusStatus, type HubStats, HubStatsSchema } from '../protocol/status.js';
import { PRIORITIES, TASK_STATUSES } from '../protocol/task.js';
import { exponentialDelay } from '../runtime/backoff.js';
import { type TaskObservation, TaskTransitions } from './metrics-tasks.js';
import type { TaskRevisionTap } from './task-view.js';

export interface GatewayMetrics {
  readonly registry: Registry;
  /** The exposition text of one scrape. */
  render(): Promise<string>;
  /** The Content-Type of `render()`'s text. */
  readonly contentType: string;
  /** Stops the watches and the subscription (the registry stays readable). */
  stop(): Promise<void>;
}

export interface GatewayMetricsDeps {
  bus: Bus;
  hub: HubClient;
  log: Logger;
  /** The gateway's task tail (events.ts's EventHub). */
  tasks: TaskRevisionTap;
}

export interface GatewayMetricsOptions {
  /** Bound on each source asked at scrape time, ms (default 3000; Prometheus' scrape timeout is 10 s). */
  timeoutMs?: number;
  /** A hub silent for this many of its publishing periods is forgotten (default 3). */
  hubStaleIntervals?: number;
  /** The gateway process's own metrics, prefixed `agentcom_gateway_` (default true). */
  defaultMetrics?: boolean;
  /** Finished tasks remembered to recognise redelivered revisions (default 10,000). */
  maxFinishedTasks?: number;
}

/** Agent states always exported (0 when none), in AgentFSM order. */
const AGENT_STATES = ['offline', 'idle', 'assigned', 'working', 'blocked'] as const;
/** Queues remembered so that an emptied queue shows 0 rather than vanishing. */
const MAX_QUEUES = 1_000;

/** Scheduling waits: 1 ms to 1 h. */
const WAIT_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
];
/** Work on a task: 10 ms to 4 h. */
const RUN_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400];

/** What one scrape learnt from the sources it asks; a source that failed is undefined. */
interface Snapshot {
  stats: TaskStatsReply | undefined;
  agents: AgentListReply | undefined;
  streams: BusStatus | undefined;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** `p`, or a failure once `ms` have passed (the work itself is not cancelled; its result is dropped). */
async function bounded<T>(p: Promise<T>, ms: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: new Error(`no answer within ${ms} ms`) }), ms);
  });
  try {
    return await Promise.race([
      p.then(
        (value): Outcome<T> => ({ ok: true, value }),
        (error): Outcome<T> => ({ ok: false, error }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Builds the registry, taps the gateway's task tail and starts its lease watch and subscription.
 * Resolves at once: a hub or a leases bucket not there yet is waited for in the background (the
 * watch retries with backoff).
 *
 * @example
 * const events = await EventHub.start(bus);
 * const metrics = await createGatewayMetrics({ bus, hub: new HubClient(bus), log, tasks: events });
 * app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.render()));
 */
export async function createGatewayMetrics(
  deps: GatewayMetricsDeps,
  opts: GatewayMetricsOptions = {},
): Promise<GatewayMetrics> {
  const { bus, hub } = deps;
  const log = deps.log.child({ actor: 'gateway-metrics' });
  const timeoutMs = opts.timeoutMs ?? 3_000;
  const staleIntervals = opts.hubStaleIntervals ?? 3;
  const registry = new Registry();
  if (opts.defaultMetrics !== false)
    collectDefaultMetrics({ register: registry, prefix: 'agentcom_gateway_' });
  const registers = [registry];

  // --- Scrape-time sources -------------------------------------------------------------------

  const failures = new Counter({
    name: 'agentcom_gateway_source_failures_total',
    help: 'Sources that did not answer a scrape in time or failed (source: task.stats, agent.list, jetstream).',
    labelNames: ['source'],
    registers,
  });
  for (const source of ['task.stats', 'agent.list', 'jetstream']) failures.inc({ source }, 0);
  const queues = new Set<string>();
  let inflight: Promise<Snapshot> | undefined;
  /** One fetch per scrape: every gauge's collect() of the same scrape shares it. */
  const snapshot = (): Promise<Snapshot> => {
    inflight ??= fetchSnapshot().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };
  const fetchSnapshot = async (): Promise<Snapshot> => {
    const n = bus.names;
    const [stats, agents, streams] = await Promise.all([
      bounded(hub.stats(), timeoutMs),
      bounded(hub.agents(), timeoutMs),
      bounded(
        sampleBusStatus(bus, {
          streams: [n.streams.submit, n.streams.reports, n.streams.dlq],
          includeLocal: false,
        }),
        timeoutMs,
      ),
    ]);
    const fail = (source: string, o: Outcome<unknown>) => {
      if (o.ok) return;
      failures.inc({ source });
      log.debug({ err: o.error, source }, 'metrics source failed');
    };
    fail('task.stats', stats);
    fail('agent.list', agents);
    fail('jetstream', streams);
    const s: Snapshot = {
      stats: stats.ok ? stats.value : undefined,
      agents: agents.ok ? agents.value : undefined,
      // Every stream absent means JetStream did not answer (or nothing is provisioned yet).
      streams: streams.ok && streams.value.streams.length > 0 ? streams.value : undefined,
    };
    for (const q of [...Object.keys(s.stats?.queues ?? {}), ...Object.keys(s.stats?.byQueue ?? {})]) {
      if (queues.has(q) || queues.size >= MAX_QUEUES) continue;
      queues.add(q);
      initQueue(q);
    }
    return s;
  };

  new Gauge({
    name: 'agentcom_hub_up',
    help: 'Whether a hub answered task.stats within the scrape bound (1) or not (0).',
    registers,
    async collect() {
      this.set((await snapshot()).stats ? 1 : 0);
    },
  });
  new Gauge({
    name: 'agentcom_tasks',
    help: 'Tasks held by the hub, by status (state); finished ones until retention removes them.',
    labelNames: ['state'],
    registers,
    async collect() {
      const { stats } = await snapshot();
      this.reset();
      if (!stats) return;
      for (const state of new Set([...TASK_STATUSES, ...Object.keys(stats.byStatus)]))
        this.set({ state }, stats.byStatus[state] ?? 0);
    },
  });
  new Gauge({
    name: 'agentcom_queue_depth',
    help: 'Queued tasks (delayed ones included) by named queue and priority.',
    labelNames: ['queue', 'priority'],
    registers,
    async collect() {
      const { stats } = await snapshot();
      this.reset();
      if (!stats?.queues) return;
      for (const queue of queues)
        for (const priority of PRIORITIES)
          this.set({ queue, priority }, stats.queues[queue]?.queued[priority] ?? 0);
    },
  });
  new Gauge({
    name: 'agentcom_queue_delayed',
    help: 'Queued tasks not yet eligible (a delay or a retry backoff running), by named queue.',
    labelNames: ['queue'],
    registers,
    async collect() {
      const { stats } = await snapshot();
      this.reset();
      if (!stats?.queues) return;
      for (const queue of queues) this.set({ queue }, stats.queues[queue]?.delayed ?? 0);
    },
  });
  new Gauge({
    name: 'agentcom_queue_oldest_task_age_seconds',
    help: 'How long the longest-waiting eligible queued task has waited since it became eligible (0: none).',
    labelNames: ['queue'],
    registers,
    async collect() {
      const { stats } = await snapshot();
      this.reset();
      if (!stats?.queues) return;
      for (const queue of queues) this.set({ queue }, (stats.queues[queue]?.oldestReadyAgeMs ?? 0) / 1000);
    },
  });
  new Gauge({
    name: 'agentcom_agents',
    help: 'Registered agents by AgentFSM state (offline, idle, assigned, working, blocked).',
    labelNames: ['state'],
    registers,
    async collect() {
      const { agents } = await snapshot();
      this.reset();
      if (!agents) return;
      const by = new Map<string, number>(AGENT_STATES.map((s) => [s, 0]));
      for (const a of agents.agents) by.set(a.state, (by.get(a.state) ?? 0) + 1);
      for (const [state, v] of by) this.set({ state }, v);
    },
  });
  new Gauge({
    name: 'agentcom_agents_suspended',
    help: 'Agents suspended now for invalid traffic or by an operator.',
    registers,
    async collect() {
      const { agents } = await snapshot();
      this.reset();
      if (agents) this.set(agents.suspended?.length ?? 0);
    },
  });
  const slots = (a: AgentListReply) => {
    let total = 0;
    let busy = 0;
    for (const x of a.agents) {
      if (!x.online) continue;
      total += x.hello.slots;
      busy += Math.min(x.tasks.length, x.hello.slots);
    }
    return { total, busy };
  };
  new Gauge({
    name: 'agentcom_agent_slots',
    help: 'Task slots (concurrency) of the online agents.',
    registers,
    async collect() {
      const { agents } = await snapshot();
      this.reset();
      if (agents) this.set(slots(agents).total);
    },
  });
  new Gauge({
    name: 'agentcom_agent_slots_busy',
    help: 'Task slots of the online agents holding a task.',
    registers,
    async collect() {
      const { agents } = await snapshot();
      this.reset();
      if (agents) this.set(slots(agents).busy);
    },
  });
  new Gauge({
    name: 'agentcom_agent_utilisation_ratio',
    help: 'Busy slots over all slots of the online agents, 0 to 1 (0 with no agent online).',
    registers,
    async collect() {
      const { agents } = await snapshot();
      this.reset();
      if (!agents) return;
      const s = slots(agents);
      this.set(s.total > 0 ? s.busy / s.total : 0);
    },
  });
  new Gauge({
    name: 'agentcom_jetstream_up',
    help: 'Whether JetStream answered stream info within the scrape bound (1) or not (0).',
    registers,
    async collect() {
      this.set((await snapshot()).streams ? 1 : 0);
    },
  });
  new Gauge({
    name: 'agentcom_dlq_messages',
    help: 'Dead letters stored in the DLQ stream.',
    registers,
    async collect() {
      const { streams } = await snapshot();
      this.reset();
      if (streams) this.set(streams.dlq.messages);
    },
  });
  new Gauge({
    name: 'agentcom_dlq_bytes',
    help: 'Size of the DLQ stream.',
    registers,
    async collect() {
      const { streams } = await snapshot();
      this.reset();
      if (streams) this.set(streams.dlq.bytes);
    },
  });
  new Gauge({
    name: 'agentcom_stream_messages',
    help: 'Messages stored per stream: submissions not yet taken in, reports not yet applied, dead letters.',
    labelNames: ['stream'],
    registers,
    async collect() {
      const { streams } = await snapshot();
      this.reset();
      for (const s of streams?.streams ?? []) this.set({ stream: s.name }, s.messages);
    },
  });
  new Gauge({
    name: 'agentcom_consumer_pending_messages',
    help: 'Messages not yet delivered to a durable consumer of those streams (the hubs are behind).',
    labelNames: ['stream', 'consumer'],
    registers,
    async collect() {
      const { streams } = await snapshot();
      this.reset();
      for (const c of streams?.consumers ?? []) this.set({ stream: c.stream, consumer: c.name }, c.pending);
    },
  });
  new Gauge({
    name: 'agentcom_consumer_ack_pending_messages',
    help: 'Messages delivered to a durable consumer of those streams and not yet acknowledged.',
    labelNames: ['stream', 'consumer'],
    registers,
    async collect() {
      const { streams } = await snapshot();
      this.reset();
      for (const c of streams?.consumers ?? [])
        this.set({ stream: c.stream, consumer: c.name }, c.ack_pending);
    },
  });

  // --- Task transitions (the gateway's task tail) -------------------------------------------

  const byQueue = ['queue'];
  const submitted = new Counter({
    name: 'agentcom_tasks_submitted_total',
    help: 'Tasks created, by named queue and priority.',
    labelNames: ['queue', 'priority'],
    registers,
  });
  const byQueueCounter = (name: string, help: string) =>
    new Counter({ name: `agentcom_tasks_${name}_total`, help, labelNames: byQueue, registers });
  const completed = byQueueCounter('completed', 'Tasks completed (done), by named queue: the throughput.');
  const failed = byQueueCounter(
    'failed',
    'Tasks that failed for good (not retryable, or their deadline passed), by named queue.',
  );
  const retried = byQueueCounter(
    'retried',
    'Automatic retries: an attempt ended without a result (failure, rejection, reclaim) and the task was queued again.',
  );
  const dead = byQueueCounter('dead', 'Tasks that used up their retries (dead), by named queue.');
  const cancelled = byQueueCounter('cancelled', 'Tasks cancelled, by named queue.');
  const wait = new Histogram({
    name: 'agentcom_task_queued_to_assigned_seconds',
    help: 'Each assignment: time from the task becoming eligible (queued, or its delay or backoff over) to its assignment.',
    labelNames: ['queue', 'priority'],
    buckets: WAIT_BUCKETS,
    registers,
  });
  const run = new Histogram({
    name: 'agentcom_task_assigned_to_done_seconds',
    help: 'Each completed task: time from the assignment that completed it to its completion.',
    labelNames: byQueue,
    buckets: RUN_BUCKETS,
    registers,
  });
  const watchUp = new Gauge({
    name: 'agentcom_gateway_task_watch_up',
    help: "Whether the gateway's tail of the tasks bucket, which feeds the task counters, runs (1) or not yet (0).",
    registers,
  });
  watchUp.set(0);
  /** Counters show 0 for a queue as soon as it is known, so that rate() sees the first increase. */
  function initQueue(queue: string) {
    for (const c of [completed, failed, retried, dead, cancelled]) c.inc({ queue }, 0);
  }
  const apply = (o: TaskObservation) => {
    const queue = o.queue;
    switch (o.kind) {
      case 'submitted':
        submitted.inc({ queue, priority: o.priority });
        return;
      case 'assigned':
        if (o.waitSeconds !== null) wait.observe({ queue, priority: o.priority }, o.waitSeconds);
        return;
      case 'done':
        completed.inc({ queue });
        if (o.runSeconds !== null) run.observe({ queue }, o.runSeconds);
        return;
      case 'retried':
        retried.inc({ queue });
        return;
      case 'failed':
        failed.inc({ queue });
        return;
      case 'dead':
        dead.inc({ queue });
        return;
      case 'cancelled':
        cancelled.inc({ queue });
        return;
    }
  };
  const transitions = new TaskTransitions(
    opts.maxFinishedTasks !== undefined ? { maxFinished: opts.maxFinishedTasks } : {},
  );

  // --- Per-hub gauges and the lease ----------------------------------------------------------

  const hubs = new Map<string, { stats: HubStats; receivedAt: number }>();
  const liveHubs = (): HubStats[] => {
    const now = Date.now();
    const out: HubStats[] = [];
    for (const [id, h] of hubs) {
      if (now - h.receivedAt > staleIntervals * h.stats.intervalMs) hubs.delete(id);
      else out.push(h.stats);
    }
    return out;
  };
  const perHubGauge = (name: string, help: string, value: (s: HubStats) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['hub'],
      registers,
      collect() {
        this.reset();
        for (const s of liveHubs()) this.set({ hub: s.hubId }, value(s));
      },
    });
  const perHubCounter = (name: string, help: string, value: (s: HubStats) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['hub'],
      registers,
      collect() {
        this.reset();
        for (const s of liveHubs()) this.inc({ hub: s.hubId }, value(s));
      },
    });
  new Gauge({
    name: 'agentcom_hub_info',
    help: 'One per hub process publishing its stats (1), with its version.',
    labelNames: ['hub', 'version'],
    registers,
    collect() {
      this.reset();
      for (const s of liveHubs()) this.set({ hub: s.hubId, version: s.version }, 1);
    },
  });
  perHubGauge(
    'agentcom_hub_leader',
    'Whether the hub holds the lease and runs the work tree (1) or stands by (0).',
    (s) => (s.leader ? 1 : 0),
  );
  perHubCounter(
    'agentcom_hub_lease_acquisitions_total',
    'Times the hub took the lease (became leader) since it started.',
    (s) => s.leaseAcquisitions,
  );
  perHubCounter(
    'agentcom_hub_supervisor_restarts_total',
    'Children restarted by the hub’s supervisors since it started.',
    (s) => s.supervisorRestarts,
  );
  perHubCounter(
    'agentcom_hub_supervisor_escalations_total',
    'Supervisors of the hub that exceeded their restart intensity and gave up.',
    (s) => s.supervisorEscalations,
  );
  perHubCounter(
    'agentcom_hub_bus_reconnects_total',
    'NATS reconnects of the hub’s connection since it started.',
    (s) => s.busReconnects,
  );
  perHubCounter(
    'agentcom_hub_bus_disconnects_total',
    'NATS disconnects of the hub’s connection since it started.',
    (s) => s.busDisconnects,
  );
  perHubGauge(
    'agentcom_hub_event_loop_lag_p50_seconds',
    'Median event-loop delay of the hub over its last publishing period.',
    (s) => s.eventLoopLag.p50_ms / 1000,
  );
  perHubGauge(
    'agentcom_hub_event_loop_lag_p99_seconds',
    '99th percentile event-loop delay of the hub over its last publishing period.',
    (s) => s.eventLoopLag.p99_ms / 1000,
  );
  perHubGauge(
    'agentcom_hub_event_loop_lag_max_seconds',
    'Longest event-loop delay of the hub over its last publishing period.',
    (s) => s.eventLoopLag.max_ms / 1000,
  );
  perHubGauge(
    'agentcom_hub_resident_memory_bytes',
    'Resident set size of the hub process.',
    (s) => s.rssBytes,
  );
  perHubGauge(
    'agentcom_hub_start_time_seconds',
    'When the hub process started counting, Unix time.',
    (s) => s.startedAt / 1000,
  );

  let lease: { holder: string; expiresAt: number } | undefined;
  /** The last holder seen, kept across a release (a deleted key): a handover counts too. */
  let lastHolder: string | undefined;
  new Gauge({
    name: 'agentcom_lease_holder',
    help: 'The hub holding a live lease (1); absent while nobody holds one.',
    labelNames: ['hub'],
    registers,
    collect() {
      this.reset();
      if (lease && lease.expiresAt > Date.now()) this.set({ hub: lease.holder }, 1);
    },
  });
  const leaseChanges = new Counter({
    name: 'agentcom_lease_changes_total',
    help: 'Times the lease went to another hub (failovers and handovers), as seen by this gateway.',
    registers,
  });

  // --- Background: watches and subscription --------------------------------------------------

  let stopped = false;
  const watches = new Set<KvWatch<unknown>>();
  const wakers = new Set<() => void>();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      wakers.add(done);
    });
  /** Runs a watch until stopped, opening it again (with backoff) when it fails or ends. */
  const keepWatching = async <T>(
    what: string,
    open: () => Promise<KvWatch<T>>,
    onChange: (c: KvChange<T>) => void,
  ) => {
    for (let attempt = 0; !stopped && !bus.isClosed(); attempt++) {
      try {
        const w = await open();
        watches.add(w as KvWatch<unknown>);
        if (stopped) w.stop();
        attempt = 0;
        try {
          for await (const c of w) onChange(c);
        } finally {
          watches.delete(w as KvWatch<unknown>);
        }
      } catch (err) {
        log.warn({ err, phase: 'watch', what, attempt }, 'metrics watch failed; opening it again');
      }
      if (stopped || bus.isClosed()) break;
      await pause(exponentialDelay(attempt, { min: 250, max: 10_000 }));
    }
  };
  // The tail runs for the gateway's whole life (ordered consumers are recreated after a gap or a
  // reconnect; a gateway whose tail cannot start does not start). What was stored before it
  // started (a preload cut short brings some after the tap) is seen, not counted.
  const tap = deps.tasks.tapTasks((r, task) => {
    if (r.operation !== 'put') transitions.forget(r.key);
    else if (!task) return;
    else if (r.seq <= tap.preloadEnd) transitions.observe(task, r.seq);
    else for (const o of transitions.observe(task, r.seq)) apply(o);
  });
  const untap = tap.stop;
  watchUp.set(1);
  const leaseDone = keepWatching(
    'leases',
    async () => (await openKv(bus, bus.names.buckets.leases, LeaseSchema)).watch({ key: LEASE_KEY }),
    (c) => {
      if (c.operation !== 'put' || !c.value) {
        lease = undefined;
        return;
      }
      if (lastHolder !== undefined && lastHolder !== c.value.holder) leaseChanges.inc();
      lastHolder = c.value.holder;
      lease = { holder: c.value.holder, expiresAt: c.value.expiresAt };
    },
  );
  const hubSub: CoreSubscription = subscribeTyped(
    bus,
    bus.names.subjects.hubStatsAll,
    HubStatsSchema,
    (s, m) => {
      // The hub named in the payload must be the one its subject names (the identity is the subject).
      if (m.subject !== bus.names.subjects.hubStats(s.hubId)) return;
      hubs.set(s.hubId, { stats: s, receivedAt: Date.now() });
    },
  );

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    async stop() {
      if (stopped) return;
      stopped = true;
      hubSub.unsubscribe();
      untap();
      watchUp.set(0);
      for (const w of watches) w.stop();
      for (const wake of wakers) wake();
      await leaseDone;
    },
  };
}
