/**
 * Peer baselines on this machine: BullMQ (private Redis, with an AOF fsynced every second and
 * without persistence), raw NATS JetStream (private nats-server)
 * and the JetStream pipeline (the hub's 5-store durable flow on bare nats.js), e2e throughput and
 * steady-rate latency, each `reps` times; prints one JSON object.
 *
 *   npx tsx bench/peers/main.ts [--reps 3] [--n 20000] [--c 10] [--rate 1000] [--duration 10] [--warmup 3]
 *                               [--peers bullmqAof,bullmq,jetstream,jetstreamPipeline,jetstreamMinimal,jetstreamLog] [--no-e2e] [--no-latency]
 *
 * Progress goes to stderr; the JSON result to stdout. Exit code 1 if any run failed.
 */
import { parseArgs } from 'node:util';
import { LATENCY_DEFAULTS } from './common.js';
import { environment, loadAverage, PEER_NAMES, type PeerName, rounded, runPeerSuite } from './suite.js';

const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    n: { type: 'string', default: '20000' },
    c: { type: 'string', default: '10' },
    rate: { type: 'string', default: String(LATENCY_DEFAULTS.rate) },
    duration: { type: 'string', default: String(LATENCY_DEFAULTS.durationS) },
    warmup: { type: 'string', default: String(LATENCY_DEFAULTS.warmupS) },
    peers: { type: 'string', default: PEER_NAMES.join(',') },
    'no-e2e': { type: 'boolean', default: false },
    'no-latency': { type: 'boolean', default: false },
  },
});

function num(name: string, v: string): number {
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new Error(`--${name} must be a positive number, got '${v}'`);
  return x;
}

const reps = num('reps', values.reps);
const c = num('c', values.c);
const peers = values.peers.split(',').map((s) => s.trim()) as PeerName[];
for (const p of peers) if (!PEER_NAMES.includes(p)) throw new Error(`unknown peer '${p}'`);
const e2e = values['no-e2e'] ? false : { n: num('n', values.n), c };
const latency = values['no-latency']
  ? false
  : {
      rate: num('rate', values.rate),
      durationS: num('duration', values.duration),
      warmupS: Number(values.warmup), // 0 allowed; checked by resolveLatency
      c,
    };

const startedAt = new Date().toISOString();
const loadavgStart = loadAverage();
const env = await environment();
const results = await runPeerSuite({ reps, peers, e2e, latency });
const loadavgEnd = loadAverage();

const out = {
  startedAt,
  ...env,
  loadavgStart,
  loadavgEnd,
  config: {
    reps,
    e2e: e2e
      ? {
          ...e2e,
          producer: {
            bullmqAof: 'addBulk x1000 (AOF, fsync every second)',
            bullmq: 'addBulk x1000',
            jetstream: 'publish, 100 in flight',
            jetstreamPipeline: 'publish (Nats-Msg-Id), 100 in flight',
            jetstreamMinimal: 'publish (Nats-Msg-Id), 100 in flight',
            jetstreamLog: 'publish (Nats-Msg-Id), 100 in flight',
          },
        }
      : false,
    latency: latency ? { ...latency, producer: 'single add/publish per tick' } : false,
  },
  results,
};
console.log(JSON.stringify(rounded(out), null, 2));
const failed = Object.values(results).some((s) => s && s.failures.length > 0);
process.exit(failed ? 1 : 0);
