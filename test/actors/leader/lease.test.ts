import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseKeeper } from '../../../actors/leader/lease.js';
import { type Bus, connectBus } from '../../../src/bus/connection.js';
import { openKv } from '../../../src/bus/kv.js';
import { ensureBucket } from '../../../src/bus/provision.js';
import { LeaseSchema } from '../../../src/protocol/registration.js';
import { uniqueName } from '../../support/names.js';
import { useNatsServer } from '../../support/nats-server.js';

describe('LeaseKeeper', () => {
  const nats = useNatsServer();
  let bus: Bus;
  beforeAll(async () => {
    bus = await connectBus({ servers: nats.url, logger: pino({ level: 'silent' }) });
  });
  afterAll(() => bus.drain());

  /** A fresh lease bucket of its own. */
  async function leaseBucket() {
    const bucket = uniqueName('leases');
    await ensureBucket(bus, { bucket, history: 1 });
    return openKv(bus, bucket, LeaseSchema);
  }

  it('gives the lease to one holder at a time, and to another only after it expires or is released', async () => {
    const kv = await leaseBucket();
    let now = 1_000_000;
    const clock = () => now;
    const a = new LeaseKeeper(kv, 'hub-a', 5_000, clock);
    const b = new LeaseKeeper(kv, 'hub-b', 5_000, clock);
    const [ra, rb] = await Promise.all([a.refresh(), b.refresh()]);
    expect([ra, rb].filter(Boolean)).toHaveLength(1); // concurrent first claims: exactly one wins
    const [holder, other] = ra ? [a, b] : [b, a];
    now += 4_000;
    expect(await other.refresh()).toBe(false); // not expired yet
    expect(await holder.refresh()).toBe(true); // renewed until now + 5 s
    now += 4_000;
    expect(await other.refresh()).toBe(false);
    now += 2_000; // past the renewed expiry
    expect(await other.refresh()).toBe(true);
    expect(await holder.refresh()).toBe(false);
    await other.release();
    expect(await holder.refresh()).toBe(true); // released: taken at once
  });

  it('renews in one compare-and-set; a renewal that landed unseen (its answer lost) is read back as the same term; a gap starts a new one', async () => {
    const kv = await leaseBucket();
    let now = 1_000_000;
    const a = new LeaseKeeper(kv, 'hub-a', 5_000, () => now);
    expect(await a.refresh()).toBe(true);
    const before = (await kv.get('scheduler'))!.revision;
    now += 1_000;
    expect(await a.refresh()).toBe(true);
    expect((await kv.get('scheduler'))!.revision).toBe(before + 1); // one write, no read needed
    // Its own write landed but the answer never came: the revision it knows is stale.
    await kv.put('scheduler', { v: 1, holder: 'hub-a', expiresAt: now + 5_000 });
    now += 1_000;
    expect(await a.refresh()).toBe(true);
    expect(a.expiresAt).toBe(now + 5_000);
    expect(a.renewedInPlace).toBe(true); // its own term goes on
    // Another hub's record (it took an expired lease): the compare-and-set fails, the read says so.
    await kv.put('scheduler', { v: 1, holder: 'hub-b', expiresAt: now + 5_000 });
    expect(await a.refresh()).toBe(false);
    expect(a.heldByOther?.holder).toBe('hub-b');
    // hub-b gives it up; hub-a holds it again, in a new term.
    await kv.delete('scheduler');
    expect(await a.refresh()).toBe(true);
    expect(a.renewedInPlace).toBe(false);
    now += 1_000;
    expect(await a.refresh()).toBe(true);
    expect(a.renewedInPlace).toBe(true);
  });

  it('is due for renewal a third of a lifetime after the request that renewed it, however late the answer came', async () => {
    const kv = await leaseBucket();
    let now = 1_000_000;
    const a = new LeaseKeeper(kv, 'hub-a', 6_000, () => now);
    expect(a.renewDueAt).toBe(0); // not held: due at once
    const requested = now;
    const renewal = a.refresh();
    now += 1_500; // the answer comes 1.5 s after the request (a loaded server, a retry)
    expect(await renewal).toBe(true);
    expect(a.expiresAt).toBe(requested + 6_000);
    // Due 2 s after the request: counted from the answer, it would be 3.5 s, leaving 2.5 s of the
    // lease for a renewal that may itself be slow.
    expect(a.renewDueAt).toBe(requested + 2_000);
    await kv.put('scheduler', { v: 1, holder: 'hub-b', expiresAt: now + 6_000 });
    expect(await a.refresh()).toBe(false);
    expect(a.renewDueAt).toBe(0); // another hub's: look again at every step
  });

  it('a renewal answered only after the lifetime it wrote has run out is a lapse, renewed in place next', async () => {
    // The answer read after a stall of the hub longer than the lease: the record is this hub's,
    // but the lease it wrote is over by this hub's clock, so it must not lead on it.
    const kv = await leaseBucket();
    let now = 1_000_000;
    const a = new LeaseKeeper(kv, 'hub-a', 3_000, () => now);
    expect(await a.refresh()).toBe(true);
    const renewal = a.refresh();
    now += 3_000; // answered 3 s after the request: the whole lifetime
    expect(await renewal).toBe(false);
    expect(a.isHeld).toBe(true); // the record is still this hub's: a lapse, not a loss
    expect(a.heldByOther).toBeUndefined();
    expect(await a.refresh()).toBe(true); // answered at once
    expect(a.renewedInPlace).toBe(true);
    expect(a.expiresAt).toBe(now + 3_000);
  });
});
