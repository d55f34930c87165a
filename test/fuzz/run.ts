/**
 * The fuzzer: `perTarget` inputs (inputs.ts) against every inbound subject of a hub running as its
 * own process on a real nats-server, while an agent process works through real tasks submitted at
 * the same time. What it checks:
 *   - each request (hello, every API endpoint) gets an answer: an input the schema refuses gets the
 *     structured error `decodePayload` names (same code), a valid one a reply or a known error,
 *     never `internal`, never silence;
 *   - each JetStream input (submissions, reports) has its documented outcome: refused ones are
 *     dead-lettered with their stream named (the DLQ count for the stream equals their number), valid
 *     submissions become tasks;
 *   - heartbeats and goodbyes (no answer by design) do not disturb anything;
 *   - the hub process never exits, and every real task submitted during the run is done at the end.
 * Destructive endpoints (cancel, retry, remove, restore, replay, purge) get only inputs their
 * schema refuses, so the fuzzer cannot undo its own evidence.
 * The fuzzed agents are whitelisted from rate limits (limits `overrides`, set before the hub
 * starts), so every refused input of theirs is dead-lettered and can be counted: what limits do
 * to a flood is test/security/flood.test.ts's. A full report backlog (`rate_limited`) is waited
 * out and the same message published again, as an agent must.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { z } from 'zod';
import { submitTask } from '../../src/agent/submit.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { openKv } from '../../src/bus/kv.js';
import { openLimitsKv } from '../../src/bus/live-limits.js';
import { defaultTopology, provision } from '../../src/bus/provision.js';
import { publishRaw } from '../../src/bus/publish.js';
import { AgentHelloSchema, GoodbyeSchema, HeartbeatSchema, ReportSchema } from '../../src/protocol/agent.js';
import {
  AgentRefSchema,
  EmptyRequestSchema,
  TaskCancelRequestSchema,
  TaskListRequestSchema,
  TaskRefSchema,
  TaskSubmitRequestSchema,
} from '../../src/protocol/api.js';
import {
  DlqGetRequestSchema,
  DlqListRequestSchema,
  DlqPurgeRequestSchema,
  DlqReplayRequestSchema,
} from '../../src/protocol/dlq.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import { LIMITS_KEY, LimitsSchema } from '../../src/protocol/limits.js';
import {
  ChannelListRequestSchema,
  ChannelRefRequestSchema,
  MsgAckRequestSchema,
  MsgHistoryRequestSchema,
  MsgInboxRequestSchema,
  MsgSendRequestSchema,
  MsgThreadRequestSchema,
} from '../../src/protocol/message.js';
import type { Names } from '../../src/protocol/subjects.js';
import { TaskRecordSchema, TaskSubmitSchema } from '../../src/protocol/task.js';
import { taskIdForSubmit } from '../../src/protocol/task-id.js';
import { startNatsServer } from '../support/nats-server.js';
import { spawnSimAgent } from '../support/sim-agents.js';
import { draw, type FuzzInput, payloads, verdict } from './inputs.js';

type Json = Parameters<typeof payloads>[0][number];

interface Target {
  name: string;
  kind: 'stream' | 'request' | 'publish';
  subject: (n: Names) => string;
  schema: z.ZodType<unknown>;
  valid: Json[];
  /** Send only inputs the schema refuses. */
  invalidOnly?: boolean;
}

const KNOWN_CODES = new Set<string>(Object.values(ERROR_CODES));

