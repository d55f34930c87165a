/**
 * @module agent/sidecar/sidecar
 * The sidecar's I/O, provided to machines/sidecar.ts: the local queue file, the NATS session (an
 * AgentClient in raw-inbox mode), the relay of assignments to the agent and of its results to the
 * hub, and the wake command.
 *
 * Guarantees:
 * - An assignment is in `queue.json` (atomically written) before its `accepted` report is sent
 *   and before the inbox message is acked; a crash anywhere redelivers it or finds it on disk.
 * - On every (re)start the sidecar reports what it holds: `recovering` for accepted assignments
 *   (the hub keeps them, or cancels them through the inbox if they were reclaimed meanwhile),
 *   `accepted` for ones whose acceptance may not have been stored; a result file already written
 *   is relayed instead.
 * - A result file is relayed once its report is stored, and only then removed (with the task
 *   file); reports carry deterministic message ids, so relaying twice after a crash is harmless.
 * - Result files that are not valid, or are for an assignment the sidecar no longer holds, are
 *   moved to `rejected/` with the reason, never silently dropped.
 * - One session per sidecar process (kept across reconnects); its hello lists what queue.json holds.
 * - A notice (a refused report) is written to `notices/<taskId>.json` for the agent; one that says
 *   `stop` ends the assignment like a cancel. An assignment already relayed (queue.json's `finished`)
 *   is acked and not handed to the agent again.
 * - A wake command that fails `wake.maxFailures` times in a row for a task ends it: the sidecar
 *   reports it failed (code `wake_failed`, with the exit code and the end of stderr, retryable), so
 *   the hub gives it to another agent and the operator sees why.
 * - With `messages` in the config, incoming messages are written to files (each before it is
 *   acked) and outbox files sent, by a relay of their own (mail.ts).
 * - While online, a listen on `<p>.inspecting` naming `sidecar.<agentId>` (or `sidecar.*`) attaches
 *   inspection to the lifecycle machine (machines/sidecar.ts), published on
 *   `<p>.inspect.sidecar.<agentId>` (docs/protocol.md §11e); nothing is attached otherwise.
 * All queue changes run one at a time (one writer for queue.json).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AnyActorRef } from 'xstate';
import type { SidecarEvent } from '../../../machines/sidecar.js';
import { InspectRelay, inspectActor } from '../../bus/inspect-relay.js';
import { readSeedFile } from '../../bus/nkeys.js';
import type { InboxAssign, InboxMessage, InboxNotice, Report } from '../../protocol/agent.js';
import { newSessionId } from '../../protocol/ids.js';
import { writeFileAtomic } from '../../runtime/atomic-file.js';
import type { Registry } from '../../runtime/index.js';
import { AgentClient, type InboxDisposition } from '../client.js';
import type { ResolvedSidecarConfig } from '../sidecar-config.js';
import { type DirWatch, watchDir } from './dir-watch.js';
import {
  MAX_RESULT_FILE_BYTES,
  type ProgressFile,
  ProgressFileSchema,
  parseResultFileName,
  type ResultFile,
  ResultFileSchema,
  type SidecarPaths,
  sidecarPaths,
  type TaskFile,
} from './files.js';
import * as lq from './local-queue.js';
import { MailRelay } from './mail.js';
import { loadQueue, saveQueue } from './queue-store.js';
import { type WakeGiveUp, Wakers } from './wakers.js';

/** A result file younger than this that fails to parse may still be being written: look again later. */
const SETTLE_MS = 2_000;

export interface SidecarDeps {
  registry: Registry;
  log: Logger;
  /** Results dir scan period (ms, default 1000); events from fs.watch come sooner. */
  pollMs?: number;
}

export class Sidecar {
  readonly paths: SidecarPaths;
  readonly wakers: Wakers;
  /** This process's session (a restarted sidecar is a new session; a reconnect is not). */
  readonly session = newSessionId();
  private queue: lq.LocalQueue;
  private client: AgentClient | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private watch: DirWatch | undefined;
  private mail: MailRelay | undefined;
  /** Settles when the last relay stopped (a new one waits for it). */
  private mailStopped: Promise<void> = Promise.resolve();
  /** The lifecycle machine this relay runs in, inspected while a listen names this sidecar. */
  private machine: AnyActorRef | undefined;
  private readonly log: Logger;

