/**
 * A leader whose renewals fail until its lease has run out (its nats-server stopped with SIGSTOP,
 * as a long GC or a starved process looks from the server's side): it stops writing at once, but
 * keeps its work tree, and when the next renewal finds the lease as it left it, the tree goes on
 * in place, started once. A lease another hub holds stops the tree at once. And a leader stopped
 * while a renewal is in flight starts no work tree when that renewal is answered (a hub shutting
 * down started its work again, then released the lease under it). Last, a standby beside a holder
 * whose probes go unanswered (dead, its connection not yet closed on the server) keeps out until
 * the server says the holder is gone.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEASE_KEY, LeaderProcess, LeaseClock } from '../../../actors/leader/index.js';
import type { Bus } from '../../../src/bus/connection.js';
import { openKv } from '../../../src/bus/kv.js';
import { defaultTopology, provision } from '../../../src/bus/provision.js';
import { LeaseSchema } from '../../../src/protocol/registration.js';
import {
  dynamicSupervisorChild,
  exit,
  type Pid,
  Registry,
  serverChild,
  startSupervisor,
} from '../../../src/runtime/index.js';
import { testBus } from '../../bus/support.js';
import { eventually } from '../../support/eventually.js';
import { startNatsServer, type TestNatsServer } from '../../support/nats-server.js';

/**
 * A leader under a one_for_all supervisor beside its work slot; the work tree counts its starts
 * and stops, and the leader's log lines are kept.
 */
