/**
 * @module tree
 * The hub's supervision tree, as data. Read top to bottom in start order; shutdown runs bottom to
 * top, so the API stops taking requests first and the TaskQueue (which acks what it has applied)
 * stops last, before the lease is released, the bus drained and the embedded nats-server stopped.
 *
 *   hub                      rest_for_one   nats-server is everything's foundation: if it dies, all
 *   ├─ nats-server           OS process      after it restart and rebuild their state from JetStream
 *   └─ core                  (connects the bus and provisions streams, then starts:)
 *      services              rest_for_one
 *      ├─ bus                                the connection; stopped last, so it drains every ack
 *      ├─ lease-bus                          the leader's own connection, for the lease alone
 *      ├─ presence                           on every hub: hellos, heartbeats, sessions, so a hub
 *      │                                     that takes over knows at once who is alive
 *      ├─ task-mirror                        while this hub stands by: the task records kept warm,
 *      │                                     so a hub that takes over does not read them all
 *      ├─ work-slot          dynamic         holds `work` while this hub holds the lease
 *      ├─ leader                             renews the lease (and takes it from a leader whose
 *      │                                     connection is gone); starts / stops `work`
 *      ├─ hub-stats                          on every hub: its restarts, reconnects, event-loop lag
 *      │                                     and lease on `<p>.hub.<id>.stats` (hub-stats.ts)
 *      ├─ gateway                            on every hub: HTTP API, events, /metrics (docs/gateway.md);
 *      │                                     late, so its restart restarts only inspect
 *      └─ inspect                            on every hub: its supervision tree as inspection events
 *                                            while someone listens (inspect-tree.ts, protocol §11e)
 *      (work runs in work-slot while this hub leads:)
 *         work               rest_for_one   later children are projections of earlier ones: when
 *         ├─ task-queue                      the TaskQueue restarts, the rest re-read it; when the
 *         ├─ agents          one_for_all     scheduler crashes, only it restarts
 *         │  ├─ agent-fsms   dynamic         one AgentFSM per agent; a crashing FSM restarts alone
 *         │  └─ agents-manager               routes events to the FSMs (restarts with them)
 *         ├─ scheduler
 *         ├─ schedules                      cron and interval schedules: a task per slot
 *         ├─ field                          pheromone expiry, offline agents' claims, completions
 *         ├─ messaging                      messages, channels, mailbox cursors; presence messages
 *         ├─ api
 *         ├─ dlq-forwarder
 *         ├─ auth-suspensions                 (with an auth dir) suspended agents out of the server config
 *         ├─ backup                          scheduled backups (with AGENTCOM_BACKUP_DIR)
 *         ├─ alerts                          alert rules sampled; events to NATS and webhooks
 *         └─ status
 */
import type { Logger } from 'pino';
import { AgentsProcess } from '../../actors/agents/index.js';
import { AlertsProcess } from '../../actors/alerts/index.js';
import { ApiProcess } from '../../actors/api/index.js';
import { BackupProcess } from '../../actors/backup/index.js';
import { FieldProcess } from '../../actors/field/index.js';
import { type HubRole, LeaderProcess, LeaseClock } from '../../actors/leader/index.js';
import { MessagingProcess } from '../../actors/messaging/index.js';
import { PresenceProcess } from '../../actors/presence/index.js';
import { SchedulerProcess } from '../../actors/scheduler/index.js';
import { SchedulesProcess } from '../../actors/schedules/index.js';
import { TaskMirror, type TaskMirrorMessage } from '../../actors/task-mirror/index.js';
import { TaskQueue } from '../../actors/task-queue/index.js';
import type { Bus } from '../bus/connection.js';
import { startDlqForwarder } from '../bus/dlq-forwarder.js';
import { startStatusPublisher } from '../bus/status.js';
import { type RunningGateway, startGateway } from '../gateway/index.js';
import { resolveRetention } from '../protocol/message.js';
import { exponentialDelay } from '../runtime/backoff.js';
import {
  type ChildSpecInput,
  cast,
  dynamicSupervisorChild,
  type Registry,
  supervisorChild,
} from '../runtime/index.js';
import { type Server, serverChild } from '../runtime/server.js';
import { authDirPaths } from './auth/auth-dir.js';
import { startSuspensionSync } from './auth/suspensions.js';
import type { HubConfig } from './config.js';
import { HubStatsProcess, hubCounters } from './hub-stats.js';
import { startHubInspection } from './inspect-tree.js';

/** Registered names of the hub's actors (in the hub's own registry). */
export const ACTOR_NAMES = {
  taskQueue: 'task-queue',
  agentFsms: 'agent-fsms',
  agents: 'agents',
  presence: 'presence',
  scheduler: 'scheduler',
  schedules: 'schedules',
  field: 'field',
  messaging: 'messaging',
  workSlot: 'work-slot',
  leader: 'leader',
  alerts: 'alerts',
  taskMirror: 'task-mirror',
} as const;

