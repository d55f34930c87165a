/**
 * @module gateway/events
 * The gateway's live event stream (served as Server-Sent Events by routes/events.ts): task
 * transitions, agent states, alerts and pheromones, read from the revisions of their KV buckets
 * (one tail per bucket per gateway, shared by every client), so each event has a place in a
 * durable sequence.
 *
 * An event's id is the gateway's position in every source after it
 * (`<task>.<agent>.<alert>.<pheromone>` stream sequences). A client that reconnects with `Last-Event-ID` gets every event it has not
 * seen, per source, from a ring of the last `ringSize` events; a gateway preloads the ring from
 * the buckets when it starts, so the id works on any gateway, and after a gateway restart. An id
 * older than the ring, or one that does not parse, gets a `reset` event: reload the state
 * (GET /api/dashboard/state) and carry on from there. Ordering: per source, in sequence order.
 * Channel posts (`message` events) are not part of that sequence: channel-feed.ts, held here.
 */
import type { Bus } from '../bus/connection.js';
import { type KvRevision, type KvTail, kvLastSeq, tailKv } from '../bus/kv-tail.js';
import { PheromoneSchema } from '../protocol/field.js';
import type { TaskRecord } from '../protocol/task.js';
import { ChannelFeed, type ChannelFeedOptions } from './channel-feed.js';
import { SeriesFeed, type SeriesFeedOptions } from './series-feed.js';
import { decodeTaskView, type TaskRevisionListener, type TaskView, viewOfRecord } from './task-view.js';

