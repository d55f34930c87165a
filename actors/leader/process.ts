/**
 * @module leader/process
 * The Leader actor: leader election for a deployment with several hubs. While this hub holds the
 * KV lease (lease.ts) its work tree (TaskQueue, Agents, Scheduler, API, DLQ forwarder, status) runs
 * as the only child of the `work-slot` dynamic supervisor; on every other hub it does not run at
 * all. So exactly one hub consumes submissions and reports and writes task records in the normal
 * case; compare-and-set on every record still protects the short overlap when a leader loses the
 * lease mid-write.
 *
 * Timing. The leader renews every third of `leaseTtlMs`. A standby checks every `probeMs`: it takes
 * the lease once it has expired, and at once when the holder's NATS connection is gone: every hub
 * answers on `<p>.hub.<hubId>.alive` while connected, and a request there that gets "no responders"
 * (the server has no subscription of the holder's, because its connection closed: a killed or
 * crashed process), and again half a second later with the lease not renewed meanwhile (a holder
 * that only reconnected to another server is back by then), lets the standby take the lease with
 * compare-and-set on the revision it saw. A
 * holder that is alive but slow (a timeout) keeps its lease until it expires, so load never moves
 * the lease. A leader that cannot renew before its lease runs out (NATS unreachable, process
 * starved) stops writing at once (the LeaseClock), and keeps its work tree for three lifetimes:
 * if its next renewal finds the lease as it left it (nobody wrote it meanwhile) the tree resumes
 * in place; if another hub took it, or the grace runs out, the tree is stopped. After a reconnect
 * it checks the lease at once. A leader that stops
 * gracefully releases the lease, and a standby takes it at its next probe.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Bus } from '../../src/bus/connection.js';
import { openKv } from '../../src/bus/kv.js';
import {
  type CoreMessageContext,
  type CoreSubscription,
  requestTyped,
  subscribeTyped,
} from '../../src/bus/subscribe.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import { HubAliveSchema, LeaseSchema } from '../../src/protocol/registration.js';
import { exponentialDelay } from '../../src/runtime/backoff.js';
import type { ChildSpecInput, DynamicSupervisor, Pid, Registry } from '../../src/runtime/index.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import { type LeaseClock, LeaseKeeper, type SeenLease } from './lease.js';

export interface LeaderInput {
  bus: Bus;
  /**
   * The connection the lease is read and renewed on (default `bus`). A connection of its own keeps
   * the renewal out of the queue of the work's traffic on `bus`; `bus` still answers the liveness
   * probes, so "the holder's connection is gone" means the connection that does the work.
   */
  leaseBus?: Bus;
  registry: Registry;
  log: Logger;
  hubId: string;
  leaseTtlMs: number;
  /** How often a standby looks at the lease and probes its holder (default 250 ms). */
  probeMs?: number;
  /** Registered name of the one-slot dynamic supervisor the work tree runs in. */
  workSlot: string;
  /** The work tree, started while the lease is held. */
  work: ChildSpecInput;
  /** Told every renewal and loss of the lease (the work tree's writers consult it). */
  clock?: LeaseClock;
  /** Told when this hub starts leading (its work tree runs) or stands by (`holder` leads). */
  onRole?: (role: HubRole) => void;
}

export type HubRole = { role: 'leader' } | { role: 'standby'; holder: string | undefined };

/** How long a lease holder must stay unanswered (and unrenewed) before a standby takes its lease. */
const CONFIRM_GONE_MS = 500;
/** Lifetimes a lapsed lease (run out, not known taken) keeps the work tree, writing nothing. */
const LAPSE_GRACE_TTLS = 3;
/** Timeout of each request to the lease bucket. */
const LEASE_REQUEST_TIMEOUT_MS = 1_000;
/** Waits before starting a failed work tree again: 0.25 s, 0.5 s ... 10 s (no jitter: one leader). */
const WORK_RETRY_BACKOFF = { min: 250, max: 10_000 };

export type LeaderMessage =
  | { type: 'tick' }
  | { type: 'status'; reply?: (s: { leader: boolean; expiresAt: number }) => void };

