/**
 * Rate limits and the violation tracker (docs/security.md, "Rate limits" and "Suspension"), against real flooding agent
 * processes (test/security/flooder.ts) with their own credentials, a real nats-server running the
 * generated config and a real hub with the auth directory:
 * - forged and malformed reports get the sender suspended: the server drops its connection and
 *   refuses new ones, `agent list` shows it, an honest agent's task completes meanwhile, and
 *   `agent restore` lets it back in;
 * - progress reports beyond the rate are refused `rate_limited` (told with a retry-after), the
 *   completion behind them still applies, and the sender is not suspended; at ten times the rate
 *   it is;
 * - hellos beyond the rate are refused `rate_limited` with a retry-after;
 * - API submissions beyond the rate are refused `rate_limited`; bus submissions are all kept and
 *   made eligible no faster than the rate (`notBefore`), so a flood cannot crowd out other
 *   submitters' tasks;
 * - without an auth directory a suspended agent stays connected: it gets no work while suspended
 *   and is taken back at its first heartbeat after.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openSuspensions } from '../../actors/presence/index.js';
import { AgentClient } from '../../src/agent/client.js';
import type { Bus } from '../../src/bus/connection.js';
import { HubClient } from '../../src/bus/hub-client.js';
import { openLimitsKv } from '../../src/bus/live-limits.js';
import { defaultTopology, provision } from '../../src/bus/provision.js';
import type { HubHandle } from '../../src/hub/main.js';
import type { AgentId } from '../../src/protocol/ids.js';
import { LIMITS_KEY, type LimitsInput, LimitsSchema, suspensionKey } from '../../src/protocol/limits.js';
import { eventually, waitUntil } from '../support/eventually.js';
import { startTestHub, testClient } from '../support/hub.js';
import { captureJsonLines } from '../support/json-lines.js';
import { uniqueName } from '../support/names.js';
import { startNatsServer } from '../support/nats-server.js';
import { type AuthFixture, connectAgentClient, startAuthFixture } from './fixture.js';

const silent = pino({ level: 'silent' });
const script = fileURLToPath(new URL('./flooder.ts', import.meta.url));

interface FlooderEvent {
  at: number;
  event: string;
  [k: string]: unknown;
}

/**
 * Bursts only, in effect: rates so low that nothing refills while a test runs, however slow the
 * machine (the bus-submit test sets its own, to see submissions spaced out).
 */
const LIMITS: LimitsInput = {
  v: 1,
  rates: {
    reports: { perSecond: 0.01, burst: 5 },
    hellos: { perSecond: 0.01, burst: 3 },
    submits: { perSecond: 0.01, burst: 5 },
    refusals: { perSecond: 0.01, burst: 20 },
  },
  overrides: { spacer: { submits: { perSecond: 5, burst: 5 } } },
  violations: { threshold: 10, windowMs: 60_000, suspendMs: 60_000, maxSuspendMs: 60_000 },
};

