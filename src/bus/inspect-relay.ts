/**
 * @module inspect-relay
 * Live inspection over NATS (src/protocol/inspect.ts, docs/protocol.md §11e), the publishing side.
 *
 * An {@link InspectRelay} follows the listens on `<p>.inspecting` (validated; a bad one is dropped),
 * keeps each listener's targets until its `ttlMs` runs out, and says whether `<source>.<id>` is
 * wanted now. {@link InspectRelay.follow} attaches something (an XState actor's inspection, a
 * supervision tree) while its target is wanted and detaches it when the last listen naming it
 * expires, so with no listener nothing is attached at all: the only cost of inspection being
 * possible is one core subscription per relay and one small message per listener every few
 * seconds. A new listener (or a listener with new targets) naming something already attached has
 * it announced again (each actor's `@xstate.actor` with its current snapshot, by the attach's
 * `announce`, without detaching), so a listener that joins late (a second dashboard, a reloaded
 * page) sees the whole picture too; never on a repeated listen. Re-announces are coalesced per
 * follow: the first waits {@link REANNOUNCE_DELAY_MS} for more new listeners, and there is at most
 * one per {@link REANNOUNCE_INTERVAL_MS}, so a burst of new listeners (dashboards reconnecting)
 * costs one, sent after it. The follows due at once are announced {@link REANNOUNCE_BATCH} per turn
 * of the event loop, so a thousand AgentFSMs re-announced do not block the hub's other work.
 *
 * An {@link InspectPublisher} publishes `@statelyai/inspect` events (its `createInspector` makes
 * them, from XState's raw inspection events or from its manual `actor()/event()/snapshot()` API)
 * on `<p>.inspect.<source>.<id>`, with every session id prefixed `<source>:<id>:`. Nothing it
 * does can throw into the actor it observes: conversion, serialization and publishing are each
 * wrapped, and a failure is logged at debug and the event dropped.
 *
 * Not guaranteed: delivery (core NATS, at most once, dropped while disconnected); that an event
 * reaches a listener whose first listen arrived after it; the order of events of two actors.
 */
import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { AnyActorRef, InspectionEvent, Observer } from 'xstate';
import {
  type InspectListen,
  InspectListenSchema,
  type InspectSource,
  targetMatches,
} from '../protocol/inspect.js';
import type { Bus } from './connection.js';
import type { Logger } from './log.js';
import { type CoreSubscription, subscribeTyped } from './subscribe.js';

/**
 * The unexpired listens, by listener: a listener's newer listen replaces its older one. Pure (the
 * caller passes the time), so expiry is testable without waiting.
 */
export class InspectListens {
  private readonly byListener = new Map<string, { targets: readonly string[]; expiresAt: number }>();

  /** Records a listen received at `now`. Returns whether the set of wanted targets may have changed. */
  add(listen: InspectListen, now: number): boolean {
    const prev = this.byListener.get(listen.listener);
    this.byListener.set(listen.listener, { targets: listen.targets, expiresAt: now + listen.ttlMs });
    return !prev || prev.targets.join(' ') !== listen.targets.join(' ');
  }

  /** Drops the listens expired at `now`; whether any was dropped. */
  expire(now: number): boolean {
    let dropped = false;
    for (const [k, l] of this.byListener)
      if (l.expiresAt <= now) {
        this.byListener.delete(k);
        dropped = true;
      }
    return dropped;
  }

  /** Whether an unexpired listen names `<source>.<id>` (or `<source>.*`) at `now`. */
  wants(source: InspectSource, id: string, now: number): boolean {
    for (const l of this.byListener.values()) {
      if (l.expiresAt <= now) continue;
      for (const t of l.targets) if (targetMatches(t, source, id)) return true;
    }
    return false;
  }

  /** Whether any unexpired listen names a target of `source`. */
  wantsAny(source: InspectSource, now: number): boolean {
    for (const l of this.byListener.values()) {
      if (l.expiresAt <= now) continue;
      if (l.targets.some((t) => t.startsWith(`${source}.`))) return true;
    }
    return false;
  }

