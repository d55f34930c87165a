/**
 * `agentcom hub` with its embedded nats-server, killed with SIGKILL: the nats-server it spawned
 * outlives it (children are not killed with their parent) and holds the port and the store. The
 * restarted hub finds it through its pid file, stops it, starts its own on the same store, and
 * nothing submitted before is lost. A graceful stop leaves no nats-server behind, also when the
 * signal comes while the hub is still starting.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/bus/nats-server.js';
import { waitUntil } from '../support/eventually.js';
import { type TestClient, testClient } from '../support/hub.js';
import { type HubProcess, hubProcessWith } from '../support/hub-process.js';
import { uniqueName } from '../support/names.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the hub with an embedded nats-server', { timeout: 120_000 }, () => {
  let dir: string;
  let client: TestClient | undefined;
  let hub: HubProcess | undefined;
  let serverPid = 0;

  afterAll(async () => {
    await client?.close().catch(() => {});
    await hub?.kill();
    if (serverPid && alive(serverPid)) process.kill(serverPid, 'SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('restarts after a SIGKILL: the orphaned nats-server is stopped, the store kept', async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentcom-embedded-'));
    const port = await freePort();
    const prefix = uniqueName('emb').replace(/_/g, '-').toLowerCase();
    hub = hubProcessWith(['--data-dir', dir, '--nats-port', String(port), '--prefix', prefix], 'hub-emb', {
      NATS_URL: '',
    });
    await hub.start();
    const pidFile = join(dir, 'nats-server.pid');
    serverPid = Number((await readFile(pidFile, 'utf8')).trim());
    client = await testClient(`nats://127.0.0.1:${port}`, prefix);
    // A queue nobody serves: the task stays queued, so it must still be there after the restarts.
    const id = await client.submit({ title: 'kept', queue: 'nobody' as never });
    await client.settle([id], ['queued']);

    await hub.kill();
    expect(alive(serverPid)).toBe(true); // the scenario is real: the server outlived its hub

    await hub.start();
    expect(hub.lines.some((l) => l.includes('stopped the nats-server a killed hub left running'))).toBe(true);
    expect(alive(serverPid)).toBe(false);
    serverPid = Number((await readFile(pidFile, 'utf8')).trim());
    await client.settle([id], ['queued']);

    expect(await hub.stop()).toBe(0);
    await waitUntil(() => !alive(serverPid), 'the embedded nats-server stopped with its hub');
  });

  it('stops cleanly when SIGTERM comes while it is still starting: exit 0, its nats-server stopped', async () => {
    const startDir = await mkdtemp(join(tmpdir(), 'agentcom-embedded-'));
    const port = await freePort();
    const starting = hubProcessWith(
      ['--data-dir', startDir, '--nats-port', String(port), '--prefix', uniqueName('embs').toLowerCase()],
      'hub-embs',
      { NATS_URL: '' },
    );
    try {
      const started = starting.start().catch(() => undefined);
      // The nats-server is spawned (its pid file written) before the hub is up.
      const pidFile = join(startDir, 'nats-server.pid');
      let pid = 0;
      await waitUntil(async () => {
        pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
        return pid > 0;
      }, 'the embedded nats-server spawned');
      const exited = new Promise<number | null>((r) => starting.proc.once('exit', (code) => r(code)));
      starting.proc.kill('SIGTERM');
      expect(await exited).toBe(0);
      await started;
      await waitUntil(() => !alive(pid), 'the embedded nats-server stopped with its hub');
    } finally {
      await starting.kill();
      await rm(startDir, { recursive: true, force: true });
    }
  });
});
