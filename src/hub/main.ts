/**
 * @module main
 * Starts a hub: the supervision tree of tree.ts under a root supervisor, with an embedded
 * nats-server when no NATS URL is configured. `stop()` is the graceful shutdown: children stop in
 * reverse start order (API first, TaskQueue last, each acking what it applied), the bus is drained
 * (flushing acks), then the embedded server is stopped. With an auth directory (config.authDir) the
 * hub creates it when missing, runs the embedded server with its config, and connects as the hub user.
 */

import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { type Logger, pino } from 'pino';
import type { HubRole } from '../../actors/leader/index.js';
import { type Bus, connectBus } from '../bus/connection.js';
import { findNatsServer, natsServerArgs, stopOrphanedServer, waitForNats } from '../bus/nats-server.js';
import { readSeedFile } from '../bus/nkeys.js';
import { defaultTopology, provision } from '../bus/provision.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { resolveRetention } from '../protocol/message.js';
import { exponentialDelay } from '../runtime/backoff.js';
import {
  type ChildSpecInput,
  describeReason,
  type ExitReason,
  fnChild,
  processChild,
  Registry,
  type StartResult,
  type Supervisor,
  startSupervisor,
} from '../runtime/index.js';
import { authDirPaths, ensureAuthDir, listenAddressOf } from './auth/auth-dir.js';
import type { HubConfig } from './config.js';
import { readHubFile } from './hub-file.js';
import { carryStoreAcrossAuth } from './store-account.js';
import { servicesTree } from './tree.js';

export const HUB_VERSION = '0.1.0';

/** Tries of one start of the core (0.5, 1, 2, 4 s apart) before it counts as failed. */
const CORE_START_ATTEMPTS = 5;
/** The waits between those tries (no jitter: one hub's own start). */
const CORE_START_BACKOFF = { min: 500, max: 4_000 };

export interface HubHandle {
  readonly hubId: string;
  /** The NATS URL the hub uses (the embedded server's when it spawned one). */
  readonly natsUrl: string;
  /** Whether it spawned its own nats-server. */
  readonly embedded: boolean;
  /** The auth directory it runs with (absolute), if any. */
  readonly authDir: string | undefined;
  readonly registry: Registry;
  readonly root: Supervisor;
  readonly log: Logger;
  /** The current bus connection (replaced when the core restarts). */
  bus(): Bus | undefined;
  /** The HTTP gateway's URL (undefined while it is not listening, or with http off). */
  gatewayUrl(): string | undefined;
  /** Graceful shutdown; resolves when everything has stopped. Safe to call twice. */
  stop(): Promise<void>;
  /** Resolves with the root's exit reason (after stop(), or when the tree gives up). */
  readonly exited: Promise<ExitReason>;
}

export interface StartHubOptions {
  logger?: Logger;
  /** Told when this hub starts leading (assigning work) or stands by behind another hub. */
  onRole?: (role: HubRole) => void;
  /** Told the gateway's URL whenever it (re)starts listening; null when its port was taken. */
  onGateway?: (url: string | null) => void;
}

