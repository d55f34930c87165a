/**
 * The flooder of the flood benchmark (bench/flood.ts), in its own OS process: agent
 * `flooder-<mode>` (capability `flood-<mode>`, slots 1, so it never takes the honest agents' tasks,
 * one agent per phase, as one may still be suspended in the next), connected with its own
 * NKey seed from the auth directory and its own reply-inbox prefix, as an agent made with
 * `agentcom agent add` is. Once told to flood it publishes JetStream reports on its own report
 * subject `<prefix>.agent.flooder-<mode>.report` as fast as it can, `window` publishes outstanding at once
 * (one lane per outstanding publish; no Nats-Msg-Id, so none is deduplicated). Two modes:
 *
 *   valid    only well-formed `progress` reports about the task it holds (its current generation
 *            and session): nothing the hub counts as a violation, so it is never suspended; what
 *            protects the others is the hub's per-agent report rate (refused reports answered
 *            `rate_limited` within the refusals budget) and the per-subject backlog cap of the
 *            reports stream (publishes beyond it refused by the server, JetStream error 10077).
 *            While it holds no task (before the assignment, after a reclaim) the lanes wait.
 *   invalid  every 8 publishes: 4 well-formed reports about random task ids not its own (forged:
 *            `progress` / `completed`, generation 1), 1 payload that is not JSON, 1 valid JSON of
 *            the wrong schema, 2 `progress` about its own task (2 more forged ones without one).
 *            The hub suspends it within about a second (10 violations a minute) and, with an auth
 *            directory, has the server drop its user: the connection is closed (the client does
 *            not reconnect by itself: maxReconnectAttempts 0). From then on it keeps trying to
 *            connect again, one attempt at a time, `retryMs` apart, until told to stop; each
 *            refused attempt is counted by its error. Should one succeed, the flood goes on over it.
 *   refused  a diagnostic: the `valid` flood with every publish carrying a last-subject-sequence
 *            expectation no subject meets, so the reports stream refuses each (JetStream error
 *            10071) as it refuses those over the backlog cap (10077): the flood's cost to the
 *            server alone, since nothing of it is stored or reaches the hub.
 *
 * A refused publish (10077, `rate_limited`, a timeout, a closed connection) is counted by its code
 * and the flood goes on. Notices the hub sends back (refused reports) are counted by code. The
 * handler of its own task holds it until the flood is over (never completing it during the flood);
 * on `close` it fails it (not retryable), so no flood task stays behind in the queue.
 *   argv: natsUrl prefix window mode(valid|invalid|refused) authDir [retryMs]
 * IPC: posts `ready` after hello and `assigned` {taskId, generation, at} when it gets its task;
 * `flood` starts, posts `cut` {at, how} when the server closes its connection; `stop` stops and
 * posts `counts`; `close` exits.
 */
import { join } from 'node:path';
import type { JetStreamClient } from '@nats-io/jetstream';
import { pino } from 'pino';
import { AgentClient } from '../src/agent/client.js';
import { connectBus } from '../src/bus/connection.js';
import { readSeedFile } from '../src/bus/nkeys.js';
import { AGENT_SEED_FILE, authDirPaths } from '../src/hub/auth/auth-dir.js';
import { newTaskId } from '../src/protocol/ids.js';
import { agentInboxPrefix } from '../src/protocol/permissions.js';
import { nowMs } from './peers/common.js';

const [url, prefix, windowStr, modeArg, authDir, retryStr] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string | undefined,
];
const WINDOW = Math.max(1, Number(windowStr) || 256);
const MODE = modeArg === 'invalid' || modeArg === 'refused' ? modeArg : 'valid';
const RETRY_MS = Math.max(0, Number(retryStr ?? 0) || 0);
/** PubAck timeout of a flood publish, ms. */
const PUBLISH_TIMEOUT_MS = 5000;
const PUBLISH_OPTS = { timeout: PUBLISH_TIMEOUT_MS };
/** `refused` mode: a last-sequence expectation no subject meets, so the stream refuses each (10071). */
const REFUSED_OPTS = { timeout: PUBLISH_TIMEOUT_MS, expect: { lastSubjectSequence: 2 ** 50 } };
/** One agent per flood phase: the flooder of one phase may still be suspended in the next. */
const AGENT_ID = `flooder-${MODE}`;
const CAPABILITY = `flood-${MODE}`;

