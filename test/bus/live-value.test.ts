/**
 * openLiveValue against a real nats-server: the stored value at open, every later put and delete
 * (listeners told, in revision order), an invalid value ignored, waitFor for a writer that must
 * know a follower has its change, and changeKey's compare-and-set under racing writers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type Bus, ensureBucket, openKv } from '../../src/bus/index.js';
import { changeKey } from '../../src/bus/live-config.js';
import { openLiveValue } from '../../src/bus/live-value.js';
import { versioned } from '../../src/protocol/envelope.js';
import { eventually } from '../support/eventually.js';
import { uniqueName } from '../support/names.js';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.js';
import { testBus } from './support.js';

const Setting = versioned(1, { n: z.int() });
type Setting = z.infer<typeof Setting>;
const FALLBACK: Setting = { v: 1, n: -1 };

let server: TestNatsServer;
let bus: Bus;
beforeAll(async () => {
  server = await startNatsServer();
  bus = await testBus(server.url);
});
afterAll(async () => {
  await bus.drain();
  await server.dispose();
});

async function bucket() {
  const name = uniqueName('live');
  await ensureBucket(bus, { bucket: name, history: 5, storage: 'memory' });
  return { name, kv: await openKv(bus, name, Setting) };
}

describe('openLiveValue()', () => {
  it('starts from the stored value, then follows puts and deletes, telling listeners', async () => {
    const { name, kv } = await bucket();
    const r1 = await kv.put('s', { v: 1, n: 1 });
    const live = await openLiveValue(bus, {
      bucket: name,
      key: 's',
      schema: Setting,
      fallback: FALLBACK,
      what: 's',
    });
    try {
      expect(live.current).toEqual({ v: 1, n: 1 });
      expect(live.revision).toBe(r1);
      const seen: number[] = [];
      live.onChange((v) => seen.push(v.n));
      const r2 = await kv.put('s', { v: 1, n: 2 });
      expect(await live.waitFor(r2, 5_000)).toBe(true);
      expect(live.current.n).toBe(2);
      await kv.delete('s');
      await eventually(() => expect(live.current).toEqual(FALLBACK));
      expect(seen).toEqual([2, -1]);
      // A key other than the followed one changes nothing.
      await kv.put('other', { v: 1, n: 99 });
      const r3 = await kv.put('s', { v: 1, n: 3 });
      expect(await live.waitFor(r3, 5_000)).toBe(true);
      expect(seen).toEqual([2, -1, 3]);
    } finally {
      live.stop();
    }
  });

  it('ignores a value that fails its schema and keeps the last valid one', async () => {
    const { name, kv } = await bucket();
    const live = await openLiveValue(bus, {
      bucket: name,
      key: 's',
      schema: Setting,
      fallback: FALLBACK,
      what: 's',
    });
    try {
      expect(live.current).toEqual(FALLBACK);
      expect(live.revision).toBe(0);
      await kv.put('s', { v: 1, n: 7 });
      await eventually(() => expect(live.current.n).toBe(7));
      await bus.js.publish(`$KV.${name}.s`, JSON.stringify({ v: 1, n: 'seven' }));
      const r = await kv.put('marker', { v: 1, n: 0 });
      // The watch delivers in stream order: once a later write of the bucket is stored, the invalid
      // one has been seen (and dropped) if it ever will be.
      const after = await kv.put('s', { v: 1, n: 8 });
      expect(after).toBeGreaterThan(r);
      expect(await live.waitFor(after, 5_000)).toBe(true);
      expect(live.current.n).toBe(8);
    } finally {
      live.stop();
    }
  });

  it('waitFor resolves false after its deadline and once stopped', async () => {
    const { name } = await bucket();
    const live = await openLiveValue(bus, {
      bucket: name,
      key: 's',
      schema: Setting,
      fallback: FALLBACK,
      what: 's',
    });
    expect(await live.waitFor(1_000_000, 50)).toBe(false);
    const pending = live.waitFor(1_000_000, 60_000);
    live.stop();
    expect(await pending).toBe(false);
  });
});

describe('changeKey()', () => {
  it('applies every one of many racing read-modify-writes exactly once', async () => {
    const { kv } = await bucket();
    await Promise.all(
      Array.from({ length: 8 }, () =>
        changeKey(kv, 'count', (cur): Setting => ({ v: 1, n: (cur?.n ?? 0) + 1 })),
      ),
    );
    expect((await kv.get('count'))?.value.n).toBe(8);
    const same = await changeKey(kv, 'count', () => null);
    expect(same).toMatchObject({ changed: false, value: { v: 1, n: 8 } });
  });
});
