/**
 * readStream's bounds (src/bus/stream-since.ts): a range read ends complete at its last sequence,
 * and not complete when its count or its byte bound stops it first; what it reads is in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bus, ensureStream } from '../../src/bus/index.js';
import { readStream } from '../../src/bus/stream-since.js';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.js';
import { testBus } from './support.js';

let server: TestNatsServer;
let bus: Bus;
const stream = () => `${bus.names.prefix.toUpperCase()}_SINCE`;
const subject = () => `${bus.names.prefix}.since.x`;

beforeAll(async () => {
  server = await startNatsServer();
  bus = await testBus(server.url);
  await ensureStream(bus, { name: stream(), subjects: [subject()], retention: 'limits' });
  // Ten messages of 100 bytes: sequences 1-10.
  for (let i = 0; i < 10; i++) await bus.js.publish(subject(), new Uint8Array(100).fill(i));
});
afterAll(async () => {
  await bus.drain();
  await server.dispose();
});

const read = (o: { fromSeq: number; untilSeq: number; max?: number; maxBytes?: number }) => {
  const seqs: number[] = [];
  return readStream(bus, stream(), { filter: subject(), max: 1_000, timeoutMs: 10_000, ...o }, (e) =>
    seqs.push(e.seq),
  ).then((r) => ({ ...r, seqs }));
};

describe('readStream', () => {
  it('reads a range in order and says it is complete', async () => {
    expect(await read({ fromSeq: 3, untilSeq: 7 })).toEqual({
      read: 5,
      complete: true,
      seqs: [3, 4, 5, 6, 7],
    });
    expect(await read({ fromSeq: 8, untilSeq: 7 })).toEqual({ read: 0, complete: true, seqs: [] });
  });

  it('stops at its count or byte bound, not complete', async () => {
    expect(await read({ fromSeq: 1, untilSeq: 10, max: 4 })).toEqual({
      read: 4,
      complete: false,
      seqs: [1, 2, 3, 4],
    });
    // 350 bytes: the fourth 100-byte message reaches the bound.
    expect(await read({ fromSeq: 1, untilSeq: 10, maxBytes: 350 })).toEqual({
      read: 4,
      complete: false,
      seqs: [1, 2, 3, 4],
    });
    expect(await read({ fromSeq: 1, untilSeq: 10, maxBytes: 10_000 })).toMatchObject({
      read: 10,
      complete: true,
    });
  });
});