process.on('disconnect', () => process.exit(2));

const counts = {
  mode: MODE,
  window: WINDOW,
  sent: 0,
  acked: 0,
  refused: 0,
  /** Publishes by kind: foreign (well-formed, not its task), notJson, wrongSchema, own (progress on its task). */
  byKind: { foreign: 0, notJson: 0, wrongSchema: 0, own: 0 },
  /** Refused publishes by error code (`10077`, `rate_limited`, `TimeoutError`...) and message. */
  refusedBy: {} as Record<string, number>,
  /** Notices (refused reports) the hub sent back, by code. */
  notices: {} as Record<string, number>,
  /** Assignments of its own task received (a reclaim and reassignment counts again). */
  assigned: 0,
  /** Seconds from `flood` to `stop`. */
  seconds: 0,
  /** Publishes still unsettled when the counts were taken (they get up to 6 s after `stop`). */
  inFlightAtEnd: 0,
  /** Its connection closed under it (the server dropped its user): when (wall-clock ms) and why. */
  cut: null as null | { at: number; error: string | null },
  /** Attempts to connect again after the cut: how many, refused by error, accepted. */
  reconnects: { attempts: 0, refused: 0, accepted: 0, refusedBy: {} as Record<string, number> },
  /** Errors nothing awaited (counted, never fatal). */
  unhandled: 0,
};
process.on('unhandledRejection', () => {
  counts.unhandled++;
});
process.on('uncaughtException', () => {
  counts.unhandled++;
});

let own: { taskId: string; generation: number } | undefined;
let flooding = false;
let releaseOwn: () => void = () => {};
const floodOver = new Promise<void>((r) => {
  releaseOwn = r;
});
/** Lanes that have nothing to send wait on this; `wake()` lets them go again. */
let wakeUp: () => void = () => {};
let wakeP = new Promise<void>((r) => {
  wakeUp = r;
});
const wake = () => {
  wakeUp();
  wakeP = new Promise<void>((r) => {
    wakeUp = r;
  });
};

const seed = await readSeedFile(join(authDirPaths(authDir).agentDir(AGENT_ID), AGENT_SEED_FILE));
const connection = {
  servers: url,
  prefix,
  name: 'flood-flooder',
  nkeySeed: seed,
  inboxPrefix: agentInboxPrefix(AGENT_ID),
  // Once the server drops its user, the connection closes and the reconnect loop here takes over.
  maxReconnectAttempts: 0,
};
const logger = pino({ level: 'error' }, pino.destination(2));
const client = await AgentClient.connect({
  connection,
  agentId: AGENT_ID,
  hello: { slots: 1, capabilities: [CAPABILITY], name: AGENT_ID },
  logger,
  helloTimeoutMs: 30_000,
  onNotice: (n) => {
    counts.notices[n.code] = (counts.notices[n.code] ?? 0) + 1;
  },
});
await client.start(async (ctx) => {
  counts.assigned++;
  own = { taskId: ctx.taskId, generation: ctx.generation };
  process.send?.({ type: 'assigned', taskId: ctx.taskId, generation: ctx.generation, at: nowMs() });
  wake();
  const aborted = new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
  await Promise.race([floodOver, aborted]);
  if (own?.taskId === ctx.taskId && own.generation === ctx.generation) own = undefined;
  return { type: 'failed', error: { code: 'flood_over', message: 'the flood is over' }, retryable: false };
});

const subject = client.bus.names.subjects.agentReport(AGENT_ID);
/** The JetStream client the lanes publish with; undefined while the connection is gone. */
let js: JetStreamClient | undefined = client.bus.js;
const enc = new TextEncoder();
const NOT_JSON = enc.encode('{"v":1,"type":"progress","taskId":"t0000 this is not json');
let seq = 0;

function ownProgress(mine: { taskId: string; generation: number }, i: number): Uint8Array {
  counts.byKind.own++;
  return enc.encode(
    JSON.stringify({
      v: 1,
      type: 'progress',
      taskId: mine.taskId,
      generation: mine.generation,
      at: Date.now(),
      session: client.session,
      pct: i % 100,
      message: `flood ${i}`,
    }),
  );
}

