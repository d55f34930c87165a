/**
 * Child process: JetStream pull consumer with bounded in-flight handlers (mirror of
 * peer-bench/js-worker.mjs, on the v3 client). The handler records its start time and awaits
 * `ackAck()` (server-confirmed ack, comparable to BullMQ's completion write).
 *   argv: natsPort streamName durableName concurrency
 */
import { type ConsumerMessages, type JsMsg, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { exitWithParent, nowMs, postToParent, serveParent, type TaskPayload } from './common.js';

exitWithParent();
const [portArg, stream, durable, concArg] = process.argv.slice(2);
if (!portArg || !stream || !durable || !concArg) {
  throw new Error('usage: jetstream-worker <natsPort> <stream> <durable> <concurrency>');
}
const concurrency = Number(concArg);
const nc = await connect({ servers: `127.0.0.1:${portArg}`, timeout: 5000 });
const js = jetstream(nc);
const consumer = await js.consumers.get(stream, durable);
const dec = new TextDecoder();

let expect = Number.POSITIVE_INFINITY;
let completed = 0;
let doneSent = false;
let inFlight = 0;
let slotFreed: (() => void) | null = null;
let messages: ConsumerMessages | undefined;
const starts: number[] = []; // [tAdd, tStart, …] for latency runs

function maybeDone(): void {
  if (!doneSent && completed >= expect) {
    doneSent = true;
    postToParent({ type: 'done', t: nowMs() });
  }
}

async function handle(m: JsMsg): Promise<void> {
  const t = nowMs();
  const data = JSON.parse(dec.decode(m.data)) as TaskPayload;
  if (data.tAdd) starts.push(data.tAdd, t);
  await m.ackAck(); // wait until the server has recorded the ack
  completed++;
  maybeDone();
}

async function run(): Promise<void> {
  messages = await consumer.consume({ max_messages: Math.max(concurrency, 10) });
  for await (const m of messages) {
    while (inFlight >= concurrency) {
      await new Promise<void>((r) => {
        slotFreed = r;
      });
    }
    inFlight++;
    handle(m)
      .catch((err: unknown) => console.error('jetstream-worker: handler failed:', err))
      .finally(() => {
        inFlight--;
        const r = slotFreed;
        slotFreed = null;
        r?.();
      });
  }
}

serveParent({
  label: 'jetstream-worker',
  expect(n) {
    expect = n;
    maybeDone();
  },
  run,
  samples: () => starts,
  async close() {
    await messages?.close();
    await nc.drain();
  },
});
