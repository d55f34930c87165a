/**
 * @module agent/git-workflow
 * The pure half of `agentcom git`: task branch names, the PR title and body, the refusals and their
 * advice, and parsing and formatting what git prints (numstat, porcelain status, config lists,
 * remote URLs). Nothing here runs git or touches files; src/agent/git.ts does the I/O.
 *
 * Guarantees: for every valid agent id and task id and any title, {@link taskBranchName} is a name
 * `git check-ref-format --branch` accepts, and the same inputs always give the same name. It does
 * not guarantee uniqueness: two tasks whose ids end in the same 6 characters and whose titles slug
 * alike get the same branch, which start-task then refuses as "already exists".
 */
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../protocol/errors.js';
import { type AgentId, AgentIdSchema, type TaskId, TaskIdSchema } from '../protocol/ids.js';

// --- Branch names ---

/** Longest slug kept from a title, so branch names stay readable in `git branch` and PR lists. */
export const SLUG_MAX = 40;
/** How many trailing task id characters disambiguate branches of tasks with similar titles. */
export const SHORT_ID_LENGTH = 6;

/** The title lowercased, every run of non-alphanumerics one `-`, trimmed, at most 40 chars; `task` if empty. */
export function taskSlug(title: string): string {
  const slug = title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, SLUG_MAX)
    .replace(/-+$/, '');
  return slug === '' ? 'task' : slug;
}

/** The last 6 characters of a task id, lowercased (ids end in random characters). */
export function shortTaskId(taskId: string): string {
  return taskId.slice(-SHORT_ID_LENGTH).toLowerCase();
}

/**
 * The agent id as a branch's first component. Git refuses branch names that start with `-` (they
 * would read as options), which agent ids may; those dashes are dropped.
 */
export function branchAgentSegment(agent: string): string {
  return agent.replace(/^-+/, '') || 'agent';
}

/** `<agent>/<slug>-<short>`, e.g. `alice/fix-the-login-bug-5a6978`. */
export function taskBranchName(input: { agent: string; taskId: string; title: string }): string {
  return `${branchAgentSegment(input.agent)}/${taskSlug(input.title)}-${shortTaskId(input.taskId)}`;
}

/**
 * A remote name as a flag: no leading `-` (it would read as an option), no whitespace or glob
 * characters. Stricter than git, which is fine for a flag.
 */
export const RemoteNameSchema = z
  .string()
  .regex(/^(?!-)[A-Za-z0-9._/-]{1,100}$/, 'remote name must be 1-100 characters of A-Z a-z 0-9 . _ / -');

/** A base branch name as a flag, within git's ref-name rules for the characters it allows. */
export const BaseBranchSchema = z
  .string()
  .regex(/^(?![-/.])[A-Za-z0-9._/-]{1,200}$/, 'branch name must be 1-200 characters of A-Z a-z 0-9 . _ / -')
  .refine((s) => !/\.\.|\/\/|\/\.|[/.]$|\.lock$/.test(s) && !s.includes('.lock/'), {
    message: 'not a valid git branch name',
  });

// --- Task metadata kept in git config ---

/** The task a branch was started for, stored as `branch.<name>.agentcom-*` in the repo's config. */
export const TaskBranchMetaSchema = z.object({
  taskId: TaskIdSchema,
  title: z.string().min(1),
  agent: AgentIdSchema,
  base: BaseBranchSchema,
  remote: RemoteNameSchema,
});
export type TaskBranchMeta = z.infer<typeof TaskBranchMetaSchema>;

/** Config variable names (git lowercases them; keep them lowercase). */
export const META_KEYS = {
  taskId: 'agentcom-task',
  title: 'agentcom-title',
  agent: 'agentcom-agent',
  base: 'agentcom-base',
  remote: 'agentcom-remote',
} as const satisfies Record<keyof TaskBranchMeta, string>;

/** `branch.<name>.<variable>` for each field, in a fixed order. */
export function metaConfigEntries(branch: string, meta: TaskBranchMeta): [key: string, value: string][] {
  return (Object.keys(META_KEYS) as (keyof TaskBranchMeta)[]).map((k) => [
    `branch.${branch}.${META_KEYS[k]}`,
    meta[k],
  ]);
}

/** `git config -z --list` output: entries are NUL-terminated `key\nvalue` (no `\n` for a bare key). */
export function parseConfigList(z0: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const entry of z0.split('\0')) {
    if (entry === '') continue;
    const nl = entry.indexOf('\n');
    if (nl < 0) entries.set(entry, '');
    else entries.set(entry.slice(0, nl), entry.slice(nl + 1));
  }
  return entries;
}

