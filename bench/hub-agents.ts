/**
 * Worker process of the hub benchmark: `c` agents (each its own connection, inbox and slot), in one
 * process, as the peers' single worker process runs `c` handlers. Each handler records its start
 * time and the producer's `tAdd` (from task metadata) and completes at once.
 *   argv: natsUrl prefix c
 */
import { pino } from 'pino';
import { AgentClient } from '../src/agent/client.js';
import { nowMs } from './peers/common.js';

const [url, prefix, cStr] = process.argv.slice(2) as [string, string, string];
const c = Number(cStr);
const starts: number[] = [];
let handled = 0;

const clients = await Promise.all(
  Array.from({ length: c }, (_, i) =>
    AgentClient.connect({
      connection: { servers: url, prefix },
      agentId: `bench-${i}`,
      hello: { slots: 1 },
      logger: pino({ level: 'warn' }, pino.destination(2)),
    }),
  ),
);
for (const client of clients) {
  await client.start(async (ctx) => {
    const t = nowMs();
    const tAdd = (ctx.task.metadata as { tAdd?: number } | undefined)?.tAdd ?? 0;
    if (tAdd) starts.push(tAdd, t);
    handled++;
    return { type: 'completed', result: { ok: 1 } };
  });
}

process.on('message', async (m: { type: string }) => {
  if (m.type === 'samples') process.send?.({ type: 'samples', starts, handled });
  else if (m.type === 'handled') process.send?.({ type: 'handled', handled });
  else if (m.type === 'close') {
    await Promise.all(clients.map((cl) => cl.stop({ goodbye: true })));
    process.exit(0);
  }
});
process.send?.({ type: 'ready' });
