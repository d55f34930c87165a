/**
 * One chaos run: a 3-node nats-server cluster with every stream and bucket at 3 replicas, several
 * hubs (`agentcom hub`), SDK agents and sidecar agents (`agentcom sidecar` with a wake command) as
 * separate processes, and a producer (this process) submitting tasks with idempotency keys at a
 * steady rate, while the seeded fault schedule (schedule.ts) kills, restarts and stalls processes
 * and NATS nodes and sends bursts of duplicate and stale reports. Everything that happens is
 * recorded (history.ts); at the end the task records are read and the checker (checker.ts) gives
 * the verdict. Used by `npm run chaos` (main.ts) and, small, by chaos.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { LEASE_KEY } from '../../actors/leader/index.js';
import type { SidecarConfigInput } from '../../src/agent/sidecar-config.js';
import { submitTask } from '../../src/agent/submit.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { publish } from '../../src/bus/publish.js';
import { ReportSchema } from '../../src/protocol/agent.js';
import { LeaseSchema } from '../../src/protocol/registration.js';
import { type TaskRecord, TaskRecordSchema } from '../../src/protocol/task.js';
import { startNatsCluster, type TestNatsCluster } from '../support/nats-cluster.js';
import { type ChaosReport, checkHistory } from './checker.js';
import type { HistoryEvent } from './history.js';
import { type Fault, faultSchedule, prng, type ScheduledFault } from './schedule.js';

export interface ChaosOptions {
  seed: number;
  tasks: number;
  /** Submissions per second. */
  rate: number;
  hubs: number;
  sdkAgents: number;
  sidecarAgents: number;
  /** Slots of each agent. */
  slots: number;
  /** SDK handler time: `workMs` plus up to `workJitterMs` at random. */
  workMs: number;
  workJitterMs: number;
  agentKills: number;
  hubKills: number;
  natsKills: number;
  stalls: number;
  reportBursts: number;
  heartbeatIntervalMs: number;
  missedBeats: number;
  leaseTtlMs: number;
  /** How long to wait, after the last submission and fault, for every task to finish. */
  drainTimeoutMs: number;
  /** Where history.jsonl and report.json go (default: a temp dir, removed unless `keep`). */
  outDir?: string;
  log?: (line: string) => void;
}

export const CHAOS_DEFAULTS: ChaosOptions = {
  seed: 1,
  tasks: 10_000,
  rate: 40,
  hubs: 3,
  sdkAgents: 6,
  sidecarAgents: 2,
  slots: 2,
  workMs: 20,
  workJitterMs: 200,
  agentKills: 50,
  hubKills: 3,
  natsKills: 2,
  stalls: 2,
  reportBursts: 3,
  heartbeatIntervalMs: 2_000,
  missedBeats: 3,
  leaseTtlMs: 5_000,
  drainTimeoutMs: 180_000,
};

export interface ChaosResult {
  report: ChaosReport;
  /** Faults carried out, and skipped (their target was already down), by kind. */
  faults: { executed: Record<string, number>; skipped: Record<string, number> };
  config: Omit<ChaosOptions, 'log'>;
  schedule: ScheduledFault[];
  seconds: number;
  outDir: string;
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'src/cli/main.ts');
const simAgent = join(root, 'test/support/sim-agent.ts');
const wakeFixture = join(root, 'test/agent/fixtures/wake-complete.mjs');

