/**
 * "Pipeline" JetStream peer: the hub's durable per-task flow done with the bare nats.js v3 client and
 * no hub logic, as a ceiling for what JetStream itself allows for this design on this machine.
 * Private nats-server, file storage, work-queue streams, duplicate window 2 min (as the hub
 * provisions them), durable pull consumers (explicit ack, max_ack_pending 1000, ack_wait 30 s).
 * Five JetStream stores per task, every PubAck awaited:
 *   producer   publish submission → SUBMIT (Nats-Msg-Id)
 *   dispatcher pull SUBMIT → KV create {status assigned, assignee} → publish assignment to
 *              `<id>.inbox.w<k>` → ack submission            (jetstream-pipeline-dispatcher.ts)
 *   worker k   pull its inbox durable → handler start → publish `completed` → REPORTS → ack inbox
 *                                                           (jetstream-pipeline-worker.ts)
 *   dispatcher pull REPORTS → KV update with the create's revision (CAS) → status done → ack report
 * The dispatcher assigns round-robin, only to a worker with no outstanding assignment (c workers ×
 * 1 slot, like c agents of 1 slot); a worker's slot frees when its report is pulled.
 * The "minimal" variant (`runJetstreamMinimal`) is the same flow without the task record: three
 * stores per task (submission, assignment, report), one per party, each making its own step
 * durable. No design in which the producer, the hub and the agent each persist their own step
 * (none can do it for another before that step happened) stores less per task.
 * The "log" variant (`runJetstreamLog`) is the pipeline with its records replaced by a hub log
 * written with group commit: one append to a LOG stream (limits retention) at a time, carrying
 * every assignment and every completion that arrived while the previous append was in flight, each
 * fenced by the stream's last sequence (`expect.lastSequence`, the single writer's compare-and-set),
 * before the inbox publishes it covers and before the reports it covers are acked. Stores per task:
 * the minimal three plus two log steps shared by a batch. It measures what the hub's records
 * would cost as a batched log (docs/scaling.md, "The next step for one hub"): its steps carry ids
 * only, where a hub's would carry the task body once and the result once, so its bytes are a
 * floor; replaying the log, and the snapshots that bound it, are not modelled (at this load a
 * snapshot holds at most c open assignments).
 *
 * - e2e: idle pipeline; clock starts; n publishes with 100 in flight; clock stops at the n-th `done`
 *   KV write. Also CPU ms per task of nats-server, the dispatcher, the workers and this producer.
 * - latency: one publish every 1000/rate ms on an absolute schedule; latency = worker handler start −
 *   timestamp taken just before `js.publish` of the submission.
 */
import { fileURLToPath } from 'node:url';
import { StorageType } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import {
  addConcurrently,
  Deadline,
  type E2eResult,
  type LatencyResult,
  latencySummary,
  offeredCount,
  offerLoad,
  type PeerResult,
  type PeerRunOptions,
  payload,
  type ResolvedE2e,
  type ResolvedLatency,
  sleep,
  type TaskPayload,
  WorkerProcess,
} from './common.js';
import {
  closePeerJetStream,
  measureE2e,
  type NatsServer,
  openPeerJetStream,
  type PeerJetStream,
  runId,
  runOnPrivateNatsServer,
} from './nats.js';

const DISPATCHER = fileURLToPath(new URL('./jetstream-pipeline-dispatcher.ts', import.meta.url));
const WORKERS = fileURLToPath(new URL('./jetstream-pipeline-worker.ts', import.meta.url));
const DUPLICATE_WINDOW_MS = 2 * 60_000;
const enc = new TextEncoder();

/** Names of one run's streams, consumers and bucket; passed to the child processes as JSON argv. */
export interface PipelineNames {
  submitStream: string;
  submitSubject: string;
  submitDurable: string;
  inboxStream: string;
  /** Subject of worker k's inbox: `${inboxPrefix}.w${k}`. */
  inboxPrefix: string;
  /** Durable of worker k's inbox: `${inboxDurablePrefix}${k}`. */
  inboxDurablePrefix: string;
  reportStream: string;
  reportSubject: string;
  reportDurable: string;
  bucket: string;
  /** The hub log of the `log` variant (limits retention, one subject). */
  logStream: string;
  logSubject: string;
}

