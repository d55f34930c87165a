/**
 * @module consumer
 * Durable consumer runner: pulls from a durable with `consume()` (callback form, no per-message
 * promise from the client), validates each payload, and calls the handler with at most
 * `concurrency` messages in flight. The handler returns an {@link Outcome}:
 *   - `ack`: done; the message is removed (work-queue streams).
 *   - `retry`: `nak(delay)`, the delay exponential from the delivery count, minus jitter (2.9's nak
 *     ignores `backoff`), or `delayMs`. A handler that throws is a retry. On the last allowed
 *     delivery a retry becomes a dead letter with code `max_deliveries`.
 *   - `dead_letter`: copied to the DLQ with the reason, then `term()`.
 * While a handler runs, the runner sends `working()` every `heartbeatMs` (one timer per runner, not
 * per message), so a slow handler is not redelivered; `ctx.working()` is there for manual control.
 * A payload that is not JSON, fails its schema, has another `v` or exceeds `maxBytes` is
 * dead-lettered at once, without calling the handler (or dropped, when `onInvalid` says so). A DLQ write that fails turns into a retry.
 * Messages that hit max deliveries without ever being settled (process dead, ack_wait expired) are
 * moved by the advisory forwarder (dlq-forwarder.ts), not here.
 * The runner survives server restarts (the client re-pulls) and recovers at once when its durable
 * is deleted (re-provisions it from `spec` and resumes). `stop()` stops pulling, hands queued
 * messages back with `nak()`, waits for in-flight handlers, and flushes their acks.
 * Delivery is at-least-once: handlers must be idempotent.
 * Messages beyond `concurrency` wait in a local buffer (bounded by the durable's max_ack_pending)
 * and are kept alive with `working()`; size `maxAckPending` for fairness across processes.
 * A process that dies holding messages (SIGKILL) leaves them pending on the durable until ack_wait
 * expires; with `adoptUnacked` the next runner has the server redeliver them at once (see the option).
 */
import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import type { z } from 'zod';
import { DEFAULT_MAX_PAYLOAD_BYTES, decodePayload } from '../protocol/envelope.js';
import { ERROR_CODES, type ErrorCode, type WireError } from '../protocol/errors.js';
import { HEADERS } from '../protocol/headers.js';
import { exponentialDelay } from '../runtime/backoff.js';
import type { Bus } from './connection.js';
import { deadLetter } from './dlq.js';
import { Histogram } from './metrics.js';
import { type ConsumerSpec, ensureConsumer } from './provision.js';
import { redeliverUnacked } from './redeliver.js';

/** Publish-to-dispatch latency is recorded for one message in this many (a power of two). */
const P2D_SAMPLE = 4;

// --- Outcomes ---

export type Outcome =
  | { type: 'ack' }
  | { type: 'retry'; delayMs?: number; reason?: string }
  | { type: 'dead_letter'; reason: string; code?: ErrorCode };

const ACK: Outcome = Object.freeze({ type: 'ack' });
export const outcome = {
  ack: (): Outcome => ACK,
  retry: (delayMs?: number, reason?: string): Outcome =>
    delayMs === undefined && reason === undefined
      ? { type: 'retry' }
      : { type: 'retry', ...(delayMs === undefined ? {} : { delayMs }), ...(reason ? { reason } : {}) },
  deadLetter: (reason: string, code?: ErrorCode): Outcome =>
    code ? { type: 'dead_letter', reason, code } : { type: 'dead_letter', reason },
};

// --- Retry delays ---

export interface RetryPolicy {
  /** Delay after the first delivery, ms (default 1000). */
  baseMs: number;
  /** Upper bound, ms (default 60 000). */
  maxMs: number;
  /** Relative jitter, 0..1 (default 0.2: the delay is scaled by a random factor in (0.8, 1]). */
  jitter: number;
}
export const DEFAULT_RETRY: RetryPolicy = { baseMs: 1_000, maxMs: 60_000, jitter: 0.2 };

/** `min(maxMs, baseMs * 2^(deliveryCount-1))` minus up to `jitter` of it, whole ms (shared backoff). */
export function retryDelay(
  deliveryCount: number,
  policy: RetryPolicy = DEFAULT_RETRY,
  rand = Math.random,
): number {
  const d = exponentialDelay(
    deliveryCount - 1,
    { min: policy.baseMs, max: policy.maxMs },
    { jitter: policy.jitter, random: rand },
  );
  return Math.max(0, Math.round(d));
}

