import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  branchAgentSegment,
  compareUrl,
  type DiffStat,
  formatDiffSummary,
  formatStatus,
  githubRepoOf,
  metaConfigEntries,
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
  shortTaskId,
  type TaskBranchMeta,
  taskBranchName,
  taskMetaFromConfig,
  taskSlug,
  trackedChanges,
} from '../../src/agent/git-workflow.js';
import type { AgentId, TaskId } from '../../src/protocol/ids.js';

const TOKEN_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-'.split('');
const token = fc
  .array(fc.constantFrom(...TOKEN_CHARS), { minLength: 1, maxLength: 64 })
  .map((cs) => cs.join(''));

const META: TaskBranchMeta = {
  taskId: 't0000019a3b2c4f1e2d3c4b5a6978' as TaskId,
  title: 'Fix the login bug',
  agent: 'alice' as AgentId,
  base: 'main',
  remote: 'origin',
};

describe('taskSlug', () => {
  it('lowercases, collapses non-alphanumerics to one dash and trims them', () => {
    expect(taskSlug('  Fix the LOGIN bug!! (again)  ')).toBe('fix-the-login-bug-again');
    expect(taskSlug('café/über_naïve')).toBe('caf-ber-na-ve');
  });

  it('keeps at most 40 characters and never ends in a dash after cutting', () => {
    const title = 'a'.repeat(39) + ' b'.repeat(10);
    expect(taskSlug(title)).toBe('a'.repeat(39));
    expect(taskSlug('x'.repeat(100))).toBe('x'.repeat(40));
  });

  it('falls back to "task" when nothing alphanumeric is left', () => {
    expect(taskSlug('')).toBe('task');
    expect(taskSlug('!!! ---  ')).toBe('task');
    expect(taskSlug('日本語')).toBe('task');
  });

  it('is a short run of [a-z0-9] words joined by single dashes, and idempotent', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (title) => {
        const slug = taskSlug(title);
        expect(slug.length).toBeLessThanOrEqual(40);
        expect(slug).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
        expect(taskSlug(slug)).toBe(slug);
      }),
    );
  });
});

describe('taskBranchName', () => {
  it('is <agent>/<slug>-<last 6 of the task id, lowercased>', () => {
    expect(shortTaskId('t0000019a3b2c4f1e2d3c4b5a6978')).toBe('5a6978');
    expect(shortTaskId('ABC')).toBe('abc');
    expect(
      taskBranchName({ agent: 'alice', taskId: 't0000019a3b2c4f1e2d3c4b5a6978', title: 'Fix the login bug' }),
    ).toBe('alice/fix-the-login-bug-5a6978');
    expect(taskBranchName({ agent: 'Bot_7', taskId: 'JOB-42XYZW', title: '' })).toBe('Bot_7/task-42xyzw');
  });

  it('drops leading dashes of the agent id, which git refuses at the start of a branch', () => {
    expect(branchAgentSegment('--x')).toBe('x');
    expect(branchAgentSegment('---')).toBe('agent');
    expect(taskBranchName({ agent: '-bot', taskId: 'abc', title: 't' })).toBe('bot/t-abc');
  });

  it('always has the shape of a valid branch name for valid ids and any title', () => {
    fc.assert(
      fc.property(token, token, fc.string({ maxLength: 120 }), (agent, taskId, title) => {
        const name = taskBranchName({ agent, taskId, title });
        expect(name).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]*\/[a-z0-9][a-z0-9-]*-[a-z0-9_-]{1,6}$/);
        expect(name.length).toBeLessThanOrEqual(64 + 1 + 40 + 1 + 6);
        expect(taskBranchName({ agent, taskId, title })).toBe(name);
      }),
    );
  });
});

