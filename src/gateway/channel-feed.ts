/**
 * @module gateway/channel-feed
 * Live channel posts for the event stream (`GET /api/events?channels=room,ops`, routes/events.ts):
 * the dashboard's chat room reads `#room` beside the agents.
 *
 * One follow per gateway, shared by every client that watches a channel: an ordered consumer on
 * `<p>.msg.channel.>` of the messaging stream (`<P>_MESSAGES`), started lazily by the first
 * watcher from the stream's last sequence + 1, and stopped `idleMs` after the last watcher has
 * gone. A payload is parsed (and checked against the stored message's schema; a bad one is skipped)
 * only when someone watches its channel.
 *
 * Guarantee: once `watch()` has resolved, every post stored in a watched channel from then on
 * reaches the watcher, once, in sequence order, while the gateway's connection lasts (a follow
 * that ends is started again after what it had delivered). So a client that opens its stream and
 * then reads the channel's history, de-duplicating by `seq`, misses nothing. Not guaranteed: posts
 * stored before `watch()` (the history has them), and posts that retention removed before the
 * follow reached them.
 */
import type { Bus } from '../bus/connection.js';
import { followStream, type StreamEntry, type StreamFollow } from '../bus/stream-since.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { StoredMessageSchema } from '../protocol/message.js';

export interface ChannelFeedOptions {
  /** How long the follow runs on after its last watcher has gone, ms (default 60 s). */
  idleMs?: number;
  /** Wait before a follow that ended is started again, ms (default 2 s). */
  retryMs?: number;
}

/** Longest body a `message` event carries, characters; a longer one is cut (`truncated: true`). */
export const CHANNEL_EVENT_BODY_MAX = 2_000;

/** What a `message` event carries: a stored channel post, its body bounded. */
export interface ChannelMessageEvent {
  seq: number;
  channel: string;
  from: string;
  fromKind: 'agent' | 'human' | 'hub';
  title?: string;
  body: string;
  /** Present (true) when the body was cut to {@link CHANNEL_EVENT_BODY_MAX} characters. */
  truncated?: true;
  replyTo?: number;
  threadId?: number;
  /** When the hub stored it, epoch ms. */
  at: number;
}

interface Watcher {
  channels: ReadonlySet<string>;
  fn: (m: ChannelMessageEvent) => void;
}

/** One run of the follow, from its start to its stop. */
interface Session {
  stopped: boolean;
  follow: StreamFollow | undefined;
  /** The next sequence to read: after what was delivered. */
  next: number;
  wake: (() => void) | undefined;
}

