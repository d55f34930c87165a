/**
 * What a test's child process prints: one JSON event per stdout line, collected in order, and the
 * tail of its stderr for failure messages. A stdout line that is not JSON becomes `notJson(line)`,
 * or is dropped when that is not given.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const STDERR_TAIL = 4000;

export interface JsonLines<T> {
  readonly events: T[];
  /** The last few KB of stderr. */
  stderr(): string;
}

export function captureJsonLines<T>(proc: ChildProcess, notJson?: (line: string) => T): JsonLines<T> {
  const events: T[] = [];
  let stderr = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_TAIL);
  });
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as T);
    } catch {
      if (notJson) events.push(notJson(line));
    }
  });
  return { events, stderr: () => stderr };
}