describe('prTitle and prBody', () => {
  const diffstat = parseNumstat('3\t1\tsrc/a.ts\0-\t-\tlogo.png\0');
  const commits = [
    { sha: 'a'.repeat(40), subject: 'Check the session before login' },
    { sha: 'b'.repeat(40), subject: 'Add a regression test' },
  ];
  const input = { ...META, branch: 'alice/fix-the-login-bug-5a6978', commits, diffstat };

  it('titles the PR "<title> [<task-id>]" on one line', () => {
    expect(prTitle('Fix the login bug', 't1')).toBe('Fix the login bug [t1]');
    expect(prTitle(' Fix\nthe\tbug ', 't1')).toBe('Fix the bug [t1]');
  });

  it('carries the task id, title, agent, base, commits, diffstat and the trailer', () => {
    const body = prBody(input);
    expect(body).toContain('- Task: `t0000019a3b2c4f1e2d3c4b5a6978`');
    expect(body).toContain('- Title: Fix the login bug');
    expect(body).toContain('- Agent: `alice`');
    expect(body).toContain('- Base: `main` (branched from `origin/main`)');
    expect(body).toContain('- Branch: `alice/fix-the-login-bug-5a6978`');
    expect(body).toContain('- aaaaaaa Check the session before login\n- bbbbbbb Add a regression test');
    expect(body).toContain('2 files changed, 3 insertions(+), 1 deletion(-)');
    expect(body).toContain('src/a.ts | +3 -1');
    expect(body).toContain('logo.png | binary');
    expect(body.split('\n').at(-1)).toBe('Agentcom-Task: t0000019a3b2c4f1e2d3c4b5a6978');
  });

  it('caps the file list so a huge change does not make a huge body', () => {
    const many = parseNumstat(Array.from({ length: 60 }, (_, i) => `1\t0\tf${i}\0`).join(''));
    const body = prBody({ ...input, diffstat: many });
    expect(body).toContain('f49 | +1 -0');
    expect(body).not.toContain('f50 |');
    expect(body).toContain('... and 10 more');
  });

  it('ends with the trailer line and keeps the title on one line, whatever the title', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), token, (title, taskId) => {
        const body = prBody({ ...input, title, taskId });
        const lines = body.split('\n');
        expect(lines.at(-1)).toBe(`Agentcom-Task: ${taskId}`);
        expect(lines.filter((l) => l.startsWith('- Title:'))).toHaveLength(1);
        expect(prTitle(title, taskId)).not.toMatch(/[\r\n]/);
      }),
    );
  });
});

describe('parseNumstat and formatDiffSummary', () => {
  it('reads plain entries, renames (-z: empty path, then from and to) and binary files', () => {
    const stat = parseNumstat(
      '10\t2\tsrc/a.ts\0' + '0\t0\t\0old name.txt\0new name.txt\0' + '-\t-\timg.png\0',
    );
    expect(stat.files).toEqual([
      { path: 'src/a.ts', added: 10, deleted: 2 },
      { path: 'new name.txt', from: 'old name.txt', added: 0, deleted: 0 },
      { path: 'img.png', added: null, deleted: null },
    ]);
    expect(stat).toMatchObject({ filesChanged: 3, insertions: 10, deletions: 2 });
    expect(formatDiffSummary(stat)).toBe('3 files changed, 10 insertions(+), 2 deletions(-)');
  });

  it('says "no changes" for an empty diff and uses singulars', () => {
    expect(formatDiffSummary(parseNumstat(''))).toBe('no changes');
    expect(formatDiffSummary(parseNumstat('1\t1\ta\0'))).toBe(
      '1 file changed, 1 insertion(+), 1 deletion(-)',
    );
  });
});

describe('parsePorcelain', () => {
  it('reads XY codes, renames with their old path, and untracked files', () => {
    const changes = parsePorcelain(' M src/a.ts\0R  b.ts\0a.ts\0?? notes 1.txt\0UU c.ts\0');
    expect(changes).toEqual([
      { code: ' M', path: 'src/a.ts' },
      { code: 'R ', path: 'b.ts', from: 'a.ts' },
      { code: '??', path: 'notes 1.txt' },
      { code: 'UU', path: 'c.ts' },
    ]);
    expect(trackedChanges(changes).map((c) => c.path)).toEqual(['src/a.ts', 'b.ts', 'c.ts']);
  });
});

describe('small parsers', () => {
  it('parseLeftRight reads rev-list --left-right --count', () => {
    expect(parseLeftRight('3\t5\n')).toEqual({ left: 3, right: 5 });
    expect(parseLeftRight('fatal')).toBeNull();
  });

  it('parseLogLines reads "%H %s" lines, empty subjects included', () => {
    expect(parseLogLines(`${'a'.repeat(40)} first: thing\n${'b'.repeat(40)} \n`)).toEqual([
      { sha: 'a'.repeat(40), subject: 'first: thing' },
      { sha: 'b'.repeat(40), subject: '' },
    ]);
  });

  it('operationAdvice says how to get out of each operation', () => {
    expect(operationAdvice('rebase')).toBe(
      'finish it (git rebase --continue) or abort it (git rebase --abort) first',
    );
    expect(operationAdvice('bisect')).toBe('end it (git bisect reset) first');
  });

  it('refuse maps reasons to wire codes: not a repo is a usage error, the rest refusals or not found', () => {
    expect(refuse('not_a_repo', 'x').code).toBe('invalid_payload');
    expect(refuse('fetch_failed', 'x').code).toBe('invalid_state');
    expect(refuse('base_moved', 'x').code).toBe('invalid_state');
    expect(refuse('no_remote', 'x').code).toBe('not_found');
  });
});

