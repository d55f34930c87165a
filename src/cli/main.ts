#!/usr/bin/env node
/**
 * The `agentcom` command. Each subcommand validates its flags and environment before doing anything.
 */
import { Command } from 'commander';
import { type HubFlags, runHub } from './hub.js';

const program = new Command()
  .name('agentcom')
  .description('AgentCom: OTP-style supervision for XState actors and an agent hub on NATS JetStream');

program
  .command('hub')
  .description('start the hub (spawns and supervises a local nats-server when NATS_URL is not set)')
  .option('--nats-url <url>', 'NATS server to use instead of an embedded one (env NATS_URL)')
  .option('--data-dir <dir>', 'directory for the embedded nats-server store (env AGENTCOM_DATA_DIR)')
  .option('--nats-port <port>', 'port of the embedded nats-server, default 4223 (env AGENTCOM_NATS_PORT)')
  .option('--prefix <prefix>', 'subject/stream prefix, default agentcom (env AGENTCOM_PREFIX)')
  .option('--hub-id <id>', 'this hub instance id (env AGENTCOM_HUB_ID)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env AGENTCOM_LOG_LEVEL)')
  .action(async (flags: HubFlags) => {
    process.exitCode = await runHub(flags);
  });

await program.parseAsync(process.argv);
