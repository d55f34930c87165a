/**
 * Scale benchmark (issue 19): what one hub pays as agents and queued tasks grow.
 * Processes: a private nats-server per stack (free port, never 4222; its store removed at the end),
 * the hub (`agentcom hub`, its own process, with bench/hub-heap-probe.ts preloaded so the bench can
 * read its heap after a GC), and this process, which runs the agents and the producer.
 *   stacks   one per `--queued` count Q: a fresh nats-server and hub, Q tasks submitted with no
 *            agent connected (the hub's memory per queued task: heap and RSS before and after, / Q).
 *   cells    then, for each `--agents` count A in order (agents are added, never removed):
 *            - assignment paused (`hub.pause`), agents said hello up to A (memory per agent: the
 *              difference / the agents added), then `--idle-s` seconds (rounded up to a whole
 *              number of heartbeat intervals, at least two) with A agents heartbeating and no
 *              task moving (the heartbeat cost: hub CPU per second and per beat);
 *            - assignment resumed; a closed loop keeps Q tasks open (a new submission for each
 *              completion): `--warmup` assignments plus min(A, Q) (the burst that fills every free
 *              slot at resume), then `--phase-tasks` measured ones (the steady state): hub CPU per
 *              assignment (hub CPU seconds over the phase / assignments in it), nats-server's and
 *              this process's too, assignments per second, and fairness (tasks per agent over all A
 *              agents: min, max, stddev, Gini).
 *            Agents: `--connections` NATS connections (default 4; bench/mux-agents.ts), each agent
 *            its own id, session, hello, heartbeats at the hub's interval and durable inbox, one
 *            slot, completing each assignment at once.
 *   restart  on the stack with the most queued tasks, after its cells: the hub stopped (SIGTERM) and
 *            a fresh hub process started on the same store (spawn -> `hub started`, -> first
 *            `task.stats` answer holding every open task, -> first new assignment); then a second
 *            hub as standby, and once its mirror holds every record (`standbyWarmMs`) and the
 *            leader is assigning, the leader SIGKILLed: kill -> first new assignment (an assign
 *            of a (task, generation) never seen before), as bench/failover.ts measures it. After each, for `--pace-s` seconds, what the new leader sustains
 *            (first assignments a second, CPU shares, its report lag). `--no-restart` skips it.
 *   npm run bench:scale -- [--agents 100,1000,10000] [--queued 1000,100000] [--phase-tasks 20000]
 *     [--warmup 1000] [--idle-s 10] [--connections 4] [--no-restart] [--pace-s 20] [--timeout 900]
 *     [--quick]
 * `--quick`: agents 20,200, queued 200,5000, phase 400, warm-up 100, idle 5 s, pace 10 s.
 * SCALE_LOG=<path> appends each hub's log to <path>.<hub id>; SCALE_HUB_NODE_ARGS adds Node flags to
 * the hubs (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof-scale`: a profile per hub that exits cleanly).
 * Prints one JSON document on stdout (times in ms unless named otherwise, memory in bytes); progress
 * on stderr. Ratios are each cell over the smallest (first agents, first queued).
 */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { LEASE_KEY } from '../actors/leader/index.js';
import { submitTask } from '../src/agent/submit.js';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { openKv } from '../src/bus/kv.js';
import { request } from '../src/bus/service.js';
import { TaskStatsReplySchema } from '../src/protocol/api.js';
import { ControlSchema } from '../src/protocol/control.js';
import { LeaseSchema } from '../src/protocol/registration.js';
import { type Hub, hubProcess, waitFor } from './hub-process.js';
import { MuxAgents, type MuxAssign } from './mux-agents.js';
import {
  addConcurrently,
  benchFlags,
  cpuSeconds,
  nowMs,
  ownCpuSeconds,
  runBench,
  sleep,
  withTimeout,
} from './peers/common.js';
import { type NatsServer, startNatsServer } from './peers/nats.js';
import { commandLine, errText, loadAverage, machineInfo, ratio, sourceState } from './report.js';

// ---------------------------------------------------------------------------------------------
// Flags

const args = process.argv.slice(2);
if (args.includes('--help')) {
  const src = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  process.stdout.write(`${src.slice(src.indexOf('/**') + 4, src.indexOf('*/')).replace(/^ \* ?/gm, '')}\n`);
  process.exit(0);
}
const flags = benchFlags(args);
const AGENTS =
  flags.quick && !args.includes('--agents') ? [20, 200] : flags.list('agents', [100, 1000, 10_000]);
const QUEUED =
  flags.quick && !args.includes('--queued') ? [200, 5000] : flags.list('queued', [1000, 100_000]);