/** `text` cut to `max` characters, never inside a surrogate pair. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

export class ChannelFeed {
  private readonly watchers = new Set<Watcher>();
  /** Watchers per channel: a post in a channel nobody watches is not parsed. */
  private readonly watched = new Map<string, number>();
  private session: Session | undefined;
  private ready: Promise<void> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly head: string;
  private readonly log: Bus['log'];
  private readonly idleMs: number;
  private readonly retryMs: number;

  constructor(
    private readonly bus: Bus,
    opts: ChannelFeedOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? 60_000;
    this.retryMs = opts.retryMs ?? 2_000;
    this.head = bus.names.subjects.msgChannel('');
    this.log = bus.log.child({ actor: 'gateway', phase: 'channel-feed' });
  }

  /** Whether the follow runs (or is starting) now. */
  get running(): boolean {
    return this.session !== undefined;
  }

  /** Watchers registered now. */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /**
   * Calls `fn` with every post stored in `channels` once this resolves, until the returned function
   * is called. Resolves once the follow runs; rejects (`unavailable`, nothing registered) when it
   * cannot be started, e.g. the messaging stream is not there.
   */
  async watch(channels: Iterable<string>, fn: (m: ChannelMessageEvent) => void): Promise<() => void> {
    if (this.closed) throw new AgentComError(ERROR_CODES.UNAVAILABLE, 'the gateway is closing');
    const w: Watcher = { channels: new Set(channels), fn };
    this.watchers.add(w);
    for (const c of w.channels) this.watched.set(c, (this.watched.get(c) ?? 0) + 1);
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    let removed = false;
    const unwatch = () => {
      if (removed) return;
      removed = true;
      this.watchers.delete(w);
      for (const c of w.channels) {
        const n = (this.watched.get(c) ?? 1) - 1;
        if (n > 0) this.watched.set(c, n);
        else this.watched.delete(c);
      }
      if (this.watchers.size === 0 && this.session && !this.closed) {
        clearTimeout(this.idleTimer);
        this.idleTimer = setTimeout(() => {
          this.idleTimer = undefined;
          if (this.watchers.size === 0) this.end();
        }, this.idleMs);
        this.idleTimer.unref?.();
      }
    };
    try {
      this.ready ??= this.open();
      await this.ready;
    } catch (err) {
      unwatch();
      throw new AgentComError(
        ERROR_CODES.UNAVAILABLE,
        `the channel feed could not start: ${(err as Error).message}`,
      );
    }
    return unwatch;
  }

  /** Stops the follow for good (the gateway closing); watchers get nothing more. */
  stop(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.watchers.clear();
    this.watched.clear();
    this.end();
  }

  /** Stops the current follow; a later watcher starts a new one. */
  private end(): void {
    const s = this.session;
    this.session = undefined;
    this.ready = undefined;
    if (!s) return;
    s.stopped = true;
    s.follow?.stop();
    s.wake?.();
    this.log.debug('channel feed stopped');
  }

  /** Starts a follow from the stream's last sequence + 1; resolves once it runs. */
  private open(): Promise<void> {
    const s: Session = { stopped: false, follow: undefined, next: 0, wake: undefined };
    this.session = s;
    const ready = (async () => {
      const info = await this.bus.jsm.streams.info(this.bus.names.streams.messages);
      s.next = info.state.last_seq + 1;
      await this.startFollow(s);
    })();
    ready.then(
      () => {
        this.log.debug({ from: s.next }, 'channel feed started');
        void this.keep(s);
      },
      () => {
        // The next watcher tries again.
        if (this.session === s) {
          this.session = undefined;
          this.ready = undefined;
        }
      },
    );
    return ready;
  }

  private async startFollow(s: Session): Promise<void> {
    const f = await followStream(
      this.bus,
      this.bus.names.streams.messages,
      { filter: this.bus.names.subjects.msgChannel('>'), fromSeq: s.next },
      (e) => {
        if (s.stopped || e.seq < s.next) return;
        s.next = e.seq + 1;
        this.onEntry(e);
      },
    );
    if (s.stopped) f.stop();
    else s.follow = f;
  }

  /** While the session lasts: a follow that ends (the stream deleted, a failure) is started again. */
  private async keep(s: Session): Promise<void> {
    while (!s.stopped && s.follow) {
      const end = await s.follow.closed;
      if (s.stopped) return;
      s.follow = undefined;
      this.log.warn({ err: end }, 'the channel feed ended: starting it again');
      while (!s.stopped && !s.follow) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            s.wake = undefined;
            resolve();
          }, this.retryMs);
          s.wake = () => {
            clearTimeout(t);
            s.wake = undefined;
            resolve();
          };
        });
        if (s.stopped) return;
        try {
          // A stream created again starts its sequences over: follow it from its start then.
          const last = (await this.bus.jsm.streams.info(this.bus.names.streams.messages)).state.last_seq;
          if (s.next > last + 1) s.next = last + 1;
          await this.startFollow(s);
        } catch (err) {
          this.log.debug({ err }, 'channel feed: retrying');
        }
      }
    }
  }

  private onEntry(e: StreamEntry): void {
    if (!e.subject.startsWith(this.head)) return;
    const channel = e.subject.slice(this.head.length);
    if (!this.watched.has(channel)) return;
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(e.data).toString('utf8'));
    } catch {
      this.log.debug({ seq: e.seq }, 'channel feed: a post that is not JSON, skipped');
      return;
    }
    const r = StoredMessageSchema.safeParse(value);
    if (!r.success || r.data.kind !== 'channel' || (r.data.channel ?? channel) !== channel) {
      this.log.debug({ seq: e.seq }, 'channel feed: a post that does not parse, skipped');
      return;
    }
    const m = r.data;
    const body = cut(m.body, CHANNEL_EVENT_BODY_MAX);
    const ev: ChannelMessageEvent = {
      seq: e.seq,
      channel,
      from: m.from,
      fromKind: m.fromKind,
      ...(m.title !== undefined ? { title: m.title } : {}),
      body,
      ...(body.length < m.body.length ? { truncated: true as const } : {}),
      ...(m.replyTo !== undefined ? { replyTo: m.replyTo } : {}),
      ...(m.threadId !== undefined ? { threadId: m.threadId } : {}),
      at: m.at,
    };
    for (const w of [...this.watchers]) {
      if (!w.channels.has(channel)) continue;
      try {
        w.fn(ev);
      } catch (err) {
        this.log.warn({ err }, 'channel feed: a watcher failed');
      }
    }
  }
}