export interface ServicesDeps {
  bus: Bus;
  /** The connection the leader keeps the lease on (default `bus`); drained after the leader stops. */
  leaseBus?: Bus;
  registry: Registry;
  log: Logger;
  hubId: string;
  version: string;
  /** Whether the hub may write now (its lease has not run out by its own clock); default always. */
  writable?: () => boolean;
  /** Told when this hub starts leading or stands by. */
  onRole?: (role: HubRole) => void;
  /** Told the gateway's URL once it listens (null: it could not, e.g. its port is taken). */
  onGateway?: (url: string | null) => void;
}

/**
 * The `services` supervisor's children: the bus, presence, and the leader that runs `work` while it
 * can.
 */
export function servicesTree(config: HubConfig, deps: ServicesDeps): ChildSpecInput[] {
  const { bus, registry, log, hubId } = deps;
  const leaseBus = deps.leaseBus ?? bus;
  const n = ACTOR_NAMES;
  const clock = new LeaseClock();
  const counters = hubCounters(registry);
  const onRole = (role: HubRole) => {
    counters.role(role.role);
    // Standing by (at start, or after the work stopped): keep the task records warm.
    if (role.role === 'standby') cast(n.taskMirror, { type: 'resume' } satisfies TaskMirrorMessage, registry);
    deps.onRole?.(role);
  };
  return [
    serverChild('bus', () => ({ handle() {}, terminate: () => bus.drain() }), undefined),
    ...(leaseBus !== bus
      ? [serverChild('lease-bus', () => ({ handle() {}, terminate: () => leaseBus.drain() }), undefined)]
      : []),
    serverChild(
      'presence',
      PresenceProcess.start,
      {
        bus,
        registry,
        log,
        hubId,
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        missedBeats: config.missedBeats,
        // Only the leader runs these; on a standby the casts find no one.
        subscribers: [n.scheduler, n.agents],
        downSubscribers: [n.field],
        // Presence messages (join, leave) are the Messaging actor's to write.
        upDownSubscribers: [n.messaging],
      },
      { name: n.presence },
    ),
    // Before the work slot, so the TaskQueue of a hub that takes over finds it (it reads the bucket
    // itself when the mirror has not got every record). It never crashes (a failure costs only
    // speed), so standing before them (rest_for_one) costs them no restart.
    serverChild('task-mirror', TaskMirror.start, { bus, log }, { name: n.taskMirror }),
    dynamicSupervisorChild('work-slot', { maxChildren: 1 }, { name: ACTOR_NAMES.workSlot }),
    serverChild(
      'leader',
      LeaderProcess.start,
      {
        bus,
        leaseBus,
        registry,
        log,
        hubId,
        leaseTtlMs: config.leaseTtlMs,
        workSlot: ACTOR_NAMES.workSlot,
        clock,
        onRole,
        work: supervisorChild('work', workTree(config, { ...deps, writable: () => clock.holds() }), {
          strategy: 'rest_for_one',
          intensity: 5,
          period: 10_000,
        }),
      },
      // Its stop stops the work tree, then releases the lease (so a standby takes over at once):
      // at 10,000 agents the work tree's stop took over the default 5 s, and the leader was killed
      // with the lease still held.
      { name: ACTOR_NAMES.leader, shutdown: 15_000 },
    ),
    serverChild('hub-stats', HubStatsProcess.start, {
      bus,
      registry,
      log,
      hubId,
      version: deps.version,
      intervalMs: config.statusIntervalMs,
      counters,
      leader: n.leader,
    }),
    // Last, so that its restart restarts nothing else (rest_for_one), and it stops first.
    ...(config.http === 'on'
      ? [serverChild('gateway', startGatewayServer, { config, bus, log, onGateway: deps.onGateway })]
      : []),
    // After it: a restart of the gateway restarts only this cheap follower, never the reverse.
    serverChild('inspect', startHubInspection, { bus, registry, log, hubId }),
  ];
}

/**
 * The gateway as a child. It never takes the hub down: a start that fails (its port in use, NATS
 * not answering yet) is logged and tried again with backoff while the hub runs without it.
 */
