/**
 * docs/protocol.md as a contract: an agent written from §10 and §12 alone, speaking the NATS text
 * protocol over a bare TCP socket (test/e2e/fixtures/raw-agent.mjs, node: built-ins only), runs as
 * a separate OS process against the real hub. If the document is wrong or incomplete, this fails.
 * The same scenarios run twice: on an open server, and on the server of an auth directory where the
 * agent signs the server's nonce with its own NKey (decoded with node:crypto) and holds only the
 * subject permissions §12 lists.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { submitTask } from '../../src/agent/submit.js';
import type { Bus } from '../../src/bus/connection.js';
import { openKv } from '../../src/bus/kv.js';
import { request } from '../../src/bus/service.js';
import { AuthRegistrySchema } from '../../src/hub/auth/registry.js';
import type { HubConfig } from '../../src/hub/config.js';
import type { HubHandle } from '../../src/hub/main.js';
import { HeartbeatSchema } from '../../src/protocol/agent.js';
import { AgentListReplySchema, TaskReplySchema } from '../../src/protocol/api.js';
import { agentPermissions } from '../../src/protocol/permissions.js';
import { names } from '../../src/protocol/subjects.js';
import { TaskRecordSchema } from '../../src/protocol/task.js';
import { type AuthFixture, startAuthFixture } from '../security/fixture.js';
import { eventually, waitUntil } from '../support/eventually.js';
import {
  startTestHub,
  TEST_HUB_SETTINGS,
  type TestClient,
  testClient,
  timesEntered,
} from '../support/hub.js';
import { captureJsonLines } from '../support/json-lines.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

const script = fileURLToPath(new URL('./fixtures/raw-agent.mjs', import.meta.url));

interface RawEvent {
  at: number;
  event: string;
  taskId?: string;
  generation?: number;
  [k: string]: unknown;
}

interface RawAgent {
  readonly proc: ChildProcess;
  readonly events: RawEvent[];
  of(event: string): RawEvent[];
  waitFor(what: string, predicate: (events: RawEvent[]) => boolean, timeout?: number): Promise<void>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  kill(): Promise<void>;
}

interface RawAgentOptions {
  url: string;
  prefix: string;
  id: string;
  slots?: number;
  seed?: string;
}

function spawnRawAgent(opts: RawAgentOptions): RawAgent {
  const args = [script, '--url', opts.url, '--prefix', opts.prefix, '--id', opts.id];
  if (opts.slots) args.push('--slots', String(opts.slots));
  // The seed goes through the environment, not argv (which `ps` shows).
  const env = { ...process.env, AGENTCOM_NKEY_SEED: opts.seed ?? '' };
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const { events, stderr } = captureJsonLines<RawEvent>(proc, (line) => ({
    at: Date.now(),
    event: 'not-json',
    line,
  }));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const dump = () => `${stderr()}\n${events.map((e) => JSON.stringify(e)).join('\n')}`;
  return {
    proc,
    events,
    of: (event) => events.filter((e) => e.event === event),
    exited,
    waitFor: async (what, predicate, timeout = 20_000) => {
      try {
        await waitUntil(
          () => {
            if (predicate(events)) return true;
            if (proc.exitCode !== null || proc.signalCode !== null)
              throw new Error(`raw agent exited (${proc.exitCode ?? proc.signalCode}) before ${what}`);
            return false;
          },
          `raw agent: ${what}`,
          { timeout },
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- raw agent stderr and events:\n${dump()}`);
      }
    },
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** What the scenarios need of a full-access client (test/support/hub.ts's TestClient has it). */
type Client = Pick<TestClient, 'bus' | 'submit' | 'task' | 'settle'>;

interface Deployment {
  prefix: string;
  agentId: string;
  agent: RawAgent;
  client: Client;
  /** SIGKILL the raw agent and start a new process under the same id (a new session). */
  restart(): Promise<RawAgent>;
}

/**
 * A raw agent process (started and waited for) in a deployment; `track` is told of every process,
 * so that the test's teardown can kill the current one.
 */