  constructor(
    readonly config: ResolvedSidecarConfig,
    private readonly deps: SidecarDeps,
  ) {
    this.paths = sidecarPaths(config.workDir);
    this.log = deps.log;
    this.queue = lq.emptyQueue(config.agentId);
    this.wakers = new Wakers(
      config,
      this.paths,
      deps.registry,
      deps.log,
      (id) => !!lq.find(this.queue, id),
      (id, why) =>
        void this.serialized(() => this.wakeGaveUp(id, why)).catch((err) =>
          this.log.error({ task_id: id, err }, 'could not report the failed wake'),
        ),
    );
  }

  /** The machine running this sidecar's actors (set once it is spawned), for inspection. */
  setMachine(machine: AnyActorRef): void {
    this.machine = machine;
  }

  /** Tasks held now. */
  held(): string[] {
    return lq.taskIds(this.queue);
  }

  // --- machine actors ---

  async load(): Promise<{ held: number }> {
    for (const d of [
      this.paths.workDir,
      this.paths.tasksDir,
      this.paths.resultsDir,
      this.paths.rejectedDir,
      this.paths.noticesDir,
    ])
      await mkdir(d, { recursive: true, mode: 0o700 });
    if (this.config.messages) await MailRelay.prepare(this.config.messages.dir);
    const r = await loadQueue(this.paths.queueFile, this.config.agentId);
    if (r.quarantined)
      this.log.error(
        { phase: 'recover', moved_to: r.quarantined.path, reason: r.quarantined.reason },
        'queue.json unusable; moved aside, starting empty (the hub reclaims what it held)',
      );
    this.queue = r.queue;
    this.log.info({ phase: 'recover', held: this.queue.tasks.length }, 'local queue loaded');
    return { held: this.queue.tasks.length };
  }

  async connect(attempt: number): Promise<void> {
    await this.closeClient(false);
    const { nats, agentId, hello } = this.config;
    const nkeySeed = nats.nkeySeedFile ? await readSeedFile(nats.nkeySeedFile) : undefined;
    if (attempt > 0) this.log.info({ phase: 'connect', attempt }, 'connecting again');
    this.client = await AgentClient.connect({
      agentId,
      hello,
      session: this.session,
      logger: this.log,
      helloTimeoutMs: 15_000,
      runningTasks: () => this.held(),
      connection: {
        servers: nats.servers,
        prefix: nats.prefix,
        name: `agentcom-sidecar-${agentId}`,
        waitOnFirstConnect: false,
        maxReconnectAttempts: -1,
        reconnectBackoff: { minMs: 1_000, maxMs: 60_000 },
        ...(nkeySeed ? { nkeySeed } : {}),
      },
    });
  }

  /** Runs while online; returns the cleanup. Failures are sent as SERVE_FAILED. */
  serve(send: (e: SidecarEvent) => void): () => void {
    const client = this.client;
    if (!client) {
      send({ type: 'SERVE_FAILED', error: 'not connected' });
      return () => {};
    }
    let active = true;
    const relay = InspectRelay.start(client.bus, { log: this.log });
    const inspection = relay.follow('sidecar', this.config.agentId, (pub) =>
      this.machine ? inspectActor(this.machine, pub) : () => {},
    );
    const offStatus = client.bus.onStatus((e) => {
      if (!active) return;
      if (e.type === 'disconnect') send({ type: 'DISCONNECTED' });
      else if (e.type === 'reconnect') send({ type: 'RECONNECTED' });
      else if (e.type === 'closed')
        send({ type: 'SERVE_FAILED', error: `connection closed${e.message ? `: ${e.message}` : ''}` });
    });
    void (async () => {
      await this.serialized(() => this.recover(client));
      await client.receive((msg) => this.serialized(() => this.onInbox(client, msg, send)));
      if (!active) return;
      this.watch = watchDir(
        this.paths.resultsDir,
        (name) =>
          void this.serialized(() => this.onResultFile(client, name, send)).catch((err) =>
            // Not relayed (e.g. NATS is down): the file stays, and the next scan tries again.
            this.log.warn({ file: name, err }, 'result not relayed yet'),
          ),
        this.deps.pollMs,
      );
      const messages = this.config.messages;
      // The relay of an earlier time online ends first: two would both write and wake.
      await this.mailStopped;
      if (messages && active) {
        // Its own loop beside the task relay: writing messages never waits for queue.json.
        this.mail = new MailRelay(
          { ...this.config, messages },
          client,
          this.wakers,
          this.log,
          this.deps.pollMs,
        );
        this.mail.start();
      }
      this.log.info(
        { phase: 'online', held: this.queue.tasks.length, session: this.session },
        'sidecar online',
      );
    })().catch((err) => {
      if (active) send({ type: 'SERVE_FAILED', error: (err as Error).message });
    });
    return () => {
      active = false;
      inspection.stop();
      relay.close();
      offStatus();
      this.watch?.close();
      this.watch = undefined;
      this.mailStopped = this.mail?.stop().catch(() => undefined) ?? this.mailStopped;
      this.mail = undefined;
    };
  }

