/**
 * `agentcom git start-task|submit|status`: the branch-from-current-main and PR conventions, so the
 * correct workflow is the only one. Flags are validated before git or the hub is touched; every
 * refusal (stale main, dirty tree, base moved...) exits 4 with what to do, a path that is not a
 * git working tree exits 2, an unknown task 3, an unreachable hub 69. The git work itself is in
 * src/agent/git.ts; this file only parses, asks the hub for a title, and prints.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { gitStatus, openRepo, type Repo, startTask, submitBranch } from '../agent/git.js';
import {
  BaseBranchSchema,
  formatDiffSummary,
  formatStatus,
  type Outcome,
  RemoteNameSchema,
} from '../agent/git-workflow.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { AgentIdSchema, TaskIdSchema } from '../protocol/ids.js';
import { TITLE_MAX } from '../protocol/task.js';
import { type ConnectionFlags, resolveConnection, withConnectionFlags, withHub } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

interface StartTaskFlags extends ConnectionFlags {
  agent?: string;
  title?: string;
  repo?: string;
  remote: string;
  base: string;
}
interface SubmitFlags {
  repo?: string;
  gh: boolean;
  json?: boolean;
}
interface StatusFlags {
  repo?: string;
  remote?: string;
  base?: string;
  json?: boolean;
}

const StartTaskArgsSchema = z.object({
  taskId: TaskIdSchema,
  agent: AgentIdSchema,
  title: z.string().trim().min(1, 'must not be empty').max(TITLE_MAX).optional(),
  repo: z.string().min(1),
  remote: RemoteNameSchema,
  base: BaseBranchSchema,
});
const StatusArgsSchema = z.object({
  repo: z.string().min(1),
  remote: RemoteNameSchema.optional(),
  base: BaseBranchSchema.optional(),
});

/** How each validated field is spelled on the command line, for error messages. */
const FLAG_NAMES: Record<string, string> = {
  taskId: '<task-id>',
  agent: '--agent',
  title: '--title',
  repo: '--repo',
  remote: '--remote',
  base: '--base',
};

/** @throws AgentComError `invalid_payload` (exit 2) naming the flag. */
function parseArgs<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = String(issue?.path[0] ?? '');
  throw new AgentComError(
    ERROR_CODES.INVALID_PAYLOAD,
    `${FLAG_NAMES[key] ?? key}: ${issue?.message ?? 'invalid'}`,
    { path: [key] },
  );
}

/** A refusal as the error that carries its exit status; the value otherwise. */
function unwrap<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw new AgentComError(outcome.code, outcome.message);
  return outcome.value;
}

async function repoAt(dir: string | undefined): Promise<Repo> {
  return unwrap(await openRepo({ cwd: dir ?? process.cwd() }));
}

export function registerGitCommands(program: Command): void {
  const git = program.command('git').description('branch from current main and open PRs the house way');

  withConnectionFlags(
    git
      .command('start-task')
      .description('fetch, then branch <agent>/<task-slug> from the current <remote>/<base>')
      .argument('<task-id>', 'the task to work on')
      .option('--agent <id>', 'your agent id (env AGENTCOM_AGENT_ID)')
      .option('--title <text>', "the task's title (default: asked from the hub)")
      .option('--repo <dir>', 'the repository (default: the current directory)')
      .option('--remote <name>', 'the remote to fetch and branch from', 'origin')
      .option('--base <branch>', 'the branch on the remote to start from', 'main'),
  ).action((taskId: string, flags: StartTaskFlags) =>
    runCommand('git start-task', flags, (out) => startTaskCommand(taskId, flags, out)),
  );

  git
    .command('submit')
    .description('push the task branch and open its pull request (gh when present)')
    .option('--repo <dir>', 'the repository (default: the current directory)')
    .option('--no-gh', 'do not use gh; print the compare URL and the PR body instead')
    .option('--json', 'print the result as JSON')
    .action((flags: SubmitFlags) => runCommand('git submit', flags, (out) => submitCommand(flags, out)));

  git
    .command('status')
    .description('branch, task, ahead/behind the base, changes since it, uncommitted changes')
    .option('--repo <dir>', 'the repository (default: the current directory)')
    .option('--remote <name>', "the remote (default: the task branch's, else origin)")
    .option('--base <branch>', "the base branch (default: the task branch's, else main)")
    .option('--json', 'print the result as JSON')
    .action((flags: StatusFlags) => runCommand('git status', flags, (out) => statusCommand(flags, out)));
}

