import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { type Bus, ensureBucket, openKv, type TypedKv } from '../../src/bus/index.js';
import { quietFor } from '../../src/bus/kv.js';
import { listenForEchoes, takeEcho } from '../../src/bus/kv-echo.js';
import { utf8, versioned } from '../../src/protocol/envelope.js';
import { DeadlineError } from '../../src/runtime/deadline.js';
import { eventually } from '../support/eventually.js';
import { uniqueName } from '../support/names.js';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.js';
import { peerBus, testBus } from './support.js';

const Rec = versioned(1, { owner: z.string(), count: z.number().int() });
type Rec = z.infer<typeof Rec>;

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

async function bucket(history = 3): Promise<TypedKv<Rec>> {
  const name = uniqueName('kv');
  await ensureBucket(bus, { bucket: name, history, storage: 'memory' });
  return openKv(bus, name, Rec);
}

/** A process's state letter from /proc (`T` once a SIGSTOP has stopped it). */
function processState(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] ?? '?';
}

/** A fresh bucket holding keys k0..k<n-1>, each value with an owner `ownerBytes` long. */
async function filledBucket(n: number, ownerBytes: number): Promise<string> {
  const name = uniqueName('kv');
  await ensureBucket(bus, { bucket: name, history: 1, storage: 'memory' });
  const plain = await openKv(bus, name, Rec);
  const owner = 'o'.repeat(ownerBytes);
  for (let i = 0; i < n; i += 500)
    await Promise.all(
      Array.from({ length: Math.min(500, n - i) }, (_, j) =>
        plain.put(`k${i + j}`, { v: 1, owner, count: i + j }),
      ),
    );
  return name;
}