  /** When the next listen expires (epoch ms), if any is held. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const l of this.byListener.values())
      if (next === undefined || l.expiresAt < next) next = l.expiresAt;
    return next;
  }

  get size(): number {
    return this.byListener.size;
  }
}

/** The id prefix of a source's sessions: `agent:a1:`. */
export function sessionPrefix(source: InspectSource, id: string): string {
  return `${source}:${id}:`;
}

/** The XState inspection events `@statelyai/inspect` converts (it drops the others). */
const CONVERTED: ReadonlySet<string> = new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot']);

/** What `createInspector` returns (the package does not export the type). */
export type StatelyInspector = ReturnType<typeof createInspector>;

/**
 * Publishes one source's inspection events. `inspector` is a `@statelyai/inspect` inspector whose
 * events land here; `observer` is its XState observer, wrapped so that it never throws.
 */
export class InspectPublisher {
  readonly subject: string;
  readonly inspector: StatelyInspector;
  readonly observer: Observer<InspectionEvent>;
  /** The root session id (unprefixed) given to events the inspector leaves without one. */
  root: string | undefined;
  /** Events published so far. */
  published = 0;
  private active = true;
  private readonly prefix: string;

  constructor(
    private readonly bus: Bus,
    readonly source: InspectSource,
    readonly id: string,
    private readonly log: Logger = bus.log,
  ) {
    this.subject = bus.names.subjects.inspect(source, id);
    this.prefix = sessionPrefix(source, id);
    this.inspector = createInspector({ send: (e) => this.send(e) }, { autoStart: true });
    const next = this.inspector.inspect.next?.bind(this.inspector.inspect);
    this.observer = {
      next: (e: InspectionEvent) => {
        // Only what the format has: microsteps and actions would each cost the inspector a timer
        // turn to be dropped; and nothing at all once detached.
        if (!this.active || !next || !CONVERTED.has(e.type)) return;
        try {
          next(e);
        } catch (err) {
          this.log.debug({ phase: 'inspect', err, subject: this.subject }, 'inspection event not converted');
        }
      },
    };
  }

  /** Publishes one converted event (ids prefixed). Never throws. */
  send(event: StatelyInspectionEvent): void {
    // The inspector converts XState's events a tick later: one that lands after detaching is dropped.
    if (!this.active || this.bus.isClosed()) return;
    try {
      const e = event as StatelyInspectionEvent & { parentId?: string; sourceId?: string };
      const out: Record<string, unknown> = { ...e, sessionId: this.prefixed(e.sessionId) };
      const root = e.rootId === undefined || e.rootId === 'anonymous' ? this.root : e.rootId;
      out.rootId = root === undefined ? undefined : this.prefixed(root);
      if (e.type === '@xstate.actor' && e.parentId !== undefined) out.parentId = this.prefixed(e.parentId);
      if (e.type === '@xstate.event' && e.sourceId !== undefined) out.sourceId = this.prefixed(e.sourceId);
      this.bus.nc.publish(this.subject, JSON.stringify(out));
      this.published++;
    } catch (err) {
      this.log.debug({ phase: 'inspect', err, subject: this.subject }, 'inspection event not published');
    }
  }

  /**
   * Sends `@xstate.actor` with the current snapshot for `actor` and every descendant (what a
   * listener needs to see the picture whole when inspection attaches). Never throws.
   */
  announce(actor: AnyActorRef): void {
    try {
      this.inspector.actor(actor, jsonSafe(actor.getSnapshot()));
      const children = (actor.getSnapshot() as { children?: Record<string, AnyActorRef | undefined> })
        .children;
      if (children) for (const c of Object.values(children)) if (c) this.announce(c);
    } catch (err) {
      this.log.debug({ phase: 'inspect', err, subject: this.subject }, 'actor not announced');
    }
  }

  /** Stops publishing (events still queued in the inspector are dropped). */
  close(): void {
    this.active = false;
  }