async function startGatewayServer(input: {
  config: HubConfig;
  bus: Bus;
  log: Logger;
  onGateway: ((url: string | null) => void) | undefined;
}): Promise<Server> {
  const { config, bus } = input;
  const log = input.log.child({ actor: 'gateway' });
  let running: RunningGateway | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const attempt = async (n: number): Promise<void> => {
    try {
      const g = await startGateway({ bus, log: input.log, host: config.httpHost, port: config.httpPort });
      if (stopped) return void (await g.close());
      running = g;
      log.info({ phase: 'start', url: g.url }, 'gateway listening');
      input.onGateway?.(g.url);
    } catch (err) {
      if (stopped) return;
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (n === 0 || !inUse)
        log.warn(
          { phase: 'start', port: config.httpPort, err: inUse ? undefined : err },
          inUse
            ? 'gateway port in use: this hub runs without a gateway until it is free (or set --http-port)'
            : 'gateway failed to start; trying again',
        );
      if (n === 0) input.onGateway?.(null);
      timer = setTimeout(() => void attempt(n + 1), exponentialDelay(n, { min: 1_000, max: 30_000 }));
    }
  };
  // The first try is awaited, so a hub that starts normally has its URL when it says it started.
  await attempt(0);
  return {
    handle() {},
    async terminate() {
      stopped = true;
      clearTimeout(timer);
      await running?.close();
    },
  };
}

/** What the leading hub runs: the actors that consume, decide and write. */
export function workTree(config: HubConfig, deps: ServicesDeps): ChildSpecInput[] {
  const { bus, registry, log, hubId } = deps;
  const n = ACTOR_NAMES;
  const timeouts = {
    acceptTimeoutMs: config.acceptTimeoutMs,
    progressTimeoutMs: config.progressTimeoutMs,
    blockedTimeoutMs: config.blockedTimeoutMs,
  };
  return [
    serverChild(
      'task-queue',
      TaskQueue.start,
      {
        bus,
        registry,
        log,
        subscribers: [n.scheduler, n.agents, n.field],
        scheduler: n.scheduler,
        presence: n.presence,
        retention: { maxAgeMs: config.retentionMs, maxCount: config.retentionCount },
        retentionSweepMs: config.sweepIntervalMs,
        mirror: n.taskMirror,
        ...(deps.writable ? { writable: deps.writable } : {}),
      },
      { name: n.taskQueue },
    ),
    supervisorChild(
      'agents',
      [
        dynamicSupervisorChild('agent-fsms', {}, { name: n.agentFsms }),
        serverChild(
          'agents-manager',
          AgentsProcess.start,
          {
            bus,
            registry,
            log,
            fsmSupervisor: n.agentFsms,
            taskQueue: n.taskQueue,
            presence: n.presence,
            tickMs: config.sweepIntervalMs,
          },
          { name: n.agents },
        ),
      ],
      { strategy: 'one_for_all' },
    ),
    serverChild(
      'scheduler',
      SchedulerProcess.start,
      {
        bus,
        registry,
        log,
        taskQueue: n.taskQueue,
        presence: n.presence,
        timeouts,
        // An outcome on its way from a live session is applied well within two heartbeats.
        notHeldGraceMs: Math.max(1_000, 2 * config.heartbeatIntervalMs),
        sweepIntervalMs: config.sweepIntervalMs,
      },
      { name: n.scheduler },
    ),
    serverChild(
      'schedules',
      SchedulesProcess.start,
      { bus, registry, log, taskQueue: n.taskQueue },
      { name: n.schedules },
    ),
    serverChild(
      'field',
      FieldProcess.start,
      { bus, log, registry, presence: n.presence, taskQueue: n.taskQueue },
      { name: n.field },
    ),
    serverChild(
      'messaging',
      MessagingProcess.start,
      {
        bus,
        log,
        registry,
        presence: n.presence,
        retention: resolveRetention(config.messageRetention),
      },
      { name: n.messaging },
    ),
    serverChild('api', ApiProcess.start, {
      bus,
      registry,
      log,
      hubId,
      version: deps.version,
      names: {
        taskQueue: n.taskQueue,
        scheduler: n.scheduler,
        presence: n.presence,
        agents: n.agents,
        field: n.field,
        messaging: n.messaging,
      },
      timeouts,
    }),
    serverChild(
      'dlq-forwarder',
      async () => {
        const runner = await startDlqForwarder(bus);
        return { handle() {}, terminate: () => runner.stop() };
      },
      undefined,
    ),
    ...(config.authDir
      ? [
          serverChild('auth-suspensions', startSuspensionSync, {
            bus,
            log,
            paths: authDirPaths(config.authDir),
          }),
        ]
      : []),
    ...(config.backupDir
      ? [
          serverChild('backup', BackupProcess.start, {
            bus,
            log,
            dir: config.backupDir,
            intervalMs: config.backupIntervalMs,
            keep: config.backupKeep,
          }),
        ]
      : []),
    serverChild(
      'alerts',
      AlertsProcess.start,
      { bus, registry, log, taskQueue: n.taskQueue, presence: n.presence },
      { name: n.alerts },
    ),
    serverChild(
      'status',
      () => {
        const publisher = startStatusPublisher(bus, { intervalMs: config.statusIntervalMs });
        return { handle() {}, terminate: () => publisher.stop() };
      },
      undefined,
    ),
  ];
}
