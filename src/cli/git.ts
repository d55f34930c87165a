/**
 * `agentcom git start-task|submit|status`: the branch-from-current-main and PR conventions.
 */
import type { Command } from 'commander';

export function registerGitCommands(program: Command): void {
  program.command('git').description('branch from current main and open PRs the house way');
}
