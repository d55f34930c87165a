/**
 * `agentcom sidecar --config <file>`: the always-on relay between one agent and the hub. Runs until
 * SIGTERM/SIGINT, then says goodbye (the hub reclaims at once) and exits 0; a second signal exits
 * at once. A bad or missing config exits before connecting (2 / 3).
 */
import type { Command } from 'commander';
import { pino } from 'pino';
import { startSidecar } from '../agent/sidecar/main.js';
import { loadSidecarConfig } from '../agent/sidecar-config.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { EXIT } from './exit-codes.js';
import { runCommand } from './run.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function registerSidecarCommand(program: Command): void {
  program
    .command('sidecar')
    .description('run the sidecar for one agent (config written by `agentcom agent add`)')
    .option('--config <file>', 'sidecar config file (env AGENTCOM_SIDECAR_CONFIG)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (env AGENTCOM_LOG_LEVEL)')
    .action(async (flags: { config?: string; logLevel?: string }) => {
      await runCommand('sidecar', {}, async () => {
        const path = flags.config ?? process.env.AGENTCOM_SIDECAR_CONFIG;
        if (!path)
          throw new AgentComError(ERROR_CODES.INVALID_PAYLOAD, 'give the config file: --config <file>', {
            path: ['config'],
          });
        const level = flags.logLevel ?? (process.env.AGENTCOM_LOG_LEVEL || 'info');
        if (!LEVELS.includes(level))
          throw new AgentComError(
            ERROR_CODES.INVALID_PAYLOAD,
            `--log-level must be one of ${LEVELS.join(', ')}`,
            {
              path: ['logLevel'],
            },
          );
        const config = await loadSidecarConfig(path);
        const sidecar = await startSidecar(config, { logger: pino({ level }) });
        let signals = 0;
        const onSignal = () => {
          if (++signals > 1) process.exit(130);
          void sidecar.stop();
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        const reason = await sidecar.exited;
        return reason === 'shutdown' || reason === 'normal' ? EXIT.OK : EXIT.FAILURE;
      });
    });
}
