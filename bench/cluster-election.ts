/**
 * The floor under any recovery from a lost NATS node: how long a 3-replica JetStream stream takes
 * to accept a publish again after the node leading it is SIGKILLed (nats-server elects a new
 * leader among the other two). Nothing built on JetStream, the hub included, can write to that
 * stream sooner; the chaos suite's node-loss recovery figures are read against this one, measured
 * on the same machine.
 *   npx tsx bench/cluster-election.ts [--rounds 5]
 * Prints JSON: per round the ms from the kill to the first stored publish (retried at once on
 * failure, 1 s timeout each).
 */
import { cpus } from 'node:os';
import { pino } from 'pino';
import { connectBus } from '../src/bus/connection.js';
import { ensureStream } from '../src/bus/provision.js';
import { publishRaw } from '../src/bus/publish.js';
import { startNatsCluster } from '../test/support/nats-cluster.js';
import { nowMs, percentile, sleep } from './peers/common.js';

const args = process.argv.slice(2);
const ROUNDS = Number(args[args.indexOf('--rounds') + 1] || 5);

const cluster = await startNatsCluster(3);
const bus = await connectBus({
  servers: cluster.servers,
  apiTimeoutMs: 1_000,
  logger: pino({ level: 'silent' }),
});
const data = new TextEncoder().encode('x');
const samples: number[] = [];
try {
  for (;;) {
    try {
      await ensureStream(bus, {
        name: 'ELECTION',
        subjects: ['election.>'],
        retention: 'limits',
        replicas: 3,
      });
      break;
    } catch {
      await sleep(200);
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    await publishRaw(bus, 'election.x', data, { retries: 20 });
    const leader = (await bus.jsm.streams.info('ELECTION')).cluster?.leader;
    const node = cluster.nodes.findIndex((n) => n.name === leader);
    const t0 = nowMs();
    await cluster.kill(node);
    for (;;) {
      try {
        await publishRaw(bus, 'election.x', data, { retries: 0 });
        break;
      } catch {}
    }
    samples.push(nowMs() - t0);
    process.stderr.write(
      `[election] round ${round + 1}: leader ${leader} killed; writable again after ${samples.at(-1)!.toFixed(0)} ms\n`,
    );
    await cluster.restart(node);
    await sleep(3_000);
  }
} finally {
  await bus.drain();
  await cluster.dispose();
}
const sorted = [...samples].sort((a, b) => a - b);
console.log(
  JSON.stringify(
    {
      nproc: cpus().length,
      cpu: cpus()[0]?.model,
      rounds: ROUNDS,
      writableAgainMs: {
        p50: Math.round(percentile(sorted, 50)),
        max: Math.round(sorted.at(-1) ?? 0),
        samples: samples.map(Math.round),
      },
    },
    null,
    2,
  ),
);
process.exit(0);
