/**
 * @module cli/output
 * How a command speaks: human text on stdout by default, one JSON document per result with
 * `--json` (for scripts), errors on stderr as `agentcom <command>: <message>` (or a JSON
 * `{ "error": { code, message, path } }` with `--json`), and a transient progress line on stderr
 * only when stderr is a terminal, so piped output stays clean.
 */
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';

export interface OutputStreams {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
}

export class Output {
  private progressShown = false;

  constructor(
    readonly command: string,
    readonly json: boolean,
    private readonly streams: OutputStreams = process,
  ) {}

  /** A result: `human` (lines) in text mode, `value` as one JSON document in `--json` mode. */
  result(value: unknown, human: string | string[]): void {
    this.clearProgress();
    if (this.json) this.streams.stdout.write(`${JSON.stringify(value)}\n`);
    else {
      const text = Array.isArray(human) ? human.join('\n') : human;
      if (text) this.streams.stdout.write(`${text}\n`);
    }
  }

  /** A human-only note on stderr (what was done, next steps); silent in `--json` mode. */
  note(text: string): void {
    if (this.json) return;
    this.clearProgress();
    this.streams.stderr.write(`${text}\n`);
  }

  /** A transient status line for long operations; shown only on a terminal, never in `--json`. */
  progress(text: string): void {
    if (this.json || !this.streams.stderr.isTTY) return;
    this.streams.stderr.write(`\r\x1b[2K${text}`);
    this.progressShown = true;
  }

  /** Report an error (structured) on stderr. */
  error(err: unknown): void {
    this.clearProgress();
    const e = toAgentComError(err);
    if (this.json) {
      this.streams.stderr.write(`${JSON.stringify({ error: e.toWire() })}\n`);
    } else {
      this.streams.stderr.write(`agentcom ${this.command}: ${e.message}\n`);
    }
  }

  private clearProgress(): void {
    if (!this.progressShown) return;
    this.streams.stderr.write('\r\x1b[2K');
    this.progressShown = false;
  }
}

/** Any thrown value as a structured error (unknown errors become `internal`). */
export function toAgentComError(err: unknown): AgentComError {
  if (err instanceof AgentComError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AgentComError(ERROR_CODES.INTERNAL, message, { cause: err });
}
