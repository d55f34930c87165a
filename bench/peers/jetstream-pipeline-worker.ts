/**
 * Child process: the c workers of the pipeline peer (see jetstream-pipeline.ts). Worker k has its own
 * connection and its own durable pull consumer on the INBOX stream, filtered to `<id>.inbox.w<k>`;
 * it handles one assignment at a time: record the start time (latency: `tAdd` of the submission),
 * publish the `completed` report to REPORTS (PubAck awaited), then ack the inbox message (plain
 * `ack()` as in the hub's consumer runner; close drains).
 *   argv: natsPort namesJson concurrency
 */
import { type ConsumerMessages, type JsMsg, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { exitWithParent, nowMs, serveParent } from './common.js';
import type { Assignment, PipelineNames, Report } from './jetstream-pipeline.js';

exitWithParent();
const [portArg, namesArg, concArg] = process.argv.slice(2);
if (!portArg || !namesArg || !concArg) {
  throw new Error('usage: jetstream-pipeline-worker <natsPort> <namesJson> <workers>');
}
const names = JSON.parse(namesArg) as PipelineNames;
const count = Number(concArg);
const enc = new TextEncoder();
const dec = new TextDecoder();
const starts: number[] = []; // [tAdd, tStart, …] for latency runs

interface Worker {
  k: number;
  nc: NatsConnection;
  run(): Promise<void>;
  messages?: ConsumerMessages;
}

async function openWorker(k: number): Promise<Worker> {
  const nc = await connect({ servers: `127.0.0.1:${portArg}`, timeout: 5000 });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(names.inboxStream, `${names.inboxDurablePrefix}${k}`);
  const handle = async (m: JsMsg) => {
    const t = nowMs();
    const a = JSON.parse(dec.decode(m.data)) as Assignment;
    if (a.task.tAdd) starts.push(a.task.tAdd, t);
    const r: Report = { taskId: a.taskId, worker: k, status: 'completed' };
    await js.publish(names.reportSubject, enc.encode(JSON.stringify(r)), { msgID: `${a.taskId}.c1` });
    m.ack();
  };
  const w: Worker = {
    k,
    nc,
    async run() {
      const messages = await consumer.consume({ max_messages: 64, expires: 10_000 });
      w.messages = messages;
      for await (const m of messages) {
        try {
          await handle(m); // one slot: the next assignment waits for this one
        } catch (err) {
          console.error(`jetstream-pipeline-worker w${k}: handler failed:`, err);
        }
      }
    },
  };
  return w;
}

const pool = await Promise.all(Array.from({ length: count }, (_, k) => openWorker(k)));

serveParent({
  label: 'jetstream-pipeline-worker',
  async run() {
    await Promise.all(pool.map((w) => w.run()));
  },
  samples: () => starts,
  async close() {
    await Promise.all(
      pool.map(async (w) => {
        await w.messages?.close();
        await w.nc.drain();
      }),
    );
  },
});