/** The next payload; undefined when there is nothing to send now (valid mode without a task). */
function nextPayload(): Uint8Array | undefined {
  const i = seq++;
  const mine = own;
  if (MODE !== 'invalid') return mine ? ownProgress(mine, i) : undefined;
  const slot = i % 8;
  if (slot === 4) {
    counts.byKind.notJson++;
    return NOT_JSON;
  }
  if (slot === 5) {
    counts.byKind.wrongSchema++;
    return enc.encode(JSON.stringify({ v: 2, type: 'exploded', taskId: i, generation: 'one', at: 'now' }));
  }
  if ((slot === 6 || slot === 7) && mine) return ownProgress(mine, i);
  counts.byKind.foreign++;
  const report =
    i % 2 === 0
      ? { v: 1, type: 'progress', taskId: newTaskId(), generation: 1, at: Date.now(), pct: 50 }
      : { v: 1, type: 'completed', taskId: newTaskId(), generation: 1, at: Date.now(), result: { x: i } };
  return enc.encode(JSON.stringify(report));
}

function errorKey(err: unknown): string {
  const e = err as { code?: unknown; name?: string; message?: string };
  const code =
    e.code !== undefined && e.code !== null && e.code !== '' ? String(e.code) : (e.name ?? 'Error');
  const msg = (e.message ?? String(err)).slice(0, 80);
  return `${code} ${msg}`;
}

let inFlight = 0;
const yieldTurn = () => new Promise<void>((r) => setImmediate(r));

async function lane(): Promise<void> {
  while (flooding) {
    const j = js;
    const payload = j ? nextPayload() : undefined;
    if (!j || !payload) {
      await wakeP;
      continue;
    }
    counts.sent++;
    inFlight++;
    try {
      await j.publish(subject, payload, MODE === 'refused' ? REFUSED_OPTS : PUBLISH_OPTS);
      counts.acked++;
    } catch (err) {
      counts.refused++;
      const k = errorKey(err);
      counts.refusedBy[k] = (counts.refusedBy[k] ?? 0) + 1;
      // A refusal can come back at once (a closed connection): let the event loop turn, so that the
      // lanes never starve IPC and the inbox.
      await yieldTurn();
    } finally {
      inFlight--;
    }
  }
}

/** After the cut: connect again and again (each attempt alone), until one works or the flood ends. */
async function reconnectLoop(): Promise<void> {
  const silent = pino({ level: 'silent' });
  while (flooding) {
    counts.reconnects.attempts++;
    try {
      const bus = await connectBus({
        ...connection,
        waitOnFirstConnect: false,
        timeoutMs: 2000,
        logger: silent,
      });
      counts.reconnects.accepted++;
      js = bus.js;
      wake();
      void bus.closed().then(() => {
        js = undefined;
        if (flooding) void reconnectLoop();
      });
      return;
    } catch (err) {
      counts.reconnects.refused++;
      const k = errorKey(err);
      counts.reconnects.refusedBy[k] = (counts.reconnects.refusedBy[k] ?? 0) + 1;
    }
    if (RETRY_MS > 0) await new Promise((r) => setTimeout(r, RETRY_MS));
    else await yieldTurn();
  }
}

let closing = false;
void client.bus.nc.closed().then((err) => {
  js = undefined;
  if (closing) return;
  counts.cut = { at: nowMs(), error: err ? err.message : null };
  process.send?.({ type: 'cut', at: counts.cut.at, error: counts.cut.error });
  if (flooding) void reconnectLoop();
});

let lanes: Promise<void>[] = [];
let t0 = 0;

process.on('message', async (m: { type: string }) => {
  if (m.type === 'flood' && !flooding) {
    flooding = true;
    t0 = performance.now();
    lanes = Array.from({ length: WINDOW }, lane);
  } else if (m.type === 'stop') {
    flooding = false;
    wake();
    counts.seconds = (performance.now() - t0) / 1000;
    await Promise.race([Promise.all(lanes), new Promise((r) => setTimeout(r, 6000))]);
    counts.inFlightAtEnd = inFlight;
    process.send?.({ type: 'counts', counts });
  } else if (m.type === 'close') {
    closing = true;
    flooding = false;
    wake();
    releaseOwn();
    await Promise.race([
      client.stop({ goodbye: true, abort: false }),
      new Promise((r) => setTimeout(r, 5000)),
    ]);
    process.exit(0);
  }
});
process.send?.({ type: 'ready' });