/** Inbox message: the task record's key, the assignee and the submission as submitted. */
export interface Assignment {
  taskId: string;
  assignee: string;
  task: TaskPayload;
}

/** Report message from worker `worker` (index k of `w<k>`). */
export interface Report {
  taskId: string;
  worker: number;
  status: 'completed';
}

function pipelineNames(shape: string): PipelineNames {
  const id = runId(shape);
  return {
    submitStream: `PS_${id}`,
    submitSubject: `${id}.submit`,
    submitDurable: `PSD_${id}`,
    inboxStream: `PI_${id}`,
    inboxPrefix: `${id}.inbox`,
    inboxDurablePrefix: `PIW_${id}_`,
    reportStream: `PR_${id}`,
    reportSubject: `${id}.reports`,
    reportDurable: `PRD_${id}`,
    bucket: `PT_${id}`,
    logStream: `PL_${id}`,
    logSubject: `${id}.log`,
  };
}

/** Both shapes against a private nats-server (see `runOnPrivateNatsServer`). */
export function runJetstreamPipeline(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return runOnPrivateNatsServer('jetstream-pipeline', opts, {
    e2e: (server, o) => e2eRun(server, o, 'records'),
    latency: (port, o) => latencyRun(port, o, 'records'),
  });
}

/** The same without task records: three stores per task (see the module header). */
export function runJetstreamMinimal(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return runOnPrivateNatsServer('jetstream-minimal', opts, {
    e2e: (server, o) => e2eRun(server, o, 'none'),
    latency: (port, o) => latencyRun(port, o, 'none'),
  });
}

/** The same with the records as a group-committed hub log (see the module header). */
export function runJetstreamLog(opts: PeerRunOptions = {}): Promise<PeerResult> {
  return runOnPrivateNatsServer('jetstream-log', opts, {
    e2e: (server, o) => e2eRun(server, o, 'log'),
    latency: (port, o) => latencyRun(port, o, 'log'),
  });
}

/**
 * How the dispatcher keeps its task state: a KV record per task (created assigned, updated done),
 * none, or a group-committed log.
 */
export type Records = 'records' | 'none' | 'log';

/** One step of the `log` variant's task state: an assignment (task id, worker index) or a completion. */
export type LogStep = ['assigned', string, number] | ['done', string];

/** One append to the hub log of the `log` variant: the steps committed in one write, in order. */
export interface LogEntry {
  steps: LogStep[];
}

interface Setup extends PeerJetStream {
  names: PipelineNames;
}

async function setUp(port: number, shape: string, c: number, dl: Deadline, records: Records): Promise<Setup> {
  const names = pipelineNames(shape);
  const log = records === 'log';
  const j = await openPeerJetStream(port, dl, {
    streams: [
      { name: names.submitStream, subject: names.submitSubject, duplicateWindowMs: DUPLICATE_WINDOW_MS },
      { name: names.inboxStream, subject: `${names.inboxPrefix}.>`, duplicateWindowMs: DUPLICATE_WINDOW_MS },
      { name: names.reportStream, subject: names.reportSubject, duplicateWindowMs: DUPLICATE_WINDOW_MS },
      ...(log ? [{ name: names.logStream, subject: names.logSubject, retention: 'limits' as const }] : []),
    ],
    consumers: [
      { stream: names.submitStream, durable: names.submitDurable },
      { stream: names.reportStream, durable: names.reportDurable },
      ...Array.from({ length: c }, (_, k) => ({
        stream: names.inboxStream,
        durable: `${names.inboxDurablePrefix}${k}`,
        filterSubject: `${names.inboxPrefix}.w${k}`,
      })),
    ],
  });
  const s = { ...j, names };
  try {
    await dl.race(
      new Kvm(j.js).create(names.bucket, { history: 1, storage: StorageType.File }),
      'create KV bucket',
    );
    // The log's first entry: from here on every append is fenced (2.9 ignores an expected 0).
    if (log) {
      const opening: LogEntry = { steps: [] };
      await dl.race(j.js.publish(names.logSubject, enc.encode(JSON.stringify(opening))), 'open the log');
    }
    return s;
  } catch (err) {
    await tearDown(s);
    throw err;
  }
}