describe('rate limits and suspension against flooding agents', () => {
  let fx: AuthFixture;
  let hub: HubHandle;
  let admin: Bus;
  let api: HubClient;
  const procs: ChildProcess[] = [];
  const clients: AgentClient[] = [];

  const flood = async (agentId: string, mode: string, count: number) => {
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        script,
        JSON.stringify({
          url: fx.url,
          prefix: fx.prefix,
          agentId,
          seed: await fx.agentSeed(agentId),
          mode,
          count,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    procs.push(proc);
    const { events, stderr } = captureJsonLines<FlooderEvent>(proc);
    const waitFor = async (event: string, timeout = 20_000) => {
      await waitUntil(
        () => {
          if (events.some((e) => e.event === 'error'))
            throw new Error(`${agentId}: ${JSON.stringify(events)} ${stderr()}`);
          return events.some((e) => e.event === event);
        },
        `${agentId}: ${event}`,
        { timeout },
      );
      return events.find((e) => e.event === event)!;
    };
    return { proc, events, waitFor };
  };

  const connectHonest = async (id: string) => {
    const client = await connectAgentClient(fx, id, { capabilities: ['honest'] });
    clients.push(client);
    await client.start(async () => ({ type: 'completed', result: { ok: true } }));
    return client;
  };

  beforeAll(async () => {
    fx = await startAuthFixture(
      [
        { id: 'forger' },
        { id: 'chatty' },
        { id: 'racer' },
        { id: 'greeter' },
        { id: 'bulk', canSubmit: true },
        { id: 'spacer', canSubmit: true },
        { id: 'honest' },
      ],
      'flood',
    );
    admin = await fx.connectAs('admin');
    // The limits are in place before the hub starts, so it begins with them.
    await provision(admin, defaultTopology(admin.names));
    await (await openLimitsKv(admin)).put(LIMITS_KEY, LimitsSchema.parse(LIMITS));
    hub = await startTestHub(fx.url, fx.prefix, { authDir: fx.dir });
    api = new HubClient(admin);
    await eventually(() => api.stats(), { timeout: 15_000, interval: 100 });
  });
  afterEach(() => {
    for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop({ goodbye: false }).catch(() => undefined)));
    await hub?.stop();
    await fx?.dispose();
  });

  it('suspends an agent that floods forged and malformed reports: the server drops it, agent list shows it, restore lets it back', async () => {
    await connectHonest('honest');
    const forger = await flood('forger', 'forged', 200);
    // Its connection is closed by the server once the hub has suspended it and reloaded the config.
    await forger.waitFor('disconnected');
    const refused = await forger.waitFor('connect_refused');
    expect(String(refused.message)).toMatch(/authorization/i);
    const listed = await api.agents();
    const s = listed.suspended?.find((x) => x.agentId === 'forger');
    expect(s).toMatchObject({ agentId: 'forger', count: 1 });
    expect(s!.until).toBeGreaterThan(Date.now());
    expect(s!.reason).toMatch(/malformed|does not hold|refused/);
    // Meanwhile an honest agent's work goes on.
    const task = await api.submit({ title: 'honest work', capabilities: ['honest'] });
    await eventually(async () => expect((await api.get(task.id)).status).toBe('done'), { timeout: 15_000 });
    // The flood did not fill the DLQ: only what its refusals budget allowed was dead-lettered.
    const dlq = await api.dlqList({ limit: 1000 });
    expect(dlq.items.length).toBeLessThanOrEqual(20);

    const restored = await api.restoreAgent('forger');
    expect(restored).toMatchObject({ restored: true, unsuspended: true });
    // The server takes it back once the hub has rewritten the config: the flooder reconnects.
    await forger.waitFor('connected');
    expect((await api.agents()).suspended?.some((x) => x.agentId === 'forger')).toBe(false);
  });

  it('refuses progress reports beyond the rate with rate_limited and a retry-after; the completion still applies and nobody is suspended', async () => {
    const chatty = await flood('chatty', 'progress', 40);
    await chatty.waitFor('ready');
    const task = await api.submit({ title: 'chatty work', capabilities: ['chatty'] });
    await eventually(async () => expect((await api.get(task.id)).status).toBe('done'), { timeout: 15_000 });
    const sent = await chatty.waitFor('progress_sent');
    expect(sent).toMatchObject({ taskId: task.id, sent: 40, failed: 0 });
    await waitUntil(() => chatty.events.some((e) => e.event === 'notice'), 'a rate_limited notice', {
      timeout: 10_000,
    });
    const notices = chatty.events.filter((e) => e.event === 'notice');
    expect(notices.every((n) => n.code === 'rate_limited' && n.stop === false)).toBe(true);
    expect(notices[0]!.retryAfterMs).toBeGreaterThan(0);
    // Rate limiting is not a violation.
    expect((await api.agents()).suspended ?? []).toEqual([]);
  });

  it('suspends an agent whose progress reports come at ten times its rate and more', async () => {
    const racer = await flood('racer', 'progress-seq', 200);
    await racer.waitFor('ready');
    await api.submit({ title: 'racer work', capabilities: ['racer'] });
    const s = await eventually(
      async () => {
        const found = (await api.agents()).suspended?.find((x) => x.agentId === 'racer');
        expect(found).toBeDefined();
        return found!;
      },
      { timeout: 15_000 },
    );
    expect(s.reason).toMatch(/times its rate/);
  });

  it('refuses hellos beyond the rate with rate_limited and a retry-after', async () => {
    const greeter = await flood('greeter', 'hellos', 6);
    const { outcomes } = (await greeter.waitFor('hellos')) as unknown as {
      outcomes: { ok: boolean; code?: string; retryAfterMs?: number }[];
    };
    expect(outcomes.slice(0, 3).every((o) => o.ok)).toBe(true);
    const limited = outcomes.slice(3);
    expect(limited.every((o) => !o.ok && o.code === 'rate_limited' && (o.retryAfterMs ?? 0) > 0)).toBe(true);
  });

  it('refuses API submissions beyond the rate with rate_limited and a retry-after', async () => {
    const bulk = await flood('bulk', 'api-submits', 8);
    const { outcomes } = (await bulk.waitFor('submits')) as unknown as {
      outcomes: { ok: boolean; code?: string; retryAfterMs?: number }[];
    };
    expect(outcomes.slice(0, 5).every((o) => o.ok)).toBe(true);
    const limited = outcomes.slice(5);
    expect(limited.every((o) => !o.ok && o.code === 'rate_limited' && (o.retryAfterMs ?? 0) > 0)).toBe(true);
  });

  it('keeps every bus submission beyond the rate and makes it eligible no faster than the rate', async () => {
    const spacer = await flood('spacer', 'bus-submits', 15);
    const { ids } = (await spacer.waitFor('submits')) as unknown as { ids: string[] };
    const records = await eventually(
      async () => {
        const out = await Promise.all(ids.map((id) => api.get(id)));
        expect(out).toHaveLength(15);
        return out;
      },
      { timeout: 10_000 },
    );
    // 5 at once, then 5 a second: whatever the intake's pace, the 15th is eligible 2 s after the
    // intake took the first. The first's own eligible time is its createdAt, stamped when its
    // record is written, a little after that (53 ms on a loaded CI run): hence 1.8 s, which a
    // rate even a fifth faster (10 more in 1.67 s) still fails.
    const eligible = records.map((r) => Math.max(r.createdAt, r.notBefore ?? 0)).sort((a, b) => a - b);
    expect(eligible.at(-1)! - eligible[0]!).toBeGreaterThanOrEqual(1_800);
    expect(records.filter((r) => r.notBefore !== undefined).length).toBeGreaterThan(0);
  });
});

