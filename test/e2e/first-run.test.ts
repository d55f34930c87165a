/**
 * The first ten minutes, as a newcomer has them: a fresh clone, `npm ci`, then `npx agentcom`
 * (no build step), a hub started in a directory of its own with no flags but a port, the CLI
 * finding it from there with no --nats-url, turning authentication on (refused against the plain
 * hub before anything is written; the tasks submitted before are still there afterwards), adding
 * an agent whose wake script calls `agentcom task complete`, and a task done end to end. Every
 * command is the real one, run as a separate process the way a shell runs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/bus/nats-server.js';
import { waitUntil } from '../support/eventually.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The environment of a new user's shell: nothing of ours set, and not the variables `npm test`
 * sets for its own script (npm's config, such as where its cache is, stays).
 */
function userEnv(): Record<string, string> {
  const ours = (k: string) =>
    k.startsWith('AGENTCOM_') ||
    k === 'NATS_URL' ||
    k.startsWith('npm_package_') ||
    k.startsWith('npm_lifecycle_');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !ours(k)) env[k] = v;
  return env;
}

interface Run {
  code: number | null;
  out: string;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', reject);
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** A long-running command (hub, sidecar) whose output lines are kept. */
function background(cmd: string, args: string[], cwd: string) {
  const p = spawn(cmd, args, { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: p.stdout! }).on('line', (l) => lines.push(l));
  createInterface({ input: p.stderr! }).on('line', (l) => lines.push(l));
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  return {
    p,
    lines,
    exited,
    waitFor: (what: string, test: (l: string) => boolean, timeout = 60_000) =>
      waitUntil(
        () => {
          if (p.exitCode !== null)
            throw new Error(`${cmd} exited ${p.exitCode}: ${lines.slice(-8).join('\n')}`);
          return lines.some(test);
        },
        what,
        { timeout },
      ),
    async stop() {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      return exited;
    },
  };
}

describe('the first ten minutes, from a fresh clone', { timeout: 300_000 }, () => {
  let root: string;
  let clone: string;
  let work: string;
  let agentcom: string;
  const procs: ChildProcess[] = [];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agentcom-first-run-'));
    clone = join(root, 'clone');
    work = join(root, 'work');
    agentcom = join(clone, 'bin', 'agentcom');
  });

  afterAll(async () => {
    // A hub stopped gracefully stops its nats-server; SIGKILL only what did not stop in time (a
    // SIGKILLed hub would leave its server running).
    const running = procs.filter((p) => p.exitCode === null && p.signalCode === null);
    await Promise.all(
      running.map(
        (p) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              p.kill('SIGKILL');
              resolve();
            }, 20_000);
            p.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    await rm(root, { recursive: true, force: true });
  }, 30_000);

  it('npm ci leaves a working `npx agentcom`, with no engine warning; generated files pass the lint', async () => {
    expect((await run('git', ['clone', '-q', repo, clone], root)).code).toBe(0);
    // From the npm cache CI's own `npm ci` filled: no network, the same lockfile.
    const ci = await run(
      'npm',
      ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'],
      clone,
      240_000,
    );
    expect(ci.out).not.toContain('EBADENGINE');
    expect(ci.code, ci.out).toBe(0);
    // What `agent add` and the hub generate (git-ignored, unformatted) never fails the lint step.
    await mkdir(join(clone, 'deploy/nats/agents/w1'), { recursive: true });
    await mkdir(join(clone, '.agentcom'), { recursive: true });
    await writeFile(join(clone, 'deploy/nats/agents.json'), '{"v":1,  "agents" :[]}');
    await writeFile(join(clone, 'deploy/nats/agents/w1/sidecar.json'), '{"agentId":"w1",  "x" :1}');
    await writeFile(join(clone, '.agentcom/hub.json'), '{"v":1,  "natsUrl" :"nats://127.0.0.1:4223"}');
    const lint = await run('npx', ['biome', 'check', '.'], clone);
    expect(lint.code, lint.out).toBe(0);
    const help = await run('npx', ['agentcom', '--help'], clone);
    expect(help.code, help.out).toBe(0);
    expect(help.out).toContain('Usage: agentcom');
    expect(help.out).not.toContain('Cannot find module');
  });

