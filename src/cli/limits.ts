/**
 * @module cli/limits
 * `agentcom limits show|set`: the deployment's rate limits and suspension policy
 * (protocol/limits.ts; docs/security.md, "Rate limits" and "Suspension"), kept in the config bucket. Every hub follows a
 * change at once; nothing restarts. `set` replaces the whole document (validated first); `show`
 * prints it with the built-in defaults filled in.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { openLimitsKv } from '../bus/live-limits.js';
import { parseJsonText } from '../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import {
  DEFAULT_LIMITS,
  DEFAULT_RATES,
  LIMITS_KEY,
  type Limits,
  LimitsSchema,
  violationPolicy,
} from '../protocol/limits.js';
import { type ConnectionFlags, resolveConnection, withBus, withConnectionFlags } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

interface SetFlags extends ConnectionFlags {
  file?: string;
  limits?: string;
}

/** What applies: the stored document with every default filled in. */
function effective(l: Limits) {
  return {
    v: 1 as const,
    rates: { ...DEFAULT_RATES, ...l.rates },
    overrides: l.overrides,
    violations: violationPolicy(l),
  };
}

function lines(l: Limits): string[] {
  const e = effective(l);
  const rate = (r: { perSecond: number; burst: number }) => `${r.perSecond}/s, burst ${r.burst}`;
  return [
    'per agent:',
    ...Object.entries(e.rates).map(([k, r]) => `  ${k.padEnd(9)} ${rate(r)}`),
    ...Object.entries(e.overrides).map(([id, o]) =>
      o === 'unlimited'
        ? `override ${id}: unlimited`
        : `override ${id}: ${Object.entries(o)
            .map(([k, r]) => `${k} ${rate(r)}`)
            .join('; ')}`,
    ),
    `suspension: ${e.violations.threshold} invalid messages within ${e.violations.windowMs} ms; ${e.violations.suspendMs} ms, doubling up to ${e.violations.maxSuspendMs} ms`,
  ];
}

async function show(f: ConnectionFlags, out: Output): Promise<ExitCode> {
  return withBus(resolveConnection(f), async (bus) => {
    const got = await (await openLimitsKv(bus)).get(LIMITS_KEY);
    const l = got?.value ?? DEFAULT_LIMITS;
    out.result({ stored: got?.value ?? null, effective: effective(l) }, lines(l));
    return EXIT.OK;
  });
}

async function set(f: SetFlags, out: Output): Promise<ExitCode> {
  if ((f.file === undefined) === (f.limits === undefined))
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      'give the limits with exactly one of --file or --limits',
    );
  const text = f.file !== undefined ? await readFile(f.file, 'utf8') : f.limits!;
  const limits = parseJsonText(LimitsSchema, text, f.file ?? '--limits');
  return withBus(resolveConnection(f), async (bus) => {
    await (await openLimitsKv(bus)).put(LIMITS_KEY, limits);
    out.result({ stored: limits, effective: effective(limits) }, [
      'limits stored; every hub applies them now',
      ...lines(limits),
    ]);
    return EXIT.OK;
  });
}

export function registerLimitsCommands(program: Command): void {
  const limits = program
    .command('limits')
    .description(
      'rate limits per agent and the suspension policy (docs/security.md, "Rate limits" and "Suspension")',
    );
  withConnectionFlags(limits.command('show').description('the limits in force, defaults filled in')).action(
    (f: ConnectionFlags) => runCommand('limits show', f, (out) => show(f, out)),
  );
  withConnectionFlags(
    limits
      .command('set')
      .description('replace the limits document (schema: docs/schemas/config.limits.json)')
      .option('--file <path>', 'a JSON file holding the document')
      .option(
        '--limits <document>',
        `the document itself, e.g. '{"v":1,"rates":{"reports":{"perSecond":100,"burst":400}},"overrides":{"bulk-1":"unlimited"}}'`,
      ),
  ).action((f: SetFlags) => runCommand('limits set', f, (out) => set(f, out)));
}