export async function startHub(config: HubConfig, opts: StartHubOptions = {}): Promise<HubHandle> {
  const hubId = config.hubId ?? `${hostname()}-${process.pid}`;
  const log = opts.logger ?? pino({ level: config.logLevel, base: { hub: hubId } });
  const registry = new Registry();
  const children: ChildSpecInput[] = [];
  let natsUrl = config.natsUrl;
  const storeDir = resolve(config.dataDir, 'nats');
  const serverName = `agentcom-${hubId}`.replace(/[^\w-]/g, '_');
  // Before anything is written (the auth directory included): no other server may hold this store.
  if (!natsUrl) await claimStore(config, log);
  const auth = config.authDir
    ? await prepareAuth(config.authDir, config, { storeDir, serverName })
    : undefined;
  if (auth) log.info({ phase: 'start', authDir: auth.root, created: auth.created }, 'nats authentication on');
  if (!natsUrl) {
    await mkdir(storeDir, { recursive: true });
    const port = config.natsPort;
    // With auth the config file names the pid file (a reloadable server takes no -P); without, -P.
    const pidFile = auth ? auth.pidFile : plainPidFile(config);
    const carried = await carryStoreAcrossAuth(storeDir, auth !== undefined);
    if (carried.kind === 'moved')
      log.warn(
        { phase: 'start', from: carried.from, to: carried.to },
        `authentication turned ${auth ? 'on' : 'off'}: the deployment's data moved to account ${carried.to}, so every task, agent and dead letter carries over`,
      );
    else if (carried.kind === 'both')
      log.warn(
        { phase: 'start', hidden: carried.hiddenDir },
        `the store holds data of both auth modes: this hub uses account ${carried.used}; the data of ${carried.hidden} (${carried.hiddenDir}) is not visible until the hub runs ${auth ? 'without' : 'with'} --auth-dir again`,
      );
    natsUrl = `nats://127.0.0.1:${port}`;
    children.push(
      processChild(
        'nats-server',
        {
          command: findNatsServer(),
          // With auth, the store and the name are in the config file, so that it can be reloaded.
          args: auth
            ? natsServerArgs({ port, configFile: auth.configFile })
            : natsServerArgs({ port, storeDir, serverName, pidFile }),
          ready: () => waitForNats(port, 30_000),
          logLines: 'debug',
          stopSignal: 'SIGINT',
        },
        { shutdown: 10_000 },
      ),
    );
    log.info({ phase: 'start', natsUrl, storeDir: join(storeDir) }, 'embedding nats-server');
  }

  let bus: Bus | undefined;
  let gatewayUrl: string | undefined;
  /** Connects, provisions and starts the services tree once; `error` when any of it fails. */
  const startCore = async (): Promise<StartResult> => {
    const connectAs = (name: string) =>
      connectBus({
        servers: natsUrl,
        name,
        prefix: config.prefix,
        logger: log,
        ...(auth ? { nkeySeed: auth.hubSeed } : {}),
      });
    const b = await connectAs(`agentcom-hub-${hubId}`);
    // The lease has a connection of its own: its renewal must not wait on the socket behind the
    // work's traffic (a 100,000-record load, a burst of 10,000 assignments).
    let leaseBus: Bus;
    try {
      leaseBus = await connectAs(`agentcom-hub-${hubId}-lease`);
    } catch (err) {
      await b.drain();
      throw err;
    }
    const drainBoth = () => Promise.all([b.drain(), leaseBus.drain()]);
    try {
      await provision(
        b,
        defaultTopology(b.names, {
          replicas: config.replicas,
          messageRetention: resolveRetention(config.messageRetention),
          dlq: {
            maxAgeMs: config.dlqMaxAgeMs,
            maxMsgs: config.dlqMaxMsgs,
            ...(config.dlqMaxBytes !== undefined ? { maxBytes: config.dlqMaxBytes } : {}),
          },
        }),
      );
      const r = await startSupervisor(
        servicesTree(config, {
          bus: b,
          leaseBus,
          registry,
          log,
          hubId,
          version: HUB_VERSION,
          ...(opts.onRole ? { onRole: opts.onRole } : {}),
          onGateway: (url) => {
            gatewayUrl = url ?? undefined;
            opts.onGateway?.(url);
          },
        }),
        { strategy: 'rest_for_one', intensity: 5, period: 10_000 },
        { registry, logger: log, name: 'services' },
      );
      if (!r.ok) {
        await drainBoth();
        return { kind: 'error', reason: r.error };
      }
      bus = b;
      // Normally the `bus` children drain them; this covers a services tree that died abnormally.
      r.value.onExit(() => void drainBoth());
      return { kind: 'ok', pid: r.value };
    } catch (reason) {
      await drainBoth();
      return { kind: 'error', reason };
    }
  };
  children.push(
    fnChild(
      'core',
      async () => {
        // JetStream can be briefly unable to answer (a cluster electing stream leaders after a node
        // died): a start that fails is tried again a few times before it counts as failed, so a
        // hub started at such a moment does not exit.
        for (let attempt = 1; ; attempt++) {
          const r = await startCore();
          if (r.kind !== 'error' || attempt >= CORE_START_ATTEMPTS) return r;
          log.warn(
            { phase: 'start', attempt, reason: describeReason({ kind: 'error', error: r.reason }) },
            'core start failed; trying again',
          );
          await new Promise((res) => setTimeout(res, exponentialDelay(attempt - 1, CORE_START_BACKOFF)));
        }
      },
      [],
      // If NATS is unreachable the core keeps retrying with backoff instead of exhausting intensity.
      { type: 'supervisor', shutdown: 'infinity', backoff: { min: 250, max: 10_000 } },
    ),
  );

  const started = await startSupervisor(
    children,
    { strategy: 'rest_for_one', intensity: 10, period: 60_000 },
    { registry, logger: log, name: 'hub' },
  );
  if (!started.ok) throw new Error(`hub failed to start: ${JSON.stringify(started.error)}`);
  const root = started.value;
  let stopping: Promise<void> | undefined;
  const exited = root.exited;
  log.info({ phase: 'started', natsUrl, hubId }, 'hub started');
  return {
    hubId,
    natsUrl,
    embedded: config.natsUrl === undefined,
    authDir: auth?.root,
    registry,
    root,
    log,
    bus: () => bus,
    gatewayUrl: () => gatewayUrl,
    exited,
    stop() {
      stopping ??= (async () => {
        log.info({ phase: 'shutdown' }, 'hub shutting down');
        await root.stop('shutdown');
        await exited;
        log.info({ phase: 'stopped' }, 'hub stopped');
      })();
      return stopping;
    },
  };
}

