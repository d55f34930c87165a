/**
 * `agentcom doctor` against a live hub (every check passes), against a prefix no hub serves
 * (provisioning and lease fail, exit 1, with what to do), with nothing listening (exit 69), and its
 * pure checks: versions, seed file modes.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/bus/nats-server.js';
import { authFilesCheck, type Check, versionAtLeast } from '../../src/cli/doctor.js';
import type { HubHandle } from '../../src/hub/main.js';
import { runCli } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { startTestHub } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

describe('agentcom doctor', { timeout: 60_000 }, () => {
  const nats = useNatsServer();
  let hub: HubHandle | undefined;
  let prefix: string;

  beforeAll(async () => {
    prefix = uniqueName('doc').replace(/_/g, '-').toLowerCase();
    hub = await startTestHub(nats.url, prefix);
  });
  afterAll(async () => {
    await hub?.stop();
  });

  const doctor = async (p: string) => {
    const r = await runCli(['doctor', '--nats-url', nats.url, '--prefix', p, '--json']);
    return { code: r.code, report: JSON.parse(r.stdout) as { ok: boolean; checks: Check[] }, r };
  };

  it('passes every check against a running hub', async () => {
    // The hub takes its lease a moment after it starts: wait for a report with no failure.
    const last = await eventually(async () => {
      const d = await doctor(prefix);
      expect(d.report.ok, JSON.stringify(d.report.checks)).toBe(true);
      return d;
    });
    expect(last.code, last.r.stderr).toBe(0);
    const byName = Object.fromEntries(last.report.checks.map((c) => [c.name, c]));
    for (const name of ['nats-server', 'jetstream', 'provisioning', 'lease'])
      expect(byName[name]?.status, `${name}: ${byName[name]?.detail}`).toBe('ok');
    // Same machine: the skew is only the estimate's error, which a loaded machine can stretch.
    expect(['ok', 'warn'], byName.clock?.detail).toContain(byName.clock?.status);
    expect(byName['nats-server']!.detail).toMatch(/version 2\.\d+/);
    expect(byName.lease!.detail).toContain(hub!.hubId);
    expect(['ok', 'warn'], byName.hubs?.detail).toContain(byName.hubs?.status);
    expect(byName.hubs!.detail).toContain(`1 answer: ${hub!.hubId} (leader)`);
    expect(['ok', 'warn']).toContain(byName.disk!.status); // the CI machine's disk is not ours to judge
  });

  it('fails with what to do when no hub serves the prefix', async () => {
    const { code, report } = await doctor('nobody-here');
    expect(code).toBe(1);
    const failed = report.checks.filter((c) => c.status === 'fail').map((c) => c.name);
    expect(failed).toEqual(expect.arrayContaining(['provisioning', 'lease', 'hubs']));
    for (const c of report.checks.filter((x) => x.status === 'fail')) expect(c.fix).toBeTruthy();
  });

  it('exits 69 when nothing listens', async () => {
    const r = await runCli(['doctor', '--nats-url', `nats://127.0.0.1:${await freePort()}`]);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain('cannot reach NATS');
  });
});

describe('doctor checks', () => {
  it('compares nats-server versions numerically', () => {
    expect(versionAtLeast('2.9.10', [2, 9, 0])).toBe(true);
    expect(versionAtLeast('2.10.0', [2, 9, 0])).toBe(true);
    expect(versionAtLeast('2.8.4', [2, 9, 0])).toBe(false);
    expect(versionAtLeast('3.0.0-beta', [2, 9, 0])).toBe(true);
    expect(versionAtLeast('junk', [2, 9, 0])).toBe(false);
  });

  it('fails a seed that others can read, naming the chmod', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentcom-doctor-auth-'));
    try {
      await mkdir(join(dir, 'agents', 'w1'), { recursive: true });
      for (const f of ['hub.nk', 'admin.nk', 'agents/w1/agent.nk'])
        await writeFile(join(dir, f), 'SU...', { mode: 0o600 });
      expect(authFilesCheck(dir)).toMatchObject({ status: 'ok', detail: expect.stringContaining('3 seeds') });
      await chmod(join(dir, 'agents/w1/agent.nk'), 0o644);
      const c = authFilesCheck(dir);
      expect(c.status).toBe('fail');
      expect(c.fix).toBe(`chmod 600 ${join(dir, 'agents/w1/agent.nk')}`);
      expect(authFilesCheck(join(dir, 'missing'))).toMatchObject({ status: 'fail' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
