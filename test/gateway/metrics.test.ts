/**
 * The gateway's Prometheus metrics against a live hub and simulated agents (separate processes):
 * the exposition text is parsed (names, TYPE lines, label sets) and its values followed as the work
 * moves, and a hub that goes away leaves a scrape that still answers.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { HubClient } from '../../src/bus/hub-client.js';
import { EventHub } from '../../src/gateway/events.js';
import { createGatewayMetrics, type GatewayMetrics } from '../../src/gateway/metrics.js';
import type { TaskRevisionListener, TaskRevisionTap } from '../../src/gateway/task-view.js';
import type { TaskId } from '../../src/protocol/ids.js';
import type { TaskRecord } from '../../src/protocol/task.js';
import { exit } from '../../src/runtime/index.js';
import { A, assignedTo, drive } from '../actors/task-queue/helpers.js';
import { eventually } from '../support/eventually.js';
import { startTestHub, testClient } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';
import { spawnSimAgent } from '../support/sim-agents.js';

// --- The text exposition format, parsed ---

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf('=', i);
    const key = s.slice(i, eq);
    if (!LABEL.test(key)) throw new Error(`bad label name ${JSON.stringify(key)} in {${s}}`);
    if (s[eq + 1] !== '"') throw new Error(`unquoted label value in {${s}}`);
    let j = eq + 2;
    let v = '';
    for (; s[j] !== '"'; j++) {
      if (j >= s.length) throw new Error(`unterminated label value in {${s}}`);
      if (s[j] === '\\') {
        j++;
        v += s[j] === 'n' ? '\n' : s[j];
      } else v += s[j];
    }
    if (key in out) throw new Error(`label ${key} twice in {${s}}`);
    out[key] = v;
    i = j + 1;
    if (s[i] === ',') i++;
  }
  return out;
}

/** Text format 0.0.4: every sample must follow the HELP and TYPE of its family. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
      if (kind === 'HELP') {
        current = { name, type: '', help: rest, samples: [] };
        if (families.has(name)) throw new Error(`family ${name} twice`);
        families.set(name, current);
      } else {
        if (current?.name !== name) throw new Error(`TYPE ${name} without its HELP`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest))
          throw new Error(`bad type ${rest}`);
        current.type = rest;
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable line ${JSON.stringify(line)}`);
    const [, name, labels, raw] = m as unknown as [string, string, string | undefined, string];
    if (!current?.type) throw new Error(`sample ${name} outside a family`);
    const suffixes = current.type === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
    if (!suffixes.some((s) => name === current!.name + s))
      throw new Error(`sample ${name} in family ${current.name}`);
    const value = raw === '+Inf' ? Number.POSITIVE_INFINITY : raw === '-Inf' ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`bad value in ${line}`);
    current.samples.push({ name, labels: labels ? parseLabels(labels) : {}, value });
  }
  return families;
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

/** The value of the sample `name` with exactly `labels`; undefined when there is none. */
function value(
  fams: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of fams.values())
    for (const s of f.samples) if (s.name === name && sameLabels(s.labels, labels)) return s.value;
  return undefined;
}

async function scrape(m: GatewayMetrics): Promise<Map<string, Family>> {
  return parseExposition(await m.render());
}