const plainPidFile = (config: HubConfig) => resolve(config.dataDir, 'nats-server.pid');

/**
 * Stops the nats-server a killed hub left on this store, or refuses when a live hub's server holds
 * it. Every server the store may have had is looked for, whichever mode (and auth directory) it
 * was started with, hub.json's from the last start included, so the store is never moved or
 * opened twice under a running server.
 */
async function claimStore(config: HubConfig, log: Logger): Promise<void> {
  const pidFiles = new Set([plainPidFile(config)]);
  for (const dir of [config.authDir, readHubFile(config.dataDir)?.authDir])
    if (dir) pidFiles.add(authDirPaths(dir).pidFile);
  for (const file of pidFiles) {
    const orphan = await stopOrphanedServer(file);
    if (orphan.kind === 'stopped')
      log.warn({ phase: 'start', pid: orphan.pid }, 'stopped the nats-server a killed hub left running');
    else if (orphan.kind === 'owned')
      throw new AgentComError(
        ERROR_CODES.CONFLICT,
        `the data directory ${config.dataDir} is in use: its nats-server (pid ${orphan.pid}) belongs to process ${orphan.parent}`,
      );
  }
}

interface HubAuth {
  root: string;
  configFile: string;
  /** Written by the embedded server (the config's pid_file). */
  pidFile: string;
  hubSeed: string;
  created: boolean;
}

/**
 * Opens (or creates) the auth directory. An embedded server's listen address, store and name are
 * written into it, so the config the CLI rewrites later matches the running server; an external
 * server (NATS_URL) is the operator's, whose settings are only proposed when the directory is new.
 */
async function prepareAuth(
  authDir: string,
  config: HubConfig,
  server: { storeDir: string; serverName: string },
): Promise<HubAuth> {
  const embedded = config.natsUrl === undefined;
  const listen =
    config.natsUrl === undefined ? `127.0.0.1:${config.natsPort}` : listenAddressOf(config.natsUrl);
  const { paths, created } = await ensureAuthDir(
    authDir,
    { prefix: config.prefix, listen, storeDir: server.storeDir, ...(embedded ? server : {}) },
    { updateSettings: embedded },
  );
  return {
    root: paths.root,
    configFile: paths.config,
    pidFile: paths.pidFile,
    hubSeed: await readSeedFile(paths.hubSeed),
    created,
  };
}