const PHASE = flags.number('phase-tasks', 20_000, 400);
const WARMUP = flags.number('warmup', 1000, 100);
const IDLE_S = flags.number('idle-s', 10, 5);
const CONNECTIONS = flags.number('connections', 4);
const TIMEOUT_S = flags.number('timeout', 900, 300);
const RESTART = !args.includes('--no-restart');
/** Seconds over which what a new leader sustains is measured, after the start-up and the failover. */
const PACE_S = flags.number('pace-s', 20, 10);

const log = (line: string) => process.stderr.write(`[scale] ${line}\n`);
const probe = fileURLToPath(new URL('./hub-heap-probe.ts', import.meta.url));
const runTag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;

// ---------------------------------------------------------------------------------------------
// Everything started, stopped whatever happens

const servers: NatsServer[] = [];
const hubs: Hub[] = [];
const buses: Bus[] = [];
const muxes: MuxAgents[] = [];

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const m of muxes) m.stop();
    await Promise.allSettled(
      buses.map((b) => withTimeout(b.drain(), 3000, 'drain').catch(() => b.nc.close())),
    );
    await Promise.allSettled(
      hubs.map((h) =>
        withTimeout(h.stop(), 8000, 'hub SIGTERM').catch(() => withTimeout(h.kill(), 3000, 'hub SIGKILL')),
      ),
    );
    await Promise.allSettled(servers.map((s) => s.stop()));
  })();
  return cleaning;
}

async function bus(url: string, prefix: string, name: string): Promise<Bus> {
  const b = await connectBus({
    servers: url,
    prefix,
    name,
    logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  buses.push(b);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Measures

interface Memory {
  rssBytes: number;
  heapUsedBytes: number | null;
  externalBytes: number | null;
}

/** The hub's RSS (/proc) and, from the preloaded probe, its heap after a GC. */
async function memory(h: Hub): Promise<Memory> {
  const p = h.proc!;
  const heap = await withTimeout(
    new Promise<{ heapUsed: number; external: number; rss: number }>((resolve) => {
      const on = (m: { type?: string; heapUsed: number; external: number; rss: number }) => {
        if (m.type !== 'heap') return;
        p.off('message', on);
        resolve(m);
      };
      p.on('message', on);
      p.send({ type: 'heap' });
    }),
    15_000,
    'hub heap probe',
  ).catch((err: unknown) => {
    log(`heap probe: ${errText(err)}`);
    return null;
  });
  let rss = heap?.rss ?? Number.NaN;
  try {
    rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))?.[1]) * 1024;
  } catch {
    // Keep the probe's figure.
  }
  return { rssBytes: rss, heapUsedBytes: heap?.heapUsed ?? null, externalBytes: heap?.external ?? null };
}

function memoryPer(a: Memory, b: Memory, n: number) {
  return {
    heapBytes:
      a.heapUsedBytes !== null && b.heapUsedBytes !== null ? (b.heapUsedBytes - a.heapUsedBytes) / n : null,
    rssBytes: (b.rssBytes - a.rssBytes) / n,
  };
}

/** Spread of completed tasks over equal agents (every agent counted, those with none too). */
function fairness(counts: number[]) {
  const n = counts.length;
  const sum = counts.reduce((a, b) => a + b, 0);
  const mean = sum / n;
  const sorted = [...counts].sort((a, b) => a - b);
  const stddev = Math.sqrt(counts.reduce((a, x) => a + (x - mean) ** 2, 0) / n);
  const gini =
    sum > 0 ? (2 * sorted.reduce((a, x, i) => a + (i + 1) * x, 0)) / (n * sum) - (n + 1) / n : null;
  return {
    agents: n,
    tasks: sum,
    mean,
    min: sorted[0] ?? 0,
    max: sorted[n - 1] ?? 0,
    /** The max a perfectly even spread would have. */
    evenMax: Math.ceil(mean),
    stddev,
    cv: mean > 0 ? stddev / mean : null,
    gini,
    agentsWithNone: sorted.filter((x) => x === 0).length,
  };
}

// ---------------------------------------------------------------------------------------------
// One stack: a nats-server, a hub, the agents and a producer that keeps Q tasks open

interface Cell {
  agents: number;
  queued: number;
  hello: { agentsAdded: number; seconds: number; perS: number };
  memoryPerAgent: { heapBytes: number | null; rssBytes: number } | null;
  idle: {
    seconds: number;
    beatsPerS: number;
    hubCpuPerS: number;
    natsCpuPerS: number;
    hubCpuUsPerBeat: number;
  };
  phase: {
    assignments: number;
    seconds: number;
    assignmentsPerS: number;
    cpuMsPerAssignment: { hub: number; nats: number; bench: number };
    completionsApplied: number;
    assignmentsPerCompletionApplied: number;
    hubCpuMsPerCompletion: number;
    openAtEnd: Record<string, number>;
  };
  fairness: ReturnType<typeof fairness>;
  memoryAfterPhase: Memory;
}