export class LeaderProcess implements Server<LeaderMessage> {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private work: Pid | undefined;
  /** The election step under way (one at a time). */
  private stepping: Promise<void> | undefined;
  private stopped = false;
  private workFailures = 0;
  private starting: Promise<void> | undefined;
  private workRetryAt = 0;
  /** A lease holder that nobody answered for: since when, at which lease revision. */
  private suspect: { holder: string; revision: number; since: number } | undefined;
  /**
   * Since when the holder's liveness probes have gone unanswered (its subscription still there,
   * nobody answering), at which lease revision: logged at a takeover, to tell how long the server
   * still routed to a dead holder from how long confirming it took.
   */
  private silent: { holder: string; revision: number; since: number } | undefined;
  /** Since when the lease has run out by this hub's clock with the work tree kept (see step). */
  private lapsedAt: number | undefined;
  private alive: CoreSubscription | undefined;
  private allAlive: CoreSubscription | undefined;
  private offStatus: (() => void) | undefined;
  private role: HubRole['role'] | undefined;

  private constructor(
    private readonly input: LeaderInput,
    private readonly ctx: ServerContext,
    private readonly lease: LeaseKeeper,
  ) {
    this.log = input.log.child({ actor: 'leader' });
  }

  static async start(input: LeaderInput, ctx: ServerContext): Promise<LeaderProcess> {
    // A lease request that hangs while a cluster elects the bucket's new stream leader would hold
    // the renewal past the lease: ask again soon instead. The deadline does not count this hub's
    // own stalls: an answer that came while its event loop was held is read first (kv.ts).
    const leaseBus = input.leaseBus ?? input.bus;
    const kv = await openKv(leaseBus, leaseBus.names.buckets.leases, LeaseSchema, {
      apiTimeoutMs: LEASE_REQUEST_TIMEOUT_MS,
    });
    const l = new LeaderProcess(input, ctx, new LeaseKeeper(kv, input.hubId, input.leaseTtlMs));
    const answer = (_req: unknown, m: CoreMessageContext) => {
      m.respond({ v: 1, hubId: input.hubId, leader: l.lease.isHeld, now: Date.now() });
    };
    l.alive = subscribeTyped(input.bus, input.bus.names.subjects.hubAlive(input.hubId), z.unknown(), answer);
    l.allAlive = subscribeTyped(input.bus, input.bus.names.subjects.hubsAlive, z.unknown(), answer);
    await input.bus.nc.flush();
    // Back from an outage: whether we still hold the lease is the first thing to know.
    const onReconnect = (e: { type: string }) => {
      if (e.type === 'reconnect') ctx.send({ type: 'tick' });
    };
    const offs = [...new Set([input.bus, leaseBus])].map((b) => b.onStatus(onReconnect));
    l.offStatus = () => {
      for (const off of offs) off();
    };
    l.timer = setInterval(() => ctx.send({ type: 'tick' }), l.probeMs());
    l.timer.unref();
    ctx.send({ type: 'tick' });
    return l;
  }

  handle(msg: LeaderMessage): void {
    if (msg.type === 'status') {
      msg.reply?.({ leader: this.lease.isHeld && this.work !== undefined, expiresAt: this.lease.expiresAt });
      return;
    }
    if (this.stepping || this.stopped) return; // one election step at a time
    this.stepping = this.step()
      .catch((err) => this.ctx.crash(err))
      .finally(() => {
        this.stepping = undefined;
      });
  }

  async terminate(): Promise<void> {
    this.stopped = true;
    this.input.clock?.clear();
    clearInterval(this.timer);
    this.offStatus?.();
    this.alive?.unsubscribe();
    this.allAlive?.unsubscribe();
    await this.starting;
    await this.stopWork('hub stopping');
    // A step under way decides nothing once it resumes (see `step`), but a renewal or takeover it
    // has in flight may still land: released after it, not before.
    await this.stepping;
    await this.lease.release().catch(() => {});
  }

  private probeMs(): number {
    return Math.max(50, Math.min(this.input.probeMs ?? 250, Math.floor(this.input.leaseTtlMs / 3)));
  }