async function startTaskCommand(taskId: string, flags: StartTaskFlags, out: Output): Promise<undefined> {
  const agent = flags.agent ?? (process.env.AGENTCOM_AGENT_ID || undefined);
  if (agent === undefined)
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      'no agent id: pass --agent <id> or set AGENTCOM_AGENT_ID',
      {
        path: ['agent'],
      },
    );
  const args = parseArgs(StartTaskArgsSchema, {
    taskId,
    agent,
    title: flags.title,
    repo: flags.repo ?? process.cwd(),
    remote: flags.remote,
    base: flags.base,
  });
  // Validate the connection flags even before the repository: nothing is attempted with bad flags.
  const conn = args.title === undefined ? resolveConnection(flags) : undefined;
  const repo = await repoAt(args.repo);

  let title = args.title;
  if (title === undefined && conn) {
    out.progress(`asking the hub for task ${args.taskId}`);
    title = await withHub(flags, async (hub) => (await hub.get(args.taskId)).title);
  }
  out.progress(`fetching ${args.remote}`);
  const r = unwrap(
    await startTask(repo, {
      agent: args.agent,
      taskId: args.taskId,
      title: title ?? '',
      remote: args.remote,
      base: args.base,
    }),
  );
  for (const w of r.warnings) out.note(`warning: ${w}`);
  out.result(r, [
    `started ${r.branch}`,
    `  task: ${r.taskId} ${r.title} (agent ${r.agent})`,
    `  from: ${r.remote}/${r.base} at ${r.baseCommit.slice(0, 7)} (just fetched)`,
  ]);
  return undefined;
}

async function submitCommand(flags: SubmitFlags, out: Output): Promise<ExitCode | undefined> {
  const repo = await repoAt(flags.repo);
  out.progress('fetching, checking and pushing');
  const r = unwrap(await submitBranch(repo, flags.gh ? {} : { gh: null }));
  out.note(
    `pushed ${r.branch} to ${r.task.remote}: ${r.commits.length} commit(s), ${formatDiffSummary(r.diffstat)}`,
  );
  if (r.pr.via === 'gh') {
    out.result(r, r.pr.url);
    return undefined;
  }
  if (r.pr.ghError) out.note(`gh pr create failed (${r.pr.ghError}); open the pull request yourself:`);
  const where =
    r.pr.compareUrl ??
    `open a pull request from ${r.branch} into ${r.task.base} on ${r.task.remote} (${r.pr.remoteUrl ?? 'no URL'})`;
  out.result(r, [where, '', `title: ${r.pr.title}`, '', r.pr.body]);
  // The branch is pushed but the PR gh was asked to open is not: scripts must notice.
  return r.pr.ghError ? EXIT.FAILURE : undefined;
}

async function statusCommand(flags: StatusFlags, out: Output): Promise<undefined> {
  const args = parseArgs(StatusArgsSchema, {
    repo: flags.repo ?? process.cwd(),
    remote: flags.remote,
    base: flags.base,
  });
  const repo = await repoAt(args.repo);
  out.progress('fetching');
  const report = unwrap(
    await gitStatus(repo, {
      ...(args.remote ? { remote: args.remote } : {}),
      ...(args.base ? { base: args.base } : {}),
    }),
  );
  if (!report.fetched)
    out.note(`warning: could not fetch ${report.remote} (${report.fetchError}); the numbers may be stale`);
  out.result(report, formatStatus(report));
  return undefined;
}
