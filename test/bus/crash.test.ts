import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import {
  type Bus,
  type ConsumerRunner,
  ensureConsumer,
  outcome,
  publish,
  runConsumer,
} from '../../src/bus/index.js';
import { eventually } from '../support/eventually.js';
import { useNatsServer } from '../support/nats-server.js';
import { ensureSubmitStream, Job, testBus, within } from './support.js';

const server = useNatsServer();

function spawnConsumer(bus: Bus, onEvent: (e: { ev: string; n?: number }) => void): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/bus/fixtures/consumer-proc.ts'], {
    env: { ...process.env, NATS_URL: server.url, PREFIX: bus.names.prefix, ACK_WAIT_MS: '1000' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      onEvent(JSON.parse(line));
    } catch {
      // not one of ours
    }
  });
  return child;
}

describe('a consumer process killed with SIGKILL mid-batch', () => {
  it('loses nothing: its unacked messages are redelivered to the next consumer', async () => {
    const bus = await testBus(server.url);
    const n = bus.names;
    const spec = { stream: n.streams.submit, durable: 'hub-intake', ackWaitMs: 1_000, maxDeliver: -1 };
    await ensureSubmitStream(bus);
    await ensureConsumer(bus, spec);
    const total = 40;
    for (let i = 0; i < total; i++) await publish(bus, n.subjects.taskSubmit, Job, { v: 1, n: i });

    const childRecv = new Set<number>();
    const childAcked = new Set<number>();
    let ready = false;
    const child = spawnConsumer(bus, (e) => {
      if (e.ev === 'ready') ready = true;
      if (e.ev === 'recv') childRecv.add(e.n!);
      if (e.ev === 'ack') childAcked.add(e.n!);
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let next: ConsumerRunner | undefined;
    try {
      // Mid-batch: it has received everything, acked the even half, and holds the odd half.
      await eventually(
        () => expect(ready && childRecv.size === total && childAcked.size === total / 2).toBe(true),
        {
          timeout: 20_000,
        },
      );
      child.kill('SIGKILL');
      await within(exited, 5_000, 'child exit');
      expect((await bus.jsm.streams.info(n.streams.submit)).state.messages).toBe(total / 2);

      const got = new Set<number>();
      next = await runConsumer(bus, {
        spec,
        schema: Job,
        handler: (job) => {
          got.add(job.n);
          return outcome.ack();
        },
      });
      await eventually(
        async () => expect((await bus.jsm.streams.info(n.streams.submit)).state.messages).toBe(0),
        {
          timeout: 15_000,
        },
      );
      const odd = [...Array(total).keys()].filter((i) => i % 2 === 1);
      expect([...got].sort((a, b) => a - b)).toEqual(odd);
      for (const i of childAcked) expect(got.has(i)).toBe(false);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await next?.stop();
      await bus.drain();
    }
  });
});
