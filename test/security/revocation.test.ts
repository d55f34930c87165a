/**
 * Revoking an agent: once its user is gone from the config and the server reloaded, its live
 * connection is closed and it cannot connect again, while other agents are untouched. And the hub
 * side (`agent.remove`): the hub forgets the agent at once, reclaims its task, refuses its hellos
 * until `agent.restore`.
 */
import { readFile, stat } from 'node:fs/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import type { Bus } from '../../src/bus/connection.js';
import { HubClient } from '../../src/bus/hub-client.js';
import { revokeAgentCredentials } from '../../src/hub/auth/agent-credentials.js';
import { readRegistry } from '../../src/hub/auth/auth-dir.js';
import { reloadNatsServer } from '../../src/hub/auth/reload.js';
import { checkAgentAccess, checkAgentRevoked, retryCheck } from '../../src/hub/auth/verify.js';
import type { HubHandle } from '../../src/hub/main.js';
import { AgentComError } from '../../src/protocol/errors.js';
import { eventually, waitUntil } from '../support/eventually.js';
import { startTestHub } from '../support/hub.js';
import { type AuthFixture, denial, startAuthFixture } from './fixture.js';

const silent = pino({ level: 'silent' });

describe('revoking credentials', () => {
  let fx: AuthFixture;
  beforeAll(async () => {
    fx = await startAuthFixture([{ id: 'r' }, { id: 's' }], 'revoke');
  });
  afterAll(async () => {
    await fx?.dispose();
  });

  it('closes the removed agent’s live connection at the reload and refuses it from then on; others stay', async () => {
    const r = await fx.connectAgent('r');
    const s = await fx.connectAgent('s');
    const rEvents: string[] = [];
    r.onStatus((e) => rEvents.push(e.type));
    const sEvents: string[] = [];
    s.onStatus((e) => sEvents.push(e.type));
    const before = await fx.agentSeed('r');
    const publicKey = (await readRegistry(fx.paths))?.agents.find((a) => a.id === 'r')?.publicKey;
    expect(publicKey).toMatch(/^U/);

    const revoked = await revokeAgentCredentials(fx.paths, 'r');
    expect(revoked?.seed).toBe(before);
    await expect(stat(revoked?.seedFile ?? '')).rejects.toThrow(/ENOENT/);
    expect(await readFile(fx.paths.config, 'utf8')).not.toContain(publicKey);
    // Not applied until the server reloads: the agent can still connect now.
    expect(
      (await checkAgentRevoked({ servers: fx.url, prefix: fx.prefix, agentId: 'r', seed: before })).ok,
    ).toBe(false);

    const reload = await reloadNatsServer(fx.paths.pidFile);
    expect(reload).toEqual({ ok: true, pid: fx.server.pid });
    await waitUntil(() => rEvents.includes('disconnect'), 'the server to drop the removed agent');
    // Reconnecting with a revoked user fails twice in a row, after which the client gives up.
    await waitUntil(() => r.isClosed(), 'the removed agent’s connection to close for good');
    const refused = await retryCheck(() =>
      checkAgentRevoked({ servers: fx.url, prefix: fx.prefix, agentId: 'r', seed: before }),
    );
    expect(refused).toMatchObject({ ok: true });

    // The other agent kept its connection and its permissions.
    expect(s.isClosed()).toBe(false);
    expect(sEvents).not.toContain('disconnect');
    const sAccess = await checkAgentAccess({
      servers: fx.url,
      prefix: fx.prefix,
      agentId: 's',
      seed: await fx.agentSeed('s'),
    });
    expect(sAccess).toMatchObject({ ok: true });
  });
});

describe('agent.remove and agent.restore at the hub', () => {
  let fx: AuthFixture;
  let hub: HubHandle;
  let admin: Bus;
  let api: HubClient;
  const clients: AgentClient[] = [];

  const connect = async (id: string) =>
    AgentClient.connect({
      agentId: id,
      connection: { servers: fx.url, prefix: fx.prefix, nkeySeed: await fx.agentSeed(id) },
      hello: { capabilities: ['r-only'] },
      logger: silent,
      helloTimeoutMs: 10_000,
    });

  beforeAll(async () => {
    fx = await startAuthFixture([{ id: 'r' }], 'hubrm');
    // Heartbeat timeouts far beyond the test: an agent that goes offline here was removed.
    hub = await startTestHub(fx.url, fx.prefix, { authDir: fx.dir, missedBeats: 200 });
    admin = await fx.connectAs('admin');
    api = new HubClient(admin);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop({ goodbye: false }).catch(() => undefined)));
    await hub?.stop();
    await fx?.dispose();
  });

  it('forgets the agent at once, reclaims its task, refuses its hello until restored', async () => {
    const r = await connect('r');
    clients.push(r);
    await r.start(
      (ctx) =>
        new Promise((resolve) =>
          ctx.signal.addEventListener('abort', () =>
            resolve({ type: 'failed', error: { message: 'stopped' }, retryable: true }),
          ),
        ),
    );
    const task = await eventually(
      () => api.submit({ title: 'held', description: 'by r', capabilities: ['r-only'] }),
      {
        timeout: 15_000,
        interval: 100,
      },
    );
    const working = await eventually(async () => {
      const t = await api.get(task.id);
      if (t.status !== 'working') throw new Error(`task is ${t.status}`);
      return t;
    });
    expect(working.assignee).toBe('r');

    const removed = await api.removeAgent('r');
    expect(removed).toEqual({ v: 1, id: 'r', alreadyRemoved: false, tasks: [task.id] });
    // r is still connected and heartbeating: only the removal can take its task away.
    const reclaimed = await eventually(
      async () => {
        const t = await api.get(task.id);
        if (t.generation === working.generation || t.assignee === 'r') throw new Error(`task is ${t.status}`);
        return t;
      },
      { timeout: 5_000 },
    );
    expect(reclaimed.status).toBe('queued');
    expect((await api.agents()).agents.map((a) => a.id)).not.toContain('r');
    expect(await api.removeAgent('r')).toMatchObject({ alreadyRemoved: true, tasks: [] });

    const refused = await denial(connect('r'));
    expect(refused).toBeInstanceOf(AgentComError);
    expect((refused as AgentComError).code).toBe('forbidden');
    expect(refused.message).toMatch(/removed/);

    expect(await api.restoreAgent('r')).toEqual({ v: 1, id: 'r', restored: true, unsuspended: false });
    expect(await api.restoreAgent('r')).toEqual({ v: 1, id: 'r', restored: false, unsuspended: false });
    const again = await connect('r');
    clients.push(again);
    await eventually(async () => {
      const a = (await api.agents()).agents.find((x) => x.id === 'r');
      if (!a?.online) throw new Error('r is not back');
    });
  });

  it('answers not_found for an agent it never registered', async () => {
    const err = await denial(api.removeAgent('never-seen'));
    expect((err as AgentComError).code).toBe('not_found');
  });
});
