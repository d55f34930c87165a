/**
 * Honest worker process of the flood benchmark (bench/flood.ts): `c` agents `honest-<i>` (each its
 * own connection, inbox and slot) offering the capability `honest`, so they take the producer's
 * tasks and never the flooder's own. Each connects as a deployment made with `agentcom agent add`
 * does: its own NKey seed from the auth directory (`<authDir>/agents/<id>/agent.nk`) and its own
 * reply-inbox prefix. Each handler completes at once (as in bench/hub-agents.ts), returning the
 * time it started (`tStart`, ms, wall clock) as its result, so the parent can split the hub's
 * assigned -> completed into delivery (hub -> handler) and report (handler -> hub's record).
 *
 * Also measured here, for the parent's diagnosis: the PubAck latency of every JetStream publish the
 * agents make (their reports; `bus.js.publish` is wrapped, nothing in src/ changes) and this
 * process's event-loop delay, both kept as [wall-clock ms, value] samples and summed up per time
 * window on request.
 *   argv: natsUrl prefix c authDir
 * IPC: posts `ready` once every agent has said hello and consumes its inbox; `window` {from, to}
 * (wall-clock ms) is answered with `window` {pubAck, eventLoop}; on `close` says goodbye, drains
 * and exits. Exits on its own when the parent goes away.
 */
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { AgentClient } from '../src/agent/client.js';
import { readSeedFile } from '../src/bus/nkeys.js';
import { AGENT_SEED_FILE, authDirPaths } from '../src/hub/auth/auth-dir.js';
import { agentInboxPrefix } from '../src/protocol/permissions.js';
import { nowMs, percentile } from './peers/common.js';

const [url, prefix, cStr, authDir] = process.argv.slice(2) as [string, string, string, string];
const c = Number(cStr);
const paths = authDirPaths(authDir);

process.on('disconnect', () => process.exit(2));

/** [wall-clock ms at the publish, ms to its PubAck (or to its failure)]. */
const pubAcks: [number, number][] = [];
let pubAckFailures = 0;
/** [wall-clock ms at the end of a 100 ms window, p99 of the loop delay in it, max in it], ms. */
const loopDelay: [number, number, number][] = [];
const eld = monitorEventLoopDelay({ resolution: 5 });
eld.enable();
setInterval(() => {
  loopDelay.push([nowMs(), eld.percentile(99) / 1e6, eld.max / 1e6]);
  eld.reset();
}, 100).unref();

const clients = await Promise.all(
  Array.from({ length: c }, async (_, i) => {
    const id = `honest-${i}`;
    return AgentClient.connect({
      connection: {
        servers: url,
        prefix,
        name: `flood-${id}`,
        nkeySeed: await readSeedFile(join(paths.agentDir(id), AGENT_SEED_FILE)),
        inboxPrefix: agentInboxPrefix(id),
      },
      agentId: id,
      hello: { slots: 1, capabilities: ['honest'], name: id },
      logger: pino({ level: 'warn' }, pino.destination(2)),
      helloTimeoutMs: 30_000,
    });
  }),
);
for (const client of clients) {
  const js = client.bus.js;
  const publish = js.publish.bind(js);
  js.publish = async (...a: Parameters<typeof publish>) => {
    const t = nowMs();
    try {
      return await publish(...a);
    } catch (err) {
      pubAckFailures++;
      throw err;
    } finally {
      pubAcks.push([t, nowMs() - t]);
    }
  };
  await client.start(async () => ({ type: 'completed', result: { ok: 1, tStart: nowMs() } }));
}

const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? Number.NaN };
};

process.on('message', async (m: { type: string; from?: number; to?: number }) => {
  if (m.type === 'window') {
    const from = m.from ?? 0;
    const to = m.to ?? Number.POSITIVE_INFINITY;
    const acks = pubAcks.filter(([t]) => t >= from && t < to).map(([, ms]) => ms);
    const loops = loopDelay.filter(([t]) => t >= from && t < to);
    process.send?.({
      type: 'window',
      pubAckMs: { ...summary(acks), failuresSoFar: pubAckFailures },
      eventLoopMs: {
        p99OfWindowP99s: percentile(
          loops.map(([, p99]) => p99).sort((a, b) => a - b),
          99,
        ),
        max: Math.max(...loops.map(([, , max]) => max)),
      },
    });
  } else if (m.type === 'close') {
    await Promise.race([
      Promise.all(clients.map((cl) => cl.stop({ goodbye: true }))),
      new Promise((r) => setTimeout(r, 5000)),
    ]);
    process.exit(0);
  }
});
process.send?.({ type: 'ready' });