/**
 * Waits between attempts to re-provision a lost durable: 100 ms, 200 ms ... 5 s, minus up to 20%
 * jitter, since every runner on a stream (one per agent) loses its durable at the same moment.
 */
const RECOVERY_BACKOFF = { min: 100, max: 5_000 };
const RECOVERY_JITTER = { jitter: 0.2 };

// --- Context ---

export interface MessageContext {
  readonly subject: string;
  readonly stream: string;
  readonly consumer: string;
  readonly streamSeq: number;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  readonly redelivered: boolean;
  /** Max deliveries of the durable (-1 = unlimited). */
  readonly maxDeliver: number;
  readonly msgId: string | null;
  readonly correlationId: string | null;
  readonly traceparent: string | null;
  /** When the message was stored in the stream. */
  readonly publishedAt: Date;
  header(name: string): string | undefined;
  readonly headers: MsgHdrs | undefined;
  /** Resets ack_wait now (the runner also does this periodically while the handler runs). */
  working(): void;
}

export type Handler<T> = (payload: T, ctx: MessageContext) => Outcome | Promise<Outcome>;

export interface ConsumerRunnerOptions<T> {
  /** The durable; created/updated at start and re-created if deleted while running. */
  spec: ConsumerSpec;
  schema: z.ZodType<T>;
  handler: Handler<T>;
  /** Handlers running at once in this process (default 32). */
  concurrency?: number;
  /** Payload limit, bytes (default 256 KiB); larger payloads are dead-lettered. */
  maxBytes?: number;
  retry?: Partial<RetryPolicy>;
  /** Period of automatic `working()` for running handlers, ms (default ack_wait / 3). */
  heartbeatMs?: number;
  /** Stop heartbeating a handler after this long, so a hung handler is redelivered (default: never). */
  maxHandlerMs?: number;
  /** Messages per pull request (consume `max_messages`, default max(64, concurrency)). */
  pullBatch?: number;
  /** Pull request expiry, ms (default 10 000). Shorter = faster recovery, more idle requests. */
  expiresMs?: number;
  /** Provision the durable before starting (default true). */
  provision?: boolean;
  /**
   * Told of every invalid payload (with the subject, which names the sender on per-sender
   * subjects); returns whether it is dead-lettered (the default) or dropped: acked and counted
   * only, for a sender whose flood of bad messages must not fill the DLQ.
   */
  onInvalid?: (error: WireError, subject: string) => 'dead_letter' | 'drop';
  /**
   * At start, before pulling, have the server redeliver at once what this durable delivered
   * earlier and never saw acknowledged (held by a process that died: it would come back only
   * after ack_wait). The runner sends a NAK for each sequence between the durable's ack floor and
   * its last delivered one (redeliver.ts). These are ordinary redeliveries: they count toward
   * max_deliver, run within `concurrency`, and are settled as usual, so a message that crashes
   * every process handling it still ends in the DLQ. Only for a
   * durable that one process consumes at a time (e.g. behind a lease): messages in flight in
   * another live consumer of the durable would be handled twice at once. Default false.
   */
  adoptUnacked?: boolean;
}

export interface ConsumerStats {
  stream: string;
  consumer: string;
  dispatched: number;
  acked: number;
  nacked: number;
  deadLettered: number;
  /** Invalid payloads acked without a dead letter (`onInvalid`). */
  dropped: number;
  handlerErrors: number;
  recoveries: number;
  inFlight: number;
  queued: number;
  publishToDispatchMs: ReturnType<Histogram['summary']>;
  ackMs: ReturnType<Histogram['summary']>;
}

export interface ConsumerRunner {
  stats(): ConsumerStats;
  /** Stops pulling, naks queued messages, waits for in-flight handlers (up to `timeoutMs`), flushes. */
  stop(opts?: { timeoutMs?: number }): Promise<void>;
}

interface Inflight {
  m: JsMsg;
  start: number;
  lastBeat: number;
}

/** Starts a runner; resolves once the durable exists and pulling has started. */
export async function runConsumer<T>(bus: Bus, opts: ConsumerRunnerOptions<T>): Promise<ConsumerRunner> {
  const r = new Runner(bus, opts);
  await r.start();
  return r;
}

