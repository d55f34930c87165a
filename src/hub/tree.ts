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
 *      ├─ presence                           on every hub: hellos, heartbeats, sessions, so a hub
 *      │                                     that takes over knows at once who is alive
 *      ├─ work-slot          dynamic         holds `work` while this hub holds the lease
 *      └─ leader                             renews the lease (and takes it from a leader whose
 *         │                                  connection is gone); starts / stops `work`
 *         work               rest_for_one   later children are projections of earlier ones: when
 *         ├─ task-queue                      the TaskQueue restarts, the rest re-read it; when the
 *         ├─ agents          one_for_all     scheduler crashes, only it restarts
 *         │  ├─ agent-fsms   dynamic         one AgentFSM per agent; a crashing FSM restarts alone
 *         │  └─ agents-manager               routes events to the FSMs (restarts with them)
 *         ├─ scheduler
 *         ├─ schedules                      cron and interval schedules: a task per slot
 *         ├─ field                          pheromone expiry, offline agents' claims, completions
 *         ├─ api
 *         ├─ dlq-forwarder
 *         ├─ auth-suspensions                 (with an auth dir) suspended agents out of the server config
 *         ├─ backup                          scheduled backups (with AGENTCOM_BACKUP_DIR)
 *         └─ status
 */
import type { Logger } from 'pino';
import { AgentsProcess } from '../../actors/agents/index.js';
import { ApiProcess } from '../../actors/api/index.js';
import { BackupProcess } from '../../actors/backup/index.js';
import { FieldProcess } from '../../actors/field/index.js';
import { type HubRole, LeaderProcess, LeaseClock } from '../../actors/leader/index.js';
import { PresenceProcess } from '../../actors/presence/index.js';
import { SchedulerProcess } from '../../actors/scheduler/index.js';
import { SchedulesProcess } from '../../actors/schedules/index.js';
import { TaskQueue } from '../../actors/task-queue/index.js';
import type { Bus } from '../bus/connection.js';
import { startDlqForwarder } from '../bus/dlq-forwarder.js';
import { startStatusPublisher } from '../bus/status.js';
import {
  type ChildSpecInput,
  dynamicSupervisorChild,
  type Registry,
  supervisorChild,
} from '../runtime/index.js';
import { serverChild } from '../runtime/server.js';
import { authDirPaths } from './auth/auth-dir.js';
import { startSuspensionSync } from './auth/suspensions.js';
import type { HubConfig } from './config.js';

/** Registered names of the hub's actors (in the hub's own registry). */
export const ACTOR_NAMES = {
  taskQueue: 'task-queue',
  agentFsms: 'agent-fsms',
  agents: 'agents',
  presence: 'presence',
  scheduler: 'scheduler',
  schedules: 'schedules',
  field: 'field',
  workSlot: 'work-slot',
  leader: 'leader',
} as const;

export interface ServicesDeps {
  bus: Bus;
  registry: Registry;
  log: Logger;
  hubId: string;
  version: string;
  /** Whether the hub may write now (its lease has not run out by its own clock); default always. */
  writable?: () => boolean;
  /** Told when this hub starts leading or stands by. */
  onRole?: (role: HubRole) => void;
}

/**
 * The `services` supervisor's children: the bus, presence, and the leader that runs `work` while it
 * can.
 */
export function servicesTree(config: HubConfig, deps: ServicesDeps): ChildSpecInput[] {
  const { bus, registry, log, hubId } = deps;
  const n = ACTOR_NAMES;
  const clock = new LeaseClock();
  return [
    serverChild('bus', () => ({ handle() {}, terminate: () => bus.drain() }), undefined),
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
      },
      { name: n.presence },
    ),
    dynamicSupervisorChild('work-slot', { maxChildren: 1 }, { name: ACTOR_NAMES.workSlot }),
    serverChild(
      'leader',
      LeaderProcess.start,
      {
        bus,
        registry,
        log,
        hubId,
        leaseTtlMs: config.leaseTtlMs,
        workSlot: ACTOR_NAMES.workSlot,
        clock,
        ...(deps.onRole ? { onRole: deps.onRole } : {}),
        work: supervisorChild('work', workTree(config, { ...deps, writable: () => clock.holds() }), {
          strategy: 'rest_for_one',
          intensity: 5,
          period: 10_000,
        }),
      },
      { name: ACTOR_NAMES.leader },
    ),
  ];
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
      },
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
      'status',
      () => {
        const publisher = startStatusPublisher(bus, { intervalMs: config.statusIntervalMs });
        return { handle() {}, terminate: () => publisher.stop() };
      },
      undefined,
    ),
  ];
}
