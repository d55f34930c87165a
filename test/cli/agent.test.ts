/**
 * `agentcom agent add|list|remove` as an operator runs them, against a real hub started with an
 * auth directory (its embedded nats-server runs the generated config, so each add and remove
 * reloads a real server). Checks exit codes and messages, file modes, that no seed is ever
 * printed, and that what the commands claim is true over NATS (the agent connects, or no longer
 * can).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { loadSidecarConfig } from '../../src/agent/sidecar-config.js';
import { connectBus } from '../../src/bus/connection.js';
import { HubClient } from '../../src/bus/hub-client.js';
import { freePort } from '../../src/bus/nats-server.js';
import { readSeedFile } from '../../src/bus/nkeys.js';
import { authDirPaths } from '../../src/hub/auth/auth-dir.js';
import { checkAgentRevoked } from '../../src/hub/auth/verify.js';
import { loadHubConfig } from '../../src/hub/config.js';
import { type HubHandle, startHub } from '../../src/hub/main.js';
import { startAuthFixture } from '../security/fixture.js';
import { type CliResult, runCli, USER_SEED_IN_OUTPUT } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { TEST_HUB_SETTINGS } from '../support/hub.js';
import { uniqueName } from '../support/names.js';

const silent = pino({ level: 'silent' });

let root: string;
let authDir: string;
let url: string;
let prefix: string;
let hub: HubHandle;
let api: HubClient;
const clients: AgentClient[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'agentcom-cli-agent-'));
  authDir = join(root, 'auth');
  const port = await freePort();
  url = `nats://127.0.0.1:${port}`;
  prefix = uniqueName('cliag').replace(/_/g, '-').toLowerCase();
  hub = await startHub(
    loadHubConfig({ ...TEST_HUB_SETTINGS, prefix, natsPort: port, dataDir: join(root, 'data'), authDir }, {}),
    { logger: silent },
  );
  const admin = await connectBus({
    servers: url,
    prefix,
    nkeySeed: await readSeedFile(authDirPaths(authDir).adminSeed),
    logger: silent,
  });
  api = new HubClient(admin);
  await eventually(() => api.stats(), { timeout: 15_000, interval: 50 });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop({ goodbye: false }).catch(() => undefined)));
  await api?.bus.drain().catch(() => undefined);
  await hub?.stop();
  await rm(root, { recursive: true, force: true });
});

/** Runs `agentcom agent ...` against this hub; every run is checked never to print a seed. */
async function agent(args: string[], opts: { conn?: boolean } = {}): Promise<CliResult> {
  const conn = opts.conn === false ? [] : ['--auth-dir', authDir, '--nats-url', url, '--prefix', prefix];
  const r = await runCli(['agent', ...args, ...conn], { env: { AGENTCOM_AUTH_DIR: undefined } });
  expect(`${r.stdout}${r.stderr}`).not.toMatch(USER_SEED_IN_OUTPUT);
  return r;
}

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const agentDir = (id: string) => join(authDir, 'agents', id);

async function connectAgent(id: string, seedFile = join(agentDir(id), 'agent.nk')): Promise<AgentClient> {
  const client = await AgentClient.connect({
    agentId: id,
    connection: { servers: url, prefix, nkeySeed: await readSeedFile(seedFile) },
    hello: { capabilities: ['code'] },
    logger: silent,
    helloTimeoutMs: 10_000,
  });
  clients.push(client);
  return client;
}

