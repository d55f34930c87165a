/**
 * The git workflow against real repositories: a bare `origin.git` in a temp dir, the agent's clone,
 * and a second clone that moves main under it. No network; git's global and system config are
 * switched off so the machine's settings do not matter.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  gitStatus,
  openRepo,
  type Repo,
  readTaskMeta,
  startTask,
  submitBranch,
} from '../../src/agent/git.js';
import { formatStatus, type Outcome, taskBranchName } from '../../src/agent/git-workflow.js';
import type { AgentId, TaskId } from '../../src/protocol/ids.js';
import { type GitRepos, stubGh, useGitRepos } from '../support/git-repos.js';

const TASK_ID = 't0000019a3b2c4f1e2d3c4b5a6978' as TaskId;
const TITLE = 'Fix the login bug';
const BRANCH = 'alice/fix-the-login-bug-5a6978';
const START = { agent: 'alice' as AgentId, taskId: TASK_ID, title: TITLE, remote: 'origin', base: 'main' };

interface Fixture extends GitRepos {
  repo(): Promise<Repo>;
}

const makeRepos = useGitRepos('agentcom-git-');

async function makeFixture(): Promise<Fixture> {
  const f = await makeRepos();
  return { ...f, repo: async () => ok(await openRepo({ cwd: f.agent, env: f.env })) };
}

function ok<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw new Error(`expected success, got ${outcome.reason}: ${outcome.message}`);
  return outcome.value;
}

async function head(f: Fixture, ref = 'HEAD'): Promise<string> {
  return (await f.git(f.agent, 'rev-parse', ref)).trim();
}

describe('openRepo', () => {
  it('refuses a directory that is not a git working tree, and one that does not exist', async () => {
    const f = await makeFixture();
    const plain = join(f.dir, 'plain');
    await mkdir(plain);
    for (const cwd of [plain, join(f.dir, 'missing'), f.origin]) {
      const r = await openRepo({ cwd, env: f.env });
      expect(r).toMatchObject({ ok: false, reason: 'not_a_repo', code: 'invalid_payload' });
    }
  });

  it('opens the top level from a subdirectory', async () => {
    const f = await makeFixture();
    await mkdir(join(f.agent, 'sub'));
    const repo = ok(await openRepo({ cwd: join(f.agent, 'sub'), env: f.env }));
    expect(repo.top).toBe(f.agent);
  });
});

describe('startTask', () => {
  it('branches <agent>/<slug>-<short> from origin/main, tracking nothing, and records the task', async () => {
    const f = await makeFixture();
    const repo = await f.repo();
    const r = ok(await startTask(repo, START));
    expect(r.branch).toBe(BRANCH);
    expect(r.baseCommit).toBe(await head(f, 'origin/main'));
    expect((await f.git(f.agent, 'symbolic-ref', '--short', 'HEAD')).trim()).toBe(BRANCH);
    expect(await head(f)).toBe(r.baseCommit);
    // No upstream: a bare `git push` must not be able to push onto main.
    await expect(f.git(f.agent, 'rev-parse', '--abbrev-ref', '@{upstream}')).rejects.toThrow();
    expect(ok(await readTaskMeta(repo, BRANCH))).toEqual({
      taskId: TASK_ID,
      title: TITLE,
      agent: 'alice',
      base: 'main',
      remote: 'origin',
    });
    expect(r.warnings).toEqual([]);
  });

  it('makes branch names git accepts for any valid agent id, task id and title', async () => {
    const f = await makeFixture();
    const chars = 'abcXYZ019_-'.split('');
    const id = fc.array(fc.constantFrom(...chars), { minLength: 1, maxLength: 64 }).map((c) => c.join(''));
    await fc.assert(
      fc.asyncProperty(id, id, fc.string({ maxLength: 80 }), async (agent, taskId, title) => {
        const name = taskBranchName({ agent, taskId, title });
        const checked = await f.git(f.dir, 'check-ref-format', '--branch', name);
        expect(checked.trim()).toBe(name);
      }),
      { numRuns: 60 },
    );
  });

  it('starts from the newest origin/main when local main is stale, and says local main is stale', async () => {
    const f = await makeFixture();
    const oldMain = await head(f, 'main');
    const newest = await f.pushToMain('feature.txt', 'from another agent\n');
    const r = ok(await startTask(await f.repo(), START));
    expect(r.baseCommit).toBe(newest);
    expect(await head(f)).toBe(newest);
    expect(r.localBase).toEqual({ exists: true, current: true, ahead: 0, behind: 1 });
    expect(r.warnings.join('\n')).toContain(
      'local main is stale: 1 commit(s) behind origin/main (you were on it)',
    );
    // Local main is left alone: updating it is the person's call.
    expect(await head(f, 'refs/heads/main')).toBe(oldMain);
  });

  it('refuses when the fetch fails: it cannot prove main is current', async () => {
    const f = await makeFixture();
    const repo = await f.repo();
    await rm(f.origin, { recursive: true, force: true });
    const r = await startTask(repo, START);
    expect(r).toMatchObject({ ok: false, reason: 'fetch_failed', code: 'invalid_state' });
    expect(!r.ok && r.message).toContain('refusing to start from a possibly stale main');
    expect((await f.git(f.agent, 'branch', '--list', 'alice/*')).trim()).toBe('');
  });

  it('refuses a tree with uncommitted changes to tracked files, but not untracked files', async () => {
    const f = await makeFixture();
    const repo = await f.repo();
    await writeFile(join(f.agent, 'scratch.txt'), 'untracked\n');
    await writeFile(join(f.agent, 'README.md'), 'edited\n');
    const r = await startTask(repo, START);
    expect(r).toMatchObject({ ok: false, reason: 'dirty' });
    expect(!r.ok && r.message).toContain('uncommitted changes (README.md); commit or stash them');
    await f.git(f.agent, 'checkout', '--', 'README.md');
    expect(ok(await startTask(repo, START)).untracked).toBe(1);
  });

  it('refuses a branch that already exists', async () => {
    const f = await makeFixture();
    const repo = await f.repo();
    ok(await startTask(repo, START));
    await f.git(f.agent, 'switch', '--quiet', 'main');
    const r = await startTask(repo, START);
    expect(r).toMatchObject({ ok: false, reason: 'branch_exists' });
    expect(!r.ok && r.message).toContain(`git switch ${BRANCH}`);
  });

  it('refuses mid-rebase (HEAD detached, conflicts in the index)', async () => {
    const f = await makeFixture();
    const repo = await f.repo();
    await f.git(f.agent, 'switch', '--quiet', '-c', 'side');
    await f.commit('README.md', 'side\n', 'Side change');
    await f.git(f.agent, 'switch', '--quiet', 'main');
    await f.commit('README.md', 'main\n', 'Main change');
    await f.git(f.agent, 'switch', '--quiet', 'side');
    await expect(f.git(f.agent, 'rebase', 'main')).rejects.toThrow();
    const r = await startTask(repo, START);
    expect(r).toMatchObject({ ok: false, reason: 'operation_in_progress' });
    expect(!r.ok && r.message).toContain('a rebase is in progress; finish it (git rebase --continue)');
  });

  it('refuses a remote or base branch that does not exist', async () => {
    const f = await makeFixture();
    const repo = await f.repo();
    expect(await startTask(repo, { ...START, remote: 'upstream' })).toMatchObject({
      ok: false,
      reason: 'no_remote',
    });
    expect(await startTask(repo, { ...START, base: 'develop' })).toMatchObject({
      ok: false,
      reason: 'no_base',
    });
  });
});

describe('submitBranch', () => {
  async function startedWithCommit(f: Fixture): Promise<Repo> {
    const repo = await f.repo();
    ok(await startTask(repo, START));
    await f.commit('login.ts', 'export const ok = true;\n', 'Check the session before login');
    return repo;
  }

  it('pushes and opens the PR through gh with the title and a body ending in the trailer', async () => {
    const f = await makeFixture();
    const gh = await stubGh(f, { stdout: 'https://github.com/acme/widgets/pull/7' });
    await startedWithCommit(f);
    const repo = ok(await openRepo({ cwd: f.agent, env: gh.env }));
    const r = ok(await submitBranch(repo));
    expect(r.pr).toEqual({ via: 'gh', url: 'https://github.com/acme/widgets/pull/7' });
    const argv = await gh.argv();
    expect(argv.slice(0, 8)).toEqual([
      'pr',
      'create',
      '--base',
      'main',
      '--head',
      BRANCH,
      '--title',
      `${TITLE} [${TASK_ID}]`,
    ]);
    expect(argv[8]).toBe('--body');
    const body = argv[9] ?? '';
    expect(body).toContain(`- ${(await head(f)).slice(0, 7)} Check the session before login`);
    expect(body).toContain('1 file changed, 1 insertion(+), 0 deletions(-)');
    expect(body.split('\n').at(-1)).toBe(`Agentcom-Task: ${TASK_ID}`);
    // The branch is on origin at HEAD, and now tracks it.
    const pushed = await f.git(f.origin, 'rev-parse', `refs/heads/${BRANCH}`);
    expect(pushed.trim()).toBe(await head(f));
    expect((await f.git(f.agent, 'rev-parse', '--abbrev-ref', '@{upstream}')).trim()).toBe(
      `origin/${BRANCH}`,
    );
  });

  it('without gh, returns the GitHub compare URL and the body', async () => {
    const f = await makeFixture();
    const github = 'https://github.com/acme/widgets.git';
    // The remote reads as GitHub, but git is redirected to the local bare repository.
    await f.git(f.agent, 'config', `url.${f.origin}.insteadOf`, github);
    await f.git(f.agent, 'remote', 'set-url', 'origin', github);
    const repo = await startedWithCommit(f);
    const r = ok(await submitBranch(repo, { gh: null }));
    expect(r.pr).toMatchObject({
      via: 'manual',
      compareUrl: `https://github.com/acme/widgets/compare/main...${BRANCH}?expand=1`,
      title: `${TITLE} [${TASK_ID}]`,
    });
    expect(r.pr.via === 'manual' && r.pr.body).toContain(`Agentcom-Task: ${TASK_ID}`);
    expect((await f.git(f.origin, 'rev-parse', `refs/heads/${BRANCH}`)).trim()).toBe(await head(f));
  });

  it('without gh and a non-GitHub remote, has no compare URL but the remote and the body', async () => {
    const f = await makeFixture();
    const repo = await startedWithCommit(f);
    const r = ok(await submitBranch(repo, { gh: null }));
    expect(r.pr).toMatchObject({ via: 'manual', compareUrl: null, remoteUrl: f.origin });
  });

  it('refuses when main moved since the branch started: rebase first', async () => {
    const f = await makeFixture();
    const repo = await startedWithCommit(f);
    await f.pushToMain('feature.txt', 'meanwhile\n');
    const r = await submitBranch(repo, { gh: null });
    expect(r).toMatchObject({ ok: false, reason: 'base_moved', code: 'invalid_state' });
    expect(!r.ok && r.message).toContain('rebase on origin/main first');
    await expect(f.git(f.origin, 'rev-parse', '--verify', `refs/heads/${BRANCH}`)).rejects.toThrow();
  });

  it('refuses a branch with no commits beyond the base, a branch start-task did not make, and a dirty tree', async () => {
    const f = await makeFixture();
    const repo = await f.repo();
    expect(await submitBranch(repo, { gh: null })).toMatchObject({ ok: false, reason: 'not_task_branch' });
    ok(await startTask(repo, START));
    expect(await submitBranch(repo, { gh: null })).toMatchObject({ ok: false, reason: 'no_commits' });
    await writeFile(join(f.agent, 'README.md'), 'edited\n');
    expect(await submitBranch(repo, { gh: null })).toMatchObject({ ok: false, reason: 'dirty' });
  });
});

describe('gitStatus', () => {
  it('reports the task, ahead/behind origin/main, the diffstat since the merge base and uncommitted changes', async () => {
    const f = await makeFixture();
    const repo = await f.repo();
    ok(await startTask(repo, START));
    const mergeBase = await head(f);
    await f.commit('a.ts', 'one\ntwo\n', 'First');
    await f.commit('b.ts', 'three\n', 'Second');
    await writeFile(join(f.agent, 'README.md'), 'edited\n');
    await writeFile(join(f.agent, 'notes.txt'), 'scratch\n');
    await f.pushToMain('feature.txt', 'meanwhile\n');

    const r = ok(await gitStatus(repo));
    expect(r).toMatchObject({
      branch: BRANCH,
      task: { taskId: TASK_ID, title: TITLE },
      remote: 'origin',
      base: 'main',
      fetched: true,
      ahead: 2,
      behind: 1,
      mergeBase,
      diffstat: { filesChanged: 2, insertions: 3, deletions: 0 },
      uncommitted: [
        { code: ' M', path: 'README.md' },
        { code: '??', path: 'notes.txt' },
      ],
      operation: null,
    });
    const text = formatStatus(r).join('\n');
    expect(text).toContain('ahead 2, behind 1');
    expect(text).toContain('2 files changed, 3 insertions(+), 0 deletions(-)');
  });

  it('still answers when the fetch fails, saying the numbers may be stale', async () => {
    const f = await makeFixture();
    const repo = await f.repo();
    await rm(f.origin, { recursive: true, force: true });
    const r = ok(await gitStatus(repo));
    expect(r).toMatchObject({ branch: 'main', task: null, fetched: false, ahead: 0, behind: 0 });
    expect(r.fetchError).toMatch(/origin\.git/);
  });
});