function targets(): Target[] {
  const api = (endpoint: string, schema: z.ZodType<unknown>, valid: Json[], invalidOnly = false): Target => ({
    name: `api.${endpoint}`,
    kind: 'request',
    subject: (n) => `${n.subjects.apiPrefix}.${endpoint}`,
    schema,
    valid,
    invalidOnly,
  });
  return [
    {
      name: 'task.submit',
      kind: 'stream',
      subject: (n) => n.subjects.taskSubmit,
      schema: TaskSubmitSchema,
      valid: [
        { v: 1, title: 'fuzz', queue: 'fuzz' },
        { v: 1, title: 'fuzz 2', queue: 'fuzz', priority: 'high', maxRetries: 1 },
      ],
    },
    {
      name: 'agent.report',
      kind: 'stream',
      subject: (n) => n.subjects.agentReport('fuzz-1'),
      schema: ReportSchema,
      valid: [
        { v: 1, type: 'accepted', taskId: 'tnone', generation: 1, at: 1 },
        { v: 1, type: 'completed', taskId: 'tnone', generation: 2, at: 1, result: { a: 1 } },
        { v: 1, type: 'failed', taskId: 'tnone', generation: 1, at: 1, error: { message: 'x' } },
      ],
    },
    {
      name: 'agent.hello',
      kind: 'request',
      subject: (n) => n.subjects.agentHello('fuzz-2'),
      schema: AgentHelloSchema,
      valid: [
        { v: 1, queues: ['fuzz-nowhere'] },
        { v: 1, queues: ['fuzz-nowhere'], slots: 3, capabilities: ['a'] },
      ],
    },
    {
      name: 'agent.heartbeat',
      kind: 'publish',
      subject: (n) => n.subjects.agentHeartbeat('fuzz-2'),
      schema: HeartbeatSchema,
      valid: [
        { v: 1, at: 1 },
        { v: 1, at: 1, running: ['tnone'], finished: [] },
      ],
    },
    {
      name: 'agent.goodbye',
      kind: 'publish',
      subject: (n) => n.subjects.agentGoodbye('fuzz-3'),
      schema: GoodbyeSchema,
      valid: [{ v: 1 }, { v: 1, reason: 'bye' }],
    },
    api('task.submit', TaskSubmitRequestSchema, [{ v: 1, title: 'api fuzz', queue: 'fuzz' }]),
    api('task.get', TaskRefSchema, [{ v: 1, id: 'tnone' }]),
    api('task.list', TaskListRequestSchema, [{ v: 1 }, { v: 1, status: ['queued'], limit: 3 }]),
    api('task.stats', EmptyRequestSchema, [{ v: 1 }]),
    api('agent.list', EmptyRequestSchema, [{ v: 1 }]),
    api('dlq.list', DlqListRequestSchema, [{ v: 1, limit: 2 }]),
    api('dlq.get', DlqGetRequestSchema, [{ v: 1, seq: 999_999_999 }]),
    api('task.cancel', TaskCancelRequestSchema, [{ v: 1, id: 'tnone' }], true),
    api('task.retry', TaskRefSchema, [{ v: 1, id: 'tnone' }], true),
    api('agent.remove', AgentRefSchema, [{ v: 1, id: 'fuzz-9' }], true),
    api('agent.restore', AgentRefSchema, [{ v: 1, id: 'fuzz-9' }], true),
    api('dlq.replay', DlqReplayRequestSchema, [{ v: 1, seq: 1 }], true),
    api('dlq.purge', DlqPurgeRequestSchema, [{ v: 1 }], true),
    // Messaging, trusted and as an agent (its own subject): a request refused before the actor's
    // first await once crashed it, restarting the API.
    api('msg.send', MsgSendRequestSchema, [
      { v: 1, broadcast: true, body: 'fuzz' },
      { v: 1, channel: 'room', body: 'fuzz', sender: 'fuzzer', clientId: 'f1' },
    ]),
    api('msg.send.fuzz-2', MsgSendRequestSchema, [{ v: 1, to: 'fuzz-2', body: 'to myself' }]),
    api('msg.inbox', MsgInboxRequestSchema, [{ v: 1, as: 'fuzz-2', limit: 5 }]),
    api('msg.inbox.fuzz-2', MsgInboxRequestSchema, [{ v: 1, after: 0, limit: 2 }]),
    api('msg.ack.fuzz-2', MsgAckRequestSchema, [{ v: 1, upTo: 1 }]),
    api('msg.history', MsgHistoryRequestSchema, [
      { v: 1, kind: 'broadcast', limit: 3 },
      { v: 1, channel: 'room' },
    ]),
    api('msg.thread', MsgThreadRequestSchema, [{ v: 1, id: 1 }]),
    api('channel.list.fuzz-2', ChannelListRequestSchema, [{ v: 1 }]),
    api('channel.join.fuzz-2', ChannelRefRequestSchema, [{ v: 1, name: 'room' }]),
  ];
}

export interface TargetReport {
  sent: number;
  valid: number;
  /** Outcome -> count (a reply's code, `ok`, `dead_lettered`, `task`). */
  outcomes: Record<string, number>;
  violations: string[];
}

