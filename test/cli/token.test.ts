/**
 * `agentcom token add|list|revoke` and `agentcom gateway` (the gateway alone, as its own process)
 * against a real hub on a test nats-server.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { CLI_ENTRY, TSX_LOADER } from '../support/cli.js';
import { useCliHub } from '../support/cli-hub.js';
import { eventually } from '../support/eventually.js';

const h = useCliHub('clitoken');

describe('agentcom token', () => {
  it('adds (printing the token alone), lists without secrets, and revokes', async () => {
    const added = await h.cli(
      'token',
      'add',
      '--name',
      'ci',
      '--role',
      'submitter',
      '--rate',
      '20/40',
      '--ttl',
      '30d',
    );
    expect(added.code, added.stderr).toBe(0);
    const token = added.stdout.trim();
    expect(token).toMatch(/^agc_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(added.stderr).toMatch(/shown this once/);
    const id = token.slice(4, 16);
    const secret = token.slice(17);
    const listed = await h.cli('token', 'list', '--json');
    const { tokens } = listed.json<{ tokens: Record<string, unknown>[] }>();
    const mine = tokens.find((t) => t.id === id);
    expect(mine).toMatchObject({ name: 'ci', role: 'submitter', rate: { perSecond: 20, burst: 40 } });
    expect(listed.stdout).not.toContain(secret);
    expect(listed.stdout).not.toContain('hash');
    expect((await h.cli('token', 'revoke', id)).code).toBe(0);
    const again = await h.cli('token', 'revoke', id);
    expect(again.code).toBe(EXIT.NOT_FOUND);
  });

  it('refuses bad flags with a usage error', async () => {
    for (const args of [
      ['--role', 'root'],
      ['--role', 'agent'],
      ['--role', 'read', '--agent', 'a1'],
      ['--role', 'read', '--rate', 'fast'],
      ['--role', 'read', '--ttl', 'soon'],
    ]) {
      const r = await h.cli('token', 'add', '--name', 'x', ...args);
      expect(r.code, args.join(' ')).toBe(EXIT.USAGE);
      expect(r.stdout).toBe('');
    }
  });
});

describe('agentcom gateway', () => {
  it('serves the API alone against the hub, and stops on SIGTERM', async () => {
    const proc = spawn(
      process.execPath,
      [
        '--import',
        TSX_LOADER,
        CLI_ENTRY,
        'gateway',
        '--port',
        '0',
        '--nats-url',
        h.url,
        '--prefix',
        h.prefix,
      ],
      { env: { ...process.env, AGENTCOM_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    try {
      const url = await eventually(
        () => {
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (!m) throw new Error(`not listening yet: ${out}`);
          return m[1]!;
        },
        { timeout: 30_000 },
      );
      const token = (await h.cli('token', 'add', '--name', 'alone', '--role', 'read')).stdout.trim();
      const r = await fetch(`${url}/api/tasks/stats`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
    } finally {
      proc.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
