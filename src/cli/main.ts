#!/usr/bin/env node
/**
 * The `agentcom` command. Each subcommand validates its flags and environment before doing anything,
 * prints human text (or JSON with `--json`), and exits with a status from exit-codes.ts. Usage
 * errors (unknown flag, missing argument) exit 2.
 */
import { Command, CommanderError } from 'commander';
import { registerAgentCommands } from './agent.js';
import { registerAlertsCommands } from './alerts.js';
import { registerBackupCommands } from './backup.js';
import { registerChannelCommands } from './channel.js';
import { registerControlCommands } from './control.js';
import { registerDlqCommands } from './dlq.js';
import { registerDoctorCommand } from './doctor.js';
import { EXIT } from './exit-codes.js';
import { registerFieldCommands } from './field.js';
import { registerGatewayCommand } from './gateway.js';
import { registerGitCommands } from './git.js';
import type { HubFlags } from './hub.js';
import { registerInspectCommand } from './inspect.js';
import { registerLimitsCommands } from './limits.js';
import { registerMsgCommands, registerThreadCommands } from './msg.js';
import { registerScheduleCommands } from './schedule.js';
import { registerSidecarCommand } from './sidecar.js';
import { registerSmokeCommand } from './smoke.js';
import { registerTaskCommands } from './task.js';
import { registerTaskReportCommands } from './task-report.js';
import { registerTokenCommands } from './token.js';

const program = new Command()
  .name('agentcom')
  .description('AgentCom: OTP-style supervision for XState actors and an agent hub on NATS JetStream')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('hub')
  .description('start the hub (spawns and supervises a local nats-server when NATS_URL is not set)')
  .option('--nats-url <url>', 'NATS server to use instead of an embedded one (env NATS_URL)')
  .option('--data-dir <dir>', 'directory for the embedded nats-server store (env AGENTCOM_DATA_DIR)')
  .option('--nats-port <port>', 'port of the embedded nats-server, default 4223 (env AGENTCOM_NATS_PORT)')
  .option('--prefix <prefix>', 'subject/stream prefix, default agentcom (env AGENTCOM_PREFIX)')
  .option('--hub-id <id>', 'this hub instance id (env AGENTCOM_HUB_ID)')
  .option(
    '--auth-dir <dir>',
    'NATS users and permissions (e.g. deploy/nats, created if missing); default: no authentication (env AGENTCOM_AUTH_DIR)',
  )
  .option('--http <on|off>', 'the HTTP gateway on this hub, default on (env AGENTCOM_HTTP)')
  .option('--http-host <addr>', 'address the gateway binds, default 127.0.0.1 (env AGENTCOM_HTTP_HOST)')
  .option(
    '--http-port <port>',
    'port of the gateway, default 4280; 0: any free port (env AGENTCOM_HTTP_PORT)',
  )
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env AGENTCOM_LOG_LEVEL)')
  .option(
    '--log-format <format>',
    'pretty (a banner and warnings; the default on a terminal) or json (pino; the default otherwise) (env AGENTCOM_LOG_FORMAT)',
  )
  .action(async (flags: HubFlags) => {
    // Loaded for this command only: every other command starts without the hub's modules.
    const { runHub } = await import('./hub.js');
    process.exitCode = await runHub(flags);
  });

registerSidecarCommand(program);
const task = registerTaskCommands(program);
registerTaskReportCommands(task);
registerAgentCommands(program);
registerDlqCommands(program);
registerScheduleCommands(program);
registerFieldCommands(program);
registerLimitsCommands(program);
registerAlertsCommands(program);
registerControlCommands(program);
registerBackupCommands(program);
registerSmokeCommand(program);
registerDoctorCommand(program);
registerGitCommands(program);
registerGatewayCommand(program);
registerTokenCommands(program);
registerMsgCommands(program);
registerChannelCommands(program);
registerThreadCommands(program);
registerInspectCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Help and version are successes; every other commander error is a usage error.
  const ok =
    err.code === 'commander.helpDisplayed' ||
    err.code === 'commander.version' ||
    err.code === 'commander.help';
  process.exitCode = ok ? EXIT.OK : EXIT.USAGE;
}