describe('a suspension without an auth directory', () => {
  it('stops the agent getting work while it lasts, and takes it back at its first beat after', async () => {
    const server = await startNatsServer();
    const prefix = uniqueName('susp').replace(/_/g, '-').toLowerCase();
    const hub = await startTestHub(server.url, prefix);
    const client = await testClient(server.url, prefix);
    const agent = await AgentClient.connect({
      agentId: 'x',
      connection: { servers: server.url, prefix },
      hello: { capabilities: ['x'] },
      logger: silent,
    });
    try {
      await agent.start(async () => ({ type: 'completed', result: { ok: true } }));
      const api = new HubClient(client.bus);
      await eventually(async () =>
        expect((await api.agents()).agents.find((a) => a.id === 'x')?.online).toBe(true),
      );
      // As the violation tracker would write it (presence follows the bucket on every hub).
      const kv = await openSuspensions(client.bus);
      const until = Date.now() + 6_000;
      await kv.put(suspensionKey('x'), {
        v: 1,
        agentId: 'x' as AgentId,
        at: Date.now(),
        until,
        reason: 'test',
        count: 1,
      });
      await eventually(async () => {
        const list = await api.agents();
        expect(list.agents.some((a) => a.id === 'x')).toBe(false);
        expect(list.suspended?.map((s) => s.agentId)).toEqual(['x']);
      });
      const id = await client.submit({ title: 'for x', capabilities: ['x'] });
      // Still connected and beating (nothing drops it without an auth directory): taken back after.
      const [done] = await client.settle([id], ['done'], 20_000);
      expect(done!.assignee).toBe('x');
      expect(done!.history.find((h) => h.to === 'assigned')!.at).toBeGreaterThanOrEqual(until);
    } finally {
      await agent.stop({ goodbye: false });
      await client.close();
      await hub.stop();
      await server.dispose();
    }
  });
});