export type BranchMetaLookup =
  | { type: 'none' }
  | { type: 'ok'; meta: TaskBranchMeta }
  | { type: 'invalid'; message: string };

/** The task metadata of `branch` in a parsed config: absent, valid, or present but damaged. */
export function taskMetaFromConfig(config: Map<string, string>, branch: string): BranchMetaLookup {
  const raw: Partial<Record<keyof TaskBranchMeta, string>> = {};
  let found = 0;
  for (const k of Object.keys(META_KEYS) as (keyof TaskBranchMeta)[]) {
    const v = config.get(`branch.${branch}.${META_KEYS[k]}`);
    if (v !== undefined) {
      raw[k] = v;
      found++;
    }
  }
  if (found === 0) return { type: 'none' };
  const parsed = TaskBranchMetaSchema.safeParse(raw);
  if (parsed.success) return { type: 'ok', meta: parsed.data };
  const issue = parsed.error.issues[0];
  const key = issue?.path[0] as keyof TaskBranchMeta | undefined;
  const where = key ? `branch.${branch}.${META_KEYS[key]}` : `branch.${branch}`;
  return { type: 'invalid', message: `${where}: ${issue?.message ?? 'invalid'}` };
}

// --- Refusals ---

/** Why a command did nothing. Each maps to one wire code (and through it to one exit status). */
export const REFUSAL_CODES = {
  not_a_repo: ERROR_CODES.INVALID_PAYLOAD,
  no_remote: ERROR_CODES.NOT_FOUND,
  no_base: ERROR_CODES.NOT_FOUND,
  fetch_failed: ERROR_CODES.INVALID_STATE,
  dirty: ERROR_CODES.INVALID_STATE,
  operation_in_progress: ERROR_CODES.INVALID_STATE,
  branch_exists: ERROR_CODES.INVALID_STATE,
  switch_failed: ERROR_CODES.INVALID_STATE,
  detached: ERROR_CODES.INVALID_STATE,
  not_task_branch: ERROR_CODES.INVALID_STATE,
  base_moved: ERROR_CODES.INVALID_STATE,
  no_commits: ERROR_CODES.INVALID_STATE,
  push_failed: ERROR_CODES.INVALID_STATE,
} as const satisfies Record<string, ErrorCode>;
export type RefusalReason = keyof typeof REFUSAL_CODES;

export interface Refusal {
  ok: false;
  reason: RefusalReason;
  code: ErrorCode;
  message: string;
}
export type Outcome<T> = { ok: true; value: T } | Refusal;

export function refuse(reason: RefusalReason, message: string): Refusal {
  return { ok: false, reason, code: REFUSAL_CODES[reason], message };
}

/** A git operation that leaves the repository half-way (HEAD detached or the index conflicted). */
export type GitOperation = 'rebase' | 'am' | 'merge' | 'cherry-pick' | 'revert' | 'bisect';

/** What to run to get out of an operation in progress. */
export function operationAdvice(op: GitOperation): string {
  switch (op) {
    case 'rebase':
    case 'am':
    case 'merge':
    case 'cherry-pick':
    case 'revert':
      return `finish it (git ${op} --continue) or abort it (git ${op} --abort) first`;
    case 'bisect':
      return 'end it (git bisect reset) first';
  }
}

/** The first meaningful line of git's stderr, for messages (`fatal: ` and `error: ` dropped). */
export function gitReason(stderr: string): string {
  const line = stderr
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '' && !/^hint:/.test(l));
  return (line ?? 'no message').replace(/^(fatal|error): /, '');
}

// --- Parsing git output ---

export interface FileStat {
  path: string;
  /** The old path of a rename or copy. */
  from?: string;
  /** Lines added and deleted; null for a binary file. */
  added: number | null;
  deleted: number | null;
}

export interface DiffStat {
  files: FileStat[];
  filesChanged: number;
  insertions: number;
  deletions: number;
}