describe('openKv()', () => {
  it('get returns null for a missing, deleted or purged key, and value+revision otherwise', async () => {
    const kv = await bucket();
    expect(await kv.get('k')).toBeNull();
    const c = await kv.create('k', { v: 1, owner: 'a', count: 0 });
    expect(c.ok).toBe(true);
    expect(await kv.get('k')).toEqual({
      value: { v: 1, owner: 'a', count: 0 },
      revision: c.ok ? c.revision : -1,
    });
    expect(await kv.delete('k')).toEqual({ ok: true });
    expect(await kv.get('k')).toBeNull();
  });

  it('create is an atomic claim: a second create of a live key says exists; after delete it works again', async () => {
    const kv = await bucket();
    expect((await kv.create('job', { v: 1, owner: 'a', count: 0 })).ok).toBe(true);
    expect(await kv.create('job', { v: 1, owner: 'b', count: 0 })).toEqual({ ok: false, reason: 'exists' });
    await kv.delete('job');
    expect((await kv.create('job', { v: 1, owner: 'b', count: 0 })).ok).toBe(true);
    expect((await kv.get('job'))?.value.owner).toBe('b');
  });

  it('update is compare-and-set on the revision with a typed conflict', async () => {
    const kv = await bucket();
    const c = await kv.create('k', { v: 1, owner: 'a', count: 0 });
    if (!c.ok) throw new Error('create failed');
    const u1 = await kv.update('k', { v: 1, owner: 'a', count: 1 }, c.revision);
    expect(u1.ok).toBe(true);
    expect(await kv.update('k', { v: 1, owner: 'a', count: 99 }, c.revision)).toEqual({
      ok: false,
      reason: 'conflict',
    });
    expect((await kv.get('k'))?.value.count).toBe(1);
    const stale = await kv.delete('k', { expectedRevision: c.revision });
    expect(stale).toEqual({ ok: false, reason: 'conflict' });
  });

  it('lets exactly one of many concurrent writers (separate connections) win a CAS and a claim', async () => {
    const kv = await bucket();
    const c = await kv.create('shared', { v: 1, owner: 'none', count: 0 });
    if (!c.ok) throw new Error('create failed');
    const peers = await Promise.all(Array.from({ length: 8 }, () => peerBus(server.url, bus)));
    try {
      const kvs = await Promise.all(peers.map((p) => openKv(p, kv.bucket, Rec)));
      const updates = await Promise.all(
        kvs.map((k, i) => k.update('shared', { v: 1, owner: `w${i}`, count: 1 }, c.revision)),
      );
      expect(updates.filter((u) => u.ok)).toHaveLength(1);
      expect(updates.filter((u) => !u.ok).every((u) => !u.ok && u.reason === 'conflict')).toBe(true);
      const winner = updates.findIndex((u) => u.ok);
      expect((await kv.get('shared'))?.value.owner).toBe(`w${winner}`);

      const claims = await Promise.all(
        kvs.map((k, i) => k.create('claim', { v: 1, owner: `w${i}`, count: 0 })),
      );
      expect(claims.filter((x) => x.ok)).toHaveLength(1);
    } finally {
      await Promise.all(peers.map((p) => p.drain()));
    }
  });

  it("keeps a trusted write for its process's tail only until it is refused (kv-echo)", async () => {
    const name = uniqueName('kv');
    await ensureBucket(bus, { bucket: name, history: 3, storage: 'memory' });
    const trusted = await openKv(bus, name, Rec, { validateWrites: false });
    const unlisten = listenForEchoes(name);
    try {
      const first: Rec = { v: 1, owner: 'a', count: 1 };
      const r = await trusted.create('k', first);
      expect(r.ok).toBe(true);
      expect(takeEcho(name, 'k', utf8(JSON.stringify(first)))).toBe(first);
      // Refused: a create of a live key, an update of a stale revision. Nothing is kept for them.
      const again: Rec = { v: 1, owner: 'b', count: 2 };
      expect(await trusted.create('k', again)).toEqual({ ok: false, reason: 'exists' });
      expect(takeEcho(name, 'k', utf8(JSON.stringify(again)))).toBeUndefined();
      const stale: Rec = { v: 1, owner: 'c', count: 3 };
      expect(await trusted.update('k', stale, 999)).toEqual({ ok: false, reason: 'conflict' });
      expect(takeEcho(name, 'k', utf8(JSON.stringify(stale)))).toBeUndefined();
      // A validated write stores what its schema made of the value: never kept.
      const plain = await openKv(bus, name, Rec);
      const validated: Rec = { v: 1, owner: 'd', count: 4 };
      await plain.put('k', validated);
      expect(takeEcho(name, 'k', utf8(JSON.stringify(validated)))).toBeUndefined();
    } finally {
      unlisten();
    }
  });

  it('validates values on write and reports invalid stored values', async () => {
    const kv = await bucket();
    await expect(kv.put('k', { v: 1, owner: 'a', count: 0.5 })).rejects.toMatchObject({
      code: 'invalid_payload',
    });
    const raw = await openKv(bus, kv.bucket, z.unknown());
    await raw.put('bad', { v: 9 });
    await expect(kv.get('bad')).rejects.toMatchObject({ code: 'unsupported_version' });
  });

  it('entries() reads every current value in one pass: none for an empty bucket, none of the deleted or removed', async () => {
    const kv = await bucket();
    expect((await kv.entries()).size).toBe(0);
    const a = await kv.create('a', { v: 1, owner: 'a', count: 0 });
    await kv.update('a', { v: 1, owner: 'a', count: 1 }, a.ok ? a.revision : -1);
    await kv.put('b', { v: 1, owner: 'b', count: 0 });
    await kv.put('c', { v: 1, owner: 'c', count: 0 });
    await kv.delete('b');
    const c = await kv.get('c');
    expect(await kv.remove('c', c!.revision + 1)).toEqual({ ok: false, reason: 'conflict' });
    expect(await kv.remove('c', c!.revision)).toEqual({ ok: true });
    const all = await kv.entries();
    expect([...all.keys()]).toEqual(['a']);
    expect(all.get('a')?.value.count).toBe(1);
    expect(all.get('a')?.revision).toBe((await kv.get('a'))?.revision);
    // An invalid stored value is reported, never returned.
    await bus.js.publish(`$KV.${kv.bucket}.bad`, new TextEncoder().encode('{"v":1}'));
    await expect(kv.entries()).rejects.toMatchObject({ code: 'invalid_payload' });
  });

  it('entries(filter) reads only the keys the filter matches (a bucket holding several shapes)', async () => {
    const kv = await bucket();
    expect((await kv.entries('*.fsm')).size).toBe(0);
    const raw = await openKv(bus, kv.bucket, z.unknown());
    await raw.put('a1', { other: 'shape' });
    // Values elsewhere in the bucket, none matching: an empty map, without a watch over nothing
    // that idles out and warns that the bucket announced entries it never delivered.
    const warn = vi.spyOn(bus.log, 'warn');
    expect((await kv.entries('*.fsm')).size).toBe(0);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    await kv.put('a1.fsm', { v: 1, owner: 'a1', count: 1 });
    await kv.put('a2.fsm', { v: 1, owner: 'a2', count: 2 });
    await raw.put('a2', { other: 'shape' });
    const fsms = await kv.entries('*.fsm');
    expect([...fsms.keys()].sort()).toEqual(['a1.fsm', 'a2.fsm']);
    expect(fsms.get('a2.fsm')?.value.count).toBe(2);
    // Without the filter the other shape is read too, and refused.
    await expect(kv.entries()).rejects.toMatchObject({ code: 'invalid_payload' });
  });

  it('entries() does not take a stall of its own process for a silent bucket: the read is whole', async () => {
    // A loaded hub's event loop held past the idle limit while the read waits for the next
    // message: the limit must not count that time, or the TaskQueue loads part of its tasks.
    const n = 5_000;
    const name = await filledBucket(n, 200);
    let stalls = 0;
    const stallOnce = Rec.refine(() => {
      // Scheduled from the first value read, so it runs while the read awaits the next ones when
      // they come in more than one socket read (whether they do is up to the machine's load:
      // quietFor's own test below is the deterministic one).
      if (stalls++ === 0)
        setImmediate(() => {
          const end = Date.now() + 1_000;
          while (Date.now() < end);
        });
      return true;
    });
    const kv = await openKv(bus, name, stallOnce, { entriesIdleMs: 300 });
    const warn = vi.spyOn(bus.log, 'warn');
    const all = await kv.entries();
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    expect(all.size).toBe(n);
    expect(all.get(`k${n - 1}`)?.value.count).toBe(n - 1);
  });

  it('entries() reads the bucket again when the server goes silent mid-read, and gets every key', async () => {
    // What a connection that drops and comes back does to a read in progress (its ordered
    // consumer resumes only after missed heartbeats): nothing arrives past the idle limit. A
    // TaskQueue that took the short read as all its tasks led with a third of them.
    const n = 5_000;
    const name = await filledBucket(n, 2_000);
    const pid = server.pid;
    if (pid === undefined) throw new Error('no server pid');
    let decoded = 0;
    let resumed: Promise<void> | undefined;
    // The server stopped for 1 s from the first value decoded: far past the 300 ms idle limit.
    const pauseServerOnce = Rec.refine(() => {
      if (decoded++ === 0) {
        process.kill(pid, 'SIGSTOP');
        resumed = new Promise((r) =>
          setTimeout(() => {
            process.kill(pid, 'SIGCONT');
            r();
          }, 1_000),
        );
      }
      return true;
    });
    const kv = await openKv(bus, name, pauseServerOnce, { entriesIdleMs: 300 });
    const warn = vi.spyOn(bus.log, 'warn');
    try {
      const all = await kv.entries();
      expect(all.size).toBe(n);
      expect(all.get(`k${n - 1}`)?.value.count).toBe(n - 1);
      // Never the short read's warning.
      expect(warn.mock.calls.map((c) => c.at(-1))).not.toContain(
        'bucket announced more entries than it delivered; reading on with what arrived',
      );
    } finally {
      warn.mockRestore();
      await resumed;
    }
  });

  it('apiTimeoutMs: an answer that came while the event loop was held is not a timeout; no answer is one', async () => {
    // The lease's renewals: a request on the wire, then the loop held past the timeout (a long
    // GC, a new leader's start-up pass). The client's own timer fired first, before the socket
    // was read, and a renewal answered in a millisecond failed (docs/scaling.md).
    const name = uniqueName('kv');
    await ensureBucket(bus, { bucket: name, history: 1, storage: 'memory' });
    const kv = await openKv(bus, name, Rec, { apiTimeoutMs: 200 });
    const first = await kv.create('k', { v: 1, owner: 'a', count: 0 });
    if (!first.ok) throw new Error('create failed');
    let revision = first.revision;
    for (let i = 1; i <= 3; i++) {
      const update = kv.update('k', { v: 1, owner: 'a', count: i }, revision);
      // Two turns on: the write has left in the first (nats-patches flushes from setImmediate).
      await new Promise<void>((resolve) =>
        setImmediate(() =>
          setImmediate(() => {
            const end = Date.now() + 500;
            while (Date.now() < end); // held for 500 ms, more than twice the timeout
            resolve();
          }),
        ),
      );
      const r = await update;
      expect(r.ok).toBe(true);
      if (r.ok) revision = r.revision;
    }
    expect((await kv.get('k'))?.value.count).toBe(3);

    // A server that does not answer at all: the deadline's error, not the client's own timeout
    // (five times longer, it only ends a request given up on).
    const pid = server.pid;
    if (pid === undefined) throw new Error('no server pid');
    process.kill(pid, 'SIGSTOP');
    try {
      // Stopped for certain before the request goes (under load the stop lands a little later).
      await eventually(() => expect(processState(pid)).toBe('T'));
      await expect(kv.update('k', { v: 1, owner: 'a', count: 4 }, revision)).rejects.toBeInstanceOf(
        DeadlineError,
      );
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  it('quietFor, the idle limit of entries(), counts a stall of the event loop as one tick, not as waiting', async () => {
    const quiet = quietFor(300);
    let idle = false;
    void quiet.idle().then(() => {
      idle = true;
    });
    const end = Date.now() + 1_000;
    while (Date.now() < end); // the loop held for 1 s, more than the limit
    // One turn of the timer phase: a timer of 300 ms set before the stall would fire in it.
    await new Promise((r) => setTimeout(r, 0));
    expect(idle).toBe(false);
    // Waiting (no stall) does reach the limit.
    await quiet.idle();
    quiet.stop();
  });

  it('watch yields the current values, then live puts and deletes', async () => {
    const kv = await bucket();
    await kv.put('a', { v: 1, owner: 'x', count: 1 });
    const w = await kv.watch();
    const seen: string[] = [];
    const done = (async () => {
      for await (const e of w) {
        seen.push(`${e.operation}:${e.key}:${e.value?.count ?? '-'}`);
        if (seen.length === 3) break;
      }
    })();
    await kv.put('b', { v: 1, owner: 'y', count: 2 });
    await kv.delete('a');
    await done;
    w.stop();
    expect(seen).toEqual(['put:a:1', 'put:b:2', 'delete:a:-']);
  });
});