interface Proc {
  label: string;
  proc: ChildProcess | undefined;
  incarnation: number;
  start(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function runChaos(options: Partial<ChaosOptions> = {}): Promise<ChaosResult> {
  const o: ChaosOptions = { ...CHAOS_DEFAULTS, ...options };
  const log = o.log ?? (() => {});
  const outDir = o.outDir ?? (await mkdtemp(join(tmpdir(), 'agentcom-chaos-')));
  await mkdir(join(outDir, 'logs'), { recursive: true });
  logDir = join(outDir, 'logs');
  const events: HistoryEvent[] = [];
  const record = (e: HistoryEvent) => events.push(e);
  const prefix = `chaos${o.seed}`;
  const started = Date.now();
  const windowMs = Math.round((o.tasks / o.rate) * 1000);
  const schedule = faultSchedule({
    seed: o.seed,
    windowMs,
    agents: o.sdkAgents + o.sidecarAgents,
    natsNodes: 3,
    agentKills: o.agentKills,
    hubKills: o.hubKills,
    natsKills: o.natsKills,
    stalls: o.stalls,
    reportBursts: o.reportBursts,
    presenceWindowMs: o.heartbeatIntervalMs * o.missedBeats,
    leaseTtlMs: o.leaseTtlMs,
  });

  const cluster = await startNatsCluster(3);
  const procs: Proc[] = [];
  let bus: Bus | undefined;
  try {
    const hubEnv: Record<string, string> = {
      NATS_URL: cluster.url,
      AGENTCOM_PREFIX: prefix,
      AGENTCOM_REPLICAS: '3',
      AGENTCOM_LOG_LEVEL: 'info',
      AGENTCOM_HEARTBEAT_INTERVAL_MS: String(o.heartbeatIntervalMs),
      AGENTCOM_MISSED_BEATS: String(o.missedBeats),
      AGENTCOM_LEASE_TTL_MS: String(o.leaseTtlMs),
      AGENTCOM_RETENTION_COUNT: String(Math.max(o.tasks * 2, 100_000)),
    };
    const hubs = Array.from({ length: o.hubs }, (_, i) =>
      nodeProc(
        `hub-${i + 1}`,
        ['--import', 'tsx', cli, 'hub', '--hub-id', `hub-${i + 1}`],
        hubEnv,
        'hub started',
        (line, p) => {
          if (
            line.msg === 'report refused' ||
            (typeof line.msg === 'string' && line.msg.startsWith('report refused'))
          )
            record({
              t: Number(line.time ?? Date.now()),
              kind: 'refused',
              hub: p.label,
              agentId: String(line.agent_id),
              taskId: String(line.task_id),
              generation: Number(line.generation),
              code: String(line.code),
            });
        },
      ),
    );
    // One at a time: the first provisions the streams and buckets.
    for (const h of hubs) await h.start();
    procs.push(...hubs);
    bus = await connectBus({ servers: cluster.url, prefix, logger: pino({ level: 'silent' }) });
    const b = bus;
    log(`[chaos] cluster and ${o.hubs} hubs up (${((Date.now() - started) / 1000).toFixed(1)} s)`);

    const agents: Proc[] = [];
    for (let i = 0; i < o.sdkAgents; i++) {
      const agentId = `sdk-${i + 1}`;
      const config = {
        url: cluster.url,
        prefix,
        agentId,
        slots: o.slots,
        workMs: o.workMs,
        workJitterMs: o.workJitterMs,
      };
      agents.push(
        nodeProc(
          agentId,
          ['--import', 'tsx', simAgent, JSON.stringify(config)],
          {},
          null,
          (line, p) => {
            const base = {
              proc: `${p.label}#${p.incarnation}`,
              agentId,
              session: line.session as string | undefined,
            };
            const t = Number(line.at ?? Date.now());
            const taskId = String(line.taskId);
            const generation = Number(line.generation);
            if (line.event === 'accepted') record({ t, kind: 'start', ...base, taskId, generation });
            else if (line.event === 'completed' || line.event === 'failed' || line.event === 'aborted')
              record({ t, kind: 'finish', ...base, taskId, generation, outcome: line.event });
            else if (line.event === 'notice') record(noticeEvent(t, base, taskId, generation, line));
          },
          (ev) => ev.event === 'ready',
        ),
      );
    }
    for (let i = 0; i < o.sidecarAgents; i++) {
      const agentId = `side-${i + 1}`;
      const dir = join(outDir, agentId);
      await mkdir(dir, { recursive: true });
      const config: SidecarConfigInput = {
        v: 1,
        agentId,
        nats: { servers: cluster.url, prefix },
        hello: { slots: o.slots },
        workDir: 'work',
        wake: { command: [process.execPath, wakeFixture] },
      };
      const file = join(dir, 'sidecar.json');
      await writeFile(file, JSON.stringify(config));
      let session: string | undefined;
      agents.push(
        nodeProc(
          agentId,
          ['--import', 'tsx', cli, 'sidecar', '--config', file],
          { AGENTCOM_LOG_LEVEL: 'info' },
          'sidecar online',
          (line, p) => {
            if (line.msg === 'sidecar online') session = line.session as string;
            const base = { proc: `${p.label}#${p.incarnation}`, agentId, session };
            const t = Number(line.time ?? Date.now());
            const taskId = String(line.task_id);
            const generation = Number(line.generation);
            if (line.msg === 'assignment received') record({ t, kind: 'start', ...base, taskId, generation });
            else if (line.msg === 'result relayed')
              record({
                t,
                kind: 'finish',
                ...base,
                taskId,
                generation,
                outcome: line.phase === 'completed' ? 'completed' : 'failed',
              });
            else if (line.msg === 'assignment cancelled')
              record({ t, kind: 'finish', ...base, taskId, generation: -1, outcome: 'cancelled' });
            else if (line.phase === 'notice') record(noticeEvent(t, base, taskId, generation, line));
          },
        ),
      );
    }
    await Promise.all(agents.map((a) => a.start()));
    procs.push(...agents);
    const onExit = (p: Proc) => {
      p.proc?.once('exit', (code, signal) =>
        record({ t: Date.now(), kind: 'exit', proc: `${p.label}#${p.incarnation}`, signal, code }),
      );
    };
    for (const p of procs) onExit(p);
    log(
      `[chaos] ${o.sdkAgents} SDK and ${o.sidecarAgents} sidecar agents up; ${o.tasks} tasks at ${o.rate}/s, ${schedule.length} faults`,
    );

    // --- Producer and faults, side by side ---
    const t0 = Date.now();
    const producer = (async () => {
      const inFlight = new Set<Promise<void>>();
      for (let i = 0; i < o.tasks; i++) {
        const due = t0 + (i * 1000) / o.rate;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        const key = `chaos-${o.seed}-${i}`;
        const p = submitUntilStored(b, key, i).then((taskId) => {
          record({ t: Date.now(), kind: 'submit', key, taskId });
        });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size > 500) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    })();
    // The lease may be between holders, or its bucket briefly unreachable (a node down): ask again.
    const leaderId = async (): Promise<string | null> => {
      for (let i = 0; i < 20; i++) {
        try {
          const leases = await openKv(b, b.names.buckets.leases, LeaseSchema);
          const holder = (await leases.get(LEASE_KEY))?.value.holder;
          if (holder) return holder;
        } catch {}
        await sleep(250);
      }
      return null;
    };
    const pending: Promise<void>[] = [];
    for (const s of schedule) {
      const wait = t0 + s.at - Date.now();
      if (wait > 0) await sleep(wait);
      pending.push(
        runFault(s.fault, {
          procs: hubs,
          agents,
          cluster,
          bus: b,
          record,
          leaderId,
          onExit,
          rnd: prng(o.seed + s.at),
        }).catch((err) => log(`[chaos] fault ${s.fault.kind} failed: ${(err as Error).message}`)),
      );
    }
    await producer;
    await Promise.all(pending);
    log(
      `[chaos] submitted ${o.tasks} and every fault is over (${((Date.now() - t0) / 1000).toFixed(1)} s); draining`,
    );

    // --- Drain ---
    const tasksKv = await openKv(b, b.names.buckets.tasks, TaskRecordSchema);
    const ids = events.filter((e) => e.kind === 'submit').map((e) => (e as { taskId: string }).taskId);
    const deadline = Date.now() + o.drainTimeoutMs;
    let records: TaskRecord[] = [];
    for (;;) {
      records = await readAll(tasksKv, ids);
      const open = records.filter((r) => !['done', 'failed', 'dead', 'cancelled'].includes(r.status)).length;
      const missing = ids.length - records.length;
      if ((open === 0 && missing === 0) || Date.now() > deadline) break;
      await sleep(1_000);
    }
    const report = checkHistory(events, records);
    const seconds = (Date.now() - started) / 1000;
    await writeFile(join(outDir, 'history.jsonl'), `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    await writeFile(join(outDir, 'records.jsonl'), `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const { log: _log, ...config } = o;
    const faults: ChaosResult['faults'] = { executed: {}, skipped: {} };
    for (const e of events) {
      if (e.kind !== 'fault' || e.phase !== 'start') continue;
      const bucket = e.skipped ? faults.skipped : faults.executed;
      bucket[e.fault.kind] = (bucket[e.fault.kind] ?? 0) + 1;
    }
    const result: ChaosResult = { report, faults, config, schedule, seconds, outDir };
    await writeFile(join(outDir, 'report.json'), `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await Promise.all(procs.map((p) => p.stop().catch(() => {})));
    await bus?.drain().catch(() => {});
    await cluster.dispose();
    if (!o.outDir) await rm(outDir, { recursive: true, force: true }).catch(() => {});
  }
}

/** A notice an agent logged (SDK event or sidecar log line), as a history event. */
function noticeEvent(
  t: number,
  base: { proc: string; agentId: string },
  taskId: string,
  generation: number,
  line: Record<string, unknown>,
): HistoryEvent {
  return {
    t,
    kind: 'notice',
    ...base,
    taskId,
    generation,
    code: String(line.code),
    stop: Boolean(line.stop),
  };
}

interface FaultContext {
  procs: Proc[];
  agents: Proc[];
  cluster: TestNatsCluster;
  bus: Bus;
  record: (e: HistoryEvent) => void;
  leaderId: () => Promise<string | null>;
  onExit: (p: Proc) => void;
  rnd: () => number;
}

async function runFault(f: Fault, c: FaultContext): Promise<void> {
  const now = () => Date.now();
  const mark = (phase: 'start' | 'end', target: string, skipped?: string) =>
    c.record({ t: now(), kind: 'fault', phase, fault: f, target, ...(skipped ? { skipped } : {}) });
  switch (f.kind) {
    case 'kill_agent':
    case 'stall_agent': {
      // The scheduled agent, or the next one that is up (a kill of an agent still down from the
      // last one would test nothing).
      const up = (x: Proc) =>
        x.proc && x.proc.exitCode === null && x.proc.signalCode === null && !busy.has(x);
      const n = c.agents.length;
      const a = Array.from({ length: n }, (_, i) => c.agents[(f.agent + i) % n]!).find(up);
      if (!a) {
        mark('start', 'agents', 'every agent is down');
        return;
      }
      const target = `${a.label}#${a.incarnation}`;
      busy.add(a);
      try {
        mark('start', target);
        await downFor(a, f.kind === 'kill_agent' ? 'kill' : 'stall', f.downMs, c);
        mark('end', target);
      } finally {
        busy.delete(a);
      }
      return;
    }
    case 'kill_hub':
    case 'stall_hub': {
      const leader = await c.leaderId();
      const candidates = c.procs.filter(
        (p) => p.proc && p.proc.exitCode === null && p.proc.signalCode === null,
      );
      const h =
        f.kind === 'kill_hub' && f.role === 'standby'
          ? candidates.find((p) => p.label !== leader)
          : candidates.find((p) => p.label === leader);
      if (!h) {
        mark('start', 'hub', `no ${f.kind === 'kill_hub' ? f.role : 'leader'} hub found`);
        return;
      }
      mark('start', `${h.label}#${h.incarnation}`);
      await downFor(h, f.kind === 'kill_hub' ? 'kill' : 'stall', f.downMs, c);
      mark('end', `${h.label}#${h.incarnation}`);
      return;
    }
    case 'kill_nats': {
      const node = c.cluster.nodes[f.node]!;
      mark('start', node.name);
      await c.cluster.kill(f.node);
      await sleep(f.downMs);
      await c.cluster.restart(f.node);
      mark('end', node.name);
      return;
    }
    case 'report_burst': {
      mark('start', 'reports');
      await reportBurst(c, f.count);
      mark('end', 'reports');
      return;
    }
  }
}

/** SIGKILL and start again, or SIGSTOP and SIGCONT, `downMs` apart. */
async function downFor(p: Proc, how: 'kill' | 'stall', downMs: number, c: FaultContext): Promise<void> {
  if (how === 'kill') {
    await p.kill();
    await sleep(downMs);
    await p.start();
    c.onExit(p);
  } else {
    p.proc!.kill('SIGSTOP');
    await sleep(downMs);
    p.proc!.kill('SIGCONT');
  }
}

const busy = new Set<Proc>();
/** Where every process's output goes (`<outDir>/logs`), set for the duration of a run. */
let logDir: string | undefined;

/**
 * Reports a hostile or confused agent could send about finished tasks: the same completion again
 * (same message id, and a new one), one for an older generation, and one on another agent's
 * subject, all four about each task. None may change anything. About `count / 4` tasks (at least
 * one), those done when the burst comes; when none is done yet (an early burst, a stalled leader),
 * it waits for the first, up to BURST_WAIT_MS, so that the burst always sends what must be refused.
 */
async function reportBurst(c: FaultContext, count: number): Promise<void> {
  const kv = await openKv(c.bus, c.bus.names.buckets.tasks, TaskRecordSchema);
  const wanted = Math.max(1, Math.ceil(count / 4));
  const deadline = Date.now() + BURST_WAIT_MS;
  const done: TaskRecord[] = [];
  while (done.length === 0 && Date.now() < deadline) {
    for (const key of await kv.keys('>').catch(() => [] as string[])) {
      const got = await kv.get(key).catch(() => null);
      if (got?.value.status === 'done' && got.value.assignee) done.push(got.value);
      if (done.length >= wanted) break;
    }
    if (done.length === 0) await sleep(250);
  }
  const n = c.bus.names;
  const send = (agent: string, r: unknown, msgId: string) =>
    publish(c.bus, n.subjects.agentReport(agent), ReportSchema, r as never, { msgId, retries: 3 }).catch(
      () => {},
    );
  await Promise.all(
    done.map(async (t) => {
      const agent = t.assignee!;
      const base = { v: 1, taskId: t.id, at: Date.now(), result: { burst: true } };
      const completed = { ...base, type: 'completed', generation: t.generation };
      await Promise.all([
        send(agent, completed, `${t.id}:${t.generation}:completed`),
        send(agent, completed, `burst-dup-${t.id}`),
        send(
          agent,
          { ...base, type: 'completed', generation: Math.max(0, t.generation - 1) },
          `burst-stale-${t.id}`,
        ),
        send(agent === 'sdk-1' ? 'sdk-2' : 'sdk-1', completed, `burst-foreign-${t.id}`),
      ]);
    }),
  );
}

/** How long a report burst waits for a first finished task to report about. */
const BURST_WAIT_MS = 30_000;

/** Publish until the server stores it (the same idempotency key each time); returns the task id. */
async function submitUntilStored(bus: Bus, key: string, i: number): Promise<string> {
  for (;;) {
    try {
      const r = await submitTask(bus, {
        title: `chaos ${i}`,
        idempotencyKey: key,
        maxRetries: 50,
        backoff: { baseMs: 200, maxMs: 2_000 },
      });
      return r.taskId;
    } catch {
      await sleep(250);
    }
  }
}

async function readAll(kv: TypedKv<TaskRecord>, ids: string[]): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  for (let i = 0; i < ids.length; i += 200) {
    const batch = await Promise.all(ids.slice(i, i + 200).map((id) => kv.get(id).catch(() => null)));
    for (const g of batch) if (g) out.push(g.value);
  }
  return out;
}

/**
 * A node child process (hub, sidecar or SDK agent) whose stdout is JSON lines. Ready when a line
 * with msg `readyMsg` (pino) or matching `readyEvent` (sim agents) appears.
 */
function nodeProc(
  label: string,
  args: string[],
  env: Record<string, string>,
  readyMsg: string | null,
  onLine: (line: Record<string, unknown>, p: Proc) => void,
  readyEvent?: (line: Record<string, unknown>) => boolean,
): Proc {
  const logFile = logDir ? createWriteStream(join(logDir, `${label}.log`), { flags: 'a' }) : undefined;
  const p: Proc = {
    label,
    proc: undefined,
    incarnation: 0,
    async start() {
      p.incarnation++;
      const proc = spawn(process.execPath, args, {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      p.proc = proc;
      let stderr = '';
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (d: string) => {
        stderr = (stderr + d).slice(-4000);
        logFile?.write(d);
      });
      await new Promise<void>((resolve, reject) => {
        const onExit = (code: number | null) =>
          reject(new Error(`${label} exited ${code} before it was ready: ${stderr}`));
        proc.once('exit', onExit);
        createInterface({ input: proc.stdout! }).on('line', (text) => {
          logFile?.write(`${text}\n`);
          let line: Record<string, unknown>;
          try {
            line = JSON.parse(text);
          } catch {
            return;
          }
          onLine(line, p);
          if ((readyMsg && line.msg === readyMsg) || readyEvent?.(line)) {
            proc.off('exit', onExit);
            resolve();
          }
        });
      });
    },
    async kill() {
      const c = p.proc;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const done = new Promise((r) => c.once('exit', r));
      c.kill('SIGCONT');
      c.kill('SIGKILL');
      await done;
    },
    async stop() {
      const c = p.proc;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const done = new Promise((r) => c.once('exit', r));
      c.kill('SIGCONT');
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await done;
      clearTimeout(t);
    },
  };
  return p;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