  it('runs a hub, finds it without flags, turns auth on keeping the tasks, and an agent does one', async () => {
    expect(existsSync(agentcom)).toBe(true);
    await mkdir(work, { recursive: true });
    const port = String(await freePort());

    // 1. A plain hub, as `npm start` runs it, here with its banner.
    // (Its gateway on a free port: 4280 may be taken on a developer's machine.)
    let hub = background(
      agentcom,
      ['hub', '--nats-port', port, '--http-port', '0', '--log-format', 'pretty'],
      work,
    );
    procs.push(hub.p);
    await hub.waitFor('the banner says ready', (l) => l.startsWith('ready.'));
    const banner = hub.lines.join('\n');
    expect(banner).toContain(`nats://127.0.0.1:${port} (embedded nats-server`);
    expect(banner).toMatch(/auth\s+off/);
    expect(banner).toMatch(/role\s+leader/);
    const gateway = /HTTP\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(banner)?.[1];
    expect(gateway, banner).toBeDefined();
    expect((await fetch(`${gateway}/healthz`)).status).toBe(200);

    // 2. The CLI finds it from the same directory: no --nats-url.
    const before = await run(agentcom, ['task', 'submit', 'written before auth'], work);
    expect(before.code, before.out).toBe(0);
    const beforeId = before.out.split('\n')[0]!.trim();
    expect(beforeId).toMatch(/^[a-z0-9]{10,}$/);

    // A second hub on the same data directory, with auth and another port, is refused before it
    // moves the store from under the running one.
    const second = await run(
      agentcom,
      ['hub', '--nats-port', String(await freePort()), '--auth-dir', 'auth-2', '--log-format', 'json'],
      work,
    );
    expect(second.code, second.out).toBe(2);
    expect(second.out).toContain('is in use');
    expect(existsSync(join(work, '.agentcom/nats/jetstream/$G'))).toBe(true);
    expect(existsSync(join(work, 'auth-2'))).toBe(false); // refused before writing anything
    expect((await run(agentcom, ['task', 'get', beforeId], work)).code).toBe(0);

    // 3. Credentials against a hub without auth are refused, and nothing is written.
    const refused = await run(
      agentcom,
      ['agent', 'add', '--id', 'w1', '--name', 'Writer', '--capabilities', 'code', '--auth-dir', 'auth'],
      work,
    );
    expect(refused.code, refused.out).toBe(4);
    expect(refused.out).toContain('runs without authentication');
    expect(existsSync(join(work, 'auth'))).toBe(false);

    // 4. Restarted with auth: the task submitted before is still there, found without --auth-dir.
    expect(await hub.stop()).toBe(0);
    hub = background(
      agentcom,
      ['hub', '--nats-port', port, '--auth-dir', 'auth', '--log-format', 'pretty'],
      work,
    );
    procs.push(hub.p);
    await hub.waitFor('the banner says ready', (l) => l.startsWith('ready.'));
    expect(hub.lines.join('\n')).toMatch(/auth\s+on/);
    const doctor = await run(agentcom, ['doctor'], work);
    expect(doctor.code, doctor.out).toBe(0);
    expect(doctor.out).toMatch(/ok\s+auth files: 2 seeds/);
    const kept = await run(agentcom, ['task', 'get', beforeId, '--json'], work);
    expect(kept.code, kept.out).toBe(0);
    expect(JSON.parse(kept.out).task.title).toBe('written before auth');

    // 5. An agent whose wake script calls `agentcom`, found on the PATH the sidecar gives it.
    const wake = join(work, 'wake.sh');
    await writeFile(
      wake,
      '#!/bin/sh\nexec agentcom task complete "$AGENTCOM_TASK_ID" --result \'{"by":"wake.sh"}\'\n',
      { mode: 0o755 },
    );
    const add = await run(
      agentcom,
      [
        'agent',
        'add',
        '--id',
        'w1',
        '--name',
        'Writer',
        '--capabilities',
        'code',
        '--slots',
        '2',
        '--wake',
        wake,
      ],
      work,
    );
    expect(add.code, add.out).toBe(0);
    const sidecar = background(
      agentcom,
      ['sidecar', '--config', join(work, 'auth', 'agents', 'w1', 'sidecar.json')],
      work,
    );
    procs.push(sidecar.p);
    const done = await run(
      agentcom,
      ['task', 'submit', 'hello', '--capabilities', 'code', '--wait', '--json'],
      work,
    );
    expect(done.code, done.out).toBe(0);
    const last = JSON.parse(done.out.trim().split('\n').at(-1)!);
    expect(last.task ?? last).toMatchObject({ status: 'done', result: { by: 'wake.sh' } });
    // The task from before auth has no capability to wait for: the same agent did it.
    // Each look is a CLI process (1-3 s on a loaded machine): a deadline of a minute.
    await waitUntil(
      async () => {
        const r = await run(agentcom, ['task', 'get', beforeId, '--json'], work);
        return JSON.parse(r.out).task.status === 'done';
      },
      'the task submitted before auth done',
      { timeout: 60_000 },
    );

    expect(await sidecar.stop()).toBe(0);
    expect(await hub.stop()).toBe(0);
  });
});
