/**
 * `agentcom sidecar`: the always-on relay between one agent and the hub.
 */
import type { Command } from 'commander';

export function registerSidecarCommand(program: Command): void {
  program.command('sidecar').description('run the sidecar for one agent');
}
