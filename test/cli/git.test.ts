/**
 * `agentcom git` as a user runs it (the real command in a child process), against local bare
 * repositories: exit codes and messages of each command's happy path and main failures. The hub
 * path of start-task runs against a real hub and nats-server; everything else passes --title.
 */
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubHandle } from '../../src/hub/main.js';
import { type CliResult, runCli } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { type GitRepos, stubGh, useGitRepos } from '../support/git-repos.js';
import { startTestHub, type TestClient, testClient } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

const TASK_ID = 't0000019a3b2c4f1e2d3c4b5a6978';
const TITLE = 'Fix the login bug';
const BRANCH = 'alice/fix-the-login-bug-5a6978';

interface Fixture extends GitRepos {
  /** `agentcom git <args>` in the agent's clone, with the fixture's environment and `env` over it. */
  cli(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
}

const makeRepos = useGitRepos('agentcom-cli-git-');

async function makeFixture(): Promise<Fixture> {
  const f = await makeRepos();
  // runCli starts `node --import tsx`, which resolves tsx from the working directory: the CLI runs
  // in the agent's clone (to test the default --repo), so tsx must be findable from there.
  await symlink(fileURLToPath(new URL('../../node_modules', import.meta.url)), join(f.dir, 'node_modules'));
  // Nothing the CLI reads may come from the environment the tests run in.
  const env = { ...f.env, AGENTCOM_AGENT_ID: undefined, NATS_URL: undefined, AGENTCOM_PREFIX: undefined };
  return {
    ...f,
    cli: (args, extra = {}) => runCli(['git', ...args], { env: { ...env, ...extra }, cwd: f.agent }),
  };
}

async function branchOf(f: Fixture): Promise<string> {
  return (await f.git(f.agent, 'symbolic-ref', '--short', 'HEAD')).trim();
}

const start = (f: Fixture, ...more: string[]) =>
  f.cli(['start-task', TASK_ID, '--agent', 'alice', '--title', TITLE, ...more]);

describe('agentcom git start-task', () => {
  it('branches <agent>/<slug>-<short> from origin/main and says so', async () => {
    const f = await makeFixture();
    const r = await f.cli(
      ['start-task', TASK_ID, '--agent', 'alice', '--title', TITLE, '--repo', f.agent],
      {},
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`started ${BRANCH}`);
    expect(r.stdout).toContain('from: origin/main at');
    expect(await branchOf(f)).toBe(BRANCH);
  });

  it('takes the agent from AGENTCOM_AGENT_ID and prints JSON with --json', async () => {
    const f = await makeFixture();
    const r = await f.cli(['start-task', TASK_ID, '--title', TITLE, '--json'], {
      AGENTCOM_AGENT_ID: 'alice',
    });
    expect(r.code).toBe(0);
    const out = r.json<{ branch: string; baseCommit: string; taskId: string; warnings: string[] }>();
    expect(out).toMatchObject({ branch: BRANCH, taskId: TASK_ID, warnings: [] });
    expect(out.baseCommit).toBe((await f.git(f.agent, 'rev-parse', 'origin/main')).trim());
  });

  it('branches from the newest origin/main when local main is stale, and warns about local main', async () => {
    const f = await makeFixture();
    await f.pushToMain('feature.txt', 'meanwhile\n');
    const r = await start(f);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'warning: local main is stale: 1 commit(s) behind origin/main (you were on it)',
    );
    const remoteMain = (await f.git(f.origin, 'rev-parse', 'main')).trim();
    expect((await f.git(f.agent, 'rev-parse', 'HEAD')).trim()).toBe(remoteMain);
  });

  it('exits 4 when the fetch fails: refusing to start from a possibly stale main', async () => {
    const f = await makeFixture();
    await rm(f.origin, { recursive: true, force: true });
    const r = await start(f);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(
      /^agentcom git start-task: cannot fetch origin \(.*\): refusing to start from a possibly stale main/,
    );
    expect(await branchOf(f)).toBe('main');
  });

  it('exits 4 on a dirty tree', async () => {
    const f = await makeFixture();
    await writeFile(join(f.agent, 'README.md'), 'edited\n');
    const r = await start(f);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('uncommitted changes (README.md); commit or stash them');
  });

  it('exits 2 on bad flags, a bad task id, no agent id, or a directory that is not a repository', async () => {
    const f = await makeFixture();
    const plain = join(f.dir, 'plain');
    await mkdir(plain);
    // Independent and read-only: run them side by side.
    const [unknown, badId, noAgent, notRepo] = await Promise.all([
      start(f, '--bogus'),
      f.cli(['start-task', 'not.an.id', '--agent', 'alice', '--title', TITLE]),
      f.cli(['start-task', TASK_ID, '--title', TITLE]),
      start(f, '--repo', plain),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--bogus'");

    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain('agentcom git start-task: <task-id>: task id must be 1-64 characters');

    expect(noAgent.code).toBe(2);
    expect(noAgent.stderr).toContain('no agent id: pass --agent <id> or set AGENTCOM_AGENT_ID');

    expect(notRepo.code).toBe(2);
    expect(notRepo.stderr).toContain(`${plain} is not inside a git working tree`);
  });

  it('exits 69 with the connection error when the title must come from an unreachable hub', async () => {
    const f = await makeFixture();
    const r = await f.cli(['start-task', TASK_ID, '--agent', 'alice', '--nats-url', 'nats://127.0.0.1:1']);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain('agentcom git start-task: cannot reach NATS at nats://127.0.0.1:1');
    expect(await branchOf(f)).toBe('main');
  });
});

describe('agentcom git start-task with a hub', () => {
  const nats = useNatsServer();
  let hub: HubHandle | undefined;
  let client: TestClient | undefined;
  const prefix = uniqueName('gitcli').replace(/_/g, '-').toLowerCase();
  beforeAll(async () => {
    hub = await startTestHub(nats.url, prefix);
    client = await testClient(nats.url, prefix);
  });
  afterAll(async () => {
    await client?.close();
    await hub?.stop();
  });

  it("takes the task's title from the hub", async () => {
    const f = await makeFixture();
    if (!client) throw new Error('no hub client');
    const c = client;
    const id = await c.submit({ title: 'Rename the config loader' });
    await eventually(async () => expect(await c.task(id)).not.toBeNull());
    const r = await f.cli(['start-task', id, '--agent', 'bob', '--nats-url', nats.url, '--prefix', prefix]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const branch = `bob/rename-the-config-loader-${id.slice(-6).toLowerCase()}`;
    expect(r.stdout).toContain(`started ${branch}`);
    expect(await branchOf(f)).toBe(branch);
  });

  it('exits 3 for a task the hub does not know, and creates nothing', async () => {
    const f = await makeFixture();
    const r = await f.cli([
      'start-task',
      'tunknown000000',
      '--agent',
      'bob',
      '--nats-url',
      nats.url,
      '--prefix',
      prefix,
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('agentcom git start-task: task tunknown000000 not found');
    expect(await branchOf(f)).toBe('main');
  });
});

describe('agentcom git submit', () => {
  async function started(): Promise<Fixture> {
    const f = await makeFixture();
    expect((await start(f)).code).toBe(0);
    await f.commit('login.ts', 'export const ok = true;\n', 'Check the session before login');
    return f;
  }

  it('pushes and prints the URL of the PR gh opened, with the task title and trailer passed to gh', async () => {
    const f = await started();
    const gh = await stubGh(f, { stdout: 'https://github.com/acme/widgets/pull/7' });
    const r = await f.cli(['submit'], gh.env);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('https://github.com/acme/widgets/pull/7');
    expect(r.stderr).toContain(`pushed ${BRANCH} to origin: 1 commit(s), 1 file changed`);
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
    expect(argv[9]).toContain(`Agentcom-Task: ${TASK_ID}`);
  });

  it('with --no-gh prints where to open the PR, its title and its body', async () => {
    const f = await started();
    const r = await f.cli(['submit', '--no-gh']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`open a pull request from ${BRANCH} into main on origin (${f.origin})`);
    expect(r.stdout).toContain(`title: ${TITLE} [${TASK_ID}]`);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(`Agentcom-Task: ${TASK_ID}`);
    expect((await f.git(f.origin, 'rev-parse', BRANCH)).trim()).toBe(
      (await f.git(f.agent, 'rev-parse', 'HEAD')).trim(),
    );
  });

  it('exits 1 when gh fails after the push, and still prints the way to open the PR', async () => {
    const f = await started();
    const gh = await stubGh(f, { stderr: 'gh: not logged in', exitCode: 1 });
    const r = await f.cli(['submit', '--json'], gh.env);
    expect(r.code).toBe(1);
    expect(r.json()).toMatchObject({ branch: BRANCH, pr: { via: 'manual', ghError: 'gh: not logged in' } });
  });

  it('exits 4 when origin/main moved since the branch started', async () => {
    const f = await started();
    await f.pushToMain('feature.txt', 'meanwhile\n');
    const r = await f.cli(['submit', '--no-gh']);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(
      'agentcom git submit: origin/main has moved since you branched (1 new commit(s)); rebase on origin/main first',
    );
  });

  it('exits 4 on a branch start-task did not make, and 2 on a bad flag', async () => {
    const f = await makeFixture();
    const r = await f.cli(['submit', '--no-gh']);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('main was not made by agentcom git start-task');
    const bad = await f.cli(['submit', '--draft']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown option '--draft'");
  });
});

describe('agentcom git status', () => {
  it('shows branch, task, ahead/behind, changes and uncommitted files, as text and as JSON', async () => {
    const f = await makeFixture();
    expect((await start(f)).code).toBe(0);
    await f.commit('a.ts', 'one\ntwo\n', 'First');
    await writeFile(join(f.agent, 'README.md'), 'edited\n');
    await f.pushToMain('feature.txt', 'meanwhile\n');

    const text = await f.cli(['status']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`branch: ${BRANCH}`);
    expect(text.stdout).toContain(`task:   ${TASK_ID} ${TITLE} (agent alice)`);
    expect(text.stdout).toContain('base:   origin/main (just fetched)');
    expect(text.stdout).toContain('ahead 1, behind 1 (rebase on origin/main)');
    expect(text.stdout).toContain('1 file changed, 2 insertions(+), 0 deletions(-)');
    expect(text.stdout).toContain('uncommitted: 1\n   M README.md');

    const json = await f.cli(['status', '--json']);
    expect(json.code).toBe(0);
    expect(json.json()).toMatchObject({
      branch: BRANCH,
      task: { taskId: TASK_ID },
      ahead: 1,
      behind: 1,
      fetched: true,
      uncommitted: [{ code: ' M', path: 'README.md' }],
    });
  });

  it('succeeds with a warning when the fetch fails', async () => {
    const f = await makeFixture();
    await rm(f.origin, { recursive: true, force: true });
    const r = await f.cli(['status']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: could not fetch origin');
    expect(r.stderr).toContain('the numbers may be stale');
    expect(r.stdout).toContain('branch: main');
  });

  it('exits 2 outside a repository and on a bad --base', async () => {
    const f = await makeFixture();
    const plain = join(f.dir, 'plain');
    await mkdir(plain);
    const r = await f.cli(['status', '--repo', plain]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not inside a git working tree');
    const bad = await f.cli(['status', '--base', 'main..x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('agentcom git status: --base: not a valid git branch name');
  });
});