class Runner<T> implements ConsumerRunner {
  private readonly spec: ConsumerSpec;
  private readonly concurrency: number;
  private readonly maxBytes: number;
  private readonly retryPolicy: RetryPolicy;
  private maxDeliver = -1;
  private heartbeatMs = 10_000;
  private consumer: Consumer | undefined;
  private messages: ConsumerMessages | undefined;
  private generation = 0;
  private readonly inflight = new Set<Inflight>();
  private queue: JsMsg[] = [];
  private queueHead = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private recovering: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly c = {
    dispatched: 0,
    acked: 0,
    nacked: 0,
    deadLettered: 0,
    dropped: 0,
    handlerErrors: 0,
    recoveries: 0,
  };
  private readonly p2d = new Histogram();
  private readonly ackH = new Histogram();

  constructor(
    private readonly bus: Bus,
    private readonly opts: ConsumerRunnerOptions<T>,
  ) {
    this.spec = opts.spec;
    this.concurrency = Math.max(1, opts.concurrency ?? 32);
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.retryPolicy = { ...DEFAULT_RETRY, ...opts.retry };
    bus.metrics.trackRunner({ p2d: this.p2d, ack: this.ackH });
  }

  async start(): Promise<void> {
    if (this.opts.provision !== false) await ensureConsumer(this.bus, this.spec);
    if (this.opts.adoptUnacked) await redeliverUnacked(this.bus, this.spec.stream, this.spec.durable);
    await this.attach();
    this.timer = setInterval(() => this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  private async attach(): Promise<void> {
    const consumer = await this.bus.js.consumers.get(this.spec.stream, this.spec.durable);
    const info = await consumer.info(true);
    this.maxDeliver = info.config.max_deliver ?? -1;
    const ackWaitMs = Math.max(1, Math.round((info.config.ack_wait ?? 30e9) / 1e6));
    this.heartbeatMs = this.opts.heartbeatMs ?? Math.max(50, Math.floor(ackWaitMs / 3));
    this.consumer = consumer;
    const gen = ++this.generation;
    const messages = await consumer.consume({
      max_messages: this.opts.pullBatch ?? Math.max(64, this.concurrency),
      expires: this.opts.expiresMs ?? 10_000,
      callback: (m) => this.onMessage(m),
    });
    this.messages = messages;
    void this.watch(messages, gen);
    void messages.closed().then(
      (err) => this.onClosed(gen, err),
      (err) => this.onClosed(gen, err),
    );
  }

  private async watch(messages: ConsumerMessages, gen: number): Promise<void> {
    try {
      for await (const s of messages.status()) {
        if (gen !== this.generation || this.stopping) return;
        switch (s.type) {
          case 'consumer_deleted':
          case 'consumer_not_found':
          case 'stream_not_found':
            void this.recover(s.type);
            return;
          case 'heartbeats_missed':
          case 'exceeded_limits':
          case 'no_responders':
            this.bus.log.debug(
              { stream: this.spec.stream, consumer: this.spec.durable, status: s },
              'consumer status',
            );
            break;
          default:
            break;
        }
      }
    } catch (err) {
      this.bus.log.debug({ err }, 'consumer status iterator ended');
    }
  }

  private onClosed(gen: number, err: unknown): void {
    if (gen !== this.generation || this.stopping || this.bus.isClosed()) return;
    void this.recover(err instanceof Error ? `consume closed: ${err.message}` : 'consume closed');
  }

  /** Re-provisions the durable and resumes pulling; retries with backoff until it works or stop(). */
  private recover(reason: string): Promise<void> {
    if (this.recovering) return this.recovering;
    this.c.recoveries++;
    const log = this.bus.log;
    log.warn({ stream: this.spec.stream, consumer: this.spec.durable, reason }, 'consumer lost; recovering');
    this.recovering = (async () => {
      const old = this.messages;
      this.generation++;
      this.messages = undefined;
      await old?.close().catch(() => undefined);
      for (let attempt = 0; !this.stopping && !this.bus.isClosed(); attempt++) {
        try {
          await ensureConsumer(this.bus, this.spec);
          if (this.stopping) break;
          await this.attach();
          log.info({ stream: this.spec.stream, consumer: this.spec.durable, attempt }, 'consumer recovered');
          break;
        } catch (err) {
          log.warn(
            { err, stream: this.spec.stream, consumer: this.spec.durable, attempt },
            'consumer recovery failed',
          );
          await sleep(exponentialDelay(attempt, RECOVERY_BACKOFF, RECOVERY_JITTER));
        }
      }
    })().finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  // --- Hot path ---

  private onMessage(m: JsMsg): void {
    if (this.stopping) {
      m.nak();
      return;
    }
    if (this.inflight.size >= this.concurrency) {
      this.queue.push(m);
      return;
    }
    this.dispatch(m);
  }

  private dispatch(m: JsMsg): void {
    const now = performance.now();
    const entry: Inflight = { m, start: now, lastBeat: now };
    this.inflight.add(entry);
    // Publish-to-dispatch is sampled (1 in P2D_SAMPLE): it needs the delivery info parsed from
    // the reply subject, which the ack path otherwise never touches.
    if ((this.c.dispatched & (P2D_SAMPLE - 1)) === 0)
      this.p2d.record(Date.now() - m.info.timestampNanos / 1e6);
    this.c.dispatched++;
    this.bus.metrics.dispatched++;
    const log = this.bus.log;
    if (log.isLevelEnabled('debug')) {
      const info = m.info;
      log.debug(
        {
          ...ids(m),
          subject: m.subject,
          stream: info.stream,
          consumer: info.consumer,
          seq: info.streamSequence,
          deliveries: info.deliveryCount,
        },
        'dispatch',
      );
    }
    const decoded = decodePayload(this.opts.schema, m.data, this.maxBytes);
    if (!decoded.ok) {
      if (this.opts.onInvalid?.(decoded.error, m.subject) === 'drop') {
        this.c.dropped++;
        this.settle(entry, ACK);
      } else void this.deadLetterAndTerm(entry, decoded.error);
      return;
    }
    let result: Outcome | Promise<Outcome>;
    try {
      result = this.opts.handler(decoded.value, new Ctx(m, entry, this.maxDeliver));
    } catch (err) {
      this.onHandlerError(entry, err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (o) => this.settle(entry, o),
        (err) => this.onHandlerError(entry, err),
      );
    } else {
      this.settle(entry, result);
    }
  }

  private onHandlerError(entry: Inflight, err: unknown): void {
    this.c.handlerErrors++;
    this.bus.metrics.handlerErrors++;
    this.bus.log.warn(
      {
        err,
        ...ids(entry.m),
        stream: this.spec.stream,
        consumer: this.spec.durable,
        deliveries: entry.m.info.deliveryCount,
      },
      'handler threw; retrying',
    );
    this.settle(entry, { type: 'retry', reason: err instanceof Error ? err.message : String(err) });
  }

  private settle(entry: Inflight, o: Outcome): void {
    const m = entry.m;
    switch (o?.type) {
      case 'ack': {
        m.ack();
        this.c.acked++;
        this.bus.metrics.acked++;
        this.ackH.record(performance.now() - entry.start);
        if (this.bus.log.isLevelEnabled('debug')) this.bus.log.debug({ ...ids(m), seq: m.seq }, 'ack');
        this.finish(entry);
        return;
      }
      case 'retry': {
        const n = m.info.deliveryCount;
        if (this.maxDeliver > 0 && n >= this.maxDeliver) {
          void this.deadLetterAndTerm(entry, {
            code: ERROR_CODES.MAX_DELIVERIES,
            message: `gave up after ${n} deliveries${o.reason ? `: ${o.reason}` : ''}`,
          });
          return;
        }
        this.nak(entry, o.delayMs ?? retryDelay(n, this.retryPolicy), o.reason);
        this.finish(entry);
        return;
      }
      case 'dead_letter':
        void this.deadLetterAndTerm(entry, {
          code: o.code ?? ERROR_CODES.INVALID_PAYLOAD,
          message: o.reason,
        });
        return;
      default:
        this.bus.log.error({ outcome: o, ...ids(m) }, 'handler returned no valid outcome; retrying');
        this.nak(entry, retryDelay(m.info.deliveryCount, this.retryPolicy), 'invalid outcome');
        this.finish(entry);
    }
  }

  private nak(entry: Inflight, delayMs: number, reason?: string): void {
    entry.m.nak(delayMs);
    this.c.nacked++;
    this.bus.metrics.nacked++;
    if (this.bus.log.isLevelEnabled('debug')) {
      this.bus.log.debug(
        {
          ...ids(entry.m),
          seq: entry.m.seq,
          deliveries: entry.m.info.deliveryCount,
          delay_ms: delayMs,
          reason,
        },
        'nak',
      );
    }
  }

  private async deadLetterAndTerm(entry: Inflight, reason: WireError): Promise<void> {
    const m = entry.m;
    const info = m.info;
    try {
      await deadLetter(this.bus, {
        subject: m.subject,
        headers: m.headers,
        data: m.data,
        stream: info.stream,
        consumer: info.consumer,
        streamSeq: info.streamSequence,
        deliveries: info.deliveryCount,
        reason,
      });
      // Only after the copy is stored: term() deletes the original on work-queue streams.
      m.term();
      this.c.deadLettered++;
    } catch (err) {
      this.bus.log.error(
        { err, ...ids(m), seq: info.streamSequence },
        'dead-letter write failed; retrying later',
      );
      this.nak(entry, retryDelay(info.deliveryCount, this.retryPolicy), 'dlq write failed');
    }
    this.finish(entry);
  }

  private finish(entry: Inflight): void {
    this.inflight.delete(entry);
    while (this.inflight.size < this.concurrency && this.queueHead < this.queue.length) {
      const next = this.queue[this.queueHead++]!;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.queueHead);
        this.queueHead = 0;
      }
      if (this.stopping) next.nak();
      else this.dispatch(next);
    }
    if (this.inflight.size === 0 && this.idleWaiters.length) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Keeps running handlers and buffered messages alive (one timer for all of them). */
  private beat(): void {
    const now = performance.now();
    const max = this.opts.maxHandlerMs;
    const due = this.heartbeatMs * 0.8;
    for (const e of this.inflight) {
      if (now - e.lastBeat < due) continue;
      if (max !== undefined && now - e.start > max) continue;
      e.m.working();
      e.lastBeat = now;
    }
    for (let i = this.queueHead; i < this.queue.length; i++) this.queue[i]!.working();
  }

  stats(): ConsumerStats {
    return {
      stream: this.spec.stream,
      consumer: this.spec.durable,
      ...this.c,
      inFlight: this.inflight.size,
      queued: this.queue.length - this.queueHead,
      publishToDispatchMs: this.p2d.summary(),
      ackMs: this.ackH.summary(),
    };
  }

  stop(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped) return this.stopped;
    this.stopping = true;
    this.stopped = (async () => {
      this.generation++;
      await this.messages?.close().catch(() => undefined);
      for (let i = this.queueHead; i < this.queue.length; i++) this.queue[i]!.nak();
      this.queue = [];
      this.queueHead = 0;
      if (this.inflight.size > 0) {
        let timeout: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((r) => this.idleWaiters.push(r)),
          new Promise<void>((r) => {
            timeout = setTimeout(r, opts.timeoutMs ?? 30_000);
          }),
        ]);
        clearTimeout(timeout);
        if (this.inflight.size > 0) {
          this.bus.log.warn(
            { stream: this.spec.stream, consumer: this.spec.durable, in_flight: this.inflight.size },
            'stop timed out with handlers still running; their messages will be redelivered',
          );
        }
      }
      clearInterval(this.timer);
      if (!this.bus.isClosed()) await this.bus.nc.flush().catch(() => undefined);
    })();
    return this.stopped;
  }
}

