/**
 * `agentcom dlq list|show|replay|purge`: the dead-letter queue through the hub's API.
 */
import type { Command } from 'commander';

export function registerDlqCommands(program: Command): void {
  program.command('dlq').description('inspect, replay and purge dead letters');
}