export const EVENT_SOURCES = ['task', 'agent', 'alert', 'pheromone'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

export interface GatewayEvent {
  source: EventSource;
  /** Stream sequence of the revision it came from. */
  seq: number;
  /** The event's id: positions in every source after it. */
  id: string;
  /** What the event is about, for filters: a task's queue and agent, an agent's id. */
  queue?: string;
  agentId?: string | null;
  data: Record<string, unknown>;
}

type Positions = Record<EventSource, number>;

export function encodeCursor(p: Positions): string {
  return EVENT_SOURCES.map((s) => p[s]).join('.');
}

/** The positions an event id names, or undefined when it is not one. */
export function decodeCursor(id: string): Positions | undefined {
  const parts = id.split('.');
  if (parts.length !== EVENT_SOURCES.length || !parts.every((x) => /^\d{1,16}$/.test(x))) return undefined;
  return Object.fromEntries(EVENT_SOURCES.map((s, i) => [s, Number(parts[i])])) as Positions;
}

const json = (data: Uint8Array): unknown => {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
};

/**
 * The event a revision stands for (bounded: never a whole task body), or null for none. `task` is
 * the task revision's decoded view (null when it is not a record), decoded once by the caller.
 */
export function eventOf(
  source: EventSource,
  r: KvRevision,
  task: TaskView | null,
): Omit<GatewayEvent, 'id' | 'seq' | 'source'> | null {
  const at = r.at;
  if (source === 'task') {
    if (r.operation !== 'put') return { data: { id: r.key, removed: true, at } };
    if (!task) return null;
    const x = task;
    return {
      queue: x.queue,
      agentId: x.assignee,
      data: {
        id: x.id,
        title: x.title,
        status: x.status,
        queue: x.queue,
        priority: x.priority,
        assignee: x.assignee,
        generation: x.generation,
        retryCount: x.retryCount,
        progress: x.progress,
        error: x.error ? { code: x.error.code, message: x.error.message.slice(0, 200) } : null,
        at,
      },
    };
  }
  if (source === 'agent') {
    const dot = r.key.indexOf('.');
    const id = dot < 0 ? r.key : r.key.slice(0, dot);
    if (r.operation !== 'put') return { agentId: id, data: { id, removed: true, at } };
    const v = json(r.data) as Record<string, unknown> | undefined;
    if (!v || typeof v !== 'object') return null;
    // A count or time of the stored value: a non-negative whole number, or undefined (left out).
    const count = (x: unknown): number | undefined =>
      typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : undefined;
    if (r.key.endsWith('.fsm')) {
      const snap = v.snapshot as
        | {
            value?: unknown;
            context?: { tasks?: object; slots?: unknown; completed?: unknown; flags?: unknown };
          }
        | undefined;
      const ctx = snap?.context;
      return {
        agentId: id,
        data: {
          id,
          state: snap?.value ?? null,
          tasks: Object.keys(ctx?.tasks ?? {}),
          // The dashboard's columns (numbers only: bounded).
          slots: count(ctx?.slots),
          completed: count(ctx?.completed),
          flags: count(ctx?.flags),
          at,
        },
      };
    }
    if (dot >= 0) return null;
    const hello = v.hello as { capabilities?: unknown; queues?: unknown; slots?: unknown } | undefined;
    return {
      agentId: id,
      data: {
        id,
        registered: true,
        removed: v.removed === true,
        capabilities: hello?.capabilities ?? [],
        queues: hello?.queues ?? [],
        slots: count(hello?.slots),
        registeredAt: count(v.registeredAt),
        at,
      },
    };
  }
  if (source === 'pheromone') {
    const dot = r.key.indexOf('.');
    const id = dot < 0 ? r.key : r.key.slice(0, dot);
    const type = dot < 0 ? '' : r.key.slice(dot + 1);
    if (r.operation !== 'put') return { data: { id, type, removed: true, at } };
    const p = PheromoneSchema.safeParse(json(r.data));
    if (!p.success) return null;
    const x = p.data;
    return {
      agentId: x.claimedBy,
      data: {
        id: x.id,
        type: x.type,
        event: x.event,
        selector: x.selector,
        source: x.source,
        claimedBy: x.claimedBy,
        expiresAt: x.expiresAt,
        taskId: x.taskId ?? null,
        // The rest of the record but its payload (bounded: a payload may be 64 KiB), so a map can
        // draw a pheromone it did not load: when it was emitted, its ttl, the claim's time, who
        // caused this revision and when (a revision already seen in a loaded list is told apart).
        timestamp: x.timestamp,
        ttl: x.ttl,
        claimedAt: x.claimedAt,
        eventAt: x.eventAt,
        eventBy: x.eventBy,
        at,
      },
    };
  }
  if (r.operation !== 'put') return { data: { key: r.key, removed: true, at } };
  const v = json(r.data);
  return v && typeof v === 'object' ? { data: { key: r.key, ...(v as object), at } } : null;
}

const BUCKET_OF = {
  task: (b: Bus) => b.names.buckets.tasks,
  agent: (b: Bus) => b.names.buckets.agents,
  alert: (b: Bus) => b.names.buckets.alerts,
  pheromone: (b: Bus) => b.names.buckets.field,
} satisfies Record<EventSource, (b: Bus) => string>;

/** How long a starting hub waits for a source's preload, and how quiet a tail must be to be done. */
const PRELOAD_WAIT_MS = 5_000;
const PRELOAD_QUIET_MS = 200;

export type Replay = { kind: 'events'; events: GatewayEvent[] } | { kind: 'reset' };

export class EventHub {
  private readonly ring: GatewayEvent[] = [];
  private head = 0;
  private readonly position: Positions = { task: 0, agent: 0, alert: 0, pheromone: 0 };
  /** Each bucket's last sequence when the hub started: the preload ends there, the rest is new. */
  private readonly startedAt: Positions = { task: 0, agent: 0, alert: 0, pheromone: 0 };
  /** The ring holds every event of a source with a sequence >= this. */
  private readonly coveredFrom: Positions = { task: 1, agent: 1, alert: 1, pheromone: 1 };
  private readonly listeners = new Set<(e: GatewayEvent) => void>();
  private readonly tails: KvTail[] = [];
  private lastRevisionAt = 0;
  /** Task revisions handed to other readers of the same tail (the series feed, the metrics). */
  private readonly taps = new Set<TaskRevisionListener>();
  /** The dashboard's "last hour" (series-feed.ts), fed by the task tail; undefined when turned off. */
  series: SeriesFeed | undefined;

  private constructor(
    private readonly ringSize: number,
    /** Live channel posts (channel-feed.ts) for clients that ask; its follow runs only while they watch. */
    readonly channels: ChannelFeed,
    private readonly log: Bus['log'],
  ) {}

  /** Starts the tails, the ring preloaded with up to `ringSize / 3` recent revisions per source. */
  static async start(
    bus: Bus,
    opts: { ringSize?: number; series?: SeriesFeedOptions | false; channels?: ChannelFeedOptions } = {},
  ): Promise<EventHub> {
    const hub = new EventHub(
      opts.ringSize ?? 10_000,
      new ChannelFeed(bus, opts.channels),
      bus.log.child({ actor: 'gateway' }),
    );
    const preload = Math.floor(hub.ringSize / EVENT_SOURCES.length);
    try {
      for (const source of EVENT_SOURCES) {
        const bucket = BUCKET_OF[source](bus);
        const last = await kvLastSeq(bus, bucket);
        const from = Math.max(1, last - preload + 1);
        hub.startedAt[source] = last;
        hub.coveredFrom[source] = from;
        hub.position[source] = from - 1;
        // The tasks this process writes (a hub's TaskQueue) come with their records: not decoded again.
        const echoes = source === 'task';
        hub.tails.push(await tailKv(bus, bucket, from, (r) => hub.onRevision(source, r), { echoes }));
        // The preload is in before the hub serves anyone, or a first client's `ready` would name a
        // position before it and get the preload again as if live. (Bounded: a busy bucket keeps
        // moving its last sequence, and a purged last revision never comes.)
        const deadline = Date.now() + PRELOAD_WAIT_MS;
        const started = Date.now();
        while (hub.position[source] < last && Date.now() < deadline) {
          // The last sequence may be a purged revision that never comes: quiet for a moment is done.
          if (Date.now() - Math.max(started, hub.lastRevisionAt) > PRELOAD_QUIET_MS) break;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    } catch (err) {
      // The tails already started would go on reading (and taking their process's echoes).
      for (const t of hub.tails) t.stop();
      throw err;
    }
    if (opts.series !== false) hub.series = SeriesFeed.start(bus, hub, opts.series ?? {});
    return hub;
  }

  /** Where the stream is now: the id to resume from for a client that has seen everything. */
  cursor(): string {
    return encodeCursor(this.position);
  }

  private onRevision(source: EventSource, r: KvRevision): void {
    this.lastRevisionAt = Date.now();
    if (r.seq <= this.position[source]) return;
    this.position[source] = r.seq;
    // Decoded once, for the event and every tap.
    const task =
      source !== 'task' || r.operation !== 'put'
        ? null
        : r.local !== undefined
          ? viewOfRecord(r.local as TaskRecord)
          : decodeTaskView(r.data);
    if (source === 'task')
      for (const fn of this.taps) {
        // A reader's fault stays its own: thrown into the shared tail, it would end the tail.
        try {
          fn(r, task);
        } catch (err) {
          this.log.error({ phase: 'events', err, seq: r.seq }, 'a reader of the task tail failed');
        }
      }
    const e = eventOf(source, r, task);
    if (!e) return;
    const ev: GatewayEvent = { ...e, source, seq: r.seq, id: encodeCursor(this.position) };
    if (this.ring.length < this.ringSize) this.ring.push(ev);
    else {
      const old = this.ring[this.head]!;
      this.coveredFrom[old.source] = old.seq + 1;
      this.ring[this.head] = ev;
      this.head = (this.head + 1) % this.ringSize;
    }
    for (const l of this.listeners) l(ev);
  }

  /** Events after `lastEventId`, per source, oldest first; `reset` when the ring no longer has them. */
  since(lastEventId: string): Replay {
    const cursor = decodeCursor(lastEventId);
    if (!cursor) return { kind: 'reset' };
    for (const s of EVENT_SOURCES) if (cursor[s] + 1 < this.coveredFrom[s]) return { kind: 'reset' };
    const events: GatewayEvent[] = [];
    for (let i = 0; i < this.ring.length; i++) {
      const e = this.ring[(this.head + i) % this.ring.length]!;
      if (e.seq > cursor[e.source]) events.push(e);
    }
    return { kind: 'events', events };
  }

  /** Calls `fn` for every new event until the returned function is called. */
  subscribe(fn: (e: GatewayEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Calls `fn` with every task revision after `after` (the last one this hub has seen), in order,
   * until `stop`: one tail per bucket, whoever reads it. Revisions up to `preloadEnd` were in the
   * bucket before the hub started (a preload cut short by its bounds still brings them after `after`).
   */
  tapTasks(fn: TaskRevisionListener): { after: number; preloadEnd: number; stop(): void } {
    this.taps.add(fn);
    return {
      after: this.position.task,
      preloadEnd: this.startedAt.task,
      stop: () => void this.taps.delete(fn),
    };
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  stop(): void {
    this.series?.stop();
    this.channels.stop();
    for (const t of this.tails) t.stop();
    this.listeners.clear();
  }
}