async function deployment(
  o: { url: string; prefix: string; agentId: string; client: Client; seed?: string },
  track: (agent: RawAgent) => void,
): Promise<Deployment> {
  let agent: RawAgent | undefined;
  const spawn = async () => {
    agent = spawnRawAgent({
      url: o.url,
      prefix: o.prefix,
      id: o.agentId,
      slots: 2,
      ...(o.seed ? { seed: o.seed } : {}),
    });
    track(agent);
    await agent.waitFor('ready', (ev) => ev.some((e) => e.event === 'ready'), 15_000);
    return agent;
  };
  const first = await spawn();
  return {
    prefix: o.prefix,
    agentId: o.agentId,
    agent: first,
    client: o.client,
    restart: async () => {
      await agent?.kill();
      return spawn();
    },
  };
}

/**
 * What the raw agent must do against a real hub; `setup` starts the hub (with these settings over
 * TEST_HUB_SETTINGS), the client and the raw agent (slots 2), and waits until the agent is ready.
 */
function rawAgentScenarios(setup: (hub?: Partial<HubConfig>) => Promise<Deployment>) {
  /** Nothing went wrong on the wire: no -ERR (e.g. a permissions violation), no odd pull status,
   * no inbox message it could not read, no spurious rejection. */
  const noTrouble = (agent: RawAgent) =>
    expect(
      agent.events.filter((e) =>
        ['server-error', 'pull-trouble', 'inbox-unknown', 'handler-error', 'rejected', 'not-json'].includes(
          e.event,
        ),
      ),
    ).toEqual([]);

  it('completes every assigned task exactly once, with its result and tokens', async () => {
    const { client, agent, agentId, prefix } = await setup();
    const titles = ['alpha', 'bravo two', 'charlie', 'delta-4', 'echo echo echo'];
    const ids = await Promise.all(titles.map((title) => client.submit({ title })));
    const done = await client.settle(ids);
    for (const t of done) {
      expect(t.assignee).toBe(agentId);
      expect(t.result).toEqual({ echo: t.title });
      expect(t.tokensUsed).toBe(t.title.length);
      expect(timesEntered(t, 'done')).toBe(1);
      expect(t.generation).toBe(1); // accepted in time: never reclaimed
    }
    await agent.waitFor(
      '5 completions logged',
      (ev) => ev.filter((e) => e.event === 'completed').length >= 5,
    );
    const completed = agent.of('completed').map((e) => e.taskId);
    expect(completed.sort()).toEqual([...ids].sort());
    // Every accepted report was stored in the REPORTS stream (a real PubAck, not a timeout).
    expect(agent.of('accepted')).toHaveLength(5);
    for (const e of agent.of('accepted'))
      expect(e.pubAck).toMatchObject({ stream: `${prefix.toUpperCase()}_REPORTS`, seq: expect.any(Number) });
    noTrouble(agent);
  });

  it('heartbeats with the task it holds, and drops that task when it is cancelled through the API', async () => {
    const { client, agent, agentId, prefix } = await setup();
    const beats: { running: string[]; at: number }[] = [];
    const sub = client.bus.nc.subscribe(`${prefix}.agent.${agentId}.heartbeat`, {
      callback: (_err, m) => {
        const hb = HeartbeatSchema.parse(m.json());
        beats.push({ running: hb.running ?? [], at: Date.now() });
      },
    });
    try {
      const id = await client.submit({ title: 'hold me' });
      await agent.waitFor('holding the task', (ev) =>
        ev.some((e) => e.event === 'holding' && e.taskId === id),
      );
      // The agent says `holding` once its `accepted` report is stored; the hub applies it after.
      await waitUntil(async () => (await client.task(id))?.status === 'working', 'task working');
      // Beats naming the task, for longer than the presence timeout: the hub keeps the assignment.
      const timeoutMs = TEST_HUB_SETTINGS.heartbeatIntervalMs * TEST_HUB_SETTINGS.missedBeats;
      await waitUntil(() => {
        const mine = beats.filter((b) => b.running.includes(id));
        return mine.length >= 2 && mine.at(-1)!.at - mine[0]!.at > timeoutMs;
      }, 'heartbeats naming the held task over a presence timeout');
      const working = (await client.task(id))!;
      expect(working.status).toBe('working');
      expect(working.generation).toBe(1);

      const reply = await request(
        client.bus,
        'task.cancel',
        { v: 1, id, reason: 'not needed' },
        TaskReplySchema,
      );
      expect(reply.task.status).toBe('cancelled');
      await agent.waitFor('dropped the task', (ev) =>
        ev.some((e) => e.event === 'dropped' && e.taskId === id),
      );
      const dropped = agent.of('dropped').find((e) => e.taskId === id)!;
      expect(dropped.generation).toBe(1);
      expect(dropped.reason).toEqual(expect.stringContaining('not needed'));
      // The agent no longer names it in its beats.
      const n = beats.length;
      await waitUntil(
        () => beats.length > n + 1 && !beats.at(-1)!.running.includes(id),
        'a heartbeat without the task',
      );

      // The slot is free again, and the cancelled task never became done.
      const next = await client.submit({ title: 'after cancel' });
      const [d] = await client.settle([next]);
      expect(d!.result).toEqual({ echo: 'after cancel' });
      expect(d!.assignee).toBe(agentId);
      const cancelled = (await client.task(id))!;
      expect(cancelled.status).toBe('cancelled');
      expect(timesEntered(cancelled, 'done')).toBe(0);
      noTrouble(agent);
    } finally {
      sub.unsubscribe();
    }
  });

  it('a restart is a new session: its hello gets the held task taken back at once and given again', async () => {
    // A presence window far beyond the wait below: only the new session's hello can free the task.
    const d = await setup({ missedBeats: 200 });
    const id = await d.client.submit({ title: 'hold across a restart' });
    await d.agent.waitFor('holding', (ev) => ev.some((e) => e.event === 'holding' && e.taskId === id));
    const again = await d.restart();
    await again.waitFor('holding it again, at a new generation', (ev) =>
      ev.some((e) => e.event === 'holding' && e.taskId === id && (e.generation ?? 0) > 1),
    );
    // The agent says `holding` once its `accepted` report is stored; the hub applies it after.
    await waitUntil(async () => (await d.client.task(id))?.status === 'working', 'task working again');
    const t = (await d.client.task(id))!;
    expect(t.history.some((h) => h.reason === 'not_held')).toBe(true);
    expect(t.generation).toBeGreaterThan(1);
    expect(t.session).toMatch(/^s[0-9a-f]{20}$/);
    noTrouble(again);
  });

  it('says goodbye on SIGTERM and the hub marks it offline at once', async () => {
    // A presence timeout far beyond the wait below: only the goodbye can make it offline in time.
    const { client, agent, agentId } = await setup({ missedBeats: 200 });
    const list = async () =>
      (await request(client.bus, 'agent.list', { v: 1 }, AgentListReplySchema)).agents.find(
        (a) => a.id === agentId,
      );
    await waitUntil(async () => (await list())?.online === true, 'agent online');
    const me = (await list())!;
    expect(me.hello).toMatchObject({ slots: 2, queues: ['default'], name: `raw ${agentId}` });

    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(agent.of('goodbye')).toHaveLength(1);
    await waitUntil(async () => (await list())?.online === false, 'agent offline', { timeout: 10_000 });
    noTrouble(agent);
  });
}