  private prefixed(session: string): string {
    return session.startsWith(this.prefix) ? session : `${this.prefix}${session}`;
  }
}

/** A snapshot as plain JSON (XState's snapshots and actor refs have toJSON), or a stand-in. */
function jsonSafe(snapshot: unknown): Record<string, unknown> {
  try {
    return JSON.parse(JSON.stringify(snapshot)) as Record<string, unknown>;
  } catch {
    const s = snapshot as { status?: unknown; value?: unknown };
    return { status: s?.status, value: s?.value };
  }
}

/**
 * What an attach returns: the detach, optionally with `announce`, which sends every inspected
 * actor's `@xstate.actor` with its current snapshot again (for a listener that joined late),
 * keeping whatever the attachment follows. A plain detach works too: without `announce`, the relay
 * detaches and attaches again instead (events of that instant may be lost to the listeners already
 * there).
 */
export type Detach = (() => void) & { announce?: () => void };

/**
 * Attaches XState inspection to a running actor's whole system: its `@xstate.actor` (and its
 * descendants') with the current snapshot now, then every event and snapshot. Returns the detach
 * (with `announce`, to send the actors again).
 */
export function inspectActor(actor: AnyActorRef, pub: InspectPublisher): Detach {
  pub.root = actor.sessionId;
  pub.announce(actor);
  const sub = actor.system.inspect(pub.observer);
  return Object.assign(() => sub.unsubscribe(), { announce: () => pub.announce(actor) });
}

/** Something attached while its target is wanted; see {@link InspectRelay.follow}. */
export interface Following {
  /** Whether it is attached now. */
  readonly attached: boolean;
  /** Detach and attach again (e.g. the actor it watches was replaced by a restart). */
  refresh(): void;
  /** Stop following (detaches). */
  stop(): void;
}

/** A follow's first re-announce waits this long (ms) for more new listeners to join it. */
export const REANNOUNCE_DELAY_MS = 250;
/** At most one re-announce per follow in this long (ms); the new listeners meanwhile share the next. */
export const REANNOUNCE_INTERVAL_MS = 1_000;
/** Follows re-announced per turn of the event loop (each one actor, or a tree that spreads its own). */
export const REANNOUNCE_BATCH = 200;

export interface InspectRelayOptions {
  log?: Logger;
  /** Time source (epoch ms); tests only. */
  now?: () => number;
}

/** Follows `<p>.inspecting` and attaches inspection to what the listens name. */
export class InspectRelay {
  private readonly listens = new InspectListens();
  private readonly follows = new Set<(arrived?: InspectListen) => void>();
  private readonly changeListeners = new Set<() => void>();
  private readonly log: Logger;
  private readonly now: () => number;
  private sub: CoreSubscription | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Re-announces due, run {@link REANNOUNCE_BATCH} per turn of the event loop. */
  private readonly announcing: (() => void)[] = [];
  private announceTurn: NodeJS.Immediate | undefined;
  private closed = false;

  private constructor(
    private readonly bus: Bus,
    opts: InspectRelayOptions,
  ) {
    this.log = opts.log ?? bus.log;
    this.now = opts.now ?? Date.now;
  }

  /** Subscribes to `<p>.inspecting`. */
  static start(bus: Bus, opts: InspectRelayOptions = {}): InspectRelay {
    const r = new InspectRelay(bus, opts);
    r.sub = subscribeTyped(bus, bus.names.subjects.inspecting, InspectListenSchema, (l) => r.receive(l), {
      onInvalid: (error) => r.log.debug({ phase: 'inspect', error }, 'invalid listen ignored'),
    });
    return r;
  }

  /** Whether some unexpired listen names `<source>.<id>`. */
  wants(source: InspectSource, id: string): boolean {
    return this.listens.wants(source, id, this.now());
  }

  /** Whether some unexpired listen names a target of `source` (an id or `*`). */
  wantsAny(source: InspectSource): boolean {
    return this.listens.wantsAny(source, this.now());
  }