  private async step(): Promise<void> {
    // The holder renews every third of the lifetime; a standby looks at every tick.
    const renewDue = Date.now() >= this.lease.renewDueAt;
    let held = this.lease.isHeld;
    const stepStarted = Date.now();
    try {
      if (renewDue) {
        // How far past its own lifetime the renewal begins (the event loop was held that long).
        const overMs = stepStarted - this.lease.expiresAt;
        const wasHeld = held;
        held = await this.refreshOnceMore();
        // A holder's renewal answered but not kept: answered after the lifetime it wrote (the
        // record still this hub's: `lapsed`), or another hub holds the lease now (it took one that
        // had run out, or whose holder's connection it saw gone). Without this line the loss
        // showed only as `stopping work`. (Failed requests are logged below instead.)
        if (wasHeld && !held)
          this.log.warn(
            {
              phase: 'lease',
              took_ms: Date.now() - stepStarted,
              ...(overMs > 0 ? { over_ms: overMs } : {}),
              // Still this hub's record (the next renewal mends it), or who holds it now when known.
              lapsed: this.lease.isHeld,
              holder: this.lease.heldByOther?.holder,
            },
            'lease renewal did not keep the lease',
          );
      }
      const other = this.lease.heldByOther;
      const probe = !held && other ? await this.probeHolder(other) : undefined;
      if (probe === 'silent' && other) {
        const q = this.silent;
        if (!q || q.holder !== other.holder || q.revision !== other.revision)
          this.silent = { holder: other.holder, revision: other.revision, since: Date.now() };
      } else if (probe === 'alive') this.silent = undefined;
      if (!held && other && probe === 'gone') {
        // Gone twice, CONFIRM_GONE_MS apart, with no renewal between: a holder whose connection
        // only moved to another server (a node of the cluster died) is back well within that.
        const s = this.suspect;
        if (!s || s.holder !== other.holder || s.revision !== other.revision) {
          this.suspect = { holder: other.holder, revision: other.revision, since: Date.now() };
        } else if (Date.now() - s.since >= CONFIRM_GONE_MS) {
          this.suspect = undefined;
          held = await this.lease.takeOver(other);
          if (held) {
            const q = this.silent?.holder === other.holder ? this.silent : undefined;
            this.log.info(
              {
                phase: 'lease',
                from: other.holder,
                gone_ms: Date.now() - s.since,
                ...(q ? { unanswered_ms: Date.now() - q.since } : {}),
              },
              'took the lease from a hub whose connection is gone',
            );
          }
          this.silent = undefined;
        }
      } else {
        this.suspect = undefined;
      }
      if (!held && other) this.tellRole({ role: 'standby', holder: other.holder });
    } catch (err) {
      // Cannot reach the lease: writing goes on only while the lease we last renewed still runs
      // (the clock keeps a skew margin); what becomes of the work tree after is decided below.
      held = this.lease.isHeld && Date.now() < this.lease.expiresAt;
      // How long the step took tells a slow server from a stalled event loop (a request that
      // left only after the stall): both show as a timeout.
      this.log.warn({ err, phase: 'lease', held, took_ms: Date.now() - stepStarted }, 'lease refresh failed');
    }
    // Stopped while its requests were in flight: a hub shutting down starts no work tree (it
    // started one again while the old one stopped, and then released the lease under it).
    if (this.stopped) return;
    if (held && this.lease.isHeld) this.input.clock?.renewed(this.lease.expiresAt);
    else this.input.clock?.clear();
    if (held) {
      // Back after a lapse: the work tree goes on only if nobody wrote the lease meanwhile.
      if (this.lapsedAt !== undefined && this.work && !this.lease.renewedInPlace)
        await this.stopWork('lease taken again after a gap');
      this.lapsedAt = undefined;
    }
    // The work tree starts beside the election steps, not inside one: a slow start (its first
    // reads waiting on a cluster) must not hold up the renewals that keep the lease.
    if (held && !this.work?.alive && !this.starting && Date.now() >= this.workRetryAt) {
      this.starting = this.tryStartWork().finally(() => {
        this.starting = undefined;
      });
    } else if (!held && this.work && !this.starting) {
      // Lost for certain (another hub holds it) stops the work tree at once. Merely unconfirmed
      // (the renewals failed: a stalled event loop, an unreachable bucket) it is kept, writing
      // nothing, for a grace of a few lifetimes: a stall of seconds at 10,000 agents would
      // otherwise cost a restart of every actor, and the next renewal resumes it in place.
      this.lapsedAt ??= Date.now();
      const known = !this.lease.isHeld;
      if (known || Date.now() - this.lapsedAt >= LAPSE_GRACE_TTLS * this.input.leaseTtlMs)
        await this.stopWork(known ? 'lease lost' : 'lease not renewed');
    }
  }

