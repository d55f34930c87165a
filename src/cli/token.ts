/**
 * @module cli/token
 * `agentcom token add|list|revoke`: the HTTP gateway's bearer tokens (docs/gateway.md, "Tokens"),
 * written to the tokens bucket over the CLI's trusted NATS connection. `add` prints the token
 * once; it is not stored, only its hash, so a lost token is revoked and replaced, never recovered.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { createToken, listTokens, openTokensKv, revokeToken } from '../gateway/tokens.js';
import { parseDurationMs } from '../protocol/duration.js';
import { AgentComError, ERROR_CODES, fromZodError } from '../protocol/errors.js';
import { TOKEN_ROLES, type TokenRecord } from '../protocol/token.js';
import { type ConnectionFlags, resolveConnection, withBus, withConnectionFlags } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

interface AddFlags extends ConnectionFlags {
  name: string;
  role: string;
  agent?: string;
  rate?: string;
  ttl?: string;
}

const RateFlag = z
  .string()
  .regex(/^\d+(\.\d+)?(\/\d+)?$/, 'a rate is <per second>[/<burst>], e.g. 20/50')
  .transform((s) => {
    const [per, burst] = s.split('/');
    const perSecond = Number(per);
    return { perSecond, burst: burst !== undefined ? Number(burst) : Math.max(1, Math.ceil(perSecond * 2)) };
  });

const view = ({ hash: _h, ...t }: TokenRecord) => t;
const line = (t: TokenRecord) =>
  `${t.id}  ${t.role.padEnd(9)} ${t.agentId ? `${t.agentId} ` : ''}${t.name}${t.expiresAt ? ` (expires ${new Date(t.expiresAt).toISOString()})` : ''}`;

async function add(f: AddFlags, out: Output): Promise<ExitCode> {
  const role = z.enum(TOKEN_ROLES).safeParse(f.role);
  if (!role.success)
    throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, `--role must be one of ${TOKEN_ROLES.join(', ')}`);
  if ((role.data === 'agent') !== (f.agent !== undefined))
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      'an agent token needs --agent <id>, and only an agent token takes it',
    );
  const rate = f.rate !== undefined ? RateFlag.safeParse(f.rate) : undefined;
  if (rate && !rate.success) throw fromZodError(rate.error, '--rate');
  const ttlMs = f.ttl !== undefined ? (parseDurationMs(f.ttl) ?? Number.NaN) : undefined;
  if (ttlMs !== undefined && !(ttlMs >= 1_000))
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `--ttl: not a duration of a second or more: ${f.ttl}`,
    );
  return withBus(resolveConnection(f), async (bus) => {
    let made: Awaited<ReturnType<typeof createToken>>;
    try {
      made = await createToken(await openTokensKv(bus), {
        name: f.name,
        role: role.data,
        ...(f.agent !== undefined ? { agentId: f.agent } : {}),
        ...(rate?.success ? { rate: rate.data } : {}),
        ...(ttlMs !== undefined ? { ttlMs } : {}),
      });
    } catch (err) {
      throw err instanceof z.ZodError ? fromZodError(err, 'token') : err;
    }
    // The token alone on stdout (TOKEN=$(agentcom token add ...)); what it is, on stderr.
    out.result({ token: made.token, record: view(made.record) }, made.token);
    out.note(
      `token ${made.record.id} (${made.record.role}${made.record.agentId ? ` as ${made.record.agentId}` : ''}): shown this once; send it as "Authorization: Bearer <token>"`,
    );
    return EXIT.OK;
  });
}

async function list(f: ConnectionFlags, out: Output): Promise<ExitCode> {
  return withBus(resolveConnection(f), async (bus) => {
    const tokens = await listTokens(await openTokensKv(bus));
    out.result({ tokens: tokens.map(view) }, tokens.length ? tokens.map(line) : ['no tokens']);
    return EXIT.OK;
  });
}

async function revoke(id: string, f: ConnectionFlags, out: Output): Promise<ExitCode> {
  return withBus(resolveConnection(f), async (bus) => {
    if (!(await revokeToken(await openTokensKv(bus), id)))
      throw new AgentComError(ERROR_CODES.NOT_FOUND, `no token ${id}`);
    out.result({ id, revoked: true }, [`token ${id} revoked; every gateway refuses it now`]);
    return EXIT.OK;
  });
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('bearer tokens of the HTTP gateway (docs/gateway.md)');
  withConnectionFlags(
    token
      .command('add')
      .description('create a token and print it (once)')
      .requiredOption('--name <name>', 'what it is for (shown in lists and logs)')
      .requiredOption('--role <role>', `${TOKEN_ROLES.join(' | ')}`)
      .option('--agent <id>', 'with --role agent: the agent it acts as')
      .option('--rate <rate>', 'requests per second[/burst] (default the gateway’s, 50/100)')
      .option('--ttl <duration>', 'lifetime, e.g. 30d (default: no expiry)'),
  ).action((f: AddFlags) => runCommand('token add', f, (out) => add(f, out)));
  withConnectionFlags(
    token.command('list').description('every token (ids, roles, names; never secrets)'),
  ).action((f: ConnectionFlags) => runCommand('token list', f, (out) => list(f, out)));
  withConnectionFlags(
    token
      .command('revoke')
      .description('revoke a token: every gateway refuses it at once')
      .argument('<id>', 'token id'),
  ).action((id: string, f: ConnectionFlags) => runCommand('token revoke', f, (out) => revoke(id, f, out)));
}