  /** Goodbye (the hub reclaims at once), then drain. Pending queue writes finish first. */
  async shutdown(): Promise<void> {
    this.watch?.close();
    await this.mail?.stop();
    this.wakers.dispose();
    await this.chain.catch(() => {});
    await this.closeClient(true);
    this.log.info({ phase: 'stopped', held: this.queue.tasks.length }, 'sidecar stopped');
  }

  // --- relay ---

  private serialized<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chain.then(f, f);
    this.chain = run.catch(() => {});
    return run;
  }

  private async save(): Promise<void> {
    await saveQueue(this.paths.queueFile, this.queue);
  }

  private async recover(client: AgentClient): Promise<void> {
    for (const entry of this.queue.tasks) {
      const hasResult = existsSync(this.paths.resultFile(entry.taskId));
      await this.writeTaskFile(entry);
      if (hasResult) continue; // the results scan relays it
      const base = { v: 1 as const, taskId: entry.taskId, generation: entry.generation, at: Date.now() };
      if (entry.state === 'received') {
        await client.report({ ...base, type: 'accepted' });
        this.queue = lq.markAccepted(this.queue, entry.taskId, entry.generation);
        await this.save();
      } else {
        await client.report({ ...base, type: 'recovering' });
      }
      this.log.info(
        { task_id: entry.taskId, generation: entry.generation, phase: 'recover' },
        'reported held task',
      );
      void this.wakers.wake(entry.taskId);
    }
  }

  private async onInbox(
    client: AgentClient,
    msg: InboxMessage,
    send: (e: SidecarEvent) => void,
  ): Promise<InboxDisposition> {
    if (msg.type === 'notice') return this.onNotice(msg, send);
    if (msg.type === 'cancel') {
      const r = lq.cancel(this.queue, msg);
      if (!r.removed) return { type: 'ack' }; // stale cancel, or a task we no longer hold
      await this.drop(r.queue, msg.taskId);
      this.log.info({ task_id: msg.taskId, phase: 'cancelled', reason: msg.reason }, 'assignment cancelled');
      send({ type: 'TASK_CANCELLED', taskId: msg.taskId, held: this.queue.tasks.length });
      return { type: 'ack' };
    }
    const r = lq.receive(this.queue, msg, Date.now());
    if (r.kind === 'finished') return { type: 'ack' }; // relayed already; this is a redelivery
    if (r.kind === 'duplicate' && (r.entry.state === 'accepted' || r.entry.generation > msg.generation))
      return { type: 'ack' };
    if (r.kind === 'new') {
      if (!r.superseded && this.queue.tasks.length >= this.config.hello.slots) {
        await client.report({ ...reportBase(msg), type: 'rejected', reason: 'no free slot' });
        return { type: 'ack' };
      }
      this.queue = r.queue;
      await this.save(); // before anything else: from here on a crash finds it on disk
      if (r.superseded) await this.wakers.stop(msg.taskId);
      const entry = lq.find(this.queue, msg.taskId) as lq.LocalTask;
      await this.writeTaskFile(entry);
      this.log.info(
        { task_id: msg.taskId, generation: msg.generation, phase: 'received' },
        'assignment received',
      );
      send({ type: 'TASK_RECEIVED', taskId: msg.taskId, held: this.queue.tasks.length });
    }
    try {
      await client.report({ ...reportBase(msg), type: 'accepted' });
    } catch (err) {
      this.log.warn(
        { task_id: msg.taskId, err },
        'accepted report not stored; the assignment will be redelivered',
      );
      return { type: 'redeliver', delayMs: 1_000 };
    }
    this.queue = lq.markAccepted(this.queue, msg.taskId, msg.generation);
    await this.save();
    void this.wakers.wake(msg.taskId);
    return { type: 'ack' };
  }

  /** Ends an assignment the hub took back: the queue without it is saved, its wake and files go. */
  private async drop(queue: lq.LocalQueue, taskId: string): Promise<void> {
    this.queue = queue;
    await this.save();
    await this.wakers.stop(taskId);
    await this.removeTaskFiles(taskId);
  }

  /** A refused report: the agent can read why in notices/; `stop` ends the assignment. */
  private async onNotice(n: InboxNotice, send: (e: SidecarEvent) => void): Promise<InboxDisposition> {
    await writeFileAtomic(
      this.paths.noticeFile(n.taskId),
      `${JSON.stringify({ ...n, receivedAt: Date.now() }, null, 2)}\n`,
    );
    const r = lq.stopNotice(this.queue, n);
    this.log.info(
      { task_id: n.taskId, generation: n.generation, phase: 'notice', code: n.code, stop: !!r.removed },
      `report refused: ${n.message}`,
    );
    if (r.removed) {
      await this.drop(r.queue, n.taskId);
      send({ type: 'TASK_CANCELLED', taskId: n.taskId, held: this.queue.tasks.length });
    }
    return { type: 'ack' };
  }

  /** The wake command kept failing: report the task failed, so it moves on, and let it go. */
  private async wakeGaveUp(taskId: string, why: WakeGiveUp): Promise<void> {
    const entry = lq.find(this.queue, taskId);
    const client = this.client;
    if (!entry || !client) return;
    const exit =
      why.exitCode !== null
        ? `exited with code ${why.exitCode}`
        : why.signal
          ? `was killed by ${why.signal}`
          : why.reason;
    const tail = why.stderrTail.trim();
    const message = `wake command ${exit} (${why.attempts} attempts)${tail ? `; stderr: ${tail}` : ''}`.slice(
      0,
      4000,
    );
    await client.report({
      v: 1,
      type: 'failed',
      taskId: entry.taskId,
      generation: entry.generation,
      at: Date.now(),
      error: { code: 'wake_failed', message },
      retryable: true,
    });
    this.queue = lq.finish(this.queue, entry.taskId, entry.generation);
    await this.save();
    await this.removeTaskFiles(entry.taskId);
    this.log.warn({ task_id: entry.taskId, phase: 'wake_failed', generation: entry.generation }, message);
  }

  private async onResultFile(
    client: AgentClient,
    name: string,
    send: (e: SidecarEvent) => void,
  ): Promise<void> {
    const ref = parseResultFileName(name);
    if (!ref) return;
    const path = join(this.paths.resultsDir, name);
    const read = await readJsonFile(path);
    if (read.kind === 'missing' || read.kind === 'settling') return;
    const schema = ref.kind === 'result' ? ResultFileSchema : ProgressFileSchema;
    const parsed = read.kind === 'ok' ? schema.safeParse(read.value) : undefined;
    if (!parsed?.success) {
      const why =
        read.kind === 'ok'
          ? `invalid: ${parsed?.error?.issues[0]?.message} at ${parsed?.error?.issues[0]?.path.join('.') || '(root)'}`
          : read.reason;
      return this.rejectFile(name, why);
    }
    const entry = lq.find(this.queue, ref.taskId);
    const file = parsed.data as ResultFile | ProgressFile;
    if (!entry || (file.generation !== undefined && file.generation !== entry.generation)) {
      return this.rejectFile(
        name,
        entry
          ? `stale: written for generation ${file.generation}, the task is held at generation ${entry.generation}`
          : `stale: task ${ref.taskId} is not held by this sidecar (finished, cancelled or reclaimed)`,
      );
    }
    const base = { v: 1 as const, taskId: entry.taskId, generation: entry.generation, at: Date.now() };
    if (ref.kind === 'progress') {
      const p = file as ProgressFile;
      if (p.seq <= entry.progressSeq) return;
      await client.report(
        {
          ...base,
          type: 'progress',
          ...(p.pct === undefined ? {} : { pct: p.pct }),
          ...(p.message === undefined ? {} : { message: p.message }),
          ...(p.tokensUsed === undefined ? {} : { tokensUsed: p.tokensUsed }),
        },
        p.seq,
      );
      this.queue = lq.markProgress(this.queue, entry.taskId, entry.generation, p.seq);
      await this.save();
      return;
    }
    const res = file as ResultFile;
    await client.report(toReport(base, res));
    await this.drop(lq.finish(this.queue, entry.taskId, entry.generation), entry.taskId);
    this.log.info({ task_id: entry.taskId, generation: entry.generation, phase: res.type }, 'result relayed');
    send({ type: 'TASK_REPORTED', taskId: entry.taskId, outcome: res.type, held: this.queue.tasks.length });
  }

  private async rejectFile(name: string, reason: string): Promise<void> {
    const stamp = Date.now();
    const to = join(this.paths.rejectedDir, `${name}.${stamp}`);
    try {
      // The reason first: whoever sees the moved file can read why.
      await writeFileAtomic(`${to}.reason.txt`, `${reason}\n`);
      await rename(join(this.paths.resultsDir, name), to).catch(async (err) => {
        await rm(`${to}.reason.txt`, { force: true });
        throw err;
      });
    } catch (err) {
      this.log.error({ file: name, err }, 'could not move a rejected result file');
      return;
    }
    this.log.warn({ file: name, moved_to: to, reason, phase: 'rejected_file' }, 'result file not used');
  }

  private async writeTaskFile(entry: lq.LocalTask): Promise<void> {
    const file: TaskFile = {
      v: 1,
      agentId: this.config.agentId,
      taskId: entry.taskId,
      generation: entry.generation,
      task: entry.task,
      receivedAt: entry.receivedAt,
      resultFile: this.paths.resultFile(entry.taskId),
      progressFile: this.paths.progressFile(entry.taskId),
    };
    await writeFileAtomic(this.paths.taskFile(entry.taskId), `${JSON.stringify(file, null, 2)}\n`);
  }

  private async removeTaskFiles(taskId: string): Promise<void> {
    for (const p of [
      this.paths.taskFile(taskId),
      this.paths.resultFile(taskId),
      this.paths.progressFile(taskId),
    ])
      await rm(p, { force: true });
  }

  private async closeClient(goodbye: boolean): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    await c
      .stop({ goodbye, reason: 'sidecar stopping' })
      .catch((err) => this.log.warn({ err }, 'closing the connection failed'));
  }
}