/** `git diff --numstat -z`: `added\tdeleted\tpath\0`, or `added\tdeleted\t\0from\0to\0` for a rename. */
export function parseNumstat(z0: string): DiffStat {
  const tokens = z0.split('\0');
  const files: FileStat[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const m = /^(\d+|-)\t(\d+|-)\t([\s\S]*)$/.exec(tokens[i] ?? '');
    if (!m) continue;
    const added = m[1] === '-' ? null : Number(m[1]);
    const deleted = m[2] === '-' ? null : Number(m[2]);
    if (m[3] === '') {
      const from = tokens[i + 1] ?? '';
      const to = tokens[i + 2] ?? '';
      i += 2;
      files.push({ path: to, from, added, deleted });
    } else files.push({ path: m[3] ?? '', added, deleted });
  }
  return {
    files,
    filesChanged: files.length,
    insertions: files.reduce((n, f) => n + (f.added ?? 0), 0),
    deletions: files.reduce((n, f) => n + (f.deleted ?? 0), 0),
  };
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `2 files changed, 10 insertions(+), 1 deletion(-)`, or `no changes`. */
export function formatDiffSummary(stat: DiffStat): string {
  if (stat.filesChanged === 0) return 'no changes';
  return [
    `${plural(stat.filesChanged, 'file', 'files')} changed`,
    `${plural(stat.insertions, 'insertion', 'insertions')}(+)`,
    `${plural(stat.deletions, 'deletion', 'deletions')}(-)`,
  ].join(', ');
}

/** One line per file: `src/a.ts | +8 -1`, `old => new | +0 -0`, `logo.png | binary`. */
export function formatFileStats(stat: DiffStat, max = Number.POSITIVE_INFINITY): string[] {
  const shown = stat.files.slice(0, max).map((f) => {
    const name = f.from !== undefined ? `${f.from} => ${f.path}` : f.path;
    const counts = f.added === null || f.deleted === null ? 'binary' : `+${f.added} -${f.deleted}`;
    return `${name} | ${counts}`;
  });
  if (stat.files.length > shown.length) shown.push(`... and ${stat.files.length - shown.length} more`);
  return shown;
}

/** One entry of `git status --porcelain=v1`: `code` is the two-letter XY status, `??` untracked. */
export interface WorkingChange {
  code: string;
  path: string;
  /** The old path of a staged rename or copy. */
  from?: string;
}

/** `git status --porcelain=v1 -z`: `XY path\0`, followed by `from\0` for a rename or copy. */
export function parsePorcelain(z0: string): WorkingChange[] {
  const tokens = z0.split('\0');
  const out: WorkingChange[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] ?? '';
    if (t.length < 4) continue;
    const code = t.slice(0, 2);
    const change: WorkingChange = { code, path: t.slice(3) };
    if (code[0] === 'R' || code[0] === 'C') {
      change.from = tokens[i + 1] ?? '';
      i++;
    }
    out.push(change);
  }
  return out;
}

/** Changes to tracked files (staged, unstaged or conflicted); untracked files are not among them. */
export function trackedChanges(changes: WorkingChange[]): WorkingChange[] {
  return changes.filter((c) => c.code !== '??' && c.code !== '!!');
}

export function formatWorkingChange(c: WorkingChange): string {
  return `${c.code} ${c.from !== undefined ? `${c.from} -> ` : ''}${c.path}`;
}

/** `git rev-list --left-right --count A...B` prints `left\tright`: commits only in A, only in B. */
export function parseLeftRight(out: string): { left: number; right: number } | null {
  const m = /^(\d+)\s+(\d+)\s*$/.exec(out.trim());
  return m ? { left: Number(m[1]), right: Number(m[2]) } : null;
}

export interface CommitLine {
  sha: string;
  subject: string;
}

/** `git log --format=%H %s`: one commit per line (a subject never spans lines). */
export function parseLogLines(out: string): CommitLine[] {
  return out
    .split('\n')
    .map((l) => /^([0-9a-f]{7,64}) ?(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ sha: m[1] ?? '', subject: m[2] ?? '' }));
}

// --- Remotes and pull requests ---

/**
 * The GitHub repository a remote URL points at, for the forms git accepts: `https://[user@]github.com/o/r[.git]`,
 * `ssh://git@github.com[:port]/o/r[.git]`, `git://github.com/o/r.git` and scp-like `git@github.com:o/r[.git]`.
 */
export function githubRepoOf(url: string): { owner: string; repo: string } | null {
  const m =
    /^(?:(?:https?|ssh|git):\/\/(?:[^@/]+@)?(?:www\.)?github\.com(?::\d+)?\/|(?:[^@/:]+@)?github\.com:\/?)([A-Za-z0-9-]+)\/([A-Za-z0-9._-]+?)(?:\.git)?\/?$/i.exec(
      url.trim(),
    );
  if (!m?.[1] || !m[2]) return null;
  return { owner: m[1], repo: m[2] };
}

function encodeRef(ref: string): string {
  return ref.split('/').map(encodeURIComponent).join('/');
}

/** GitHub's "open a pull request" page for `branch` into `base`, or null for a non-GitHub remote. */
export function compareUrl(remoteUrl: string, base: string, branch: string): string | null {
  const gh = githubRepoOf(remoteUrl);
  if (!gh) return null;
  return `https://github.com/${gh.owner}/${gh.repo}/compare/${encodeRef(base)}...${encodeRef(branch)}?expand=1`;
}

