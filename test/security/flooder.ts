/**
 * A hostile or over-eager agent, as its own OS process, for the flood tests: it connects with its
 * own credentials (seed and reply-inbox prefix, as the SDK does) and floods in one of four ways,
 * printing JSON lines (`{ event, ... }`) the test follows:
 *   forged    `count` well-formed reports about tasks it does not hold, and `count` malformed ones,
 *             as fast as it can; then keeps trying to reconnect (counting refusals) until killed.
 *   progress  says hello (capability: its own id), takes one assignment, sends `count` progress
 *             reports about it at once, then completes it; prints the notices the hub sent back.
 *   progress-seq  the same, one progress report after the other (each stored before the next).
 *   hellos    `count` hellos back to back; prints each reply's outcome.
 *   api-submits  `count` submissions through the API (its own endpoint); prints the outcomes.
 *   bus-submits  `count` submissions on its own submit subject, all at once; prints the task ids.
 *   argv: JSON { url, prefix, agentId, seed, mode, count }
 */
import { pino } from 'pino';
import { AgentClient } from '../../src/agent/client.js';
import { submitTask } from '../../src/agent/submit.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { HubClient } from '../../src/bus/hub-client.js';
import type { InboxNotice } from '../../src/protocol/agent.js';
import { AgentComError } from '../../src/protocol/errors.js';
import { agentInboxPrefix } from '../../src/protocol/permissions.js';
import { HelloReplySchema } from '../../src/protocol/registration.js';

interface Config {
  url: string;
  prefix: string;
  agentId: string;
  seed: string;
  mode: 'forged' | 'progress' | 'progress-seq' | 'hellos' | 'api-submits' | 'bus-submits';
  count: number;
}

const cfg = JSON.parse(process.argv[2]!) as Config;
const emit = (event: string, data: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ at: Date.now(), event, ...data })}\n`);
const logger = pino({ level: 'silent' });
const connection = {
  servers: cfg.url,
  prefix: cfg.prefix,
  nkeySeed: cfg.seed,
  inboxPrefix: agentInboxPrefix(cfg.agentId),
};
const encode = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const codeOf = (err: unknown) => (err instanceof AgentComError ? err.code : (err as Error).message);

async function forged(): Promise<void> {
  const bus: Bus = await connectBus({ ...connection, logger, maxReconnectAttempts: 0 });
  const subject = bus.names.subjects.agentReport(cfg.agentId);
  const closed = bus.nc.closed();
  let stored = 0;
  let refused = 0;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < cfg.count; i++) {
    const report = { v: 1, type: 'completed', taskId: `t-forged-${i}`, generation: 1, at: Date.now() };
    for (const body of [report, '{not json', { v: 1, type: 'completed' }])
      sends.push(
        bus.js.publish(subject, encode(body)).then(
          () => {
            stored++;
          },
          () => {
            refused++;
          },
        ),
      );
  }
  await Promise.race([Promise.allSettled(sends), closed]);
  emit('flooded', { stored, refused });
  // The hub suspends it and, with an auth directory, the server drops this connection.
  await closed;
  emit('disconnected');
  for (;;) {
    try {
      const again = await connectBus({ ...connection, logger, maxReconnectAttempts: 0 });
      emit('connected');
      await again.nc.closed();
    } catch (err) {
      emit('connect_refused', { message: (err as Error).message });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function progress(sequential = false): Promise<void> {
  const notices: InboxNotice[] = [];
  const client = await AgentClient.connect({
    agentId: cfg.agentId,
    connection,
    hello: { capabilities: [cfg.agentId] },
    logger,
    onNotice: (n) => {
      notices.push(n);
      emit('notice', { code: n.code, report: n.report, retryAfterMs: n.retryAfterMs, stop: n.stop });
    },
  });
  await client.start(async (ctx) => {
    const send = (i: number) => ctx.progress({ pct: i % 100, message: `step ${i}` });
    const results: PromiseSettledResult<void>[] = [];
    if (sequential)
      for (let i = 0; i < cfg.count && !ctx.signal.aborted; i++)
        results.push(...(await Promise.allSettled([send(i)])));
    else results.push(...(await Promise.allSettled(Array.from({ length: cfg.count }, (_, i) => send(i)))));
    emit('progress_sent', {
      taskId: ctx.taskId,
      sent: results.filter((r) => r.status === 'fulfilled').length,
      failed: results.filter((r) => r.status === 'rejected').length,
    });
    return { type: 'completed', result: { ok: true } };
  });
  emit('ready');
}

async function hellos(): Promise<void> {
  const bus = await connectBus({ ...connection, logger });
  const subject = bus.names.subjects.agentHello(cfg.agentId);
  const outcomes: { ok: boolean; code?: string; retryAfterMs?: number }[] = [];
  for (let i = 0; i < cfg.count; i++) {
    const m = await bus.nc.request(subject, encode({ v: 1, capabilities: ['flood'] }), { timeout: 5_000 });
    const r = HelloReplySchema.parse(JSON.parse(new TextDecoder().decode(m.data)));
    outcomes.push(
      r.ok ? { ok: true } : { ok: false, code: r.error.code, retryAfterMs: r.error.retryAfterMs },
    );
  }
  emit('hellos', { outcomes });
  await bus.drain();
}

async function apiSubmits(): Promise<void> {
  const bus = await connectBus({ ...connection, logger });
  const api = new HubClient(bus, 5_000, cfg.agentId);
  const outcomes: { ok: boolean; code?: string; retryAfterMs?: number }[] = [];
  for (let i = 0; i < cfg.count; i++) {
    try {
      await api.submit({ title: `api ${i}`, capabilities: ['nobody'] });
      outcomes.push({ ok: true });
    } catch (err) {
      outcomes.push({ ok: false, code: codeOf(err), retryAfterMs: (err as AgentComError).retryAfterMs });
    }
  }
  emit('submits', { outcomes });
  await bus.drain();
}

async function busSubmits(): Promise<void> {
  const bus = await connectBus({ ...connection, logger });
  const ids = await Promise.all(
    Array.from({ length: cfg.count }, (_, i) =>
      submitTask(bus, { title: `bus ${i}`, capabilities: ['nobody'] }, { submitter: cfg.agentId }).then(
        (r) => r.taskId as string,
      ),
    ),
  );
  emit('submits', { ids });
  await bus.drain();
}

const modes = {
  forged,
  progress: () => progress(),
  'progress-seq': () => progress(true),
  hellos,
  'api-submits': apiSubmits,
  'bus-submits': busSubmits,
};
modes[cfg.mode]().catch((err) => {
  emit('error', { message: (err as Error).message, code: codeOf(err) });
  process.exit(1);
});