/** Family -> [type, label names of its samples (histograms: besides `le`)]. */
const FAMILIES: Record<string, [string, string[]]> = {
  agentcom_hub_up: ['gauge', []],
  agentcom_tasks: ['gauge', ['state']],
  agentcom_queue_depth: ['gauge', ['queue', 'priority']],
  agentcom_queue_delayed: ['gauge', ['queue']],
  agentcom_queue_oldest_task_age_seconds: ['gauge', ['queue']],
  agentcom_agents: ['gauge', ['state']],
  agentcom_agents_suspended: ['gauge', []],
  agentcom_agent_slots: ['gauge', []],
  agentcom_agent_slots_busy: ['gauge', []],
  agentcom_agent_utilisation_ratio: ['gauge', []],
  agentcom_jetstream_up: ['gauge', []],
  agentcom_dlq_messages: ['gauge', []],
  agentcom_dlq_bytes: ['gauge', []],
  agentcom_stream_messages: ['gauge', ['stream']],
  agentcom_consumer_pending_messages: ['gauge', ['stream', 'consumer']],
  agentcom_consumer_ack_pending_messages: ['gauge', ['stream', 'consumer']],
  agentcom_tasks_submitted_total: ['counter', ['queue', 'priority']],
  agentcom_tasks_completed_total: ['counter', ['queue']],
  agentcom_tasks_failed_total: ['counter', ['queue']],
  agentcom_tasks_retried_total: ['counter', ['queue']],
  agentcom_tasks_dead_total: ['counter', ['queue']],
  agentcom_tasks_cancelled_total: ['counter', ['queue']],
  agentcom_task_queued_to_assigned_seconds: ['histogram', ['queue', 'priority']],
  agentcom_task_assigned_to_done_seconds: ['histogram', ['queue']],
  agentcom_hub_info: ['gauge', ['hub', 'version']],
  agentcom_hub_leader: ['gauge', ['hub']],
  agentcom_hub_lease_acquisitions_total: ['counter', ['hub']],
  agentcom_hub_supervisor_restarts_total: ['counter', ['hub']],
  agentcom_hub_supervisor_escalations_total: ['counter', ['hub']],
  agentcom_hub_bus_reconnects_total: ['counter', ['hub']],
  agentcom_hub_bus_disconnects_total: ['counter', ['hub']],
  agentcom_hub_event_loop_lag_p50_seconds: ['gauge', ['hub']],
  agentcom_hub_event_loop_lag_p99_seconds: ['gauge', ['hub']],
  agentcom_hub_event_loop_lag_max_seconds: ['gauge', ['hub']],
  agentcom_hub_resident_memory_bytes: ['gauge', ['hub']],
  agentcom_hub_start_time_seconds: ['gauge', ['hub']],
  agentcom_lease_holder: ['gauge', ['hub']],
  agentcom_lease_changes_total: ['counter', []],
  agentcom_gateway_source_failures_total: ['counter', ['source']],
  agentcom_gateway_task_watch_up: ['gauge', []],
};

/** Every family of FAMILIES is there, with its type, and each sample carries exactly its labels. */
function expectShapes(fams: Map<string, Family>) {
  for (const [name, [type, labels]] of Object.entries(FAMILIES)) {
    const f = fams.get(name);
    expect(f, name).toBeDefined();
    expect(f!.type, name).toBe(type);
    expect(f!.help.length, `${name} has a HELP text`).toBeGreaterThan(10);
    for (const s of f!.samples) {
      const want = s.name.endsWith('_bucket') && type === 'histogram' ? [...labels, 'le'] : labels;
      expect(Object.keys(s.labels).sort(), `${s.name} labels`).toEqual([...want].sort());
    }
  }
  // Prometheus naming: counters end in _total and nothing else does; durations in seconds. (Not
  // checked on prom-client's own process metrics, one of which is a gauge named ..._total.)
  for (const f of fams.values()) {
    expect(f.name, 'prefix').toMatch(/^agentcom_[a-z0-9_]+$/);
    if (/^agentcom_gateway_(nodejs|process)_/.test(f.name)) continue;
    if (f.type === 'counter') expect(f.name).toMatch(/_total$/);
    else expect(f.name).not.toMatch(/_total$/);
    expect(f.name).not.toMatch(/_(ms|milliseconds|minutes)$/);
  }
}

// --- Tests ---

const nats = useNatsServer();
const log = pino({ level: 'silent' });
let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});
const prefixFor = (tag: string) => uniqueName(tag).replace(/_/g, '-').toLowerCase();