describe('raw agent over a bare socket (docs/protocol.md §10)', () => {
  const nats = useNatsServer();
  let hub: HubHandle | undefined;
  let client: TestClient | undefined;
  let agent: RawAgent | undefined;

  afterEach(async () => {
    await agent?.kill();
    await client?.close().catch(() => {});
    await hub?.stop();
    agent = undefined;
    client = undefined;
    hub = undefined;
  });

  const setup = async (over: Partial<HubConfig> = {}): Promise<Deployment> => {
    const prefix = uniqueName('raw').replace(/_/g, '-').toLowerCase();
    const agentId = 'raw-1';
    hub = await startTestHub(nats.url, prefix, over);
    client = await testClient(nats.url, prefix);
    return deployment({ url: nats.url, prefix, agentId, client }, (a) => {
      agent = a;
    });
  };

  rawAgentScenarios(setup);

  it('reconnects after a nats-server restart, says hello again and keeps working', async () => {
    const d = await setup();
    const [before] = await d.client.settle([await d.client.submit({ title: 'before restart' })]);
    expect(before!.result).toEqual({ echo: 'before restart' });
    const hellos = d.agent.of('hello').length;
    await nats.restart();
    await d.agent.waitFor(
      'hello after the restart',
      (ev) => ev.filter((e) => e.event === 'hello').length > hellos,
    );
    expect(d.agent.of('disconnected').length).toBeGreaterThanOrEqual(1);
    const id = await eventually(() => d.client.submit({ title: 'after restart' }), {
      timeout: 20_000,
      interval: 200,
    });
    const [after] = await d.client.settle([id]);
    expect(after!.assignee).toBe(d.agentId);
    expect(after!.result).toEqual({ echo: 'after restart' });
    expect(timesEntered(after!, 'done')).toBe(1);
  });
});