describe('agentcom agent add', () => {
  it('creates 0600 credentials and a sidecar config, reloads, verifies, and prints what it did', async () => {
    const r = await agent([
      'add',
      '--id',
      'w1',
      '--name',
      'Writer one',
      '--capabilities',
      'code,git',
      '--slots',
      '2',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const seedFile = join(agentDir('w1'), 'agent.nk');
    const sidecarFile = join(agentDir('w1'), 'sidecar.json');
    expect(r.stdout).toContain('added agent w1 (Writer one)');
    expect(r.stdout).toContain(`wrote ${seedFile} (0600)`);
    expect(r.stdout).toContain(`wrote ${sidecarFile} (0600)`);
    expect(r.stdout).toMatch(/reloaded nats-server \(pid \d+\)/);
    expect(r.stdout).toMatch(/verified on .*allowed.*refused/);
    expect(r.stdout).toContain(`agentcom sidecar --config ${sidecarFile}`);
    const paths = authDirPaths(authDir);
    for (const f of [seedFile, sidecarFile, paths.registry, paths.config, paths.adminSeed, paths.hubSeed])
      expect(await mode(f), f).toBe(0o600);

    const config = await loadSidecarConfig(sidecarFile);
    expect(config).toMatchObject({
      agentId: 'w1',
      nats: { servers: url, prefix, nkeySeedFile: seedFile },
      hello: { name: 'Writer one', capabilities: ['code', 'git'], queues: ['default'], slots: 2 },
    });
    // The config and the seed it names are what an agent needs: it connects and is registered.
    await connectAgent('w1', config.nats.nkeySeedFile);
    await eventually(async () => {
      const a = (await api.agents()).agents.find((x) => x.id === 'w1');
      if (!a?.online) throw new Error('w1 is not online');
    });
  });

  it('--service writes a systemd user unit for the sidecar; without systemd it prints the commands', async () => {
    const config = join(root, 'xdg-config');
    const r = await runCli(
      [
        'agent',
        'add',
        '--id',
        'svc1',
        '--name',
        'Service one',
        '--capabilities',
        'code',
        '--service',
        '--json',
        '--auth-dir',
        authDir,
        '--nats-url',
        url,
        '--prefix',
        prefix,
      ],
      // No systemctl on this PATH: the machine without systemd.
      { env: { AGENTCOM_AUTH_DIR: undefined, XDG_CONFIG_HOME: config, PATH: join(root, 'no-bin') } },
    );
    expect(r.code, r.stderr).toBe(0);
    const unitFile = join(config, 'systemd', 'user', 'agentcom-sidecar-svc1.service');
    expect(r.json()).toMatchObject({
      service: {
        unitFile,
        enabled: false,
        reason: expect.stringContaining('no systemd user manager'),
        commands: [
          'systemctl --user daemon-reload',
          'systemctl --user enable --now agentcom-sidecar-svc1.service',
        ],
      },
    });
    const unit = await readFile(unitFile, 'utf8');
    expect(unit).toContain(`ExecStart=${process.execPath} `);
    expect(unit).toMatch(/bin\/agentcom\.js sidecar --config \S+\/agents\/svc1\/sidecar\.json\n/);
    expect(unit).toContain('Restart=always');
    expect(await mode(unitFile)).toBe(0o644);
  });

  it('prints one JSON document with --json', async () => {
    const r = await agent([
      'add',
      '--id',
      'j1',
      '--name',
      'Json',
      '--capabilities',
      '',
      '--can-submit',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = r.json<{
      agent: { id: string; canSubmit: boolean; capabilities: string[]; publicKey: string };
      files: { path: string; mode: string }[];
      reload: { ok: boolean };
      verified: { ok: boolean };
    }>();
    expect(doc.agent).toMatchObject({ id: 'j1', canSubmit: true, capabilities: [] });
    expect(doc.agent.publicKey).toMatch(/^U[A-Z2-7]{55}$/);
    expect(doc.files.every((f) => f.mode === '0600')).toBe(true);
    expect(doc.reload.ok).toBe(true);
    expect(doc.verified.ok).toBe(true);
  });

  it('--submit-queues lets it submit to those queues only, and says so', async () => {
    const r = await agent([
      'add',
      '--id',
      'trig1',
      '--name',
      'Trigger',
      '--capabilities',
      '',
      '--submit-queues',
      'action',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = r.json<{
      agent: { canSubmit: boolean; submitQueues?: string[] };
      verified: { ok: boolean };
    }>();
    expect(doc.agent).toMatchObject({ canSubmit: true, submitQueues: ['action'] });
    expect(doc.verified.ok).toBe(true);
    const bad = await agent([
      'add',
      '--id',
      'trig2',
      '--name',
      'T',
      '--capabilities',
      '',
      '--submit-queues',
      'no way',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--submit-queues/);
  });

  it('refuses an existing id without --force (exit 4); --force replaces the key and the old seed stops working', async () => {
    const oldSeed = await readSeedFile(join(agentDir('j1'), 'agent.nk'));
    const refused = await agent(['add', '--id', 'j1', '--name', 'Again', '--capabilities', 'x']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/agent j1 already exists .*--force/);
    expect(await readSeedFile(join(agentDir('j1'), 'agent.nk'))).toBe(oldSeed);

    const forced = await agent(['add', '--id', 'j1', '--name', 'Again', '--capabilities', 'x', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('replaced the credentials of agent j1');
    expect(await readSeedFile(join(agentDir('j1'), 'agent.nk'))).not.toBe(oldSeed);
    expect(await checkAgentRevoked({ servers: url, prefix, agentId: 'j1', seed: oldSeed })).toMatchObject({
      ok: true,
    });
  });

  it('rejects bad flags with exit 2 before writing anything', async () => {
    const cases: [string[], RegExp][] = [
      [['--id', 'bad id', '--name', 'x', '--capabilities', 'a'], /--id: agent id must be/],
      [['--id', 'b1', '--name', 'x', '--capabilities', 'a', '--slots', '0'], /--slots/],
      [['--id', 'b1', '--name', 'x', '--capabilities', 'a', '--slots', 'many'], /--slots/],
      [['--id', 'b1', '--name', 'x', '--capabilities', 'a', '--queues', 'no.dots'], /--queues/],
      [['--id', 'b1', '--name', 'x', '--capabilities', 'sp ace'], /--capabilities/],
      [['--id', 'b1', '--name', 'x'], /required option '--capabilities/],
      [['--id', 'b1', '--name', 'x', '--capabilities', 'a', '--wake', '["openclaw",'], /--wake/],
      [['--id', 'b1', '--name', 'x', '--capabilities', 'a', '--wake', '  '], /--wake: must name a command/],
      [
        ['--id', 'b1', '--name', 'x', '--capabilities', 'a', '--nats-url', 'http://x', '--auth-dir', authDir],
        /--nats-url/,
      ],
    ];
    // Nine CLI processes: run side by side (they write nothing), so a slow machine does not
    // serialise nine start-ups into the test's time budget.
    const results = await Promise.all(
      cases.map(([args]) => agent(['add', ...args], { conn: !args.includes('--nats-url') })),
    );
    for (const [i, [args, message]] of cases.entries()) {
      expect(results[i]!.code, args.join(' ')).toBe(2);
      expect(results[i]!.stderr, args.join(' ')).toMatch(message);
    }
    expect(existsSync(agentDir('b1'))).toBe(false);
  }, 90_000);

  it('exits 69 with a hint when NATS cannot be reached, and writes nothing', async () => {
    const dead = `nats://127.0.0.1:${await freePort()}`;
    const fresh = join(root, 'unused-auth');
    const r = await runCli([
      'agent',
      'add',
      '--id',
      'u1',
      '--name',
      'u',
      '--capabilities',
      'a',
      '--auth-dir',
      fresh,
      '--nats-url',
      dead,
    ]);
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/cannot reach NATS at .*is the hub running/);
    expect(existsSync(fresh)).toBe(false);
  });
});

describe('agentcom agent add --out', () => {
  it('writes the agent files where asked, and remove deletes the seed there', async () => {
    const out = join(root, 'elsewhere', 'o1');
    const r = await agent(['add', '--id', 'o1', '--name', 'Out', '--capabilities', 'code', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(await mode(join(out, 'agent.nk'))).toBe(0o600);
    expect(await mode(join(out, 'sidecar.json'))).toBe(0o600);
    expect(JSON.parse(await readFile(join(out, 'sidecar.json'), 'utf8')).nats.nkeySeedFile).toBe('agent.nk');
    expect(existsSync(agentDir('o1'))).toBe(false);
    const removed = await agent(['remove', '--id', 'o1']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('the hub has no registration for o1 (it never connected)');
    expect(existsSync(join(out, 'agent.nk'))).toBe(false);
    expect(existsSync(join(out, 'sidecar.json'))).toBe(true);
  });
});

describe('agentcom agent list', () => {
  it('shows the name given to agent add, not the one the agent says in its hello', async () => {
    const add = await agent(['add', '--id', 'n1', '--name', 'Operator name', '--capabilities', '']);
    expect(add.code, add.stderr).toBe(0);
    const client = await AgentClient.connect({
      agentId: 'n1',
      connection: { servers: url, prefix, nkeySeed: await readSeedFile(join(agentDir('n1'), 'agent.nk')) },
      hello: { name: 'Agent says', capabilities: [] },
      logger: silent,
      helloTimeoutMs: 10_000,
    });
    clients.push(client);
    const r = await agent(['list', '--json']);
    const row = r
      .json<{ agents: { id: string; name: string; online: boolean }[] }>()
      .agents.find((a) => a.id === 'n1');
    expect(row).toMatchObject({ name: 'Operator name', online: true });
  });

  it("merges the hub's view with the credentials in the auth directory", async () => {
    const human = await agent(['list']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^ID\s+NAME\s+ONLINE\s+STATE\s+TASKS\s+DONE\s+CREDENTIALS\s+SUBMIT/);
    expect(human.stdout).toMatch(/w1\s+Writer one\s+yes\s+idle\s+-\s+0\s+yes\s+no/);

    const r = await agent(['list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.json<{ agents: { id: string; online: boolean; state: string; credentials: string }[] }>()
      .agents;
    expect(rows.find((a) => a.id === 'w1')).toMatchObject({ online: true, credentials: 'yes' });
    expect(rows.find((a) => a.id === 'j1')).toMatchObject({
      online: false,
      state: 'never connected',
      credentials: 'yes',
    });
  });

  it('exits 69 when NATS answers but no hub does', async () => {
    const fx = await startAuthFixture([], 'nohub');
    try {
      const r = await runCli([
        'agent',
        'list',
        '--auth-dir',
        fx.dir,
        '--nats-url',
        fx.url,
        '--prefix',
        fx.prefix,
      ]);
      expect(r.code, r.stderr).toBe(69);
      expect(r.stderr).toMatch(/no hub answers on NATS at .*is the hub running/);
    } finally {
      await fx.dispose();
    }
  });

  it('exits 69 when the hub cannot be reached', async () => {
    const r = await agent(
      ['list', '--nats-url', `nats://127.0.0.1:${await freePort()}`, '--auth-dir', authDir],
      {
        conn: false,
      },
    );
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/cannot reach NATS/);
  });
});

describe('agentcom agent remove', () => {
  it('makes the hub forget the agent and reclaim its task, revokes its credentials and proves it', async () => {
    const add = await agent(['add', '--id', 'r1', '--name', 'Removed', '--capabilities', 'only-r1']);
    expect(add.code, add.stderr).toBe(0);
    const seed = await readSeedFile(join(agentDir('r1'), 'agent.nk'));
    const r1 = await AgentClient.connect({
      agentId: 'r1',
      connection: { servers: url, prefix, nkeySeed: seed },
      hello: { capabilities: ['only-r1'] },
      logger: silent,
      helloTimeoutMs: 10_000,
    });
    clients.push(r1);
    const closed = r1.bus.closed();
    await r1.start(
      (ctx) =>
        new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () =>
            resolve({ type: 'failed', error: { message: 'stopped' } }),
          ),
        ),
    );
    const task = await api.submit({ title: 'held by r1', description: 'x', capabilities: ['only-r1'] });
    await eventually(async () => {
      const t = await api.get(task.id);
      if (t.status !== 'working') throw new Error(`task is ${t.status}`);
    });

    const r = await agent(['remove', '--id', 'r1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`the hub forgot r1 and reclaims its tasks ${task.id}`);
    expect(r.stdout).toContain(`deleted its seed ${join(agentDir('r1'), 'agent.nk')}`);
    expect(r.stdout).toMatch(/reloaded nats-server \(pid \d+\)/);
    expect(r.stdout).toMatch(/verified: the server refuses r1/);

    await closed; // the server dropped its live connection at the reload
    expect(existsSync(join(agentDir('r1'), 'agent.nk'))).toBe(false);
    expect(await readFile(authDirPaths(authDir).config, 'utf8')).not.toContain('agent r1');
    // The hub's presence sees the removal mark and reclaims after the API has answered: wait for it.
    await eventually(async () => {
      expect((await api.get(task.id)).assignee).not.toBe('r1');
      expect((await api.agents()).agents.map((a) => a.id)).not.toContain('r1');
    });
  });

  it('lets a removed id be added again: the hub restores it and it may hello', async () => {
    const r = await agent(['add', '--id', 'r1', '--name', 'Back', '--capabilities', 'code']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('the hub had r1 as removed: restored');
    await connectAgent('r1');
  });

  it('exits 3 for an unknown id, 2 for a malformed one, 69 when NATS cannot be reached', async () => {
    const unknown = await agent(['remove', '--id', 'nobody']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/unknown agent id nobody/);

    const bad = await agent(['remove', '--id', 'no/slash']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--id/);

    const dead = await agent(
      ['remove', '--id', 'w1', '--nats-url', `nats://127.0.0.1:${await freePort()}`, '--auth-dir', authDir],
      {
        conn: false,
      },
    );
    expect(dead.code).toBe(69);
    expect(dead.stderr).toMatch(/cannot reach NATS/);
    // Nothing was revoked: w1 still has its credentials.
    expect(existsSync(join(agentDir('w1'), 'agent.nk'))).toBe(true);
  });
});
