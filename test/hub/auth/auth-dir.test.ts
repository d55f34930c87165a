import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAgentCredentials, revokeAgentCredentials } from '../../../src/hub/auth/agent-credentials.js';
import { authDirPaths, ensureAuthDir, readRegistry } from '../../../src/hub/auth/auth-dir.js';
import { reloadNatsServer } from '../../../src/hub/auth/reload.js';
import type { AgentId, QueueName } from '../../../src/protocol/ids.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentcom-authdir-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const settings = (over = {}) => ({
  prefix: 'acme',
  listen: '127.0.0.1:4223',
  storeDir: join(dir, 'store'),
  ...over,
});
const input = (id: string) => ({
  id: id as AgentId,
  name: id,
  capabilities: [],
  queues: ['default' as QueueName],
  slots: 1,
  canSubmit: false,
  servers: 'nats://127.0.0.1:4223',
  prefix: 'acme',
});

describe('auth directory', () => {
  it('is created once with 0600 files; reopening keeps the keys', async () => {
    const first = await ensureAuthDir(dir, settings());
    expect(first.created).toBe(true);
    const paths = authDirPaths(dir);
    for (const f of [paths.hubSeed, paths.adminSeed, paths.registry, paths.config])
      expect((await stat(f)).mode & 0o777, f).toBe(0o600);
    const again = await ensureAuthDir(dir, settings({ listen: '0.0.0.0:9999' }));
    expect(again.created).toBe(false);
    expect(again.registry.hub).toEqual(first.registry.hub);
    expect(again.registry.listen).toBe('127.0.0.1:4223'); // settings move only with updateSettings
    const moved = await ensureAuthDir(dir, settings({ listen: '0.0.0.0:9999' }), { updateSettings: true });
    expect(moved.registry.listen).toBe('0.0.0.0:9999');
    expect(await readFile(paths.config, 'utf8')).toContain('listen: "0.0.0.0:9999"');
  });

  it('refuses to serve another prefix', async () => {
    await ensureAuthDir(dir, settings());
    await expect(ensureAuthDir(dir, settings({ prefix: 'other' }))).rejects.toMatchObject({
      code: 'invalid_payload',
    });
  });

  it('reports a corrupt registry instead of overwriting it', async () => {
    await ensureAuthDir(dir, settings());
    await writeFile(authDirPaths(dir).registry, '{"v":1,"agents":"nope"}');
    await expect(ensureAuthDir(dir, settings())).rejects.toMatchObject({ code: 'invalid_payload' });
  });

  it('serialises concurrent changes: no agent is lost', async () => {
    await ensureAuthDir(dir, settings());
    const paths = authDirPaths(dir);
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    await Promise.all(ids.map((id) => createAgentCredentials(paths, input(id))));
    expect((await readRegistry(paths))?.agents.map((a) => a.id)).toEqual(ids);
    const config = await readFile(paths.config, 'utf8');
    for (const id of ids) expect(config).toContain(`# agent ${id}`);
  });

  it('refuses an existing id without force; revoking returns the seed once and deletes its file', async () => {
    await ensureAuthDir(dir, settings());
    const paths = authDirPaths(dir);
    const made = await createAgentCredentials(paths, input('a'));
    await expect(createAgentCredentials(paths, input('a'))).rejects.toMatchObject({ code: 'conflict' });
    const seed = (await readFile(made.seedFile, 'utf8')).trim();
    const revoked = await revokeAgentCredentials(paths, 'a');
    expect(revoked?.seed).toBe(seed);
    await expect(stat(made.seedFile)).rejects.toThrow(/ENOENT/);
    expect(await revokeAgentCredentials(paths, 'a')).toBeNull();
    expect(await readFile(paths.config, 'utf8')).not.toContain(made.agent.publicKey);
  });
});

describe('reloadNatsServer', () => {
  it('says so when there is no pid file, a dead pid, or a pid that is not a nats-server', async () => {
    const pidFile = join(dir, 'nats-server.pid');
    expect(await reloadNatsServer(pidFile)).toMatchObject({ ok: false, reason: 'no_pid_file' });
    await writeFile(pidFile, '999999999');
    expect(await reloadNatsServer(pidFile)).toMatchObject({ ok: false, reason: 'not_running' });
    // This test process is alive and is not a nats-server: it must not get a SIGHUP.
    await writeFile(pidFile, String(process.pid));
    expect(await reloadNatsServer(pidFile)).toMatchObject({ ok: false, reason: 'not_nats_server' });
  });
});