describe('createGatewayMetrics', () => {
  it('exports queue, task, agent and per-hub metrics that move with the work', async () => {
    const prefix = prefixFor('metrics');
    const hub = await startTestHub(nats.url, prefix, { statusIntervalMs: 250, hubId: 'hub-m1' });
    cleanup.push(() => hub.stop());
    const client = await testClient(nats.url, prefix);
    cleanup.push(() => client.close());
    const hubClient = new HubClient(client.bus, 2_000);
    const events = await EventHub.start(client.bus, { series: false });
    cleanup.push(async () => events.stop());
    const metrics = await createGatewayMetrics(
      { bus: client.bus, hub: hubClient, log, tasks: events },
      { timeoutMs: 2_000 },
    );
    cleanup.push(() => metrics.stop());
    // The counters count what happens once the watch runs.
    await eventually(async () =>
      expect(value(await scrape(metrics), 'agentcom_gateway_task_watch_up')).toBe(1),
    );

    const agents = await Promise.all([
      spawnSimAgent({ url: nats.url, prefix, agentId: 'good', queues: ['default'], workMs: 100 }),
      spawnSimAgent({ url: nats.url, prefix, agentId: 'bad', queues: ['flaky'], failTimes: 100 }),
      spawnSimAgent({ url: nats.url, prefix, agentId: 'slow', queues: ['slow'], workMs: 120_000 }),
    ]);
    cleanup.push(() => Promise.all(agents.map((a) => a.kill())));

    const fast = { backoff: { baseMs: 50, maxMs: 50 } };
    const done = await Promise.all([1, 2, 3, 4].map((i) => client.submit({ title: `ok ${i}` })));
    const dead = await Promise.all(
      [1, 2].map((i) => client.submit({ title: `flaky ${i}`, queue: 'flaky', maxRetries: 1, ...fast })),
    );
    const late = await client.submit({ title: 'late', queue: 'late', completeBy: Date.now() + 300 });
    const slow = await client.submit({ title: 'slow', queue: 'slow' });
    await client.submit({ title: 'waits', queue: 'nobody', priority: 'high' });
    await client.submit({ title: 'later', queue: 'nobody', priority: 'low', delay: '1h' });
    const cancelled = await client.submit({ title: 'cancelled', queue: 'nobody', priority: 'urgent' });
    await client.settle([cancelled], ['queued']);
    await hubClient.cancel(cancelled, 'test');

    await client.settle(done, ['done']);
    await client.settle(dead, ['dead']);
    await client.settle([late], ['failed']);
    await client.settle([slow], ['working']);

    const fams = await eventually(
      async () => {
        const f = await scrape(metrics);
        const v = (name: string, labels: Record<string, string> = {}) => value(f, name, labels);
        // Transitions from the tasks bucket, each once.
        expect(v('agentcom_tasks_submitted_total', { queue: 'default', priority: 'normal' })).toBe(4);
        expect(v('agentcom_tasks_submitted_total', { queue: 'nobody', priority: 'urgent' })).toBe(1);
        expect(v('agentcom_tasks_completed_total', { queue: 'default' })).toBe(4);
        expect(v('agentcom_tasks_retried_total', { queue: 'flaky' })).toBe(2);
        expect(v('agentcom_tasks_dead_total', { queue: 'flaky' })).toBe(2);
        expect(v('agentcom_tasks_failed_total', { queue: 'late' })).toBe(1);
        expect(v('agentcom_tasks_cancelled_total', { queue: 'nobody' })).toBe(1);
        const wait = 'agentcom_task_queued_to_assigned_seconds';
        expect(v(`${wait}_count`, { queue: 'default', priority: 'normal' })).toBe(4);
        expect(v(`${wait}_count`, { queue: 'flaky', priority: 'normal' })).toBe(4); // two attempts each
        expect(v(`${wait}_count`, { queue: 'slow', priority: 'normal' })).toBe(1);
        const run = 'agentcom_task_assigned_to_done_seconds';
        expect(v(`${run}_count`, { queue: 'default' })).toBe(4);
        expect(v(`${run}_bucket`, { queue: 'default', le: '+Inf' })).toBe(4);
        expect(v(`${run}_bucket`, { queue: 'default', le: '0.05' })).toBe(0); // each worked 100 ms
        expect(v(`${run}_sum`, { queue: 'default' })).toBeGreaterThanOrEqual(0.35);
        // Gauges from the hub's API, at scrape time.
        expect(v('agentcom_hub_up')).toBe(1);
        expect(v('agentcom_tasks', { state: 'done' })).toBe(4);
        expect(v('agentcom_tasks', { state: 'dead' })).toBe(2);
        expect(v('agentcom_tasks', { state: 'failed' })).toBe(1);
        expect(v('agentcom_tasks', { state: 'working' })).toBe(1);
        expect(v('agentcom_tasks', { state: 'queued' })).toBe(2);
        expect(v('agentcom_tasks', { state: 'blocked' })).toBe(0);
        expect(v('agentcom_queue_depth', { queue: 'nobody', priority: 'high' })).toBe(1);
        expect(v('agentcom_queue_depth', { queue: 'nobody', priority: 'low' })).toBe(1);
        expect(v('agentcom_queue_depth', { queue: 'nobody', priority: 'urgent' })).toBe(0);
        expect(v('agentcom_queue_depth', { queue: 'slow', priority: 'normal' })).toBe(0);
        expect(v('agentcom_queue_delayed', { queue: 'nobody' })).toBe(1);
        expect(v('agentcom_queue_oldest_task_age_seconds', { queue: 'nobody' })).toBeGreaterThan(0.1);
        expect(v('agentcom_queue_oldest_task_age_seconds', { queue: 'slow' })).toBe(0);
        expect(v('agentcom_agents', { state: 'idle' })).toBe(2);
        expect(v('agentcom_agents', { state: 'working' })).toBe(1);
        expect(v('agentcom_agents', { state: 'offline' })).toBe(0);
        expect(v('agentcom_agent_slots')).toBe(3);
        expect(v('agentcom_agent_slots_busy')).toBe(1);
        expect(v('agentcom_agent_utilisation_ratio')).toBeCloseTo(1 / 3, 5);
        expect(v('agentcom_agents_suspended')).toBe(0);
        expect(v('agentcom_jetstream_up')).toBe(1);
        expect(v('agentcom_dlq_messages')).toBeGreaterThanOrEqual(0);
        expect(v('agentcom_stream_messages', { stream: client.bus.names.streams.submit })).toBe(0);
        expect(
          v('agentcom_consumer_pending_messages', {
            stream: client.bus.names.streams.reports,
            consumer: client.bus.names.consumers.hubReports,
          }),
        ).toBe(0);
        // The hub's own gauge, and the lease.
        expect(v('agentcom_hub_info', { hub: 'hub-m1', version: '0.1.0' })).toBe(1);
        expect(v('agentcom_hub_leader', { hub: 'hub-m1' })).toBe(1);
        expect(v('agentcom_hub_lease_acquisitions_total', { hub: 'hub-m1' })).toBe(1);
        expect(v('agentcom_hub_supervisor_restarts_total', { hub: 'hub-m1' })).toBe(0);
        expect(v('agentcom_hub_bus_reconnects_total', { hub: 'hub-m1' })).toBe(0);
        expect(v('agentcom_hub_event_loop_lag_p99_seconds', { hub: 'hub-m1' })).toBeGreaterThanOrEqual(0);
        expect(v('agentcom_hub_resident_memory_bytes', { hub: 'hub-m1' })).toBeGreaterThan(1e6);
        expect(v('agentcom_lease_holder', { hub: 'hub-m1' })).toBe(1);
        expect(v('agentcom_lease_changes_total')).toBe(0);
        // Zero-initialised for every source (the hub's API may not have answered the first scrapes).
        expect(v('agentcom_gateway_source_failures_total', { source: 'jetstream' })).toBeGreaterThanOrEqual(
          0,
        );
        return f;
      },
      { timeout: 15_000, interval: 100 },
    );
    expectShapes(fams);
    // The gateway's own process metrics, prefixed.
    expect(fams.get('agentcom_gateway_nodejs_eventloop_lag_seconds')?.type).toBe('gauge');
    expect(fams.get('agentcom_gateway_process_cpu_user_seconds_total')?.type).toBe('counter');
    // The registry's own view agrees with the text.
    for (const m of await metrics.registry.getMetricsAsJSON())
      expect(fams.get(m.name)?.type, m.name).toBe(m.type);
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);

    // A child crashed inside the hub's work tree: its supervisor restarts it, and the hub says so.
    const scheduler = hub.registry.whereis('scheduler');
    expect(scheduler).toBeDefined();
    exit(scheduler!, 'kill');
    await eventually(
      async () =>
        expect(
          value(await scrape(metrics), 'agentcom_hub_supervisor_restarts_total', { hub: 'hub-m1' }),
        ).toBeGreaterThanOrEqual(1),
      { timeout: 10_000, interval: 100 },
    );
  });

  it('follows the lease across hubs, forgets a silent hub, and still answers with no hub left', async () => {
    const prefix = prefixFor('metrics-ha');
    const hubA = await startTestHub(nats.url, prefix, { statusIntervalMs: 250, hubId: 'hub-a' });
    let aStopped = false;
    cleanup.push(() => (aStopped ? Promise.resolve() : hubA.stop()));
    const client = await testClient(nats.url, prefix);
    cleanup.push(() => client.close());
    const events = await EventHub.start(client.bus, { series: false });
    cleanup.push(async () => events.stop());
    const metrics = await createGatewayMetrics(
      { bus: client.bus, hub: new HubClient(client.bus, 500), log, tasks: events },
      { timeoutMs: 500, defaultMetrics: false },
    );
    cleanup.push(() => metrics.stop());
    await eventually(
      async () => expect(value(await scrape(metrics), 'agentcom_hub_leader', { hub: 'hub-a' })).toBe(1),
      {
        timeout: 10_000,
      },
    );
    const hubB = await startTestHub(nats.url, prefix, { statusIntervalMs: 250, hubId: 'hub-b' });
    let bStopped = false;
    cleanup.push(() => (bStopped ? Promise.resolve() : hubB.stop()));
    await eventually(async () => {
      const f = await scrape(metrics);
      expect(value(f, 'agentcom_hub_leader', { hub: 'hub-b' })).toBe(0);
      expect(value(f, 'agentcom_hub_info', { hub: 'hub-b', version: '0.1.0' })).toBe(1);
      expect(value(f, 'agentcom_lease_holder', { hub: 'hub-a' })).toBe(1);
    });

    await hubA.stop();
    aStopped = true;
    await eventually(
      async () => {
        const f = await scrape(metrics);
        expect(value(f, 'agentcom_lease_holder', { hub: 'hub-b' })).toBe(1);
        expect(value(f, 'agentcom_lease_holder', { hub: 'hub-a' })).toBeUndefined();
        expect(value(f, 'agentcom_lease_changes_total')).toBe(1);
        expect(value(f, 'agentcom_hub_leader', { hub: 'hub-b' })).toBe(1);
        expect(value(f, 'agentcom_hub_lease_acquisitions_total', { hub: 'hub-b' })).toBe(1);
        expect(value(f, 'agentcom_hub_up')).toBe(1);
        // hub-a stopped publishing: gone after a few of its periods.
        expect(value(f, 'agentcom_hub_info', { hub: 'hub-a', version: '0.1.0' })).toBeUndefined();
      },
      { timeout: 15_000, interval: 100 },
    );

    await hubB.stop();
    bStopped = true;
    const f = await eventually(
      async () => {
        const f = await scrape(metrics);
        expect(value(f, 'agentcom_hub_up')).toBe(0);
        expect(f.get('agentcom_hub_info')?.samples).toEqual([]);
        return f;
      },
      { timeout: 10_000, interval: 100 },
    );
    // Nothing from the hub's API in this scrape, yet the scrape answered, JetStream included.
    expect(f.get('agentcom_tasks')?.samples).toEqual([]);
    expect(f.get('agentcom_agents')?.samples).toEqual([]);
    expect(value(f, 'agentcom_jetstream_up')).toBe(1);
    expect(
      value(f, 'agentcom_gateway_source_failures_total', { source: 'task.stats' }),
    ).toBeGreaterThanOrEqual(1);
    expectShapes(f);
  });

  it('counts what is stored after the gateway started, not a preload that reaches the tail late', async () => {
    // The tail's preload of recent revisions may end at its bounds and bring the rest after the
    // metrics tapped it: those were stored before the gateway started and are not counted.
    const prefix = prefixFor('metrics-pre');
    const client = await testClient(nats.url, prefix);
    cleanup.push(() => client.close());
    let listener: TaskRevisionListener | undefined;
    const tail: TaskRevisionTap = {
      tapTasks(fn) {
        listener = fn;
        return {
          after: 3,
          preloadEnd: 10,
          stop: () => {
            listener = undefined;
          },
        };
      },
    };
    const metrics = await createGatewayMetrics(
      { bus: client.bus, hub: new HubClient(client.bus, 500), log, tasks: tail },
      { timeoutMs: 500, defaultMetrics: false },
    );
    cleanup.push(() => metrics.stop());
    const done = (id: string) => {
      const t = assignedTo(A, true);
      return drive({ ...t, id: id as TaskId }, [
        { type: 'complete', agentId: A, generation: t.generation, result: null },
      ]);
    };
    const feed = (seq: number, task: TaskRecord) =>
      listener?.({ key: task.id, seq, operation: 'put', data: new Uint8Array(), at: 0 }, task);
    const completed = async () =>
      value(await scrape(metrics), 'agentcom_tasks_completed_total', { queue: 'default' }) ?? 0;

    feed(7, done('t-old')); // stored before the start, delivered after the tap
    expect(await completed()).toBe(0);
    feed(11, done('t-new'));
    expect(await completed()).toBe(1);
    // The old one's later revision adds only what is new in it: nothing.
    feed(12, done('t-old'));
    expect(await completed()).toBe(1);
    await metrics.stop();
    expect(listener).toBeUndefined();
  });
});
