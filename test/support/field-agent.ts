/**
 * A stigmergic agent for tests: a separate OS process running the SDK. Config is one JSON
 * argument; every event is one JSON line on stdout. It observes `request.code.*`; whenever it sees
 * one unclaimed (emitted, or released by a claimant that went away) it tries to claim it, and the
 * winner works for `workMs`, then emits `completion.code.review` naming the request and itself.
 */
import { pino } from 'pino';
import { AgentClient } from '../../src/agent/client.js';

interface Config {
  url: string;
  prefix: string;
  agentId: string;
  workMs: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const out = (event: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ at: Date.now(), agentId: config.agentId, ...event })}\n`);

const client = await AgentClient.connect({
  connection: { servers: config.url, prefix: config.prefix },
  agentId: config.agentId,
  hello: { observes: ['request.code.*'] },
  logger: pino({ level: 'warn' }, pino.destination(2)),
});
const observation = await client.field.observe(['request.code.*']);
out({ event: 'ready' });
for await (const { pheromone } of observation) {
  if (pheromone.claimedBy !== null || !['emitted', 'released'].includes(pheromone.event)) continue;
  const r = await client.field.claim(pheromone);
  out({ event: 'claim', id: pheromone.id, claimed: r.claimed, winner: r.pheromone.claimedBy });
  if (!r.claimed) continue;
  await new Promise((resolve) => setTimeout(resolve, config.workMs));
  const done = await client.field.emit('completion.code.review', {
    payload: { request: pheromone.id, by: config.agentId },
    idempotencyKey: pheromone.id,
  });
  out({ event: 'completed', id: pheromone.id, completion: done.id });
}