describe('task metadata in git config', () => {
  const branch = 'alice/fix-the-login-bug-5a6978';
  const listing = (entries: [string, string][]) => entries.map(([k, v]) => `${k}\n${v}\0`).join('');

  it('round-trips through config entries, with other branches and keys ignored', () => {
    const config = parseConfigList(
      `core.bare\nfalse\0core.flag\0${listing(metaConfigEntries(branch, META))}${listing(metaConfigEntries('bob/x-1', { ...META, agent: 'bob' as AgentId }))}`,
    );
    expect(config.get('core.flag')).toBe('');
    expect(taskMetaFromConfig(config, branch)).toEqual({ type: 'ok', meta: META });
    expect(taskMetaFromConfig(config, 'main')).toEqual({ type: 'none' });
  });

  it('keeps a title with a newline (config values may hold one)', () => {
    const config = parseConfigList(listing(metaConfigEntries(branch, { ...META, title: 'two\nlines' })));
    expect(taskMetaFromConfig(config, branch)).toMatchObject({ type: 'ok', meta: { title: 'two\nlines' } });
  });

  it('reports damaged metadata with the offending key', () => {
    const entries = metaConfigEntries(branch, META).filter(([k]) => !k.endsWith('agentcom-agent'));
    const r = taskMetaFromConfig(parseConfigList(listing(entries)), branch);
    expect(r).toMatchObject({ type: 'invalid' });
    expect(r.type === 'invalid' && r.message).toContain(`branch.${branch}.agentcom-agent`);
  });
});

describe('githubRepoOf and compareUrl', () => {
  it.each([
    'https://github.com/acme/widgets.git',
    'https://github.com/acme/widgets',
    'https://x-token@github.com/acme/widgets.git',
    'ssh://git@github.com/acme/widgets.git',
    'ssh://git@github.com:22/acme/widgets',
    'git@github.com:acme/widgets.git',
    'git://github.com/acme/widgets.git',
  ])('recognises %s', (url) => {
    expect(githubRepoOf(url)).toEqual({ owner: 'acme', repo: 'widgets' });
  });

  it.each([
    '/srv/git/widgets.git',
    'https://gitlab.com/acme/widgets.git',
    'https://github.com.evil.example/acme/widgets',
    'git@github.com:acme',
  ])('does not take %s for GitHub', (url) => {
    expect(githubRepoOf(url)).toBeNull();
    expect(compareUrl(url, 'main', 'a/b')).toBeNull();
  });

  it('points at the compare page of base...branch', () => {
    expect(compareUrl('git@github.com:acme/widgets.git', 'main', 'alice/fix-the-login-bug-5a6978')).toBe(
      'https://github.com/acme/widgets/compare/main...alice/fix-the-login-bug-5a6978?expand=1',
    );
    expect(compareUrl('https://github.com/acme/my.repo', 'release/1.0', 'b')).toBe(
      'https://github.com/acme/my.repo/compare/release/1.0...b?expand=1',
    );
  });
});

describe('formatStatus', () => {
  const diffstat: DiffStat = parseNumstat('8\t1\tsrc/a.ts\0');
  const report: StatusReport = {
    repo: '/r',
    branch: 'alice/fix-the-login-bug-5a6978',
    head: 'c'.repeat(40),
    task: META,
    remote: 'origin',
    base: 'main',
    fetched: true,
    fetchError: null,
    ahead: 2,
    behind: 1,
    mergeBase: 'd'.repeat(40),
    diffstat,
    uncommitted: [
      { code: ' M', path: 'src/b.ts' },
      { code: '??', path: 'notes.txt' },
    ],
    operation: null,
  };

  it('shows branch, task, base, ahead/behind, the diffstat and the uncommitted changes', () => {
    const text = formatStatus(report).join('\n');
    expect(text).toContain('branch: alice/fix-the-login-bug-5a6978');
    expect(text).toContain('task:   t0000019a3b2c4f1e2d3c4b5a6978 Fix the login bug (agent alice)');
    expect(text).toContain('base:   origin/main (just fetched)');
    expect(text).toContain('ahead 2, behind 1 (rebase on origin/main)');
    expect(text).toContain(
      'changes since origin/main (merge base ddddddd): 1 file changed, 8 insertions(+), 1 deletion(-)',
    );
    expect(text).toContain('  src/a.ts | +8 -1');
    expect(text).toContain('uncommitted: 2\n   M src/b.ts\n  ?? notes.txt');
  });

  it('says when the numbers may be stale, when HEAD is detached, and when the tree is clean', () => {
    const text = formatStatus({
      ...report,
      branch: null,
      task: null,
      fetched: false,
      fetchError: 'no route',
      ahead: null,
      behind: null,
      diffstat: null,
      uncommitted: [],
      operation: 'rebase',
    }).join('\n');
    expect(text).toContain('branch: (detached at ccccccc) (rebase in progress)');
    expect(text).toContain('task:   none');
    expect(text).toContain('fetch failed, numbers may be stale: no route');
    expect(text).toContain('ahead/behind unknown');
    expect(text).toContain('uncommitted: none (working tree clean)');
  });
});
