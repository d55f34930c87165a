/**
 * @module cli/hub-banner
 * What `agentcom hub` shows a person: on a terminal, a short banner (where NATS is, the data
 * directory, the auth mode, leader or standby, ready, what to try next) and warnings as one line
 * each; pino JSON otherwise (a service manager, a pipe) or when asked (`--log-format json`). Pure
 * text building apart from the one stream adapter.
 */
import type { Writable } from 'node:stream';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';

export type LogFormat = 'json' | 'pretty';
export const LOG_FORMAT_ENV = 'AGENTCOM_LOG_FORMAT';

/** The flag, else the environment, else `pretty` on a terminal and `json` otherwise. */
export function chooseLogFormat(
  flag: string | undefined,
  env: string | undefined,
  isTTY: boolean,
): LogFormat {
  const given = flag ?? (env || undefined);
  if (given === undefined) return isTTY ? 'pretty' : 'json';
  if (given === 'json' || given === 'pretty') return given;
  throw new AgentComError(
    ERROR_CODES.INVALID_PAYLOAD,
    `--log-format must be json or pretty, got ${JSON.stringify(given)}`,
    { path: ['logFormat'] },
  );
}

export interface BannerInfo {
  version: string;
  hubId: string;
  natsUrl: string;
  embedded: boolean;
  dataDir: string;
  authDir: string | undefined;
  prefix: string;
  /** The gateway's URL; undefined when it is off or its port was taken. */
  gatewayUrl?: string | undefined;
}

export function startedLines(b: BannerInfo): string[] {
  return [
    `AgentCom hub ${b.version} (id ${b.hubId}, prefix ${b.prefix})`,
    `  NATS      ${b.natsUrl}${b.embedded ? ` (embedded nats-server, store in ${b.dataDir}/nats)` : ' (external)'}`,
    `  data      ${b.dataDir}${b.embedded ? ' (hub.json there tells `agentcom` how to reach this hub)' : ''}`,
    b.authDir
      ? `  auth      on: per-agent NKey users in ${b.authDir}`
      : '  auth      off: any client that reaches the server is trusted (agentcom hub --auth-dir deploy/nats turns it on)',
    b.gatewayUrl
      ? `  HTTP      ${b.gatewayUrl} (API, /api/events, /metrics; a token: agentcom token add --name me --role admin)`
      : '  HTTP      off (no gateway on this hub; see the log)',
  ];
}

export function roleLines(
  role: { role: 'leader' } | { role: 'standby'; holder: string | undefined },
): string[] {
  if (role.role === 'leader')
    return [
      '  role      leader: assigning work',
      'ready. In another terminal: npx agentcom smoke (2 agents, 10 tasks), npx agentcom task list',
    ];
  return [
    `  role      standby: ${role.holder ?? 'another hub'} holds the lease; this hub takes over if it goes`,
    'ready (standby).',
  ];
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const QUIET_FIELDS = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'hub', 'v']);

/** One pino JSON line as `HH:MM:SS LEVEL message (field=value, ...)`. */
export function prettyLogLine(json: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 19) : '--:--:--';
  const level = LEVELS[o.level as number] ?? String(o.level);
  const fields = Object.entries(o)
    .filter(([k]) => !QUIET_FIELDS.has(k))
    .map(([k, v]) => {
      if (k === 'err' && typeof v === 'object' && v !== null && 'message' in v)
        return `err=${JSON.stringify((v as { message: unknown }).message)}`;
      return `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
    });
  return `${time} ${level} ${String(o.msg ?? '')}${fields.length ? ` (${fields.join(', ')})` : ''}`;
}

/** A pino destination that writes each record as a pretty line to `out`. */
export function prettyDestination(out: Writable): { write(chunk: string): void } {
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) out.write(`${prettyLogLine(line)}\n`);
    },
  };
}
