/**
 * @module leader/lease
 * Leader election: a KV record `{ holder, expiresAt }` changed only with compare-and-set. The holder
 * renews it well before it expires; another hub takes it over after `expiresAt` has passed, or
 * earlier when the holder's NATS connection is known to be gone (`takeOver`, decided by the caller).
 * Two hubs can therefore never both believe they hold a live lease for longer than the clock skew
 * between them, or than a holder that lost its connection takes to notice; assignments stay safe
 * even then, because every task write is itself compare-and-set and fenced by generation.
 */
import type { TypedKv } from '../../src/bus/kv.js';
import type { Lease } from '../../src/protocol/registration.js';

export const LEASE_KEY = 'scheduler';

/** The lease as last read, when another hub held it. */
export interface SeenLease {
  holder: string;
  expiresAt: number;
  revision: number;
}

export class LeaseKeeper {
  private revision: number | undefined;
  private held = false;
  private heldUntil = 0;
  private other: SeenLease | undefined;
  private inPlace = false;
  /** A read since the last hold found the lease gone or another hub's. */
  private gap = false;

  constructor(
    private readonly kv: TypedKv<Lease>,
    private readonly holder: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  /** When the lease this hub last renewed runs out (0 when not held). */
  get expiresAt(): number {
    return this.held ? this.heldUntil : 0;
  }

  /**
   * When the holder renews next (0 when not held: at once): a third of a lifetime after the
   * request that renewed it, not after that request's answer. The lifetime counts from the
   * request, so a slow answer (a retry after a timeout, a loaded server) must not push the next
   * renewal that much closer to the expiry: under load that is how renewals ran out of time.
   */
  get renewDueAt(): number {
    return this.held ? this.heldUntil - this.ttlMs + Math.floor(this.ttlMs / 3) : 0;
  }

  /**
   * Whether the last acquisition continued this hub's own term: a renewal of its last known
   * revision, or of a later one it wrote itself (read back as its own, with no read since its last
   * hold finding the lease gone or another hub's). No other hub can have led meanwhile, however
   * late the renewal came.
   */
  get renewedInPlace(): boolean {
    return this.inPlace;
  }

  /** Another hub's live lease, as the last `refresh` found it (undefined when none). */
  get heldByOther(): SeenLease | undefined {
    return this.other;
  }

  /**
   * Acquire or renew; resolves with whether this hub holds the lease now. Never throws on CAS loss.
   * A write that landed but was answered only after the lifetime it wrote had run out (the answer
   * read after a long stall of this process) resolves false, a lapse: `isHeld` stays true, as the
   * record is this hub's, and the next refresh renews it in place.
   */
  async refresh(): Promise<boolean> {
    return this.live(await this.acquire());
  }

  private async acquire(): Promise<boolean> {
    const now = this.now();
    const next: Lease = { v: 1, holder: this.holder, expiresAt: now + this.ttlMs };
    if (this.held && this.revision !== undefined) {
      // The holder renews in one round trip: nobody has written since its last renewal, or the
      // compare-and-set fails and the record is read as below.
      const renewed = await this.kv.update(LEASE_KEY, next, this.revision);
      if (renewed.ok) return this.set(renewed.revision, next.expiresAt, true);
    }
    const current = await this.kv.get(LEASE_KEY);
    this.other = undefined;
    // Gone, or another hub's: whatever this hub holds next is a new term, even if the write that
    // follows lands unseen (a timeout) and is only read back later.
    if (current?.value.holder !== this.holder) this.gap = true;
    if (!current) {
      const r = await this.kv.create(LEASE_KEY, next);
      return this.set(r.ok ? r.revision : undefined, next.expiresAt);
    }
    if (current.value.holder !== this.holder && current.value.expiresAt > now) {
      this.other = { ...current.value, revision: current.revision };
      return this.set(undefined, 0);
    }
    const r = await this.kv.update(LEASE_KEY, next, current.revision);
    // Read back as this hub's own with no gap seen: its last write landed, its answer was lost
    // (a renewal that timed out), and nobody else has written since.
    return this.set(r.ok ? r.revision : undefined, next.expiresAt, !this.gap);
  }

  /**
   * Take the lease from a holder whose connection is gone, before it expires: compare-and-set on
   * the revision seen, so a holder that renewed meanwhile keeps it.
   */
  async takeOver(seen: SeenLease): Promise<boolean> {
    this.gap = true;
    const next: Lease = { v: 1, holder: this.holder, expiresAt: this.now() + this.ttlMs };
    const r = await this.kv.update(LEASE_KEY, next, seen.revision);
    if (r.ok) this.other = undefined;
    return this.live(this.set(r.ok ? r.revision : undefined, next.expiresAt));
  }

  /** Give the lease up (graceful shutdown) so another hub takes over at once. */
  async release(): Promise<void> {
    if (!this.held || this.revision === undefined) return;
    this.held = false;
    await this.kv.delete(LEASE_KEY, { expectedRevision: this.revision });
  }

  /** Held, and not already run out by this hub's clock (see refresh). */
  private live(held: boolean): boolean {
    return held && this.now() < this.heldUntil;
  }

  private set(revision: number | undefined, until: number, inPlace = false): boolean {
    this.inPlace = inPlace && revision !== undefined;
    if (revision !== undefined) this.gap = false; // held again: a new term starts here
    this.revision = revision;
    this.held = revision !== undefined;
    this.heldUntil = this.held ? until : 0;
    return this.held;
  }
}

/**
 * Until when this hub may act as the leader, by its own clock: the lease it last renewed, less a
 * margin for clock skew between hubs. The work tree's writers consult it, so a hub that was stalled
 * past its lease (a standby may have taken over) does nothing until the leader has checked again.
 */
export class LeaseClock {
  #until = 0;

  constructor(private readonly skewMarginMs = 250) {}

  /** The lease was renewed (or taken) and runs until `expiresAt`. */
  renewed(expiresAt: number): void {
    this.#until = expiresAt - this.skewMarginMs;
  }

  clear(): void {
    this.#until = 0;
  }

  holds(now = Date.now()): boolean {
    return now < this.#until;
  }
}
