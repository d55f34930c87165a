/**
 * `agentcom task submit|list|get|cancel|retry|watch`: tasks through the hub's API.
 */
import type { Command } from 'commander';

/** Registers the `task` group and returns it (the sidecar-relay subcommands are added to it too). */
export function registerTaskCommands(program: Command): Command {
  return program.command('task').description('submit, inspect, cancel and retry tasks');
}
