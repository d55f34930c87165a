/**
 * @module agent/git
 * The I/O of `agentcom git`: runs git (and gh) with explicit argv, never through a shell.
 *
 * Guarantees: {@link startTask} creates a branch only from `<remote>/<base>` as fetched a moment
 * before, never from a local branch, and does nothing at all when that fetch fails, the tree has
 * changes to tracked files, an operation (rebase, merge...) is half-way, or the branch exists.
 * {@link submitBranch} pushes only a branch made by startTask, clean, with commits, and built on the
 * newest `<remote>/<base>`. Refusals are returned as values ({@link Outcome}); only unexpected
 * failures (git missing, a git command failing where it cannot) throw.
 *
 * Does not: talk to the hub (the CLI fetches a task's title), retry network operations, resolve
 * conflicts, or prompt: git runs with GIT_TERMINAL_PROMPT=0 so a fetch that needs a password fails
 * instead of waiting for a human who is not there.
 */
import { type ExecFileException, execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import type { AgentId, TaskId } from '../protocol/ids.js';
import {
  type CommitLine,
  compareUrl,
  type DiffStat,
  type GitOperation,
  gitReason,
  metaConfigEntries,
  type Outcome,
  operationAdvice,
  parseConfigList,
  parseLeftRight,
  parseLogLines,
  parseNumstat,
  parsePorcelain,
  prBody,
  prTitle,
  refuse,
  type StatusReport,
  type TaskBranchMeta,
  taskBranchName,
  taskMetaFromConfig,
  trackedChanges,
  type WorkingChange,
} from './git-workflow.js';

const execFileP = promisify(execFile);

/** Where and with which environment git runs. `env` defaults to process.env. */
export interface GitContext {
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

export interface GitRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program; a non-zero exit is a value, not an error. @throws AgentComError when it cannot start. */
async function run(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<GitRun> {
  try {
    const { stdout, stderr } = await execFileP(file, args, {
      cwd,
      env,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as ExecFileException & { stdout?: string; stderr?: string };
    if (typeof e.code === 'number') return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    throw new AgentComError(ERROR_CODES.INTERNAL, `cannot run ${file}: ${e.message}`, { cause: err });
  }
}

/** `git <args>` in the context's directory. */
export function runGit(ctx: GitContext, args: string[]): Promise<GitRun> {
  return run('git', args, ctx.cwd, { ...(ctx.env ?? process.env), GIT_TERMINAL_PROMPT: '0' });
}

/** Runs git where failure means a broken assumption, not a user's situation. @throws AgentComError */
async function mustGit(ctx: GitContext, args: string[]): Promise<string> {
  const r = await runGit(ctx, args);
  if (r.code !== 0)
    throw new AgentComError(ERROR_CODES.INTERNAL, `git ${args[0]} failed: ${gitReason(r.stderr)}`);
  return r.stdout;
}

// --- The repository ---

/** An opened working tree: git commands run at its top level. */
export interface Repo extends GitContext {
  top: string;
}

/** The working tree containing `ctx.cwd`, or a `not_a_repo` refusal (missing directory, bare repo, none). */
export async function openRepo(ctx: GitContext): Promise<Outcome<Repo>> {
  const dir = resolve(ctx.cwd);
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) return refuse('not_a_repo', `${dir} is not a directory`);
  const r = await runGit({ ...ctx, cwd: dir }, ['rev-parse', '--show-toplevel']);
  if (r.code !== 0)
    return refuse('not_a_repo', `${dir} is not inside a git working tree (${gitReason(r.stderr)})`);
  return { ok: true, value: { cwd: r.stdout.trim(), top: r.stdout.trim(), env: ctx.env } };
}

const OPERATION_MARKERS: [marker: string, op: GitOperation][] = [
  ['rebase-merge', 'rebase'],
  ['rebase-apply/applying', 'am'],
  ['rebase-apply', 'rebase'],
  ['MERGE_HEAD', 'merge'],
  ['CHERRY_PICK_HEAD', 'cherry-pick'],
  ['REVERT_HEAD', 'revert'],
  ['BISECT_LOG', 'bisect'],
];

/** The half-done operation in the repository, if any (the markers git itself leaves in its dir). */
export async function operationInProgress(repo: Repo): Promise<GitOperation | null> {
  const args = OPERATION_MARKERS.flatMap(([marker]) => ['--git-path', marker]);
  const paths = (await mustGit(repo, ['rev-parse', ...args])).split('\n');
  for (const [i, [, op]] of OPERATION_MARKERS.entries()) {
    const p = paths[i];
    if (!p) continue;
    const exists = await access(isAbsolute(p) ? p : join(repo.top, p)).then(
      () => true,
      () => false,
    );
    if (exists) return op;
  }
  return null;
}

async function workingChanges(repo: Repo): Promise<WorkingChange[]> {
  return parsePorcelain(await mustGit(repo, ['status', '--porcelain=v1', '-z', '--untracked-files=normal']));
}

async function currentBranch(repo: Repo): Promise<string | null> {
  const r = await runGit(repo, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
  return r.code === 0 ? r.stdout.trim() : null;
}

/** The commit a ref names, or null when it does not exist. */
async function resolveCommit(repo: Repo, ref: string): Promise<string | null> {
  const r = await runGit(repo, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  return r.code === 0 ? r.stdout.trim() : null;
}

async function remoteUrl(repo: Repo, remote: string): Promise<string | null> {
  // The URL as configured, before insteadOf rewriting: the one a person recognises.
  const r = await runGit(repo, ['config', '--get', `remote.${remote}.url`]);
  return r.code === 0 ? r.stdout.trim() : null;
}

/** Commits only in `a` (left) and only in `b` (right); null when either ref is missing. */
async function leftRight(repo: Repo, a: string, b: string): Promise<{ left: number; right: number } | null> {
  const r = await runGit(repo, ['rev-list', '--left-right', '--count', `${a}...${b}`]);
  return r.code === 0 ? parseLeftRight(r.stdout) : null;
}

async function fetchRemote(repo: Repo, remote: string): Promise<{ ok: true } | { ok: false; error: string }> {
  const r = await runGit(repo, ['fetch', '--quiet', remote]);
  return r.code === 0 ? { ok: true } : { ok: false, error: gitReason(r.stderr) };
}

async function diffStat(repo: Repo, from: string, to: string): Promise<DiffStat> {
  return parseNumstat(await mustGit(repo, ['diff', '--numstat', '-z', '-M', from, to]));
}

/** The task metadata of `branch`: present and valid, absent (null), or a refusal when damaged. */
export async function readTaskMeta(repo: Repo, branch: string): Promise<Outcome<TaskBranchMeta | null>> {
  const r = await runGit(repo, ['config', '--local', '-z', '--list']);
  const lookup = taskMetaFromConfig(parseConfigList(r.code === 0 ? r.stdout : ''), branch);
  if (lookup.type === 'none') return { ok: true, value: null };
  if (lookup.type === 'invalid')
    return refuse(
      'not_task_branch',
      `the task metadata of ${branch} in .git/config is damaged (${lookup.message}); start again with agentcom git start-task`,
    );
  return { ok: true, value: lookup.meta };
}

/** Refusals shared by every command that changes something: a half-done operation, tracked changes. */
async function checkQuiet(repo: Repo, doing: string): Promise<Outcome<WorkingChange[]>> {
  const op = await operationInProgress(repo);
  if (op) return refuse('operation_in_progress', `a ${op} is in progress; ${operationAdvice(op)}`);
  const changes = await workingChanges(repo);
  const tracked = trackedChanges(changes);
  if (tracked.length > 0) {
    const sample = tracked
      .slice(0, 5)
      .map((c) => c.path)
      .join(', ');
    return refuse(
      'dirty',
      `the working tree has uncommitted changes (${sample}${tracked.length > 5 ? ', ...' : ''}); commit or stash them before you ${doing}`,
    );
  }
  return { ok: true, value: changes };
}

// --- start-task ---

export interface StartTaskInput {
  agent: AgentId;
  taskId: TaskId;
  title: string;
  remote: string;
  base: string;
}

/** The local copy of the base branch compared with the remote one just fetched. */
export type LocalBaseState =
  | { exists: false }
  | { exists: true; current: boolean; ahead: number; behind: number };

export interface StartTaskResult {
  repo: string;
  branch: string;
  taskId: TaskId;
  title: string;
  agent: AgentId;
  remote: string;
  base: string;
  /** The commit of `<remote>/<base>` the branch starts at. */
  baseCommit: string;
  localBase: LocalBaseState;
  /** Untracked files carried onto the new branch (they were not refused, only counted). */
  untracked: number;
  /** Things a person should know that did not stop the command (a stale local base). */
  warnings: string[];
}

/**
 * Fetches `remote` and creates `<agent>/<slug>-<short>` from `<remote>/<base>`, switches to it and
 * records the task in the branch's config. The new branch tracks nothing until submit pushes it.
 */
export async function startTask(repo: Repo, input: StartTaskInput): Promise<Outcome<StartTaskResult>> {
  const { remote, base } = input;
  const baseRef = `${remote}/${base}`;
  const quiet = await checkQuiet(repo, 'starting a task');
  if (!quiet.ok) return quiet;
  if ((await remoteUrl(repo, remote)) === null)
    return refuse('no_remote', `this repository has no remote named ${remote} (see git remote -v)`);

  const branch = taskBranchName(input);
  if ((await resolveCommit(repo, `refs/heads/${branch}`)) !== null)
    return refuse(
      'branch_exists',
      `branch ${branch} already exists; switch to it (git switch ${branch}) or delete it first`,
    );

  const fetched = await fetchRemote(repo, remote);
  if (!fetched.ok)
    return refuse(
      'fetch_failed',
      `cannot fetch ${remote} (${fetched.error}): refusing to start from a possibly stale ${base}; fix the remote or the network and run start-task again`,
    );
  const baseCommit = await resolveCommit(repo, `refs/remotes/${baseRef}`);
  if (baseCommit === null)
    return refuse('no_base', `${remote} has no branch ${base} (pass --base <branch> to branch from another)`);
  if ((await resolveCommit(repo, `refs/remotes/${remote}/${branch}`)) !== null)
    return refuse(
      'branch_exists',
      `branch ${branch} already exists on ${remote}; someone started this task already (git switch ${branch} to continue it)`,
    );

  const localBase = await localBaseState(repo, base, baseRef);
  const warnings: string[] = [];
  if (localBase.exists && localBase.behind > 0)
    warnings.push(
      `local ${base} is stale: ${localBase.behind} commit(s) behind ${baseRef}${localBase.current ? ' (you were on it)' : ''}; the branch starts from ${baseRef}, not from local ${base}. Update it with: git switch ${base} && git merge --ff-only ${baseRef}`,
    );
  if (localBase.exists && localBase.ahead > 0)
    warnings.push(
      `local ${base} has ${localBase.ahead} commit(s) that are not on ${baseRef}; they are not on the new branch`,
    );

  // --no-track: a branch tracking origin/main would make a bare `git push` or `git pull` touch main.
  const switched = await runGit(repo, ['switch', '--quiet', '--no-track', '-c', branch, baseCommit]);
  if (switched.code !== 0)
    return refuse('switch_failed', `cannot create ${branch} from ${baseRef}: ${gitReason(switched.stderr)}`);
  const meta: TaskBranchMeta = {
    taskId: input.taskId,
    title: input.title,
    agent: input.agent,
    base,
    remote,
  };
  for (const [key, value] of metaConfigEntries(branch, meta))
    await mustGit(repo, ['config', '--local', '--', key, value]);

  return {
    ok: true,
    value: {
      repo: repo.top,
      branch,
      taskId: input.taskId,
      title: input.title,
      agent: input.agent,
      remote,
      base,
      baseCommit,
      localBase,
      untracked: quiet.value.length,
      warnings,
    },
  };
}

async function localBaseState(repo: Repo, base: string, baseRef: string): Promise<LocalBaseState> {
  const local = `refs/heads/${base}`;
  if ((await resolveCommit(repo, local)) === null) return { exists: false };
  const counts = await leftRight(repo, local, `refs/remotes/${baseRef}`);
  return {
    exists: true,
    current: (await currentBranch(repo)) === base,
    ahead: counts?.left ?? 0,
    behind: counts?.right ?? 0,
  };
}

// --- submit ---

/** How the pull request was (or is to be) opened. */
export type PullRequestOutcome =
  | { via: 'gh'; url: string }
  | {
      via: 'manual';
      /** GitHub's compare page, or null for a remote that is not on GitHub. */
      compareUrl: string | null;
      remoteUrl: string | null;
      title: string;
      body: string;
      /** Set when gh was found but failed: the branch is pushed, the PR is not open. */
      ghError?: string;
    };

export interface SubmitResult {
  repo: string;
  branch: string;
  task: TaskBranchMeta;
  commits: CommitLine[];
  diffstat: DiffStat;
  pr: PullRequestOutcome;
}

export interface SubmitOptions {
  /** Path of the gh executable, or null to skip gh. Default: `gh` on the context's PATH. */
  gh?: string | null;
}

/**
 * Pushes the current task branch (`git push -u`) and opens its PR through gh, or returns the
 * compare URL and the body for a person to open it.
 */
export async function submitBranch(repo: Repo, opts: SubmitOptions = {}): Promise<Outcome<SubmitResult>> {
  const quiet = await checkQuiet(repo, 'submitting');
  if (!quiet.ok) return quiet;
  const branch = await currentBranch(repo);
  if (branch === null)
    return refuse('detached', 'HEAD is detached; switch to the task branch made by start-task first');
  const meta = await readTaskMeta(repo, branch);
  if (!meta.ok) return meta;
  if (meta.value === null)
    return refuse(
      'not_task_branch',
      `${branch} was not made by agentcom git start-task; start a task branch with agentcom git start-task <task-id>`,
    );
  const task = meta.value;
  const baseRef = `${task.remote}/${task.base}`;

  const fetched = await fetchRemote(repo, task.remote);
  if (!fetched.ok)
    return refuse(
      'fetch_failed',
      `cannot fetch ${task.remote} (${fetched.error}): cannot tell whether ${baseRef} moved; fix the remote or the network and submit again`,
    );
  const baseCommit = await resolveCommit(repo, `refs/remotes/${baseRef}`);
  if (baseCommit === null) return refuse('no_base', `${task.remote} has no branch ${task.base}`);
  const isAncestor = await runGit(repo, ['merge-base', '--is-ancestor', baseCommit, 'HEAD']);
  if (isAncestor.code !== 0) {
    const counts = await leftRight(repo, baseCommit, 'HEAD');
    return refuse(
      'base_moved',
      `${baseRef} has moved since you branched (${counts?.left ?? 'some'} new commit(s)); rebase on ${baseRef} first: git rebase ${baseRef}, then submit again`,
    );
  }
  const commits = parseLogLines(
    await mustGit(repo, ['log', '--reverse', '--format=%H %s', `${baseCommit}..HEAD`]),
  );
  if (commits.length === 0)
    return refuse('no_commits', `${branch} has no commits beyond ${baseRef}; commit your work first`);
  const diffstat = await diffStat(repo, baseCommit, 'HEAD');

  const pushed = await runGit(repo, [
    'push',
    '--quiet',
    '-u',
    task.remote,
    `refs/heads/${branch}:refs/heads/${branch}`,
  ]);
  if (pushed.code !== 0)
    return refuse('push_failed', `git push to ${task.remote} failed: ${gitReason(pushed.stderr)}`);

  const title = prTitle(task.title, task.taskId);
  const body = prBody({ ...task, branch, commits, diffstat });
  const gh = opts.gh === undefined ? await findOnPath('gh', repo.env ?? process.env) : opts.gh;
  let pr: PullRequestOutcome;
  const url = await remoteUrl(repo, task.remote);
  const manual = {
    via: 'manual' as const,
    compareUrl: url === null ? null : compareUrl(url, task.base, branch),
    remoteUrl: url,
    title,
    body,
  };
  if (gh === null) pr = manual;
  else {
    // The branch is pushed by now: a gh that fails, or cannot even start, leaves a value to report.
    const created = await run(
      gh,
      ['pr', 'create', '--base', task.base, '--head', branch, '--title', title, '--body', body],
      repo.top,
      { ...(repo.env ?? process.env), GH_PROMPT_DISABLED: '1' },
    ).catch((err: unknown) => ({ code: -1, stdout: '', stderr: (err as Error).message }));
    pr =
      created.code === 0
        ? { via: 'gh', url: /https?:\/\/\S+/.exec(created.stdout)?.[0] ?? created.stdout.trim() }
        : { ...manual, ghError: gitReason(created.stderr || created.stdout) };
  }
  return { ok: true, value: { repo: repo.top, branch, task, commits, diffstat, pr } };
}

/** The first executable called `name` on PATH, or null. */
export async function findOnPath(name: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    const ok = await access(candidate, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (ok && (await stat(candidate)).isFile()) return candidate;
  }
  return null;
}

// --- status ---

export interface StatusOptions {
  /** Override the remote and base; default: the task branch's, else origin and main. */
  remote?: string;
  base?: string;
}

/** Where the current branch stands: never refuses once the repository is open; a failed fetch is reported. */
export async function gitStatus(repo: Repo, opts: StatusOptions = {}): Promise<Outcome<StatusReport>> {
  const branch = await currentBranch(repo);
  let task: TaskBranchMeta | null = null;
  if (branch !== null) {
    const meta = await readTaskMeta(repo, branch);
    if (!meta.ok) return meta;
    task = meta.value;
  }
  const remote = opts.remote ?? task?.remote ?? 'origin';
  const base = opts.base ?? task?.base ?? 'main';
  const hasRemote = (await remoteUrl(repo, remote)) !== null;
  const fetched = hasRemote
    ? await fetchRemote(repo, remote)
    : { ok: false as const, error: `no remote named ${remote}` };
  const head = await resolveCommit(repo, 'HEAD');
  const baseCommit = await resolveCommit(repo, `refs/remotes/${remote}/${base}`);
  let counts: { left: number; right: number } | null = null;
  let mergeBase: string | null = null;
  let diffstat: DiffStat | null = null;
  if (head !== null && baseCommit !== null) {
    counts = await leftRight(repo, baseCommit, head);
    const mb = await runGit(repo, ['merge-base', baseCommit, head]);
    if (mb.code === 0) {
      mergeBase = mb.stdout.trim();
      diffstat = await diffStat(repo, mergeBase, head);
    }
  }
  return {
    ok: true,
    value: {
      repo: repo.top,
      branch,
      head,
      task,
      remote,
      base,
      fetched: fetched.ok,
      fetchError: fetched.ok ? null : fetched.error,
      ahead: counts?.right ?? null,
      behind: counts?.left ?? null,
      mergeBase,
      diffstat,
      uncommitted: await workingChanges(repo),
      operation: await operationInProgress(repo),
    },
  };
}
