/**
 * The whole path a real agent takes, with nothing in-process: `agentcom hub --auth-dir` (embedded
 * nats-server with per-agent NKey users), `agentcom agent add` (credentials, sidecar config,
 * reload, verify), a real `agentcom sidecar` process whose wake command writes the result file,
 * and tasks submitted with `agentcom task submit`. The sidecar survives its own SIGKILL (it
 * recovers from queue.json) and a restart of the hub with its nats-server; every task ends done
 * exactly once.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarPaths } from '../../src/agent/sidecar/files.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { freePort } from '../../src/bus/nats-server.js';
import { readSeedFile } from '../../src/bus/nkeys.js';
import { authDirPaths } from '../../src/hub/auth/auth-dir.js';
import { type TaskRecord, TaskRecordSchema } from '../../src/protocol/task.js';
import { runCli, USER_SEED_IN_OUTPUT } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { timesEntered } from '../support/hub.js';
import { type HubProcess, hubProcessWith } from '../support/hub-process.js';
import { uniqueName } from '../support/names.js';
import { type SidecarProcess, sidecarProcess } from '../support/sidecar-process.js';

const wakeScript = fileURLToPath(new URL('../agent/fixtures/wake-complete.mjs', import.meta.url));

// Processes start through tsx and restart with their nats-server: generous deadlines on two cores.
describe('onboarding end to end: agent add, sidecar, task submit', { timeout: 120_000 }, () => {
  let root: string;
  let authDir: string;
  let url: string;
  let prefix: string;
  let hub: HubProcess;
  let sidecar: SidecarProcess | undefined;
  let admin: Bus | undefined;
  let tasks: TypedKv<TaskRecord>;
  const agentId = 'e2e-writer';

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'agentcom-onboarding-'));
    authDir = join(root, 'auth');
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    prefix = uniqueName('ob').replace(/_/g, '-').toLowerCase();
    hub = hubProcessWith(
      [
        '--auth-dir',
        authDir,
        '--data-dir',
        join(root, 'data'),
        '--nats-port',
        String(port),
        '--prefix',
        prefix,
      ],
      'hub-ob',
      // Presence tolerates the restarts below, so assignments survive them rather than being reclaimed.
      { AGENTCOM_MISSED_BEATS: '60' },
    );
    await hub.start();
  });

  afterAll(async () => {
    await sidecar?.kill();
    await admin?.drain().catch(() => {});
    // Graceful: a SIGKILLed hub would leave its embedded nats-server running.
    await hub?.stop();
    await rm(root, { recursive: true, force: true });
  });

  const cli = (args: string[]) =>
    runCli([...args, '--auth-dir', authDir, '--nats-url', url, '--prefix', prefix]);

  const adminClient = async () => {
    admin = await connectBus({
      servers: url,
      prefix,
      nkeySeed: await readSeedFile(authDirPaths(authDir).adminSeed),
      logger: pino({ level: 'silent' }),
    });
    tasks = await eventually(() => openKv(admin!, admin!.names.buckets.tasks, TaskRecordSchema));
  };

  const settle = (id: string, status: string) =>
    eventually(
      async () => {
        const t = (await tasks.get(id))?.value;
        if (t?.status !== status) throw new Error(`task ${id} is ${t?.status}`);
        return t;
      },
      { timeout: 30_000, interval: 100 },
    );

  const submit = async (title: string) => {
    const r = await cli(['task', 'submit', title, '--capabilities', 'code']);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };

  it('agent add creates the credentials and a sidecar config that connects', async () => {
    const r = await cli([
      'agent',
      'add',
      '--id',
      agentId,
      '--name',
      'E2E writer',
      '--capabilities',
      'code',
      '--slots',
      '2',
      // The wake command: a script that writes the result file, as an agent would.
      '--wake',
      JSON.stringify([process.execPath, wakeScript]),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(USER_SEED_IN_OUTPUT); // no seed printed
    const configFile = join(authDir, 'agents', agentId, 'sidecar.json');
    expect(`${r.stdout}${r.stderr}`).toContain(`agentcom sidecar --config ${configFile}`);
    expect(JSON.parse(await readFile(configFile, 'utf8')).wake).toMatchObject({
      command: [process.execPath, wakeScript],
    });
    sidecar = sidecarProcess(configFile);
    await sidecar.start();
    await adminClient();
  });

  it('tasks submitted with the CLI are done by the sidecar’s agent', async () => {
    const ids = [await submit('first'), await submit('second')];
    for (const id of ids) {
      const t = await settle(id, 'done');
      expect(t.assignee).toBe(agentId);
      expect(t.result).toEqual({ title: t.title, by: agentId });
      expect(timesEntered(t, 'done')).toBe(1);
    }
  });

  it('survives its own SIGKILL: the held task is recovered from queue.json and finished once', async () => {
    const id = await submit('hold-through-kill');
    await settle(id, 'working');
    await sidecar!.kill();
    await sidecar!.start();
    const work = sidecarPaths(join(authDir, 'agents', agentId, 'work'));
    const r = await runCli([
      'task',
      'complete',
      id,
      '--result',
      '"after-kill"',
      '--sidecar-dir',
      work.workDir,
      '--wait',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const t = await settle(id, 'done');
    expect(t.result).toBe('after-kill');
    expect(t.generation).toBe(1);
    expect(timesEntered(t, 'done')).toBe(1);
  });

  it('survives a restart of the hub and its nats-server', async () => {
    const id = await submit('hold-through-hub-restart');
    await settle(id, 'working');
    await admin!.drain();
    expect(await hub.stop()).toBe(0);
    const from = sidecar!.lines.length;
    await hub.start();
    await sidecar!.waitFor('nats reconnected', {}, from, 30_000);
    await adminClient();
    const work = sidecarPaths(join(authDir, 'agents', agentId, 'work'));
    const r = await runCli(['task', 'complete', id, '--sidecar-dir', work.workDir, '--wait']);
    expect(r.code, r.stderr).toBe(0);
    const t = await settle(id, 'done');
    expect(timesEntered(t, 'done')).toBe(1);
    expect(t.generation).toBe(1);
    // New work flows after the restart too.
    const after = await submit('after-restart');
    expect((await settle(after, 'done')).assignee).toBe(agentId);
  });
});