async function runStack(queued: number, measureRestart: boolean) {
  const prefix = `sc${runTag}q${queued}`;
  const nats = await startNatsServer();
  servers.push(nats);
  /** When each hub (`<id>`) logged that its scheduler started (`:scheduler`) and, once every leader service ran, that its work started (`:work`). */
  const workStarted = new Map<string, number[]>();
  const mark = (key: string) => workStarted.set(key, [...(workStarted.get(key) ?? []), nowMs()]);
  /** The first time `key` was logged at or after `t0` (a hub that leads again logs it again). */
  const markedSince = (key: string, t0: number) => workStarted.get(key)?.find((at) => at >= t0);
  const mkHub = (id: string) => {
    const h = hubProcess({
      onLine: (l) => {
        if (l.includes('"msg":"scheduler started"')) mark(`${id}:scheduler`);
        if (l.includes('"msg":"task mirror following the bucket"')) mark(`${id}:mirror`);
        if (l.includes('"msg":"took the scheduler lease; work started"')) mark(`${id}:work`);
      },
      natsUrl: nats.url,
      prefix,
      id,
      nodeArgs: ['--expose-gc', ...(process.env.SCALE_HUB_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
      preload: [probe],
      ipc: true,
      env: { AGENTCOM_LOG_LEVEL: 'info' },
      logPath: process.env.SCALE_LOG,
    });
    hubs.push(h);
    return h;
  };
  let hub = mkHub('scale-a');
  await hub.start();
  const stackBuses: Bus[] = [];
  const connect = async (name: string) => {
    const b = await bus(nats.url, prefix, name);
    stackBuses.push(b);
    return b;
  };
  const admin = await connect('scale-admin');
  // A hub just started may not serve the API yet ("no responders"): ask again for up to 30 s.
  const retrying = async <T>(f: () => Promise<T>): Promise<T> => {
    const end = nowMs() + 30_000;
    for (;;) {
      try {
        return await f();
      } catch (err) {
        if (nowMs() > end) throw err;
        await sleep(250);
      }
    }
  };
  const stats = () =>
    retrying(() => request(admin, 'task.stats', { v: 1 }, TaskStatsReplySchema, { timeoutMs: 30_000 }));
  const control = (op: 'pause' | 'resume') =>
    retrying(() =>
      request(admin, `hub.${op}`, { v: 1, assignment: true, reason: 'bench' }, ControlSchema, {
        timeoutMs: 30_000,
      }),
    );

  // Assignments as the agents see them.
  let assigns = 0;
  let lastAssignAt = 0;
  const seen = new Set<string>();
  /** First sightings of a (task, generation): when the hub stored it, when an agent got it. */
  const newAssigns: { storedAt: number; at: number }[] = [];
  const perAgent = new Map<string, number>();
  let topUp = true;
  let submitErrors = 0;
  let submitted = 0;
  let pendingSubmits = 0;
  const onAssign = (a: MuxAssign) => {
    assigns++;
    lastAssignAt = a.at;
    perAgent.set(a.agent, (perAgent.get(a.agent) ?? 0) + 1);
    const key = `${a.taskId}:${a.generation}`;
    if (!seen.has(key)) {
      seen.add(key);
      newAssigns.push({ storedAt: a.storedAt, at: a.at });
    }
    if (topUp) {
      submitted++;
      pendingSubmits++;
      submitTask(admin, { title: `s${submitted}` })
        .catch(() => submitErrors++)
        .finally(() => pendingSubmits--);
    }
  };
  const stackMuxes: MuxAgents[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const m = new MuxAgents(await connect(`scale-agents-${i}`), { slots: 1, work: onAssign });
    stackMuxes.push(m);
    muxes.push(m);
  }
  const beats = () => stackMuxes.reduce((a, m) => a + m.beats, 0);
  const cpu = () => ({ hub: cpuSeconds(hub.proc?.pid), nats: cpuSeconds(nats.pid), bench: ownCpuSeconds() });
  /**
   * What the hub, the streams and the agents hold when assignments stop (printed to stderr): the
   * leader's task.stats, the hub's consumers, and the agents' inbox consumers summed up.
   */
  const diagnose = async (): Promise<unknown> => {
    const { streams, consumers } = admin.names;
    const consumer = (stream: string, name: string) =>
      admin.jsm.consumers
        .info(stream, name)
        .then((i) => ({
          pending: i.num_pending,
          ackPending: i.num_ack_pending,
          waiting: i.num_waiting,
          redelivered: i.num_redelivered,
          delivered: i.delivered.stream_seq,
          ackFloor: i.ack_floor.stream_seq,
        }))
        .catch((err: Error) => err.message);
    const inboxes = {
      consumers: 0,
      pending: 0,
      ackPending: 0,
      waiting: 0,
      withPending: 0,
      withAckPending: 0,
      idle: 0,
    };
    const samples: unknown[] = [];
    try {
      for await (const i of admin.jsm.consumers.list(streams.inbox)) {
        inboxes.consumers++;
        inboxes.pending += i.num_pending;
        inboxes.ackPending += i.num_ack_pending;
        inboxes.waiting += i.num_waiting;
        if (i.num_pending > 0) inboxes.withPending++;
        if (i.num_ack_pending > 0) inboxes.withAckPending++;
        if (i.num_pending === 0 && i.num_ack_pending === 0) inboxes.idle++;
        if (i.num_pending > 0 && i.num_waiting === 0 && samples.length < 5)
          samples.push({
            name: i.name,
            pending: i.num_pending,
            ackPending: i.num_ack_pending,
            waiting: i.num_waiting,
          });
      }
    } catch (err) {
      samples.push((err as Error).message);
    }
    const stream = (name: string) =>
      admin.jsm.streams
        .info(name)
        .then((i) => ({ messages: i.state.messages, first: i.state.first_seq, last: i.state.last_seq }))
        .catch((err: Error) => err.message);
    // The connections the server has the most bytes queued for (a client behind on its reads).
    const connz = await fetch(`http://127.0.0.1:${nats.monitorPort}/connz?sort=pending&limit=6`)
      .then((r) => r.json() as Promise<{ connections: Record<string, unknown>[] }>)
      .then((c) =>
        c.connections.map((x) => ({
          name: x.name,
          pendingBytes: x.pending_bytes,
          inMsgs: x.in_msgs,
          outMsgs: x.out_msgs,
          subscriptions: x.subscriptions,
        })),
      )
      .catch((err: Error) => err.message);
    // Over one status interval: the leader's bus gauge (publish round trips, handler times) and
    // each hub's event-loop lag.
    const gauges: Record<string, unknown> = {};
    const subs = [admin.names.subjects.busStatus, admin.names.subjects.hubStatsAll].map((subject) =>
      admin.nc.subscribe(subject, {
        callback: (_e, m) => {
          const g = m.json<Record<string, unknown>>();
          if (g.local) gauges.busLocal = g.local;
          else if (typeof g.hubId === 'string')
            gauges[g.hubId] = { leader: g.leader, eventLoopLag: g.eventLoopLag, rssBytes: g.rssBytes };
        },
      }),
    );
    const reports0 = await consumer(streams.reports, consumers.hubReports);
    await sleep(6_000);
    const reports5 = await consumer(streams.reports, consumers.hubReports);
    for (const sub of subs) sub.unsubscribe();
    return {
      connz,
      reportsAckedPerS:
        typeof reports0 === 'object' && typeof reports5 === 'object'
          ? {
              byAckFloor: (reports5.ackFloor - reports0.ackFloor) / 6,
              byDelivered: (reports5.delivered - reports0.delivered) / 6,
            }
          : null,
      // The oldest report not acked (a handler that never ends holds the ack floor).
      reportAtFloor:
        typeof reports5 === 'object'
          ? await admin.jsm.streams
              .getMessage(streams.reports, { seq: reports5.ackFloor + 1 })
              .then(
                (m) => m && { seq: m.seq, subject: m.subject, at: m.time, data: m.string().slice(0, 300) },
              )
              .catch((err: Error) => err.message)
          : null,
      gauges,
      stats: await request(admin, 'task.stats', { v: 1 }, TaskStatsReplySchema, { timeoutMs: 10_000 }).catch(
        (err: Error) => err.message,
      ),
      intake: await consumer(streams.submit, consumers.hubIntake),
      reports: await consumer(streams.reports, consumers.hubReports),
      streams: {
        submit: await stream(streams.submit),
        reports: await stream(streams.reports),
        inbox: await stream(streams.inbox),
      },
      inboxes,
      inboxSamples: samples,
      agents: stackMuxes.map((m) => ({ ...m.pulling(), completing: m.completing, pullsLost: m.pullsLost })),
      assigns,
      sinceLastAssignMs: nowMs() - lastAssignAt,
      // The newest first sightings: how long ago they were stored, and stored -> received.
      newest: newAssigns
        .slice(-3)
        .map((x) => ({ storedAgoMs: nowMs() - x.storedAt, latencyMs: x.at - x.storedAt })),
    };
  };

  // The queue, no agent connected.
  const empty = await memory(hub);
  let t = nowMs();
  await addConcurrently(queued, (i) => submitTask(admin, { title: `q${i}` }));
  for (;;) {
    const s = await stats();
    if ((s.byStatus.queued ?? 0) >= queued) break;
    if (nowMs() - t > 300_000) throw new Error(`the hub holds ${s.total} of ${queued} tasks after 300 s`);
    await sleep(200);
  }
  const fillS = (nowMs() - t) / 1000;
  const filled = await memory(hub);
  log(`q=${queued}: ${queued} tasks queued in ${fillS.toFixed(1)} s`);
  const out: Record<string, unknown> = {
    queued,
    fill: { seconds: fillS, tasksPerS: queued / fillS },
    memory: { empty, filled, perQueuedTask: memoryPer(empty, filled, queued) },
  };

  // The cells.
  const ids: string[] = [];
  const cells: Cell[] = [];
  let heartbeatMs = 5000;
  for (const A of AGENTS) {
    await control('pause');
    // In-flight assignments finish: none arrives for a second.
    await waitFor('assignments to stop', () => nowMs() - lastAssignAt > 1000 || undefined, 60_000);
    const before = await memory(hub);
    const added = A - ids.length;
    const from = ids.length;
    for (let i = from; i < A; i++) ids.push(`a${i}`);
    t = nowMs();
    let next = from;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < A) {
          const i = next++;
          await stackMuxes[i % CONNECTIONS]!.hello(ids[i]!);
        }
      }),
    );
    const helloS = (nowMs() - t) / 1000;
    const after = await memory(hub);
    log(`q=${queued} a=${A}: ${added} agents said hello in ${helloS.toFixed(1)} s`);

    // Heartbeats only: one full interval first, so every agent beats.
    heartbeatMs = stackMuxes[0]!.heartbeatIntervalMs ?? heartbeatMs;
    await sleep(heartbeatMs + 200);
    const c0 = cpu();
    const b0 = beats();
    t = nowMs();
    // A whole number of intervals, at least two: each mux beats its agents in one burst per
    // interval, so a window of one interval held a burst or none (0 beats/s in some runs).
    await sleep(Math.max(2, Math.ceil((IDLE_S * 1000) / heartbeatMs)) * heartbeatMs);
    const idleS = (nowMs() - t) / 1000;
    const c1 = cpu();
    const beatsPerS = (beats() - b0) / idleS;
    const idle = {
      seconds: idleS,
      beatsPerS,
      hubCpuPerS: (c1.hub - c0.hub) / idleS,
      natsCpuPerS: (c1.nats - c0.nats) / idleS,
      hubCpuUsPerBeat: ((c1.hub - c0.hub) * 1e6) / Math.max(1, beats() - b0),
    };

    // The loop: warm-up, then the measured phase.
    const a0 = assigns;
    await control('resume');
    // Resuming hands every free slot a task at once (min(A, Q) assignments, no completion needed):
    // that burst is warm-up too, so the phase sees the steady state (one assignment per completion).
    const warmup = WARMUP + Math.min(A, queued);
    await waitFor('the warm-up', () => assigns - a0 >= warmup || undefined, 300_000);
    const done0 = (await stats()).byStatus.done ?? 0;
    perAgent.clear();
    const p0 = cpu();
    const n0 = assigns;
    t = nowMs();
    await waitFor('the phase', () => assigns - n0 >= PHASE || undefined, 600_000);
    const p1 = cpu();
    const n = assigns - n0;
    const phaseS = (nowMs() - t) / 1000;
    const counts = ids.map((id) => perAgent.get(id) ?? 0);
    const s = await stats();
    const cell: Cell = {
      agents: A,
      queued,
      hello: { agentsAdded: added, seconds: helloS, perS: added / helloS },
      memoryPerAgent: added > 0 ? memoryPer(before, after, added) : null,
      idle,
      phase: {
        assignments: n,
        seconds: phaseS,
        assignmentsPerS: n / phaseS,
        cpuMsPerAssignment: {
          hub: ((p1.hub - p0.hub) * 1000) / n,
          nats: ((p1.nats - p0.nats) * 1000) / n,
          bench: ((p1.bench - p0.bench) * 1000) / n,
        },
        /** Completions the hub applied over the phase (task.stats before and after it). */
        completionsApplied: (s.byStatus.done ?? 0) - done0,
        /** Near 1 in a steady state; above 1, assignments ran ahead of the completions applied. */
        assignmentsPerCompletionApplied: n / Math.max(1, (s.byStatus.done ?? 0) - done0),
        hubCpuMsPerCompletion: ((p1.hub - p0.hub) * 1000) / Math.max(1, (s.byStatus.done ?? 0) - done0),
        openAtEnd: s.byStatus,
      },
      fairness: fairness(counts),
      memoryAfterPhase: await memory(hub),
    };
    cells.push(cell);
    log(
      `q=${queued} a=${A}: ${cell.phase.assignmentsPerS.toFixed(0)} assignments/s, hub ${cell.phase.cpuMsPerAssignment.hub.toFixed(3)} ms CPU each; idle ${idle.hubCpuPerS.toFixed(3)} CPU s/s at ${beatsPerS.toFixed(0)} beats/s`,
    );
  }
  out.cells = cells;
  out.submitErrors = submitErrors;

  if (measureRestart) {
    /**
     * When an agent got the first assignment the hub stored at or after `since`. The pipeline is
     * deep with many agents (thousands of assignments on their way): one a killed or stopped hub
     * made may reach its agent seconds later, so the stream's own timestamp tells whose it is.
     */
    const firstNewAfter = (since: number) => {
      let first: number | undefined;
      // From the newest back (storedAt rises but for a few out of order), to 10 s before `since`.
      for (let i = newAssigns.length - 1; i >= 0; i--) {
        const x = newAssigns[i]!;
        if (x.storedAt >= since) first = Math.min(first ?? x.at, x.at);
        else if (since - x.storedAt > 10_000) break;
      }
      return first;
    };
    const leases = await openKv(admin, admin.names.buckets.leases, LeaseSchema);
    /**
     * From `t0` (a start or a kill) to what hub `id` does once it holds the lease (at `leaseAt`):
     * - firstNewAssignmentMs: as bench/failover.ts, the first assign of a (task, generation) never
     *   seen, stored after the lease moved (one the old leader sent may still be on its way). It can
     *   be one the new leader re-sends at its start (recorded by the old one but never pushed);
     * - schedulerStartedMs: its log says "scheduler started", and the first assignment after that;
     * - workStartedMs: "took the scheduler lease; work started" (every leader service runs).
     */
    const takeover = async (id: string, t0: number, leaseAt: number) => {
      const first = await waitFor('a new assignment', () => firstNewAfter(leaseAt), 180_000);
      const sched = await waitFor('its scheduler', () => markedSince(`${id}:scheduler`, t0), 180_000);
      const schedAssign = await waitFor('an assignment after that', () => firstNewAfter(sched), 120_000);
      const work = await waitFor('its work', () => markedSince(`${id}:work`, t0), 180_000);
      return {
        firstNewAssignmentMs: first - t0,
        schedulerStartedMs: sched - t0,
        firstAssignmentAfterSchedulerStartedMs: schedAssign - t0,
        workStartedMs: work - t0,
      };
    };
    /** When the scheduler lease is first seen held by `id` (polled every 5 ms). */
    const leaseTo = async (id: string, since: number) => {
      while (nowMs() - since < 120_000) {
        const holder = (await leases.get(LEASE_KEY).catch(() => null))?.value?.holder;
        if (holder === id) return nowMs();
        await sleep(5);
      }
      throw new Error(`the lease never went to ${id}`);
    };
    // Start-up: a fresh hub process on this store.
    const before = await stats();
    const open = before.total - (before.byStatus.done ?? 0);
    await hub.stop();
    hub = mkHub('scale-b');
    const t0 = nowMs();
    let statsAt: number | undefined;
    let answeredAt: number | undefined;
    const polling = (async () => {
      while (statsAt === undefined && nowMs() - t0 < 300_000) {
        const s = await request(admin, 'task.stats', { v: 1 }, TaskStatsReplySchema, {
          timeoutMs: 10_000,
        }).catch(() => null);
        if (s) answeredAt ??= nowMs();
        // Every record loaded (not the open ones: agents may finish some before the API answers).
        if (s && s.total >= before.total * 0.99) statsAt = nowMs();
        // Not faster: each answer walks every record (100,000 here), which would load the hub.
        else await sleep(250);
      }
    })();
    const leased = leaseTo(hub.id, t0);
    await hub.start();
    const startedAt = nowMs();
    await polling;
    const leaseAt = await leased;
    const took = await takeover(hub.id, t0, leaseAt);
    /**
     * What the leader `h` sustains once its work started: first assignments of a (task,
     * generation) a second over the next PACE_S seconds, the CPU shares, and its report lag at the end.
     */
    const pace = async (h: Hub) => {
      const n0 = newAssigns.length;
      const t = nowMs();
      const c0 = { hub: cpuSeconds(h.proc?.pid), nats: cpuSeconds(nats.pid), bench: ownCpuSeconds() };
      await sleep(PACE_S * 1000);
      const s = (nowMs() - t) / 1000;
      const share = (now: number, then: number) => Number(((now - then) / s).toFixed(2));
      const lag = await stats().then(
        (r) => r.scheduler?.reportsLagMs ?? null,
        () => null,
      );
      return {
        seconds: s,
        newAssignmentsPerS: (newAssigns.length - n0) / s,
        cpuShare: {
          hub: share(cpuSeconds(h.proc?.pid), c0.hub),
          nats: share(cpuSeconds(nats.pid), c0.nats),
          bench: share(ownCpuSeconds(), c0.bench),
        },
        reportsLagMs: lag,
      };
    };
    const startup = {
      openTasks: open,
      hubStartedMs: startedAt - t0,
      leaseMs: leaseAt - t0,
      firstTaskStatsAnswerMs: answeredAt === undefined ? null : answeredAt - t0,
      /** task.stats answering with at least 99 % of the task records there were. */
      taskStatsMs: statsAt === undefined ? null : statsAt - t0,
      ...took,
    };
    log(
      `start-up with ${open} open tasks: stats ${startup.taskStatsMs?.toFixed(0)} ms, first assignment ${startup.firstNewAssignmentMs.toFixed(0)} ms, scheduler started ${startup.schedulerStartedMs.toFixed(0)} ms`,
    );
    const afterStart = await pace(hub);
    log(`after the start-up: ${JSON.stringify(afterStart)}`);

    // Failover: a standby, then the leader SIGKILLed.
    const standby = mkHub('scale-c');
    const ts = nowMs();
    await standby.start();
    const standbyStartedMs = nowMs() - ts;
    await sleep(heartbeatMs + 500);
    const leader = (await leases.get(LEASE_KEY))?.value?.holder;
    const [dead, heir] = leader === standby.id ? [standby, hub] : [hub, standby];
    // A standby is warm before the kill, as one that has stood by for a while is: its mirror has
    // read every record and follows the bucket (a kill before that measured a cold takeover, which
    // reads the whole bucket: 7.4 s more in one run).
    const warmAt = await waitFor("the standby's mirror", () => markedSince(`${heir.id}:mirror`, ts), 120_000);
    const standbyWarmMs = warmAt - ts;
    const waitedFrom = {
      at: nowMs(),
      dead: cpuSeconds(dead.proc?.pid),
      heir: cpuSeconds(heir.proc?.pid),
      nats: cpuSeconds(nats.pid),
      bench: ownCpuSeconds(),
    };
    // Any assignment stored since the wait began: the leader is assigning. (It once asked for one
    // stored in the last 200 ms, which a loaded stack, where an assignment takes longer than that
    // from the inbox stream to the agent, never shows however fast work flows.)
    await waitFor('assignments', () => firstNewAfter(waitedFrom.at), 60_000).catch(async (err) => {
      const s = (nowMs() - waitedFrom.at) / 1000;
      const share = (now: number, then: number) => ((now - then) / s).toFixed(2);
      log(
        `CPU share over the wait: leader ${share(cpuSeconds(dead.proc?.pid), waitedFrom.dead)}, standby ${share(cpuSeconds(heir.proc?.pid), waitedFrom.heir)}, nats-server ${share(cpuSeconds(nats.pid), waitedFrom.nats)}, bench ${share(ownCpuSeconds(), waitedFrom.bench)}`,
      );
      log(
        `no new assignment for 60 s; agent pulls sent again as lost: ${stackMuxes.reduce((a, m) => a + m.pullsLost, 0)}`,
      );
      log(`what the hub and the streams hold: ${JSON.stringify(await diagnose())}`);
      throw err;
    });
    const tk = nowMs();
    await dead.kill();
    // Until the killed process is gone (its sockets close only then): a large heap takes a while.
    const killedExitMs = nowMs() - tk;
    const tLease = await leaseTo(heir.id, tk);
    const took2 = await takeover(heir.id, tk, tLease);
    const failover = {
      openTasks: open,
      killed: dead.id,
      standbyStartedMs,
      /** The standby's mirror following the bucket (every record read), from its spawn. */
      standbyWarmMs,
      killedExitMs,
      leaseMs: tLease - tk,
      ...took2,
    };
    log(
      `failover with ${open} open tasks: first new assignment ${took2.firstNewAssignmentMs.toFixed(0)} ms, scheduler started ${took2.schedulerStartedMs.toFixed(0)} ms, first assignment after it ${took2.firstAssignmentAfterSchedulerStartedMs.toFixed(0)} ms`,
    );
    const afterFailover = await pace(heir);
    log(`after the failover: ${JSON.stringify(afterFailover)}`);
    // Last: the probe's forced GC of a heap this size stops the hub for seconds, long enough to
    // lose the lease to the standby (a first version measured here and timed that takeover).
    out.startup = { ...startup, after: afterStart, memory: await memory(heir) };
    out.failover = { ...failover, after: afterFailover };
  }

  // Stop this stack (its server's store goes with it): no new work, the last submissions stored.
  topUp = false;
  /** Pulls the simulated agents sent again because no answer came (bench/mux-agents.ts). */
  out.agentPullsLost = stackMuxes.reduce((a, m) => a + m.pullsLost, 0);
  await control('pause').catch(() => {});
  await waitFor('submissions to settle', () => pendingSubmits === 0 || undefined, 10_000).catch(() => {});
  for (const m of stackMuxes) m.stop();
  await Promise.allSettled(
    stackBuses.map((b) => withTimeout(b.drain(), 3000, 'drain').catch(() => b.nc.close())),
  );
  for (const h of hubs.splice(0)) await h.stop();
  await nats.stop();
  return out as { queued: number; cells: Cell[] } & Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<Record<string, unknown>> {
  const tRun = nowMs();
  const out: Record<string, unknown> = {
    bench: 'scale',
    command: commandLine('bench/scale.ts', args),
    source: sourceState(),
    machine: await machineInfo(),
    params: {
      agents: AGENTS,
      queued: QUEUED,
      phaseTasks: PHASE,
      warmup: WARMUP,
      idleS: IDLE_S,
      connections: CONNECTIONS,
      slotsPerAgent: 1,
      restart: RESTART,
    },
  };
  const maxQ = Math.max(...QUEUED);
  const stacks = [];
  for (const q of QUEUED) stacks.push(await runStack(q, RESTART && q === maxQ));
  out.stacks = stacks;

  // Tables across stacks.
  const cells = stacks.flatMap((s) => s.cells);
  const base = cells.find((c) => c.agents === AGENTS[0] && c.queued === QUEUED[0])!;
  out.cpuPerAssignment = cells.map((c) => ({
    agents: c.agents,
    queued: c.queued,
    hubMs: c.phase.cpuMsPerAssignment.hub,
    ratioToSmallest: ratio(c.phase.cpuMsPerAssignment.hub, base.phase.cpuMsPerAssignment.hub),
    hubMsPerCompletionApplied: c.phase.hubCpuMsPerCompletion,
    natsMs: c.phase.cpuMsPerAssignment.nats,
    assignmentsPerS: c.phase.assignmentsPerS,
    openAtEnd: c.phase.openAtEnd,
  }));
  const hubMs = cells.map((c) => c.phase.cpuMsPerAssignment.hub);
  out.cpuSpread = { maxOverMin: ratio(Math.max(...hubMs), Math.min(...hubMs)), goal: 2 };
  out.fairness = cells.map((c) => ({ queued: c.queued, ...c.fairness }));
  out.heartbeats = cells.map((c) => ({
    agents: c.agents,
    queued: c.queued,
    ...c.idle,
    ratioHubCpuPerSToSmallest: ratio(c.idle.hubCpuPerS, base.idle.hubCpuPerS),
    /** Hub CPU per beat over what the smallest cell of the same stack spends idle. */
    marginalHubCpuUsPerBeat: (() => {
      const b = cells.find((x) => x.queued === c.queued && x.agents === AGENTS[0])!;
      return c === b
        ? null
        : ((c.idle.hubCpuPerS - b.idle.hubCpuPerS) * 1e6) / (c.idle.beatsPerS - b.idle.beatsPerS);
    })(),
  }));
  out.memoryPerAgent = cells.map((c) => ({
    agents: c.agents,
    queued: c.queued,
    agentsAdded: c.hello.agentsAdded,
    ...c.memoryPerAgent,
  }));
  out.memoryPerQueuedTask = stacks.map((s) => ({
    queued: s.queued,
    ...(s.memory as { perQueuedTask: object }).perQueuedTask,
  }));
  out.runS = (nowMs() - tRun) / 1000;
  (out.machine as Record<string, unknown>).loadavgEnd = loadAverage();
  return out;
}

await runBench({ main, cleanup, timeoutS: TIMEOUT_S, log });
