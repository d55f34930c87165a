/**
 * Messaging with the receiving agent as a separate OS process (the SDK's `messages.incoming()`),
 * against a real hub: it receives messages live, is SIGKILLed mid-stream with messages received
 * but not acknowledged, messages keep arriving while it is down, and a restarted process catches
 * up from its acknowledged cursor and then follows live. Over both processes every message is
 * acknowledged exactly once, in the order it was stored, and none is lost.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { MessagingClient } from '../../src/bus/messaging-client.js';
import { eventually, waitUntil } from '../support/eventually.js';
import { useHubHarness } from '../support/hub.js';
import { captureJsonLines } from '../support/json-lines.js';

type Line = { at: number; pid: number; event: string; seq?: number; body?: string; cursor?: number };

const agentScript = fileURLToPath(new URL('./fixtures/message-agent.ts', import.meta.url));

const h = useHubHarness('msgagents');
let procs: ChildProcess[] = [];
let sender: AgentClient | undefined;
afterEach(async () => {
  await Promise.all(procs.map((p) => kill(p)));
  procs = [];
  await sender?.stop({ goodbye: false }).catch(() => {});
  sender = undefined;
});

function kill(proc: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

function spawnAgent(config: Record<string, unknown>) {
  const proc = spawn(process.execPath, ['--import', 'tsx', agentScript, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  const lines = captureJsonLines<Line>(proc);
  return { proc, ...lines };
}

const seqsOf = (events: Line[], event: string) => events.filter((e) => e.event === event).map((e) => e.seq!);

describe('messaging with agent processes', { timeout: 120_000 }, () => {
  it('a receiver SIGKILLed mid-stream catches up from its cursor after a restart: every message acked once, in order', async () => {
    const client = await h.setup([]);
    await eventually(() => new MessagingClient(client.bus).channelList(), { timeout: 30_000, interval: 50 });
    const agentId = `receiver-${h.prefix.slice(-6)}`;
    sender = await AgentClient.connect({
      connection: { servers: h.nats.url, prefix: h.prefix },
      agentId: `sender-${h.prefix.slice(-6)}`,
      logger: pino({ level: 'silent' }),
      helloTimeoutMs: 30_000,
    });
    const s = sender.messages;

    // The first process acks its first 10 messages, then only receives.
    const first = spawnAgent({ url: h.nats.url, prefix: h.prefix, agentId, ackFirst: 10 });
    await waitUntil(() => first.events.some((e) => e.event === 'ready'), 'the first receiver ready', {
      timeout: 60_000,
    });
    // Its hello has registered it: until then a direct message to it is `not_found`.
    const sent: number[] = [];
    const send = async (i: number) => {
      const r = await eventually(() => s.send(agentId, `message ${i}`, { clientId: `e2e-${i}` }), {
        timeout: 30_000,
        interval: 100,
      });
      sent.push(r.message.seq);
    };
    for (let i = 0; i < 20; i++) await send(i);
    await waitUntil(() => seqsOf(first.events, 'received').length >= 15, 'fifteen received', {
      timeout: 60_000,
    });
    await kill(first.proc);
    const receivedBeforeKill = seqsOf(first.events, 'received');
    const ackedBeforeKill = seqsOf(first.events, 'acked');
    expect(ackedBeforeKill).toEqual(sent.slice(0, 10));
    expect(receivedBeforeKill.length).toBeGreaterThan(ackedBeforeKill.length); // received, not acked
    expect(receivedBeforeKill).toEqual(sent.slice(0, receivedBeforeKill.length));

    // Messages keep arriving while it is down.
    for (let i = 20; i < 50; i++) await send(i);

    const second = spawnAgent({ url: h.nats.url, prefix: h.prefix, agentId });
    await waitUntil(() => second.events.some((e) => e.event === 'ready'), 'the second receiver ready', {
      timeout: 60_000,
    });
    await waitUntil(() => seqsOf(second.events, 'acked').length === 40, 'the backlog acked', {
      timeout: 60_000,
    });
    // And it follows live.
    for (let i = 50; i < 60; i++) await send(i);
    await waitUntil(() => seqsOf(second.events, 'acked').length === 50, 'the live ones acked', {
      timeout: 60_000,
    });

    // The restarted process starts at the first unacknowledged message: nothing before, nothing skipped.
    expect(seqsOf(second.events, 'received')).toEqual(sent.slice(10));
    // Over both processes: each message acknowledged exactly once, in stored order.
    const acked = [...seqsOf(first.events, 'acked'), ...seqsOf(second.events, 'acked')];
    expect(acked).toEqual(sent);
    expect(sent.every((x, i) => i === 0 || x > sent[i - 1]!)).toBe(true);
    const bodies = second.events.filter((e) => e.event === 'received').map((e) => e.body);
    expect(bodies).toEqual(Array.from({ length: 50 }, (_, i) => `message ${i + 10}`));
    const cursor = await new MessagingClient(client.bus).inbox({ as: agentId, limit: 1 });
    expect(cursor.cursor).toBe(sent[59]);
    expect(cursor.messages).toEqual([]);
  });
});
