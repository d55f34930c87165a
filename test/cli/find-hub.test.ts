/**
 * How the CLI finds the hub without flags (issue: the first ten minutes): flags, then NATS_URL,
 * then AGENTCOM_NATS_PORT, then the hub.json the hub wrote into its data directory, then the auth
 * directory's address, then the default; and what `agentcom hub` shows on a terminal.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_NATS_URL, resolveConnection } from '../../src/cli/connection.js';
import { chooseLogFormat, prettyLogLine, roleLines, startedLines } from '../../src/cli/hub-banner.js';
import { authDirPaths } from '../../src/hub/auth/auth-dir.js';
import { readHubFile, writeHubFile } from '../../src/hub/hub-file.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
const tempDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'agentcom-find-hub-'));
  dirs.push(d);
  return d;
};

const hubFile = (authDir?: string) => ({
  v: 1 as const,
  natsUrl: 'nats://127.0.0.1:4301',
  prefix: 'fromfile',
  ...(authDir ? { authDir } : {}),
  hubId: 'h1',
  embedded: true,
  pid: 1234,
  startedAt: 1,
});

describe('resolveConnection', () => {
  it('takes the hub.json of the data directory when nothing else names the hub', async () => {
    const data = await tempDir();
    await writeHubFile(data, hubFile('/srv/auth'));
    const c = resolveConnection({}, { AGENTCOM_DATA_DIR: data });
    expect(c).toMatchObject({ servers: 'nats://127.0.0.1:4301', prefix: 'fromfile', authDir: '/srv/auth' });
    expect(c.nkeyFile).toBe(authDirPaths('/srv/auth').adminSeed);
  });

  it('lets flags, NATS_URL and AGENTCOM_NATS_PORT win over the file, in that order', async () => {
    const data = await tempDir();
    await writeHubFile(data, hubFile());
    const env = { AGENTCOM_DATA_DIR: data, NATS_URL: 'nats://10.0.0.1:4222', AGENTCOM_NATS_PORT: '4400' };
    expect(resolveConnection({ natsUrl: 'nats://flag:1' }, env).servers).toBe('nats://flag:1');
    expect(resolveConnection({}, env).servers).toBe('nats://10.0.0.1:4222');
    expect(resolveConnection({}, { ...env, NATS_URL: '' }).servers).toBe('nats://127.0.0.1:4400');
    expect(resolveConnection({ prefix: 'p' }, env).prefix).toBe('p');
    // Once a server is named elsewhere, the file's prefix and auth directory (another hub's) do not apply.
    await writeHubFile(data, hubFile('/srv/auth'));
    expect(resolveConnection({}, env)).toMatchObject({ prefix: 'agentcom', authDir: undefined });
    expect(
      resolveConnection({ natsUrl: 'nats://flag:1' }, { AGENTCOM_DATA_DIR: data }).authDir,
    ).toBeUndefined();
    expect(resolveConnection({}, { ...env, AGENTCOM_PREFIX: 'envp' }).prefix).toBe('envp');
  });

  it('ignores a hub.json that others may write', async () => {
    const data = await tempDir();
    await writeHubFile(data, hubFile());
    expect(readHubFile(data)?.natsUrl).toBe('nats://127.0.0.1:4301');
    await chmod(join(data, 'hub.json'), 0o666);
    expect(readHubFile(data)).toBeUndefined();
    expect(resolveConnection({}, { AGENTCOM_DATA_DIR: data }).servers).toBe(DEFAULT_NATS_URL);
  });

  it('refuses an AGENTCOM_NATS_PORT that is not a port', () => {
    for (const port of ['seventy', '0', '70000', '1.5'])
      expect(() =>
        resolveConnection({}, { AGENTCOM_NATS_PORT: port, AGENTCOM_DATA_DIR: '/nonexistent' }),
      ).toThrow(/AGENTCOM_NATS_PORT must be a port number/);
  });

  it('falls back to the auth directory address, then the default; a broken hub.json is ignored', async () => {
    const data = await tempDir();
    await writeFile(join(data, 'hub.json'), '{"v":1,"natsUrl":"http://nope"');
    expect(readHubFile(data)).toBeUndefined();
    expect(resolveConnection({}, { AGENTCOM_DATA_DIR: data }).servers).toBe(DEFAULT_NATS_URL);
    const auth = await tempDir();
    await writeFile(
      authDirPaths(auth).registry,
      JSON.stringify({
        v: 1,
        prefix: 'agentcom',
        listen: '127.0.0.1:4555',
        storeDir: '/x',
        hub: { publicKey: `U${'A'.repeat(55)}` },
        admin: { publicKey: `U${'B'.repeat(55)}` },
        agents: [],
      }),
    );
    expect(resolveConnection({ authDir: auth }, { AGENTCOM_DATA_DIR: data }).servers).toBe(
      'nats://127.0.0.1:4555',
    );
  });
});

describe('agentcom hub output', () => {
  it('is a banner on a terminal and JSON otherwise, unless asked; a bad format is an error', () => {
    expect(chooseLogFormat(undefined, undefined, true)).toBe('pretty');
    expect(chooseLogFormat(undefined, undefined, false)).toBe('json');
    expect(chooseLogFormat('json', 'pretty', true)).toBe('json');
    expect(chooseLogFormat(undefined, 'pretty', false)).toBe('pretty');
    expect(() => chooseLogFormat('xml', undefined, true)).toThrow(/--log-format must be json or pretty/);
  });

  it('says where NATS is, the data directory, the auth mode, the role and what to try', () => {
    const text = [
      ...startedLines({
        version: '0.1.0',
        hubId: 'h',
        natsUrl: 'nats://127.0.0.1:4223',
        embedded: true,
        dataDir: '/d',
        authDir: undefined,
        prefix: 'agentcom',
      }),
      ...roleLines({ role: 'leader' }),
    ].join('\n');
    expect(text).toContain('nats://127.0.0.1:4223 (embedded');
    expect(text).toContain('/d');
    expect(text).toMatch(/auth\s+off/);
    expect(text).toMatch(/role\s+leader/);
    expect(text).toContain('ready.');
    expect(roleLines({ role: 'standby', holder: 'h2' }).join('\n')).toMatch(/standby: h2 holds the lease/);
  });

  it('prints a pino line as one human line; a line that is not JSON as it is', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 1, 12, 3, 4),
      pid: 1,
      hub: 'h',
      msg: 'slow',
      task_id: 't1',
      err: { message: 'boom', stack: '...' },
    });
    expect(prettyLogLine(line)).toBe('12:03:04 WARN slow (task_id=t1, err="boom")');
    expect(prettyLogLine('not json\n')).toBe('not json');
  });
});