  /**
   * A renewal that failed is tried once more at once: a request sent only after a long stall of
   * the event loop (a GC, a start-up pass) has its deadline gone before it leaves, and the server
   * answers the second at once. (An answer that came during the stall is not a failure: the
   * lease bucket's deadlines are read after the socket, src/runtime/deadline.ts.)
   */
  private async refreshOnceMore(): Promise<boolean> {
    try {
      return await this.lease.refresh();
    } catch {
      return this.lease.refresh();
    }
  }

  /**
   * `gone` only when the server says nobody answers for the holder: its connection is closed. A
   * probe in flight when the holder died gets no answer at all, so one that times out is sent
   * again at once; a holder that times out twice is `silent` (alive but slow, or dead with its
   * connection not yet closed on the server) and keeps its lease.
   */
  private async probeHolder(seen: SeenLease): Promise<'alive' | 'silent' | 'gone'> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await requestTyped(
          this.input.bus,
          this.input.bus.names.subjects.hubAlive(seen.holder),
          z.unknown(),
          {},
          HubAliveSchema,
          Math.max(25, Math.floor(this.probeMs() / 2)),
        );
        return 'alive';
      } catch (err) {
        if (!(err instanceof AgentComError)) return 'alive';
        if (err.code === ERROR_CODES.UNAVAILABLE) return 'gone';
      }
    }
    return 'silent';
  }

  /**
   * A work tree that fails to start (its first reads timing out while a cluster elects stream
   * leaders, say) is tried again at a later tick (0.25 s, 0.5 s … 10 s): the lease is kept meanwhile.
   */
  private async tryStartWork(): Promise<void> {
    try {
      await this.startWork();
      this.workFailures = 0;
    } catch (err) {
      this.workFailures++;
      const delay = exponentialDelay(this.workFailures - 1, WORK_RETRY_BACKOFF);
      this.workRetryAt = Date.now() + delay;
      this.log.error(
        { err, phase: 'leader', attempt: this.workFailures, retry_ms: delay },
        'work tree failed to start',
      );
    }
  }

  private async startWork(): Promise<void> {
    const slot = this.input.registry.whereis(this.input.workSlot) as DynamicSupervisor | undefined;
    if (!slot?.alive) throw new Error('work slot supervisor is not running');
    // The slot may have restarted `work` by itself after a crash (or be about to): adopt it.
    const current = await slot.whichChildren();
    const child = current.ok ? current.value[0] : undefined;
    if (child) {
      if (typeof child.pid === 'object') this.work = child.pid;
      return;
    }
    const started = Date.now();
    const r = await slot.startChild(this.input.work);
    if (!r.ok || !r.value.pid)
      throw new Error(`work tree failed to start: ${JSON.stringify(r.ok ? 'ignored' : r.error)}`);
    this.work = r.value.pid;
    this.log.info(
      { phase: 'leader', hub: this.input.hubId, start_ms: Date.now() - started },
      'took the scheduler lease; work started',
    );
    this.tellRole({ role: 'leader' });
  }

  private tellRole(r: HubRole): void {
    if (this.role === r.role) return;
    this.role = r.role;
    try {
      this.input.onRole?.(r);
    } catch (err) {
      this.log.warn({ err, phase: 'leader' }, 'role listener threw');
    }
  }

  private async stopWork(why: string): Promise<void> {
    const pid = this.work;
    this.work = undefined;
    if (!pid?.alive) return;
    const slot = this.input.registry.whereis(this.input.workSlot) as DynamicSupervisor | undefined;
    this.log.info({ phase: 'standby', why }, 'stopping work');
    await slot?.terminateChild(pid);
    if (!this.stopped) this.tellRole({ role: 'standby', holder: this.lease.heldByOther?.holder });
  }
}
