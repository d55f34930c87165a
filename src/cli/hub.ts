/**
 * `agentcom hub`: validate configuration (flags over environment), start the hub, and shut it down
 * gracefully on SIGTERM/SIGINT (a second signal exits at once). On a terminal it prints a banner
 * and warnings (hub-banner.ts); otherwise pino JSON. A hub with an embedded nats-server writes
 * `<dataDir>/hub.json` (hub-file.ts) so that the CLI finds it.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { pino } from 'pino';
import type { HubRole } from '../../actors/leader/index.js';
import { type HubConfig, loadHubConfig } from '../hub/config.js';
import { writeHubFile } from '../hub/hub-file.js';
import { HUB_VERSION, startHub } from '../hub/main.js';
import { AgentComError } from '../protocol/errors.js';
import { chooseLogFormat, LOG_FORMAT_ENV, prettyDestination, roleLines, startedLines } from './hub-banner.js';

export interface HubFlags {
  natsUrl?: string;
  http?: string;
  httpHost?: string;
  httpPort?: string;
  dataDir?: string;
  natsPort?: string;
  prefix?: string;
  hubId?: string;
  authDir?: string;
  logLevel?: string;
  logFormat?: string;
}

export async function runHub(flags: HubFlags): Promise<number> {
  const { logFormat, ...configFlags } = flags;
  let config: HubConfig;
  let format: ReturnType<typeof chooseLogFormat>;
  try {
    config = loadHubConfig(configFlags);
    format = chooseLogFormat(logFormat, process.env[LOG_FORMAT_ENV], process.stdout.isTTY === true);
  } catch (err) {
    if (err instanceof AgentComError) {
      process.stderr.write(`agentcom hub: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const hubId = config.hubId ?? `${hostname()}-${process.pid}`;
  const pretty = format === 'pretty';
  // On a terminal, info logs would bury the banner: warnings and worse, unless a level was asked for.
  const levelAsked = flags.logLevel !== undefined || !!process.env.AGENTCOM_LOG_LEVEL;
  const logger = pretty
    ? pino({ level: levelAsked ? config.logLevel : 'warn' }, prettyDestination(process.stderr))
    : pino({ level: config.logLevel, base: { hub: hubId } });
  const say = (lines: string[]) => {
    if (pretty) process.stdout.write(`${lines.join('\n')}\n`);
  };
  // The role can be known before the banner's first lines are out (a single hub leads at once).
  let bannerShown = false;
  let pendingRole: HubRole | undefined;
  const onRole = (role: HubRole) => {
    if (bannerShown) say(roleLines(role));
    else pendingRole = role;
  };
  // Signals are taken from the start: one that comes while the hub is starting (its nats-server
  // spawned, its store claimed) stops it as soon as it is up, instead of killing the process with
  // nothing cleaned up.
  let hub: Awaited<ReturnType<typeof startHub>> | undefined;
  let stopping = false;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    stopping = true;
    logger.info({ phase: 'shutdown', signal: sig }, 'signal received; shutting down');
    say(['stopping (a second Ctrl-C stops at once)']);
    if (hub) void hub.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    hub = await startHub({ ...config, hubId }, { logger, onRole });
  } catch (err) {
    // A configuration the hub can only check while starting (e.g. an auth directory of another prefix).
    if (err instanceof AgentComError) {
      process.stderr.write(`agentcom hub: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const dataDir = resolve(config.dataDir);
  if (hub.embedded)
    await writeHubFile(dataDir, {
      v: 1,
      natsUrl: hub.natsUrl,
      prefix: config.prefix,
      ...(hub.authDir ? { authDir: hub.authDir } : {}),
      hubId,
      ...(hub.gatewayUrl() ? { gatewayUrl: hub.gatewayUrl() } : {}),
      embedded: true,
      pid: process.pid,
      startedAt: Date.now(),
    }).catch((err) =>
      logger.warn({ err, phase: 'start' }, 'could not write hub.json; the CLI needs --nats-url'),
    );
  say(
    startedLines({
      version: HUB_VERSION,
      hubId,
      natsUrl: hub.natsUrl,
      embedded: hub.embedded,
      dataDir,
      authDir: hub.authDir,
      prefix: config.prefix,
      gatewayUrl: hub.gatewayUrl(),
    }),
  );
  bannerShown = true;
  if (pendingRole) say(roleLines(pendingRole));
  if (stopping) void hub.stop();
  const reason = await hub.exited;
  return reason === 'shutdown' || reason === 'normal' ? 0 : 1;
}
