/**
 * @module cli/control
 * `agentcom pause|resume` (intake and assignment; protocol/control.ts) and `agentcom config
 * get|set` (the scheduler timeouts at runtime, shown with the limits and the control value;
 * protocol/runtime-config.ts), through the hub's API (docs/operations.md, "Pausing the hub" and
 * "Changing timeouts at runtime"). A change returns once the leading hub follows it; nothing
 * restarts. Flags are checked here first, so a bad one exits 2 before the hub is asked.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { type Control, describeControl, type HubControlRequestInput } from '../protocol/control.js';
import {
  type ConfigReply,
  type ConfigSetRequestInput,
  MAX_TIMEOUT_MS,
  MIN_TIMEOUT_MS,
  TIMEOUT_NAMES,
  type TimeoutName,
} from '../protocol/runtime-config.js';
import { type ConnectionFlags, withConnectionFlags, withHub } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { flagError, flagName, formatDuration, parseDuration } from './format.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

interface ControlFlags extends ConnectionFlags {
  intake?: boolean;
  assignment?: boolean;
  reason?: string;
}

interface SetFlags extends ConnectionFlags {
  acceptTimeout?: string;
  progressTimeout?: string;
  blockedTimeout?: string;
}

/** The flag of each timeout (`acceptTimeoutMs` -> `acceptTimeout`, i.e. `--accept-timeout`). */
const FLAG_OF: Readonly<Record<TimeoutName, keyof SetFlags>> = {
  acceptTimeoutMs: 'acceptTimeout',
  progressTimeoutMs: 'progressTimeout',
  blockedTimeoutMs: 'blockedTimeout',
};

function operator(): string {
  try {
    return `cli:${userInfo().username}`.slice(0, 100);
  } catch {
    return 'cli';
  }
}

/** The hub.pause / hub.resume request from the flags. @throws AgentComError `invalid_payload`. */
export function controlRequest(f: ControlFlags): Omit<HubControlRequestInput, 'v'> {
  if (f.reason !== undefined && (f.reason.length === 0 || f.reason.length > 500))
    throw flagError('reason', '--reason must be 1 to 500 characters');
  return {
    ...(f.intake ? { intake: true } : {}),
    ...(f.assignment ? { assignment: true } : {}),
    ...(f.reason !== undefined ? { reason: f.reason } : {}),
    by: operator(),
  };
}

/**
 * The config.set request from the flags: each timeout a duration (`30s`, `5m`) within its bounds,
 * or `default` (back to the hub's configured value). @throws AgentComError `invalid_payload`.
 */
export function configSetRequest(f: SetFlags): Omit<ConfigSetRequestInput, 'v'> {
  const timeouts: NonNullable<ConfigSetRequestInput['timeouts']> = {};
  for (const name of TIMEOUT_NAMES) {
    const key = FLAG_OF[name];
    const text = f[key];
    if (typeof text !== 'string') continue;
    if (text.trim() === 'default') {
      timeouts[name] = null;
      continue;
    }
    const ms = parseDuration(text, key);
    if (ms < MIN_TIMEOUT_MS || ms > MAX_TIMEOUT_MS[name])
      throw flagError(
        key,
        `${flagName(key)} must be between ${wholeUnits(MIN_TIMEOUT_MS)} and ${wholeUnits(MAX_TIMEOUT_MS[name])}, got ${JSON.stringify(text)}`,
      );
    timeouts[name] = ms;
  }
  if (Object.keys(timeouts).length === 0)
    throw flagError(
      'acceptTimeout',
      `give at least one of ${TIMEOUT_NAMES.map((n) => flagName(FLAG_OF[n])).join(', ')}`,
    );
  return { timeouts, by: operator() };
}

/** A bound as people type it: `100ms`, `1d`, `7d`. */
function wholeUnits(ms: number): string {
  for (const [unit, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const)
    if (ms % n === 0) return `${ms / n}${unit}`;
  return `${ms}ms`;
}

function configLines(c: ConfigReply): string[] {
  const label: Record<TimeoutName, string> = {
    acceptTimeoutMs: 'accept',
    progressTimeoutMs: 'progress',
    blockedTimeoutMs: 'blocked',
  };
  return [
    'timeouts:',
    ...TIMEOUT_NAMES.map((n) => {
      const t = c.timeouts[n];
      const from = t.source === 'runtime' ? `runtime (hub: ${formatDuration(t.hubMs)})` : 'hub';
      return `  ${label[n].padEnd(9)} ${formatDuration(t.ms).padEnd(8)} ${from}`;
    }),
    ...(c.stored?.by ? [`  last changed by ${c.stored.by} at ${new Date(c.stored.at).toISOString()}`] : []),
    `control: ${describeControl(c.control)}`,
    `limits: ${Object.keys(c.limits.overrides).length} per-agent overrides (agentcom limits show)`,
  ];
}

async function setControl(op: 'pause' | 'resume', f: ControlFlags, out: Output): Promise<ExitCode> {
  const req = controlRequest(f);
  return withHub(f, async (hub) => {
    const c: Control = op === 'pause' ? await hub.pause(req) : await hub.resume(req);
    out.result(c, describeControl(c));
    return EXIT.OK;
  });
}

async function configGet(f: ConnectionFlags, out: Output): Promise<ExitCode> {
  return withHub(f, async (hub) => {
    const c = await hub.config();
    out.result(c, configLines(c));
    return EXIT.OK;
  });
}

async function configSet(f: SetFlags, out: Output): Promise<ExitCode> {
  const req = configSetRequest(f);
  return withHub(f, async (hub) => {
    const c = await hub.setConfig(req);
    out.result(c, ['stored; the leading hub applies it from its next sweep', ...configLines(c)]);
    return EXIT.OK;
  });
}

export function registerControlCommands(program: Command): void {
  const parts = (cmd: Command, verb: string) =>
    withConnectionFlags(cmd)
      .option('--intake', `${verb} intake only (with --assignment: both, the default)`)
      .option('--assignment', `${verb} assignment only (with --intake: both, the default)`)
      .option('--reason <text>', 'why, shown by `agentcom config get` and `agentcom doctor`');
  parts(
    program
      .command('pause')
      .description(
        'pause intake (submissions wait in their stream; API submits are refused) and/or assignment (queued tasks wait)',
      ),
    'pause',
  ).action((f: ControlFlags) => runCommand('pause', f, (out) => setControl('pause', f, out)));
  parts(
    program.command('resume').description('resume intake and/or assignment: waiting work moves at once'),
    'resume',
  ).action((f: ControlFlags) => runCommand('resume', f, (out) => setControl('resume', f, out)));

  const config = program
    .command('config')
    .description('runtime settings: scheduler timeouts (changeable live), limits, pause state');
  withConnectionFlags(
    config.command('get').description('the settings in force, and where each timeout comes from'),
  ).action((f: ConnectionFlags) => runCommand('config get', f, (out) => configGet(f, out)));
  withConnectionFlags(
    config
      .command('set')
      .description('change scheduler timeouts at runtime (a duration, or `default` for the hub’s own)')
      .option('--accept-timeout <duration>', 'reclaim an assignment not accepted within this (e.g. 30s)')
      .option('--progress-timeout <duration>', 'reclaim a working task silent for this long (e.g. 5m)')
      .option('--blocked-timeout <duration>', 'reassign a task blocked for this long (e.g. 10m)'),
  ).action((f: SetFlags) => runCommand('config set', f, (out) => configSet(f, out)));
}
