/**
 * @module cli/run
 * The one way a command runs: build its Output, run it, turn any error into a message and a
 * meaningful exit status (exit-codes.ts). Commands return an exit code, or undefined for 0.
 */
import { type ExitCode, exitCodeFor } from './exit-codes.js';
import { Output, toAgentComError } from './output.js';

export async function runCommand(
  command: string,
  flags: { json?: boolean },
  body: (out: Output) => Promise<ExitCode | undefined>,
): Promise<void> {
  const out = new Output(command, flags.json === true);
  try {
    const code = await body(out);
    process.exitCode = code ?? 0;
  } catch (err) {
    out.error(err);
    process.exitCode = exitCodeFor(toAgentComError(err).code);
  }
}