export interface FuzzResult {
  ok: boolean;
  seed: number;
  perTarget: number;
  seconds: number;
  hubAlive: boolean;
  realTasks: { submitted: number; done: number };
  targets: Record<string, TargetReport>;
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export async function runFuzz(opts: {
  perTarget: number;
  seed: number;
  /** Only these subjects (names as in the result), e.g. `api.task.submit`; default all. */
  only?: string[];
  log?: (l: string) => void;
}): Promise<FuzzResult> {
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const nats = await startNatsServer();
  const prefix = `fuzz${opts.seed}`;
  const bus = await connectBus({ servers: nats.url, prefix, logger: pino({ level: 'silent' }) });
  await provision(bus, defaultTopology(bus.names));
  const unlimited = Object.fromEntries(['fuzz-1', 'fuzz-2', 'fuzz-3'].map((id) => [id, 'unlimited']));
  await (await openLimitsKv(bus)).put(LIMITS_KEY, LimitsSchema.parse({ v: 1, overrides: unlimited }));
  const hub = spawn(process.execPath, ['--import', 'tsx', here('../../src/cli/main.ts'), 'hub'], {
    env: {
      ...process.env,
      NATS_URL: nats.url,
      AGENTCOM_PREFIX: prefix,
      AGENTCOM_LOG_LEVEL: 'warn',
      AGENTCOM_HEARTBEAT_INTERVAL_MS: '1000',
      // Every refused input is a dead letter: the DLQ must keep them all to be counted.
      AGENTCOM_DLQ_MAX_MSGS: '10000000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let hubExited: number | null | undefined;
  hub.once('exit', (code) => {
    hubExited = code;
  });
  let stderr = '';
  hub.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const agent = await (async () => {
    // The hub is up once its API answers.
    for (;;) {
      try {
        await bus.nc.request(`${bus.names.subjects.apiPrefix}.task.stats`, '{"v":1}', { timeout: 1000 });
        break;
      } catch {
        if (hubExited !== undefined) throw new Error(`hub exited ${hubExited}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // FUZZ_HUB_LOG=<file> keeps the hub's log (warnings and errors).
    const keep = process.env.FUZZ_HUB_LOG ? createWriteStream(process.env.FUZZ_HUB_LOG) : undefined;
    createInterface({ input: hub.stdout! }).on('line', (l) => keep?.write(`${l}\n`));
    return spawnSimAgent({ url: nats.url, prefix, agentId: 'real-1', queues: ['real'], slots: 4 });
  })();
  try {
    const result: FuzzResult = {
      ok: true,
      seed: opts.seed,
      perTarget: opts.perTarget,
      seconds: 0,
      hubAlive: true,
      realTasks: { submitted: 0, done: 0 },
      targets: {},
    };
    // Real work alongside the fuzzing: every one of these must be done at the end.
    let producing = true;
    const real: string[] = [];
    const producer = (async () => {
      while (producing) {
        real.push((await submitTask(bus, { title: `real ${real.length}`, queue: 'real' })).taskId);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const ts = targets().filter((t) => !opts.only?.length || opts.only.includes(t.name));
    for (const [i, t] of ts.entries()) {
      const inputs = draw(payloads(t.valid), opts.perTarget, opts.seed + i).filter(
        (x) => !t.invalidOnly || (x.data.length > 0 && !verdict(t.schema, x.data).ok),
      );
      result.targets[t.name] = await fuzzTarget(bus, t, inputs);
      // Checked before the next target: the destructive endpoints come later.
      if (t.kind === 'stream') await checkStreamOutcome(bus, result, t);
      const r = result.targets[t.name]!;
      log(
        `[fuzz] ${t.name}: ${r.sent} sent (${r.valid} valid) ${JSON.stringify(r.outcomes)}${r.violations.length ? ` VIOLATIONS ${r.violations.length}` : ''}`,
      );
      if (hubExited !== undefined) break;
    }
    producing = false;
    await producer;
    // The real tasks are done, and the stream inputs reached their outcomes.
    const tasks = await openKv(bus, bus.names.buckets.tasks, TaskRecordSchema);
    const deadline = Date.now() + 60_000;
    let done = 0;
    for (;;) {
      done = 0;
      for (const id of real) if ((await tasks.get(id))?.value.status === 'done') done++;
      if (done === real.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    result.realTasks = { submitted: real.length, done };
    result.hubAlive = hubExited === undefined;
    result.ok =
      result.hubAlive &&
      done === real.length &&
      Object.values(result.targets).every((t) => t.violations.length === 0);
    result.seconds = Math.round((Date.now() - started) / 100) / 10;
    return result;
  } finally {
    await agent.kill();
    await bus.drain();
    hub.kill('SIGKILL');
    await nats.dispose();
  }
}

const CONCURRENCY = 64;
const ENCODED_EMPTY = new TextEncoder().encode('{}');

async function fuzzTarget(bus: Bus, t: Target, inputs: FuzzInput[]): Promise<TargetReport> {
  const report: TargetReport = { sent: 0, valid: 0, outcomes: {}, violations: [] };
  const count = (k: string) => {
    report.outcomes[k] = (report.outcomes[k] ?? 0) + 1;
  };
  const subject = t.subject(bus.names);
  let next = 0;
  const worker = async () => {
    while (next < inputs.length) {
      const input = inputs[next++]!;
      // The API takes an empty body as `{}` (docs/protocol.md §6).
      const expected = verdict(
        t.schema,
        t.kind === 'request' && input.data.length === 0 ? ENCODED_EMPTY : input.data,
      );
      report.sent++;
      if (expected.ok) report.valid++;
      if (t.kind === 'publish') {
        bus.nc.publish(subject, input.data);
        count(expected.ok ? 'valid' : `refused:${expected.code}`);
        continue;
      }
      if (t.kind === 'stream') {
        // A fresh message id per input (a valid task id): dedupe must not hide one.
        const msgId = `fz${report.sent}x${Math.random().toString(36).slice(2)}`;
        for (;;) {
          try {
            await publishRaw(bus, subject, input.data, { msgId, retries: 5 });
            break;
          } catch (err) {
            if (!(err instanceof AgentComError && err.code === ERROR_CODES.RATE_LIMITED)) throw err;
            count('backlog_full');
            await new Promise((r) => setTimeout(r, err.retryAfterMs ?? 100));
          }
        }
        stash.push({ target: t.name, expected, msgId });
        count(expected.ok ? 'valid' : `refused:${expected.code}`);
        continue;
      }
      try {
        const reply = await bus.nc.request(subject, input.data, { timeout: 10_000 });
        const body = safeJson(reply.data) as
          | { code?: string; ok?: boolean; error?: { code?: string } }
          | undefined;
        const code =
          body?.error?.code ?? (reply.headers?.get('Nats-Service-Error-Code') ? body?.code : undefined);
        count(code ?? 'ok');
        if (!expected.ok && code !== expected.code)
          report.violations.push(
            `${input.family} input refused by the schema (${expected.code}) got ${code ?? 'a success'}`,
          );
        if (code !== undefined && !KNOWN_CODES.has(code))
          report.violations.push(`unknown error code ${code}`);
        if (code === ERROR_CODES.INTERNAL)
          report.violations.push(
            `internal error for a ${input.family} input ${new TextDecoder().decode(input.data.slice(0, 120))}: ${JSON.stringify(body).slice(0, 200)}`,
          );
      } catch (err) {
        count('no_answer');
        report.violations.push(`no answer: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return report;
}

/** JetStream inputs, kept to check their outcome once the hub has handled them. */
const stash: { target: string; expected: ReturnType<typeof verdict>; msgId: string }[] = [];

async function checkStreamOutcome(bus: Bus, result: FuzzResult, t: Target): Promise<void> {
  const n = bus.names;
  const streamOf: Record<string, string> = {
    'task.submit': n.streams.submit,
    'agent.report': n.streams.reports,
  };
  {
    const r = result.targets[t.name]!;
    const mine = stash.filter((s) => s.target === t.name);
    const refused = mine.filter((s) => !s.expected.ok).length;
    const stream = streamOf[t.name]!;
    // Every refused input is dead-lettered, with its stream named in the DLQ subject.
    const deadline = Date.now() + 60_000;
    let letters = 0;
    for (;;) {
      const info = await bus.jsm.streams.info(n.streams.dlq, {
        subjects_filter: n.subjects.dlqOfStream(stream),
      });
      letters = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
      const pending = (await bus.jsm.streams.info(stream)).state.messages;
      if ((letters >= refused && pending === 0) || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    r.outcomes.dead_lettered = letters;
    if (letters !== refused) r.violations.push(`${refused} refused inputs, ${letters} dead letters`);
    if (t.name === 'task.submit') {
      // Every valid submission is a task, whose id follows from its idempotency key or message id.
      const tasks = await openKv(bus, n.buckets.tasks, TaskRecordSchema);
      let found = 0;
      for (const s of mine) {
        if (!s.expected.ok) continue;
        const key = (s.expected.value as { idempotencyKey?: string }).idempotencyKey;
        const id = taskIdForSubmit({ idempotencyKey: key, msgId: s.msgId, now: 0 });
        if (await tasks.get(id)) found++;
        else r.violations.push(`valid submission ${s.msgId} has no task ${id}`);
      }
      r.outcomes.tasks = found;
    }
  }
  stash.length = 0;
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}
