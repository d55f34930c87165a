/**
 * `agentcom smoke`: the seeds' smoke test (2 agents, 10 tasks) against a live hub.
 */
import type { Command } from 'commander';

export function registerSmokeCommand(program: Command): void {
  program.command('smoke').description("run the seeds' smoke test against a live hub");
}
