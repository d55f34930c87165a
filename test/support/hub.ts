/**
 * A hub for tests: the real hub (startHub) against a test nats-server, with short timeouts, a
 * unique prefix, and a client connection with helpers to submit tasks and read their records.
 */
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { submitTask } from '../../src/agent/submit.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { type HubConfig, loadHubConfig } from '../../src/hub/config.js';
import { type HubHandle, startHub } from '../../src/hub/main.js';
import { type TaskRecord, TaskRecordSchema, type TaskSubmitInput } from '../../src/protocol/task.js';
import { eventually } from './eventually.js';
import { uniqueName } from './names.js';
import { useNatsServer } from './nats-server.js';
import { type SimAgent, type SimAgentConfig, spawnSimAgent } from './sim-agents.js';

/** Timeouts small enough for tests, large enough for two busy cores. */
export const TEST_HUB_SETTINGS = {
  heartbeatIntervalMs: 300,
  missedBeats: 4,
  acceptTimeoutMs: 3_000,
  progressTimeoutMs: 20_000,
  blockedTimeoutMs: 20_000,
  sweepIntervalMs: 200,
  leaseTtlMs: 1_500,
  statusIntervalMs: 60_000,
  logLevel: 'warn',
  // The gateway's own tests turn it on (test/gateway); elsewhere it would only cost start time.
  http: 'off',
} as const;

export function testHubConfig(natsUrl: string, prefix: string, over: Partial<HubConfig> = {}): HubConfig {
  return loadHubConfig({ natsUrl, prefix, ...TEST_HUB_SETTINGS, ...over }, {});
}

export interface TestClient {
  bus: Bus;
  tasks: TypedKv<TaskRecord>;
  submit(t: Omit<TaskSubmitInput, 'v'>): Promise<string>;
  task(id: string): Promise<TaskRecord | null>;
  /** Waits until every task is in one of `statuses` (default done); returns the records. */
  settle(ids: string[], statuses?: string[], timeout?: number): Promise<TaskRecord[]>;
  close(): Promise<void>;
}

export async function testClient(url: string, prefix: string): Promise<TestClient> {
  const bus = await connectBus({ servers: url, prefix, logger: pino({ level: 'silent' }) });
  let tasks: TypedKv<TaskRecord> | undefined;
  const kv = async () => {
    tasks ??= await eventually(() => openKv(bus, bus.names.buckets.tasks, TaskRecordSchema));
    return tasks;
  };
  const client: TestClient = {
    bus,
    get tasks() {
      if (!tasks) throw new Error('tasks bucket not opened yet');
      return tasks;
    },
    submit: async (t) => (await submitTask(bus, t)).taskId,
    task: async (id) => (await (await kv()).get(id))?.value ?? null,
    settle: async (ids, statuses = ['done'], timeout = 30_000) => {
      const k = await kv();
      return eventually(
        async () => {
          const out: TaskRecord[] = [];
          for (const id of ids) {
            const r = (await k.get(id))?.value;
            if (!r || !statuses.includes(r.status))
              throw new Error(`task ${id} is ${r?.status ?? 'missing'}`);
            out.push(r);
          }
          return out;
        },
        { timeout, interval: 100 },
      );
    },
    close: () => bus.drain(),
  };
  await kv();
  return client;
}

export async function startTestHub(
  natsUrl: string,
  prefix: string,
  over: Partial<HubConfig> = {},
): Promise<HubHandle> {
  return startHub(testHubConfig(natsUrl, prefix, over), { logger: pino({ level: 'warn' }) });
}

/** How many times a record entered `status` (its history is the audit trail). */
export function timesEntered(task: TaskRecord, status: string): number {
  return task.history.filter((h) => h.to === status).length;
}

/**
 * A nats-server for the file, and per test a hub with a fresh prefix, a client and simulated agents
 * (separate processes), all torn down after each test (agents SIGKILLed first).
 */
export function useHubHarness(tag: string) {
  const nats = useNatsServer();
  const state: { hub?: HubHandle; client?: TestClient; agents: SimAgent[]; prefix: string } = {
    agents: [],
    prefix: '',
  };
  afterEach(async () => {
    await Promise.all(state.agents.map((a) => a.kill()));
    state.agents = [];
    await state.client?.close();
    await state.hub?.stop();
    state.client = undefined;
    state.hub = undefined;
  });
  return {
    nats,
    get agents() {
      return state.agents;
    },
    get prefix() {
      return state.prefix;
    },
    /**
     * Start the hub (with `hubOver` on top of the test settings), the client and these agents;
     * `before(prefix)` runs first (to put state in place that the hub finds at start).
     */
    async setup(
      agentConfigs: Omit<SimAgentConfig, 'url' | 'prefix'>[],
      hubOver: Partial<HubConfig> = {},
      before?: (prefix: string) => Promise<void>,
    ): Promise<TestClient> {
      state.prefix = uniqueName(tag).replace(/_/g, '-').toLowerCase();
      await before?.(state.prefix);
      state.hub = await startTestHub(nats.url, state.prefix, hubOver);
      state.client = await testClient(nats.url, state.prefix);
      state.agents = await Promise.all(
        agentConfigs.map((a) => spawnSimAgent({ url: nats.url, prefix: state.prefix, ...a })),
      );
      return state.client;
    },
    /** One more agent on the current hub. */
    async addAgent(config: Omit<SimAgentConfig, 'url' | 'prefix'>): Promise<SimAgent> {
      const a = await spawnSimAgent({ url: nats.url, prefix: state.prefix, ...config });
      state.agents.push(a);
      return a;
    },
  };
}
