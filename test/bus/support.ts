/**
 * Helpers for the bus tests (not a test file): a bus with a unique prefix (so every test gets its
 * own streams, consumers and buckets) and a silent logger, and a small payload schema.
 */
import { pino } from 'pino';
import { z } from 'zod';
import { type Bus, type BusConnectOptions, connectBus, ensureStream } from '../../src/bus/index.js';
import { versioned } from '../../src/protocol/envelope.js';
import { uniqueName } from '../support/names.js';

export const Job = versioned(1, { n: z.number().int(), note: z.string().optional() });
export type Job = z.infer<typeof Job>;

export const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function testBus(url: string, opts: BusConnectOptions = {}): Promise<Bus> {
  return connectBus({
    servers: url,
    prefix: opts.prefix ?? uniqueName('p'),
    logger: silent,
    reconnectTimeWaitMs: 100,
    ...opts,
  });
}

/** A second connection on the same prefix (another process's view). */
export function peerBus(url: string, of: Bus, opts: BusConnectOptions = {}): Promise<Bus> {
  return testBus(url, { ...opts, prefix: of.names.prefix });
}

export const enc = (s: string) => new TextEncoder().encode(s);

/** A deferred promise, for waiting on events without sleeping. */
export function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Rejects after `ms` with `what`: a deadline, not a sleep. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** The deployment's submit stream (work-queue), as the hub provisions it. */
export function ensureSubmitStream(bus: Bus, storage: 'file' | 'memory' = 'file') {
  const n = bus.names;
  return ensureStream(bus, {
    name: n.streams.submit,
    subjects: [n.subjects.taskSubmit],
    retention: 'workqueue',
    storage,
  });
}
