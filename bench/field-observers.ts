/**
 * A child process of bench/field.ts holding some of the latency section's observers, each on its
 * own connection: agents observing through the hub (`FieldClient.observe`, mode `hub`) or raw KV
 * watches of a plain bucket (mode `raw`). Records, per observer, observed - t of every measured
 * pheromone (payload {seq, t}; t is the parent's clock, corrected with the offset the parent
 * measures by `ping`). Driven over IPC: start -> ready, ping -> pong, stop -> result, exit.
 */
import { Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { FieldClient } from '../src/agent/field.js';
import { type Bus, connectBus } from '../src/bus/connection.js';
import type { Pheromone } from '../src/protocol/field.js';
import { agentInboxPrefix } from '../src/protocol/permissions.js';
import { nowMs } from './peers/common.js';

export interface ObserverSession {
  mode: 'hub' | 'raw';
  url: string;
  prefix: string;
  /** One observer per name (an agent id in mode hub). */
  names: string[];
  /** Mode hub: the pattern observed; mode raw: the bucket and the key filter watched. */
  pattern: string;
  bucket?: string;
  /** Measured seqs are 0..n-1. */
  n: number;
}

export type ToObservers =
  | { type: 'start'; session: ObserverSession }
  | { type: 'ping'; id: number }
  | { type: 'stop' }
  | { type: 'exit' };

export type FromObservers =
  | { type: 'ready'; observeCallMs: number[] }
  | { type: 'pong'; id: number; t: number }
  | { type: 'seen'; seen: number }
  | {
      type: 'result';
      /** Per observer, per seq: ms, or null when not seen. */
      latencies: (number | null)[][];
      duplicates: number;
      otherObservations: number;
      initialObservations: number;
    }
  | { type: 'error'; message: string };

const send = (m: FromObservers) => process.send?.(m);

let current: { stop(): Promise<FromObservers> } | null = null;

async function start(s: ObserverSession) {
  const buses: Bus[] = [];
  for (let i = 0; i < s.names.length; i += 10)
    buses.push(
      ...(await Promise.all(
        s.names.slice(i, i + 10).map((name) =>
          connectBus({
            servers: s.url,
            prefix: s.prefix,
            name,
            ...(s.mode === 'hub' ? { inboxPrefix: agentInboxPrefix(name) } : {}),
            logger: pino({ level: 'warn' }, pino.destination(2)),
          }),
        ),
      )),
    );
  const tables = s.names.map(() => new Float64Array(s.n).fill(Number.NaN));
  let seen = 0;
  let duplicates = 0;
  let otherObservations = 0;
  let initialObservations = 0;
  const see = (oi: number, seq: number, ms: number) => {
    const t = tables[oi]!;
    if (!Number.isNaN(t[seq]!)) {
      duplicates++;
      return;
    }
    t[seq] = ms;
    seen++;
  };
  const observeCallMs: number[] = [];
  const stops: (() => void)[] = [];
  const readers: Promise<void>[] = [];
  await Promise.all(
    buses.map(async (b, oi) => {
      const t = nowMs();
      if (s.mode === 'hub') {
        const o = await new FieldClient(b, { agentId: s.names[oi]!, timeoutMs: 40_000 }).observe([s.pattern]);
        observeCallMs.push(nowMs() - t);
        stops.push(() => o.stop());
        readers.push(
          (async () => {
            for await (const x of o) {
              const now = nowMs();
              const p = x.pheromone;
              if (x.initial) initialObservations++;
              if (p.event !== 'emitted' || x.gone) {
                otherObservations++;
                continue;
              }
              if (p.payload.warm) continue;
              see(oi, p.payload.seq as number, now - (p.payload.t as number));
            }
          })(),
        );
      } else {
        const it = await (await new Kvm(b.nc).open(s.bucket!)).watch({ key: s.pattern });
        observeCallMs.push(nowMs() - t);
        stops.push(() => it.stop());
        readers.push(
          (async () => {
            for await (const e of it) {
              const now = nowMs();
              if (e.operation !== 'PUT') {
                otherObservations++;
                continue;
              }
              const p = e.json<Pheromone>();
              if (p.payload.warm) continue;
              see(oi, p.payload.seq as number, now - (p.payload.t as number));
            }
          })(),
        );
      }
    }),
  );
  const ticker = setInterval(() => send({ type: 'seen', seen }), 50);
  send({ type: 'ready', observeCallMs });
  current = {
    async stop() {
      clearInterval(ticker);
      for (const st of stops) st();
      await Promise.all(readers);
      await Promise.allSettled(buses.map((b) => b.drain()));
      return {
        type: 'result',
        latencies: tables.map((t) => Array.from(t, (x) => (Number.isNaN(x) ? null : x))),
        duplicates,
        otherObservations,
        initialObservations,
      };
    },
  };
}

process.on('message', (m: ToObservers) => {
  switch (m.type) {
    case 'start':
      start(m.session).catch((err: unknown) =>
        send({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
      );
      return;
    case 'ping':
      send({ type: 'pong', id: m.id, t: nowMs() });
      return;
    case 'stop': {
      const c = current;
      current = null;
      if (c)
        c.stop().then(send, (err: unknown) =>
          send({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
        );
      return;
    }
    case 'exit':
      process.exit(0);
  }
});
// The parent gone: nothing to report to.
process.on('disconnect', () => process.exit(0));