function tearDown(s: Setup): Promise<void> {
  return closePeerJetStream(s, [`KV_${s.names.bucket}`]);
}

function submit(s: Setup, seq: number, tAdd = 0) {
  return s.js.publish(s.names.submitSubject, enc.encode(JSON.stringify(payload(seq, tAdd))), {
    msgID: `s${seq}`,
  });
}

interface Procs {
  dispatcher: WorkerProcess;
  workers: WorkerProcess;
  close(): Promise<void>;
  kill(): void;
}

/** Starts both child processes, waits until both consume, and tells the dispatcher to expect `n`. */
async function startProcs(
  port: number,
  s: Setup,
  c: number,
  n: number,
  dl: Deadline,
  records: Records,
): Promise<Procs> {
  const args = [String(port), JSON.stringify(s.names), String(c)];
  const dispatcher = new WorkerProcess(DISPATCHER, [...args, records], `${dl.label} dispatcher`);
  const workers = new WorkerProcess(WORKERS, args, `${dl.label} workers`);
  const procs: Procs = {
    dispatcher,
    workers,
    async close() {
      await Promise.all([dispatcher.close(), workers.close()]);
    },
    kill() {
      dispatcher.kill();
      workers.kill();
    },
  };
  try {
    await Promise.all([dispatcher.wait('ready', dl.remaining()), workers.wait('ready', dl.remaining())]);
    dispatcher.send({ type: 'expect', n });
    dispatcher.send({ type: 'run' });
    workers.send({ type: 'run' });
    await Promise.all([dispatcher.wait('running', dl.remaining()), workers.wait('running', dl.remaining())]);
    return procs;
  } catch (err) {
    procs.kill();
    throw err;
  }
}

async function e2eRun(server: NatsServer, o: ResolvedE2e, records: Records): Promise<E2eResult> {
  const { port } = server;
  const dl = new Deadline(o.timeoutMs, `jetstream-pipeline (${records}) e2e n=${o.n} c=${o.c}`);
  const s = await setUp(port, 'e2e', o.c, dl, records);
  let procs: Procs | undefined;
  try {
    procs = await startProcs(port, s, o.c, o.n, dl, records);
    const done = procs.dispatcher.wait('done', dl.remaining());
    done.catch(() => {}); // observed below; avoid an unhandled rejection if publishing fails first
    const pids = {
      nats: server.pid,
      dispatcher: procs.dispatcher.pid,
      workers: procs.workers.pid,
      producer: 'self' as const,
    };
    const publishAll = () =>
      dl.race(
        addConcurrently(o.n, (i) => submit(s, i)),
        'publishing',
      );
    const result = await measureE2e(server, o, pids, publishAll, done);
    const { logAppends } = await done;
    await procs.close();
    return logAppends === undefined
      ? result
      : { ...result, logAppendsPerTask: Math.round((logAppends / o.n) * 1000) / 1000 };
  } finally {
    procs?.kill();
    await tearDown(s);
  }
}

async function latencyRun(port: number, o: ResolvedLatency, records: Records): Promise<LatencyResult> {
  const dl = new Deadline(o.timeoutMs, `jetstream-pipeline (${records}) latency rate=${o.rate} c=${o.c}`);
  const { total } = offeredCount(o);
  const s = await setUp(port, 'lat', o.c, dl, records);
  let procs: Procs | undefined;
  try {
    procs = await startProcs(port, s, o.c, total, dl, records);
    await sleep(500); // pipeline idle, pull requests outstanding
    const done = procs.dispatcher.wait('done', dl.remaining());
    done.catch(() => {});
    const { addCalls, achievedRate } = await offerLoad(o, (i, tAdd) => submit(s, i, tAdd), dl);
    await done;
    const samples = procs.workers.wait('samples', dl.remaining());
    procs.workers.send({ type: 'samples' });
    const { starts } = await samples;
    await procs.close();
    return latencySummary(o, starts, addCalls, achievedRate);
  } finally {
    procs?.kill();
    await tearDown(s);
  }
}