/** Titles are free text: a PR title and the body's lines must stay one line each. */
function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** `<title> [<task-id>]`. */
export function prTitle(title: string, taskId: string): string {
  return `${oneLine(title)} [${taskId}]`;
}

/** The trailer that ties a PR (and its squash commit) to its task; always the body's last line. */
export function taskTrailer(taskId: string): string {
  return `Agentcom-Task: ${taskId}`;
}

export interface PrBodyInput {
  taskId: TaskId | string;
  title: string;
  agent: AgentId | string;
  base: string;
  remote: string;
  branch: string;
  commits: CommitLine[];
  diffstat: DiffStat;
}

/** Files listed in a PR body before "... and N more". */
export const PR_BODY_MAX_FILES = 50;

/** The PR description (Markdown): the task's metadata, the commits, the diffstat, the trailer. */
export function prBody(i: PrBodyInput): string {
  const commits = i.commits.length
    ? i.commits.map((c) => `- ${c.sha.slice(0, 7)} ${oneLine(c.subject)}`)
    : ['- (none)'];
  const files = formatFileStats(i.diffstat, PR_BODY_MAX_FILES);
  return [
    `Task \`${i.taskId}\`: ${oneLine(i.title)}`,
    '',
    `- Task: \`${i.taskId}\``,
    `- Title: ${oneLine(i.title)}`,
    `- Agent: \`${i.agent}\``,
    `- Base: \`${i.base}\` (branched from \`${i.remote}/${i.base}\`)`,
    `- Branch: \`${i.branch}\``,
    '',
    '### Commits',
    '',
    ...commits,
    '',
    '### Changes',
    '',
    formatDiffSummary(i.diffstat),
    ...(files.length ? ['', '```', ...files, '```'] : []),
    '',
    taskTrailer(String(i.taskId)),
  ].join('\n');
}

// --- Human output ---

export interface StatusReport {
  /** The repository's top-level directory. */
  repo: string;
  /** The current branch, or null when HEAD is detached. */
  branch: string | null;
  /** HEAD's commit, or null on an unborn branch. */
  head: string | null;
  task: TaskBranchMeta | null;
  remote: string;
  base: string;
  /** False when the fetch failed: ahead/behind are then as of the last successful fetch. */
  fetched: boolean;
  fetchError: string | null;
  /** Commits on HEAD not on `<remote>/<base>`, and the reverse; null when either is missing. */
  ahead: number | null;
  behind: number | null;
  mergeBase: string | null;
  /** Committed changes since the merge base with `<remote>/<base>`. */
  diffstat: DiffStat | null;
  uncommitted: WorkingChange[];
  operation: GitOperation | null;
}

/** `agentcom git status` as text, one line per element. */
export function formatStatus(r: StatusReport): string[] {
  const baseRef = `${r.remote}/${r.base}`;
  const lines: string[] = [];
  lines.push(
    `branch: ${r.branch ?? `(detached at ${r.head?.slice(0, 7) ?? 'nothing'})`}${r.operation ? ` (${r.operation} in progress)` : ''}`,
  );
  if (r.task) lines.push(`task:   ${r.task.taskId} ${oneLine(r.task.title)} (agent ${r.task.agent})`);
  else lines.push('task:   none (not a branch made by agentcom git start-task)');
  const freshness = r.fetched ? 'just fetched' : `fetch failed, numbers may be stale: ${r.fetchError ?? ''}`;
  lines.push(`base:   ${baseRef} (${freshness})`);
  if (r.ahead !== null && r.behind !== null) {
    const behind = r.behind > 0 ? `, behind ${r.behind} (rebase on ${baseRef})` : ', behind 0';
    lines.push(`        ahead ${r.ahead}${behind}`);
  } else lines.push(`        ahead/behind unknown (no ${baseRef}, or no commits yet)`);
  if (r.diffstat) {
    lines.push(
      `changes since ${baseRef}${r.mergeBase ? ` (merge base ${r.mergeBase.slice(0, 7)})` : ''}: ${formatDiffSummary(r.diffstat)}`,
    );
    for (const l of formatFileStats(r.diffstat)) lines.push(`  ${l}`);
  }
  if (r.uncommitted.length === 0) lines.push('uncommitted: none (working tree clean)');
  else {
    lines.push(`uncommitted: ${r.uncommitted.length}`);
    for (const c of r.uncommitted) lines.push(`  ${formatWorkingChange(c)}`);
  }
  return lines;
}
