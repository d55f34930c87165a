/**
 * Real git repositories for tests, no network: a bare `origin.git` in a temp dir whose main a seed
 * clone pushed, the agent's clone of it, and another clone that moves main under the agent. git's
 * global and system config are switched off and the identity is fixed, so the machine's settings do
 * not matter. `stubGh` puts a fake `gh` first on PATH that records its argv: the only stand-in, as
 * the real gh needs the network.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach } from 'vitest';

const execFileP = promisify(execFile);

export interface GitRepos {
  /** The temp dir holding everything; deleted after the test. */
  dir: string;
  /** The bare repository every clone pushes to. */
  origin: string;
  /** The agent's clone, on main. */
  agent: string;
  /** The whole environment git runs in: PATH, HOME = dir, no global or system config, a fixed identity. */
  env: NodeJS.ProcessEnv;
  git(cwd: string, ...args: string[]): Promise<string>;
  /** Commits a file in the agent's clone; returns the new commit. */
  commit(file: string, content: string, message: string): Promise<string>;
  /** Commits a file on main in another clone and pushes it; returns the new commit. */
  pushToMain(file: string, content: string): Promise<string>;
}

/** Registers the clean-up for this test file; the function it returns makes a fresh set of repositories. */
export function useGitRepos(tmpPrefix: string): () => Promise<GitRepos> {
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), tmpPrefix));
    dirs.push(dir);
    return makeGitRepos(dir);
  };
}

async function makeGitRepos(dir: string): Promise<GitRepos> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'Test Author',
    GIT_AUTHOR_EMAIL: 'author@example.test',
    GIT_COMMITTER_NAME: 'Test Committer',
    GIT_COMMITTER_EMAIL: 'committer@example.test',
  };
  const git = async (cwd: string, ...args: string[]) => (await execFileP('git', args, { cwd, env })).stdout;
  const commitIn = async (cwd: string, file: string, content: string, message: string) => {
    await writeFile(join(cwd, file), content);
    await git(cwd, 'add', '--', file);
    await git(cwd, 'commit', '--quiet', '-m', message);
    return (await git(cwd, 'rev-parse', 'HEAD')).trim();
  };
  const origin = join(dir, 'origin.git');
  await git(dir, 'init', '--quiet', '--bare', '-b', 'main', origin);
  const seed = join(dir, 'seed');
  await git(dir, 'init', '--quiet', '-b', 'main', seed);
  await commitIn(seed, 'README.md', 'line one\n', 'Initial commit');
  await git(seed, 'remote', 'add', 'origin', origin);
  await git(seed, 'push', '--quiet', 'origin', 'main');
  const agent = join(dir, 'agent');
  await git(dir, 'clone', '--quiet', origin, agent);
  const other = join(dir, 'other');
  await git(dir, 'clone', '--quiet', origin, other);
  return {
    dir,
    origin,
    agent,
    env,
    git,
    commit: (file, content, message) => commitIn(agent, file, content, message),
    pushToMain: async (file, content) => {
      await git(other, 'pull', '--quiet', '--ff-only');
      const sha = await commitIn(other, file, content, `Add ${file} on main`);
      await git(other, 'push', '--quiet', 'origin', 'main');
      return sha;
    },
  };
}

export interface GhReply {
  stdout?: string;
  stderr?: string;
  exitCode?: number;
}

export interface GhStub {
  /** `repos.env` with the stub's directory first on PATH. */
  env: NodeJS.ProcessEnv;
  /** The arguments of the last `gh` run. */
  argv(): Promise<string[]>;
}

/** A fake `gh` that records its arguments, then prints `reply`'s lines and exits with its code. */
export async function stubGh(repos: Pick<GitRepos, 'dir' | 'env'>, reply: GhReply): Promise<GhStub> {
  const bin = join(repos.dir, 'bin');
  await mkdir(bin, { recursive: true });
  const argvFile = join(repos.dir, 'gh-argv');
  const lines = [
    '#!/bin/sh',
    `for a in "$@"; do printf '%s\\0' "$a"; done > ${sh(argvFile)}`,
    ...(reply.stdout === undefined ? [] : [`printf '%s\\n' ${sh(reply.stdout)}`]),
    ...(reply.stderr === undefined ? [] : [`printf '%s\\n' ${sh(reply.stderr)} >&2`]),
    `exit ${reply.exitCode ?? 0}`,
  ];
  await writeFile(join(bin, 'gh'), `${lines.join('\n')}\n`);
  await chmod(join(bin, 'gh'), 0o755);
  return {
    env: { ...repos.env, PATH: `${bin}${delimiter}${repos.env.PATH ?? ''}` },
    argv: async () => (await readFile(argvFile, 'utf8')).split('\0').slice(0, -1),
  };
}

/** Single-quotes a string for sh. */
function sh(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
