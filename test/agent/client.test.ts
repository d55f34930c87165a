/**
 * The SDK's reports for one assignment, read back from the task record's history on a real hub:
 * an outcome ready at once is reported alone (it implies `accepted`: one report, no `working`
 * step); a handler still running when its turn of the event loop ends, or one that reports
 * progress, sends `accepted` first; a rejection made at once is applied as a rejection.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient, type TaskHandler } from '../../src/agent/client.js';
import type { HubHandle } from '../../src/hub/main.js';
import { startTestHub, type TestClient, testClient } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

const nats = useNatsServer();
let hub: HubHandle;
let client: TestClient;
let prefix = '';
const agents: AgentClient[] = [];

beforeAll(async () => {
  prefix = uniqueName('sdk').replace(/_/g, '-').toLowerCase();
  hub = await startTestHub(nats.url, prefix);
  client = await testClient(nats.url, prefix);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await client?.close();
  await hub?.stop();
});

async function agentOn(queue: string, handler: TaskHandler): Promise<AgentClient> {
  const a = await AgentClient.connect({
    connection: { servers: nats.url, prefix },
    agentId: `${queue}-agent`,
    hello: { queues: [queue] },
    logger: pino({ level: 'silent' }),
    helloTimeoutMs: 10_000,
  });
  agents.push(a);
  await a.start(handler);
  return a;
}

const steps = (history: { from: string | null; to: string }[]) => history.map((h) => `${h.from}->${h.to}`);

describe('AgentClient reports', () => {
  it('reports an outcome that is ready at once alone, and sends accepted first otherwise', async () => {
    await agentOn('fastq', async () => ({ type: 'completed', result: { ok: 1 } }));
    await agentOn('slowq', async () => {
      await new Promise((r) => setTimeout(r, 50));
      return { type: 'completed', result: { ok: 2 } };
    });
    await agentOn('progressq', async (ctx) => {
      await ctx.progress({ pct: 50 });
      return { type: 'completed', result: { ok: 3 } };
    });
    const fast = await client.submit({ title: 'fast', queue: 'fastq' as never });
    const slow = await client.submit({ title: 'slow', queue: 'slowq' as never });
    const prog = await client.submit({ title: 'progress', queue: 'progressq' as never });
    const [f, s, p] = await client.settle([fast, slow, prog]);
    expect(steps(f!.history)).toEqual(['null->queued', 'queued->assigned', 'assigned->done']);
    expect(f!.acceptedAt).not.toBeNull();
    expect(f!.result).toEqual({ ok: 1 });
    expect(steps(s!.history)).toEqual([
      'null->queued',
      'queued->assigned',
      'assigned->working',
      'working->done',
    ]);
    expect(steps(p!.history)).toEqual([
      'null->queued',
      'queued->assigned',
      'assigned->working',
      'working->done',
    ]);
    expect(p!.history[2]!.reason).toBeUndefined(); // accepted, not implied by the progress
  });

  it('applies a rejection made at once as a rejection (requeued, agent flagged)', async () => {
    await agentOn('rejectq', async () => ({ type: 'rejected', reason: 'not for me' }));
    const id = await client.submit({ title: 'reject me', queue: 'rejectq' as never, maxRetries: 0 });
    const [t] = await client.settle([id], ['dead']);
    expect(t!.lastReport).toMatchObject({ type: 'rejected', agentId: 'rejectq-agent', generation: 1 });
    expect(t!.flaggedAgents).toContain('rejectq-agent');
  });
});
