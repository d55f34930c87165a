/**
 * Bus benchmark: the AgentCom wrapper beside raw @nats-io/jetstream in the same run, on a private
 * nats-server (free port, temp file store). Prints JSON. Each figure is the median of `RUNS` runs,
 * wrapper and raw alternating so drift hits both. Payload ~512 B.
 *   npm run bench:bus            (RUNS=3 N_PIPE=20000 ... override via env)
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { Svcm } from '@nats-io/services';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { z } from 'zod';
import {
  type Bus,
  connectBus,
  createService,
  ensureConsumer,
  ensureStream,
  outcome,
  publish,
  request,
  runConsumer,
} from '../src/bus/index.js';
import { findNatsServer, freePort, natsServerArgs, waitForNats } from '../src/bus/nats-server.js';
import { versioned } from '../src/protocol/envelope.js';
import { randomHex } from '../src/protocol/headers.js';

const RUNS = Number(process.env.RUNS ?? 3);
const N_AWAIT = Number(process.env.N_AWAIT ?? 3_000);
const N_PIPE = Number(process.env.N_PIPE ?? 20_000);
const WINDOW = Number(process.env.WINDOW ?? 256);
const N_CONSUME = Number(process.env.N_CONSUME ?? 20_000);
const N_REQ = Number(process.env.N_REQ ?? 3_000);

const Payload = versioned(1, { n: z.number().int(), body: z.string() });
type Payload = z.infer<typeof Payload>;
const body = 'x'.repeat(480);
const mk = (n: number): Payload => ({ v: 1, n, body });
const enc = new TextEncoder();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

// --- server ---

const bin = findNatsServer();
const port = await freePort();
const store = await mkdtemp(join(tmpdir(), 'agentcom-bench-'));
const srv = spawn(bin, natsServerArgs({ port, storeDir: store }), { stdio: 'ignore' });
await waitForNats(port);
const url = `nats://127.0.0.1:${port}`;

// Same client options as the wrapper's connection (noAsyncTraces: see BusConnectOptions.asyncTraces).
const nc: NatsConnection = await connect({ servers: url, noAsyncTraces: true });
const js: JetStreamClient = jetstream(nc);
const bus: Bus = await connectBus({ servers: url, prefix: 'bench', logger: pino({ level: 'silent' }) });

let streamNo = 0;
async function freshStream(): Promise<{ name: string; subject: string }> {
  const name = `BENCH_${++streamNo}`;
  const subject = `bench.s${streamNo}`;
  await ensureStream(bus, { name, subjects: [subject], retention: 'workqueue', storage: 'file' });
  return { name, subject };
}
const dropStream = (name: string) => bus.jsm.streams.delete(name);

// --- publish ---

async function rawAwait(subject: string, n: number) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    // Same work the wrapper does for the wire: JSON, msg id, headers.
    const h = headers();
    h.set('Correlation-Id', 'c');
    await js.publish(subject, enc.encode(JSON.stringify(mk(i))), { msgID: randomHex(24), headers: h });
  }
  return n / ((performance.now() - t0) / 1000);
}
async function wrapAwait(subject: string, n: number) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await publish(bus, subject, Payload, mk(i));
  return n / ((performance.now() - t0) / 1000);
}
async function pipelined(n: number, one: (i: number) => Promise<unknown>) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < n) await one(next++);
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}
const rawPipe = (subject: string, n: number) =>
  pipelined(n, (i) => {
    const h = headers();
    h.set('Correlation-Id', 'c');
    return js.publish(subject, enc.encode(JSON.stringify(mk(i))), { msgID: randomHex(24), headers: h });
  });
const wrapPipe = (subject: string, n: number) => pipelined(n, (i) => publish(bus, subject, Payload, mk(i)));

// --- consume + ack (drain a preloaded backlog) ---

async function preload(subject: string, n: number) {
  await pipelined(n, (i) =>
    js.publish(subject, enc.encode(JSON.stringify(mk(i))), { msgID: `${subject}-${i}` }),
  );
}
async function rawConsume(stream: string, n: number) {
  await bus.jsm.consumers.add(stream, {
    durable_name: 'raw',
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: 1000,
  });
  const c = await js.consumers.get(stream, 'raw');
  let got = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    void c.consume({
      max_messages: 256,
      callback: (m) => {
        // Same validation the wrapper does, so the comparison is about the runner, not zod.
        Payload.parse(JSON.parse(m.string()));
        m.ack();
        if (++got === n) resolve();
      },
    });
  });
  const rate = n / ((performance.now() - t0) / 1000);
  await nc.flush();
  return rate;
}
async function wrapConsume(stream: string, n: number) {
  const spec = { stream, durable: 'wrap', maxAckPending: 1000 };
  await ensureConsumer(bus, spec);
  let got = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const t0 = performance.now();
  const r = await runConsumer(bus, {
    spec,
    schema: Payload,
    concurrency: 256,
    pullBatch: 256,
    handler: () => {
      if (++got === n) resolveDone();
      return outcome.ack();
    },
  });
  await done;
  const rate = n / ((performance.now() - t0) / 1000);
  await r.stop();
  return rate;
}

// --- request/reply ---

const Req = versioned(1, { n: z.number().int(), body: z.string() });
async function latencies(n: number, one: (i: number) => Promise<unknown>) {
  for (let i = 0; i < 200; i++) await one(i); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await one(i);
    xs.push(performance.now() - t);
  }
  return { p50: pct(xs, 0.5), p99: pct(xs, 0.99) };
}

// --- run ---

type Pair = { wrapper: number[]; raw: number[] };
const res: Record<string, Pair> = {
  publish_awaited: { wrapper: [], raw: [] },
  publish_pipelined: { wrapper: [], raw: [] },
  consume_ack: { wrapper: [], raw: [] },
  req_p50: { wrapper: [], raw: [] },
  req_p99: { wrapper: [], raw: [] },
};

// Raw service: the same micro framework, sync handler (its fastest form), echo + JSON parse.
const rawSvc = await new Svcm(nc).add({ name: 'rawbench', version: '0.0.1' });
rawSvc.addEndpoint('echo', {
  subject: 'rawbench.echo',
  handler: (_e, m) => {
    const x = Req.parse(JSON.parse(m.string()));
    m.respond(JSON.stringify({ v: 1, n: x.n }));
  },
});
const svc = await createService(bus, {});
const Reply = versioned(1, { n: z.number().int() });
svc.addEndpoint('task.stats', { input: Req, handler: (x) => ({ v: 1 as const, n: x.n }) });
await nc.flush();
await bus.nc.flush();

for (let run = 0; run < RUNS; run++) {
  const order = run % 2 === 0 ? (['wrapper', 'raw'] as const) : (['raw', 'wrapper'] as const);
  for (const who of order) {
    let s = await freshStream();
    res.publish_awaited![who].push(await (who === 'raw' ? rawAwait : wrapAwait)(s.subject, N_AWAIT));
    await dropStream(s.name);
    s = await freshStream();
    res.publish_pipelined![who].push(await (who === 'raw' ? rawPipe : wrapPipe)(s.subject, N_PIPE));
    await dropStream(s.name);
    s = await freshStream();
    await preload(s.subject, N_CONSUME);
    res.consume_ack![who].push(await (who === 'raw' ? rawConsume : wrapConsume)(s.name, N_CONSUME));
    await dropStream(s.name);
    const lat =
      who === 'raw'
        ? await latencies(N_REQ, (i) => nc.request('rawbench.echo', JSON.stringify({ v: 1, n: i, body })))
        : await latencies(N_REQ, (i) => request(bus, 'task.stats', { v: 1, n: i, body }, Reply));
    res.req_p50![who].push(lat.p50);
    res.req_p99![who].push(lat.p99);
  }
}

const ratio = (w: number, r: number) => r3(w / r);
const out = {
  machine: { nproc: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  versions: {
    nats_server: execFileSync(bin, ['--version']).toString().trim(),
    '@nats-io/jetstream': JSON.parse(await readFile('node_modules/@nats-io/jetstream/package.json', 'utf8'))
      .version,
    '@nats-io/transport-node': JSON.parse(
      await readFile('node_modules/@nats-io/transport-node/package.json', 'utf8'),
    ).version,
    '@nats-io/services': JSON.parse(await readFile('node_modules/@nats-io/services/package.json', 'utf8'))
      .version,
    zod: JSON.parse(await readFile('node_modules/zod/package.json', 'utf8')).version,
  },
  params: {
    runs: RUNS,
    n_await: N_AWAIT,
    n_pipe: N_PIPE,
    window: WINDOW,
    n_consume: N_CONSUME,
    n_req: N_REQ,
    payload_bytes: JSON.stringify(mk(0)).length,
  },
  notes:
    'msgs/s higher is better, latency ms lower is better; ratio = wrapper/raw (throughput: >= 0.85 is within 15%; latency: <= 1.15). Raw baselines do the same wire work (JSON, zod parse on consume, msg id + header on publish).',
  publish_awaited_msgs_s: {
    wrapper: r1(median(res.publish_awaited!.wrapper)),
    raw: r1(median(res.publish_awaited!.raw)),
    ratio: ratio(median(res.publish_awaited!.wrapper), median(res.publish_awaited!.raw)),
  },
  publish_pipelined_msgs_s: {
    wrapper: r1(median(res.publish_pipelined!.wrapper)),
    raw: r1(median(res.publish_pipelined!.raw)),
    ratio: ratio(median(res.publish_pipelined!.wrapper), median(res.publish_pipelined!.raw)),
  },
  consume_ack_msgs_s: {
    wrapper: r1(median(res.consume_ack!.wrapper)),
    raw: r1(median(res.consume_ack!.raw)),
    ratio: ratio(median(res.consume_ack!.wrapper), median(res.consume_ack!.raw)),
  },
  request_reply_p50_ms: {
    wrapper: r3(median(res.req_p50!.wrapper)),
    raw: r3(median(res.req_p50!.raw)),
    ratio: ratio(median(res.req_p50!.wrapper), median(res.req_p50!.raw)),
  },
  request_reply_p99_ms: {
    wrapper: r3(median(res.req_p99!.wrapper)),
    raw: r3(median(res.req_p99!.raw)),
    ratio: ratio(median(res.req_p99!.wrapper), median(res.req_p99!.raw)),
  },
  wrapper_stats: bus.metrics.snapshot(),
};
console.log(JSON.stringify(out, null, 2));

await svc.stop();
await rawSvc.stop();
await bus.drain();
await nc.drain();
srv.kill('SIGTERM');
await new Promise((r) => srv.once('exit', r));
await rm(store, { recursive: true, force: true });