/** testClient()'s helpers over an already authenticated connection (the admin's). */
async function clientOver(bus: Bus): Promise<Client> {
  const tasks = await eventually(() => openKv(bus, bus.names.buckets.tasks, TaskRecordSchema), {
    timeout: 15_000,
    interval: 100,
  });
  const task = async (id: string) => (await tasks.get(id))?.value ?? null;
  return {
    bus,
    submit: async (t) => (await submitTask(bus, t)).taskId,
    task,
    settle: (ids, statuses = ['done'], timeout = 30_000) =>
      eventually(
        async () => {
          const out = [];
          for (const id of ids) {
            const r = await task(id);
            if (!r || !statuses.includes(r.status))
              throw new Error(`task ${id} is ${r?.status ?? 'missing'}`);
            out.push(r);
          }
          return out;
        },
        { timeout, interval: 100 },
      ),
  };
}

describe('raw agent with its own NKey and only the permissions of §12', () => {
  const agentId = 'raw-sec';
  let fx: AuthFixture | undefined;
  let hub: HubHandle | undefined;
  let agent: RawAgent | undefined;

  afterEach(async () => {
    await agent?.kill();
    await hub?.stop();
    await fx?.dispose();
    agent = undefined;
    hub = undefined;
    fx = undefined;
  });

  const setup = async (over: Partial<HubConfig> = {}): Promise<Deployment> => {
    // The same code as `agentcom agent add` makes the user; nats-server runs the generated config.
    fx = await startAuthFixture([{ id: agentId }], 'rawsec');
    hub = await startTestHub(fx.url, fx.prefix, { ...over, authDir: fx.dir });
    const client = await clientOver(await fx.connectAs('admin'));
    const seed = await fx.agentSeed(agentId);
    return deployment({ url: fx.url, prefix: fx.prefix, agentId, client, seed }, (a) => {
      agent = a;
    });
  };

  it('grants the agent exactly what §12 lists, and the server asks for a signed nonce', async () => {
    const d = await setup();
    const p = d.prefix;
    const P = p.toUpperCase();
    // §12's table, transcribed (without --can-submit, --emit or --claim), messaging included.
    const documented = {
      publish: [
        `${p}.agent.${agentId}.hello`,
        `${p}.agent.${agentId}.heartbeat`,
        `${p}.agent.${agentId}.goodbye`,
        `${p}.agent.${agentId}.report`,
        `$JS.API.CONSUMER.MSG.NEXT.${P}_INBOX.inbox-${agentId}`,
        `$JS.API.CONSUMER.INFO.${P}_INBOX.inbox-${agentId}`,
        `$JS.ACK.${P}_INBOX.inbox-${agentId}.>`,
        `${p}.api.field.observe.${agentId}`,
        ...['send', 'inbox', 'ack', 'history', 'thread', 'status'].map(
          (op) => `${p}.api.msg.${op}.${agentId}`,
        ),
        ...['create', 'list', 'join', 'leave', 'invite', 'members', 'remove'].map(
          (op) => `${p}.api.channel.${op}.${agentId}`,
        ),
        `${p}.inspect.sidecar.${agentId}`,
      ],
      subscribe: [`_INBOX.${agentId}.>`, `${p}.inspecting`],
    };
    const granted = agentPermissions(names(p), agentId);
    expect([...granted.publish.allow].sort()).toEqual([...documented.publish].sort());
    expect(granted.subscribe.allow).toEqual(documented.subscribe);
    // The generated server config carries them for this agent's key, which the raw agent derived
    // from its seed by itself.
    const registry = AuthRegistrySchema.parse(JSON.parse(await readFile(fx!.paths.registry, 'utf8')));
    const publicKey = registry.agents.find((a) => a.id === agentId)!.publicKey;
    const connected = d.agent.of('connected')[0]!;
    expect(connected).toMatchObject({ authRequired: true, nonce: true, nkey: publicKey });
    const conf = await readFile(fx!.paths.config, 'utf8');
    const block = conf.slice(conf.indexOf(publicKey));
    for (const s of [...documented.publish, ...documented.subscribe])
      expect(block).toContain(JSON.stringify(s));
  });

  rawAgentScenarios(setup);
});
