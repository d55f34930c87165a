/**
 * @module cli/gateway
 * `agentcom gateway`: the HTTP gateway alone, against any hub (every hub also runs one, unless
 * `--http off`). It is a NATS client like the CLI: it needs the trusted (admin) connection the
 * CLI uses, finds the hub the same way, and runs until SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { pino } from 'pino';
import { z } from 'zod';
import { connectBus } from '../bus/connection.js';
import { readSeedFile } from '../bus/nkeys.js';
import { fromZodError } from '../protocol/errors.js';
import { type ConnectionFlags, resolveConnection, withConnectionFlags } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

interface GatewayFlags extends ConnectionFlags {
  host?: string;
  port?: string;
}

const PortSchema = z.coerce.number().int().min(0).max(65535);

async function run(f: GatewayFlags, out: Output): Promise<ExitCode> {
  const port = PortSchema.safeParse(f.port ?? process.env.AGENTCOM_HTTP_PORT ?? 4280);
  if (!port.success) throw fromZodError(port.error, '--port');
  const conn = resolveConnection(f);
  const log = pino({ level: process.env.AGENTCOM_LOG_LEVEL || 'info', base: { gateway: process.pid } });
  const nkeySeed = conn.nkeyFile ? await readSeedFile(conn.nkeyFile) : undefined;
  // Unlike a one-shot command, a gateway waits for NATS and rides out its restarts.
  const bus = await connectBus({
    servers: conn.servers,
    prefix: conn.prefix,
    name: 'agentcom-gateway',
    logger: log,
    ...(nkeySeed ? { nkeySeed } : {}),
  });
  // Loaded for this command only (fastify, prom-client): other commands start without them.
  const { startGateway } = await import('../gateway/index.js');
  const g = await startGateway({
    bus,
    log,
    host: f.host ?? process.env.AGENTCOM_HTTP_HOST ?? '127.0.0.1',
    port: port.data,
  });
  out.result({ url: g.url }, [`gateway listening on ${g.url} (NATS ${conn.servers}, prefix ${conn.prefix})`]);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await g.close();
  await bus.drain();
  return EXIT.OK;
}

export function registerGatewayCommand(program: Command): void {
  withConnectionFlags(
    program
      .command('gateway')
      .description('run the HTTP gateway alone against a hub (docs/gateway.md)')
      .option('--host <addr>', 'address to bind, default 127.0.0.1 (env AGENTCOM_HTTP_HOST)')
      .option('--port <port>', 'port, default 4280; 0: any free port (env AGENTCOM_HTTP_PORT)'),
  ).action((f: GatewayFlags) => runCommand('gateway', f, (out) => run(f, out)));
}
