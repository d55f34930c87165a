/**
 * Child process: the "minimal hub" of the pipeline peer (see jetstream-pipeline.ts), bare nats.js v3
 * on one connection.
 *   SUBMIT  pull → wait for a worker with a free slot (round-robin, 1 slot each) → KV create of the
 *           task record {status assigned, assignee} → publish the assignment to that worker's inbox
 *           subject (PubAck awaited) → ack the submission.
 *   REPORTS pull → free the worker's slot → KV update with the create's revision (CAS) to done →
 *           ack the report; posts `done` to the parent at the expected count of `done` writes.
 * With `none` as the records argument (the minimal variant) there are no KV writes: the
 * assignment and the report are the only stores after the submission. With `log` the KV writes
 * are appends to the hub log instead, group-committed (`GroupLog` below): the assignment's append
 * before its inbox publish, the completion's before its report's ack.
 * Acks are plain `ack()` as in the hub's consumer runner (src/bus/consumer.ts); close drains.
 *   argv: natsPort namesJson concurrency records|none
 */
import { type ConsumerMessages, type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { exitWithParent, nowMs, postToParent, serveParent, type TaskPayload } from './common.js';
import type { Assignment, LogEntry, LogStep, PipelineNames, Report } from './jetstream-pipeline.js';

exitWithParent();
const [portArg, namesArg, concArg, recordsArg] = process.argv.slice(2);
if (
  !portArg ||
  !namesArg ||
  !concArg ||
  (recordsArg !== 'records' && recordsArg !== 'none' && recordsArg !== 'log')
) {
  throw new Error('usage: jetstream-pipeline-dispatcher <natsPort> <namesJson> <workers> records|none|log');
}
const records = recordsArg === 'records';
const names = JSON.parse(namesArg) as PipelineNames;
const workers = Number(concArg);
const nc = await connect({ servers: `127.0.0.1:${portArg}`, timeout: 5000 });
const js = jetstream(nc);
const kv = await new Kvm(js).open(names.bucket);
const submitConsumer = await js.consumers.get(names.submitStream, names.submitDurable);
const reportConsumer = await js.consumers.get(names.reportStream, names.reportDurable);
const enc = new TextEncoder();
const dec = new TextDecoder();

let expect = Number.POSITIVE_INFINITY;
let doneCount = 0;
let doneSent = false;
const busy: boolean[] = Array.from({ length: workers }, () => false);
let rr = 0;
let slotFreed: (() => void) | null = null;
/** Revision of each open task record, from its KV create (the CAS base of the `done` update). */
const revisions = new Map<string, number>();
const streams: ConsumerMessages[] = [];

/**
 * The hub log with group commit: one append in flight at a time; the steps that arrive meanwhile
 * go together, in order, in the next. Each append expects the stream's last sequence to be the
 * previous one's, so a second writer (a deposed leader) is refused rather than interleaved. The
 * log is opened with an entry at set-up (`openLog`), and the writer starts from its last
 * sequence: nats-server 2.9 ignores an expected last sequence of 0, so an empty log has no fence.
 * A writer whose append fails stops: it cannot know whether the append landed, and with the fence
 * every later one would be refused (a hub's successor replays the log instead).
 */
class GroupLog {
  appends = 0;
  private next: LogStep[] = [];
  private waiting: { resolve(): void; reject(err: unknown): void }[] = [];
  private writing = false;

  constructor(private lastSeq: number) {}

  append(step: LogStep): Promise<void> {
    this.next.push(step);
    const p = new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    if (!this.writing) void this.flush();
    return p;
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.waiting.length > 0) {
      const entry: LogEntry = { steps: this.next };
      const waiting = this.waiting;
      this.next = [];
      this.waiting = [];
      try {
        const ack = await js.publish(names.logSubject, enc.encode(JSON.stringify(entry)), {
          expect: { lastSequence: this.lastSeq },
        });
        this.lastSeq = ack.seq;
        this.appends++;
        for (const w of waiting) w.resolve();
      } catch (err) {
        for (const w of waiting) w.reject(err);
        console.error('jetstream-pipeline-dispatcher: log append failed; stopping:', err);
        process.exit(1);
      }
    }
    this.writing = false;
  }
}
const log =
  recordsArg === 'log'
    ? new GroupLog((await (await jetstreamManager(nc)).streams.info(names.logStream)).state.last_seq)
    : undefined;

function maybeDone(): void {
  if (!doneSent && doneCount >= expect) {
    doneSent = true;
    postToParent({ type: 'done', t: nowMs(), ...(log ? { logAppends: log.appends } : {}) });
  }
}

/** Next free worker round-robin from `rr`, reserved; waits while all are busy. */
async function reserveWorker(): Promise<number> {
  for (;;) {
    for (let j = 0; j < workers; j++) {
      const k = (rr + j) % workers;
      if (!busy[k]) {
        busy[k] = true;
        rr = (k + 1) % workers;
        return k;
      }
    }
    await new Promise<void>((r) => {
      slotFreed = r;
    });
  }
}

function freeWorker(k: number): void {
  busy[k] = false;
  const r = slotFreed;
  slotFreed = null;
  r?.();
}

async function assign(m: JsMsg, k: number): Promise<void> {
  const task = JSON.parse(dec.decode(m.data)) as TaskPayload;
  const taskId = `t${task.seq}`;
  const assignee = `w${k}`;
  if (records) {
    const record = { id: taskId, status: 'assigned', assignee, attempt: 1, createdAt: Date.now() };
    revisions.set(taskId, await kv.create(taskId, enc.encode(JSON.stringify(record))));
  }
  await log?.append(['assigned', taskId, k]);
  const a: Assignment = { taskId, assignee, task };
  await js.publish(`${names.inboxPrefix}.${assignee}`, enc.encode(JSON.stringify(a)), {
    msgID: `${taskId}.a1`,
  });
  m.ack();
}

async function complete(m: JsMsg): Promise<void> {
  const r = JSON.parse(dec.decode(m.data)) as Report;
  freeWorker(r.worker);
  if (records) {
    const revision = revisions.get(r.taskId) ?? (await kv.get(r.taskId))?.revision ?? 0;
    const record = { id: r.taskId, status: 'done', assignee: `w${r.worker}`, attempt: 1, doneAt: Date.now() };
    await kv.update(r.taskId, enc.encode(JSON.stringify(record)), revision);
    revisions.delete(r.taskId);
  }
  await log?.append(['done', r.taskId]);
  m.ack();
  doneCount++;
  maybeDone();
}

async function runSubmissions(): Promise<void> {
  const messages = await submitConsumer.consume({ max_messages: 64, expires: 10_000 });
  streams.push(messages);
  for await (const m of messages) {
    const k = await reserveWorker();
    assign(m, k).catch((err: unknown) => {
      freeWorker(k);
      console.error('jetstream-pipeline-dispatcher: assign failed:', err);
    });
  }
}

async function runReports(): Promise<void> {
  const messages = await reportConsumer.consume({ max_messages: 64, expires: 10_000 });
  streams.push(messages);
  for await (const m of messages) {
    complete(m).catch((err: unknown) => console.error('jetstream-pipeline-dispatcher: report failed:', err));
  }
}

serveParent({
  label: 'jetstream-pipeline-dispatcher',
  expect(n) {
    expect = n;
    maybeDone();
  },
  async run() {
    await Promise.all([runReports(), runSubmissions()]);
  },
  async close() {
    for (const s of streams) await s.close();
    await nc.drain();
  },
});