class Ctx implements MessageContext {
  constructor(
    private readonly m: JsMsg,
    private readonly entry: Inflight,
    readonly maxDeliver: number,
  ) {}
  get subject() {
    return this.m.subject;
  }
  get stream() {
    return this.m.info.stream;
  }
  get consumer() {
    return this.m.info.consumer;
  }
  get streamSeq() {
    return this.m.info.streamSequence;
  }
  get deliveryCount() {
    return this.m.info.deliveryCount;
  }
  get redelivered() {
    return this.m.info.deliveryCount > 1;
  }
  get publishedAt() {
    return new Date(this.m.info.timestampNanos / 1e6);
  }
  get headers() {
    return this.m.headers;
  }
  get msgId() {
    return this.m.headers?.get(HEADERS.MSG_ID) || null;
  }
  get correlationId() {
    return this.m.headers?.get(HEADERS.CORRELATION_ID) || null;
  }
  get traceparent() {
    return this.m.headers?.get(HEADERS.TRACEPARENT) || null;
  }
  header(name: string) {
    return this.m.headers?.get(name) || undefined;
  }
  working() {
    this.m.working();
    this.entry.lastBeat = performance.now();
  }
}

function ids(m: JsMsg): { msg_id: string | undefined; correlation_id: string | undefined } {
  const h = m.headers;
  return {
    msg_id: h?.get(HEADERS.MSG_ID) || undefined,
    correlation_id: h?.get(HEADERS.CORRELATION_ID) || undefined,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
