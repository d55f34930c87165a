/**
 * `agentcom agent add|list|remove`: onboarding agents (credentials, sidecar config) and revoking them.
 */
import type { Command } from 'commander';

export function registerAgentCommands(program: Command): void {
  program.command('agent').description('add, list and remove agents');
}
