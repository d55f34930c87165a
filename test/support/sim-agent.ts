/**
 * A simulated agent: a separate OS process running the SDK. Config comes as one JSON argument;
 * every event is one JSON line on stdout, so the test can follow it. Behaviours: work for `workMs`,
 * fail the first `failTimes` attempts of each task, or never accept (`mode: 'silent'`: it says
 * hello and heartbeats but never reads its inbox).
 */
import { pino } from 'pino';
import { AgentClient } from '../../src/agent/client.js';
import type { SimAgentConfig } from './sim-agents.js';

const config = JSON.parse(process.argv[2] ?? '{}') as SimAgentConfig;
let session: string | undefined;
const emit = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ at: Date.now(), session, ...event })}\n`);
const attempts = new Map<string, number>();

const client = await AgentClient.connect({
  connection: { servers: config.url, prefix: config.prefix },
  agentId: config.agentId,
  hello: {
    capabilities: config.capabilities ?? [],
    queues: config.queues ?? ['default'],
    slots: config.slots ?? 1,
  },
  logger: pino({ level: 'warn' }, pino.destination(2)),
  onNotice: (n) =>
    emit({ event: 'notice', taskId: n.taskId, generation: n.generation, code: n.code, stop: n.stop }),
});
session = client.session;
if (config.mode !== 'silent') {
  await client.start(async (ctx) => {
    emit({ event: 'accepted', taskId: ctx.taskId, generation: ctx.generation, title: ctx.task.title });
    const n = (attempts.get(ctx.taskId) ?? 0) + 1;
    attempts.set(ctx.taskId, n);
    const workMs = (config.workMs ?? 0) + Math.floor(Math.random() * (config.workJitterMs ?? 0));
    if (workMs) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, workMs);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (ctx.signal.aborted) {
      emit({ event: 'aborted', taskId: ctx.taskId, generation: ctx.generation });
      return { type: 'failed', error: { message: 'aborted' } };
    }
    if (n <= (config.failTimes ?? 0)) {
      emit({ event: 'failed', taskId: ctx.taskId, generation: ctx.generation });
      return {
        type: 'failed',
        error: { code: 'sim', message: `attempt ${n} fails` },
        retryable: config.retryable ?? true,
      };
    }
    emit({ event: 'completed', taskId: ctx.taskId, generation: ctx.generation });
    return { type: 'completed', result: { by: config.agentId, title: ctx.task.title }, tokensUsed: 10 };
  });
}
emit({ event: 'ready', agentId: config.agentId });

const shutdown = async () => {
  await client.stop({ reason: 'SIGTERM' });
  emit({ event: 'stopped' });
  process.exit(0);
};
process.once('SIGTERM', () => void shutdown());