async function startLeader(bus: Bus, leaseTtlMs: number, clock?: LeaseClock) {
  const lines: { msg?: string; held?: boolean; why?: string }[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  const counts = { starts: 0, stops: 0 };
  const registry = new Registry();
  const sup = await startSupervisor(
    [
      dynamicSupervisorChild('work-slot', { maxChildren: 1 }, { name: 'work-slot' }),
      serverChild(
        'leader',
        LeaderProcess.start,
        {
          bus,
          registry,
          log,
          hubId: 'hub-a',
          leaseTtlMs,
          probeMs: 100,
          workSlot: 'work-slot',
          clock,
          work: serverChild(
            'work',
            () => {
              counts.starts++;
              return {
                handle() {},
                terminate() {
                  counts.stops++;
                },
              };
            },
            undefined,
          ),
        },
        { name: 'leader' },
      ),
    ],
    { strategy: 'one_for_all' },
    { registry },
  );
  if (!sup.ok) throw new Error('supervisor did not start');
  return { sup: sup.value, lines, counts };
}

describe('leader with a lapsed lease', () => {
  let nats: TestNatsServer;
  let bus: Bus;
  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await testBus(nats.url);
    await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
  });
  afterAll(async () => {
    if (nats.pid) process.kill(nats.pid, 'SIGCONT');
    await bus.drain();
    await nats.dispose();
  });

  it('keeps its work tree through a lapse nobody used, and stops it when another hub holds the lease', {
    timeout: 30_000,
  }, async () => {
    const clock = new LeaseClock();
    const { sup, lines, counts } = await startLeader(bus, 1_500, clock);
    const pid: Pid = sup;
    try {
      await eventually(() => expect(counts.starts).toBe(1));
      expect(clock.holds()).toBe(true);

      // The server stops answering until the leader has seen its lease run out.
      process.kill(nats.pid!, 'SIGSTOP');
      await eventually(
        () => expect(lines.some((l) => l.msg === 'lease refresh failed' && l.held === false)).toBe(true),
        { timeout: 15_000 },
      );
      expect(clock.holds()).toBe(false); // writing stopped
      process.kill(nats.pid!, 'SIGCONT');
      await eventually(() => expect(clock.holds()).toBe(true), { timeout: 15_000 });
      expect(counts).toEqual({ starts: 1, stops: 0 }); // resumed in place

      // Another hub's live lease: the tree stops at once.
      const kv = await openKv(bus, bus.names.buckets.leases, LeaseSchema);
      await kv.put(LEASE_KEY, { v: 1, holder: 'hub-b', expiresAt: Date.now() + 60_000 });
      await eventually(() => expect(counts.stops).toBe(1));
      expect(clock.holds()).toBe(false);
      expect(lines.some((l) => l.why === 'lease lost')).toBe(true);
      // And the renewal that found it says so, with who holds it now.
      expect(lines).toContainEqual(
        expect.objectContaining({ msg: 'lease renewal did not keep the lease', holder: 'hub-b' }),
      );
    } finally {
      exit(pid, 'shutdown');
    }
  });

  it('a hub stopping while a renewal is in flight starts no work tree when the answer comes', {
    timeout: 30_000,
  }, async () => {
    const own = await testBus(nats.url);
    await provision(own, defaultTopology(own.names, { storage: 'memory' }));
    const { sup, lines, counts } = await startLeader(own, 6_000);
    try {
      await eventually(() => expect(counts.starts).toBe(1));
      // Only the lease renewals leave on this connection. After one has been answered the server
      // is stopped; the next renewal is then in flight, and it is the first request the server
      // answers once it runs again (an earlier failed one would land first and change the revision).
      const stats = () => own.nc.stats();
      const before = stats();
      await eventually(() => {
        expect(stats().outMsgs).toBeGreaterThan(before.outMsgs);
        expect(stats().inMsgs).toBeGreaterThan(before.inMsgs);
      });
      process.kill(nats.pid!, 'SIGSTOP');
      const stopped = stats().outMsgs;
      await eventually(() => expect(stats().outMsgs).toBeGreaterThan(stopped), { timeout: 5_000 });
      exit(sup, 'shutdown');
      await eventually(() => expect(counts.stops).toBe(1));
      process.kill(nats.pid!, 'SIGCONT');
      await sup.exited;
      expect(counts.starts).toBe(1);
      expect(lines.filter((l) => l.msg === 'took the scheduler lease; work started')).toHaveLength(1);
    } finally {
      process.kill(nats.pid!, 'SIGCONT');
      exit(sup, 'shutdown');
      await own.drain();
    }
  });

  it('keeps the lease of a holder whose probes go unanswered, takes it once the server says the holder is gone, and logs both times', {
    timeout: 30_000,
  }, async () => {
    // hub-x holds a long lease; its liveness subscription exists but never answers: what a dead
    // holder looks like while the server still routes to its connection.
    const own = await testBus(nats.url);
    await provision(own, defaultTopology(own.names, { storage: 'memory' }));
    const kv = await openKv(own, own.names.buckets.leases, LeaseSchema);
    await kv.put(LEASE_KEY, { v: 1, holder: 'hub-x', expiresAt: Date.now() + 60_000 });
    let probes = 0;
    const silent = own.nc.subscribe(own.names.subjects.hubAlive('hub-x'), {
      callback: () => {
        probes++;
      },
    });
    await own.nc.flush();
    const { sup, lines, counts } = await startLeader(own, 60_000);
    try {
      // Several probes go unanswered (two per step); a silent holder keeps its lease.
      await eventually(() => expect(probes).toBeGreaterThanOrEqual(6), { timeout: 10_000 });
      expect(counts.starts).toBe(0);
      silent.unsubscribe(); // its connection closed, as the server sees it
      await eventually(() => expect(counts.starts).toBe(1), { timeout: 10_000 });
      const took = lines.find((l) => l.msg === 'took the lease from a hub whose connection is gone') as
        | { gone_ms?: number; unanswered_ms?: number }
        | undefined;
      expect(took?.gone_ms).toBeGreaterThanOrEqual(500); // confirmed twice, CONFIRM_GONE_MS apart
      expect(took?.unanswered_ms).toBeGreaterThan(took?.gone_ms ?? Number.POSITIVE_INFINITY);
    } finally {
      exit(sup, 'shutdown');
      await sup.exited;
      await own.drain();
    }
  });
});
