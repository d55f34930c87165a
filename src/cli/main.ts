#!/usr/bin/env node
/**
 * The `agentcom` command. Each subcommand validates its flags and environment before doing anything.
 */
import { Command } from 'commander';
import { runHub } from './hub.js';

const program = new Command()
  .name('agentcom')
  .description('AgentCom: OTP-style supervision for XState actors and an agent hub on NATS JetStream');

program
  .command('hub')
  .description('start the hub (spawns and supervises a local nats-server when NATS_URL is not set)')
  .option('--nats-url <url>', 'NATS server to use instead of an embedded one (env NATS_URL)')
  .option('--data-dir <dir>', 'directory for the embedded nats-server store (env AGENTCOM_DATA_DIR)')
  .action(async (opts: { natsUrl?: string; dataDir?: string }) => {
    await runHub(opts);
  });

await program.parseAsync(process.argv);