  /** Told after each change of the listens (a new listener or targets, an expiry). */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /**
   * While a listen names `<source>.<id>`, `attach` runs with a publisher for its subject and
   * returns the detach, called when the last such listen expires (or on `stop`/`close`). Neither
   * may throw into the caller: a throw is logged. When a new listener (or new targets of one)
   * names it while attached, the detach's `announce` runs, or, without one, it is detached and
   * attached again, so that the newcomer gets the current state too: once for a burst of new
   * listeners, after {@link REANNOUNCE_DELAY_MS}, and at most once per
   * {@link REANNOUNCE_INTERVAL_MS}.
   */
  follow(source: InspectSource, id: string, attach: (pub: InspectPublisher) => Detach): Following {
    let pub: InspectPublisher | undefined;
    let detach: Detach | undefined;
    /** A re-announce to come: its timer, or `queued` once due (in the relay's turns). */
    let pending: NodeJS.Timeout | 'queued' | undefined;
    let lastAnnounced = Number.NEGATIVE_INFINITY;
    const up = () => {
      pub = new InspectPublisher(this.bus, source, id, this.log);
      try {
        detach = attach(pub);
      } catch (err) {
        this.log.warn({ phase: 'inspect', err, source, id }, 'inspection did not attach');
        detach = () => {};
      }
      this.log.debug({ phase: 'inspect', source, id }, 'inspection attached');
    };
    const down = () => {
      // A re-announce to come is moot: an attach again announces everything anyway.
      if (pending !== undefined && pending !== 'queued') clearTimeout(pending);
      pending = undefined;
      try {
        detach?.();
      } catch (err) {
        this.log.warn({ phase: 'inspect', err, source, id }, 'inspection did not detach cleanly');
      }
      pub?.close();
      this.log.debug({ phase: 'inspect', source, id, published: pub?.published }, 'inspection detached');
      pub = undefined;
      detach = undefined;
    };
    const announce = () => {
      // Detached (or detached and attached again) since it was due: nothing to send.
      if (pending !== 'queued' || !pub) return;
      pending = undefined;
      lastAnnounced = this.now();
      if (!detach?.announce) {
        down();
        up();
        return;
      }
      try {
        detach.announce();
      } catch (err) {
        this.log.warn({ phase: 'inspect', err, source, id }, 'inspection not announced again');
      }
    };
    /** A re-announce for a new listener: the one to come covers it, or one is planned. */
    const announceSoon = () => {
      if (pending !== undefined) return;
      const delay = Math.max(REANNOUNCE_DELAY_MS, lastAnnounced + REANNOUNCE_INTERVAL_MS - this.now());
      pending = setTimeout(() => {
        pending = 'queued';
        this.queueAnnounce(announce);
      }, delay);
      pending.unref();
    };
    /** `arrived`: the new listen (or new targets) that caused this check, if any. */
    const check = (arrived?: InspectListen) => {
      const want = !this.closed && this.wants(source, id);
      if (want && !pub) up();
      else if (!want && pub) down();
      else if (want && pub && arrived?.targets.some((t) => targetMatches(t, source, id))) announceSoon();
    };
    this.follows.add(check);
    check();
    return {
      get attached() {
        return pub !== undefined;
      },
      refresh: () => {
        if (!pub) return check();
        down();
        check();
      },
      stop: () => {
        this.follows.delete(check);
        if (pub) down();
      },
    };
  }

  /** Takes one listen (what the subscription does with each valid message). */
  receive(listen: InspectListen): void {
    if (this.closed) return;
    const now = this.now();
    const changed = this.listens.add(listen, now);
    // A repeated listen only extends; a new listener or new targets may attach something, or have
    // what is attached announced again for it.
    if (changed) this.changed(listen);
    this.schedule();
  }

  /** Unsubscribes and detaches everything. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearImmediate(this.announceTurn);
    this.announcing.length = 0;
    try {
      this.sub?.unsubscribe();
    } catch {
      // The connection is already closed: so is the subscription.
    }
    for (const f of [...this.follows]) f();
    this.follows.clear();
    this.changeListeners.clear();
  }

  /** Runs `announce` in a later turn, {@link REANNOUNCE_BATCH} per turn. */
  private queueAnnounce(announce: () => void): void {
    if (this.closed) return;
    this.announcing.push(announce);
    this.announceTurn ??= setImmediate(() => this.announceSome());
  }

  private announceSome(): void {
    this.announceTurn = undefined;
    for (const announce of this.announcing.splice(0, REANNOUNCE_BATCH)) announce();
    if (this.announcing.length > 0 && !this.closed)
      this.announceTurn = setImmediate(() => this.announceSome());
  }

  private changed(arrived?: InspectListen): void {
    for (const f of [...this.follows]) f(arrived);
    for (const l of [...this.changeListeners])
      try {
        l();
      } catch (err) {
        this.log.warn({ phase: 'inspect', err }, 'inspection change listener threw');
      }
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const next = this.listens.nextExpiry();
    if (next === undefined || this.closed) return;
    this.timer = setTimeout(
      () => {
        if (this.listens.expire(this.now())) this.changed();
        this.schedule();
      },
      Math.max(0, next - this.now()) + 1,
    );
    this.timer.unref();
  }
}
