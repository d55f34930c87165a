/**
 * `agentcom task complete|fail|progress`: an agent reporting on its task through its sidecar.
 */
import type { Command } from 'commander';

export function registerTaskReportCommands(_task: Command): void {}