function reportBase(msg: InboxAssign) {
  return { v: 1 as const, taskId: msg.taskId, generation: msg.generation, at: Date.now() };
}

function toReport(base: { v: 1; taskId: string; generation: number; at: number }, r: ResultFile): Report {
  const b = base as Report & typeof base;
  const tokens = 'tokensUsed' in r && r.tokensUsed !== undefined ? { tokensUsed: r.tokensUsed } : {};
  switch (r.type) {
    case 'completed':
      return { ...b, type: 'completed', result: r.result ?? null, ...tokens };
    case 'failed':
      return { ...b, type: 'failed', error: r.error, retryable: r.retryable, ...tokens };
    case 'rejected':
      return { ...b, type: 'rejected', reason: r.reason };
  }
}

type JsonRead =
  | { kind: 'ok'; value: unknown }
  | { kind: 'missing' }
  | { kind: 'settling' }
  | { kind: 'bad'; reason: string };

/** Reads a JSON file an agent wrote; a young unparsable file may still be being written. */
async function readJsonFile(path: string): Promise<JsonRead> {
  let size: number;
  let mtime: number;
  try {
    const s = await stat(path);
    size = s.size;
    mtime = s.mtimeMs;
  } catch {
    return { kind: 'missing' };
  }
  if (size > MAX_RESULT_FILE_BYTES)
    return { kind: 'bad', reason: `too large: ${size} bytes (max ${MAX_RESULT_FILE_BYTES})` };
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { kind: 'missing' };
  }
  try {
    return { kind: 'ok', value: JSON.parse(text) };
  } catch (err) {
    if (Date.now() - mtime < SETTLE_MS) return { kind: 'settling' };
    return { kind: 'bad', reason: `not JSON: ${(err as Error).message}` };
  }
}
