/**
 * Runs the real `agentcom` command (src/cli/main.ts through tsx) as a child process and captures
 * what a user would see: stdout, stderr and the exit code. `json()` parses stdout of a `--json` run.
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The CLI's entry point and the tsx loader, for tests that spawn a long-running command themselves. */
export const CLI_ENTRY = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const cli = CLI_ENTRY;
// Resolved here, not by the child: a command run in a temp directory must still find tsx.
export const TSX_LOADER = import.meta.resolve('tsx');
const tsx = TSX_LOADER;

/**
 * A user NKey seed in output (a leak): the whole 58-character token, SU and 56 base32 characters.
 * A looser pattern such as /SU[A-Z2-7]{20,}/ also matches inside a random public key (56
 * characters starting with U) that happens to contain "SU", a few percent of keys, which made
 * the leak checks fail at random.
 */
export const USER_SEED_IN_OUTPUT = /(?<![A-Z2-7])SU[A-Z2-7]{56}(?![A-Z2-7])/;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as one JSON document. @throws when it is not JSON. */
  json<T = unknown>(): T;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  /** Kill the command after this long (default 60 s): a hung CLI fails the test instead of the run. */
  timeoutMs?: number;
}

/**
 * Where the CLI looks for a hub.json unless a test says otherwise: nowhere that exists, so that a
 * hub a developer runs in this checkout (`.agentcom/hub.json`) never answers a test's command.
 */
const NO_HUB_FILE_DIR = join(tmpdir(), 'agentcom-tests-no-hub-file');

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {};
  const base = { ...process.env, AGENTCOM_DATA_DIR: NO_HUB_FILE_DIR, ...opts.env };
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', tsx, cli, ...args], {
      env,
      cwd: opts.cwd ?? process.cwd(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      // 'exit' can fire before the pipes are drained; wait for them to close.
      let open = 2;
      const done = () => {
        if (--open > 0) return;
        resolve({
          code,
          stdout,
          stderr,
          json<T>() {
            return JSON.parse(stdout) as T;
          },
        });
      };
      if (child.stdout.closed) done();
      else child.stdout.once('close', done);
      if (child.stderr.closed) done();
      else child.stderr.once('close', done);
    });
    child.stdin.end(opts.input ?? '');
  });
}
