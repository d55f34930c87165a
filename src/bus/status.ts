/**
 * @module status
 * The bus status gauge: every `intervalMs` (default 5 s) it samples each stream's depth, each
 * consumer's pending / ack-pending / redelivered counts and the DLQ size from JetStream, adds this
 * process's counters and latencies, and publishes the sample on `<prefix>.status.bus` as core NATS
 * (best effort: a sample during a disconnect is simply lost; the next one replaces it).
 * A failed sample is logged, never thrown: an observer must not break the bus.
 * Consumers: at most `maxConsumers` (default 200) are listed, those furthest behind; the rest are
 * counted in `consumersOmitted`. With one inbox durable per agent, 10,000 agents would make a
 * sample of 1.5 MB, past the server's max_payload (1 MB by default), and it would never be sent.
 */
import type { BusStatus } from '../protocol/status.js';
import type { Bus } from './connection.js';

export interface StatusPublisherOptions {
  /** Publish period, ms (default 5000). */
  intervalMs?: number;
  /** Streams to report (default: every stream of the deployment's names). */
  streams?: string[];
  /** Include this process's counters (default true). */
  includeLocal?: boolean;
  /** Consumers listed at most, those with the most pending + ack-pending first (default 200). */
  maxConsumers?: number;
}

export interface StatusPublisher {
  /** Takes one sample now (also what each tick publishes). */
  sample(): Promise<BusStatus>;
  stop(): void;
}

export async function sampleBusStatus(bus: Bus, opts: StatusPublisherOptions = {}): Promise<BusStatus> {
  const streams = opts.streams ?? Object.values(bus.names.streams);
  const status: BusStatus = {
    v: 1,
    at: new Date().toISOString(),
    prefix: bus.names.prefix,
    streams: [],
    consumers: [],
    dlq: { messages: 0, bytes: 0 },
  };
  await Promise.all(
    streams.map(async (name) => {
      let info: Awaited<ReturnType<typeof bus.jsm.streams.info>>;
      try {
        info = await bus.jsm.streams.info(name);
      } catch {
        return; // not provisioned (yet): absent from the gauge
      }
      status.streams.push({
        name,
        messages: info.state.messages,
        bytes: info.state.bytes,
        consumers: info.state.consumer_count,
      });
      if (name === bus.names.streams.dlq)
        status.dlq = { messages: info.state.messages, bytes: info.state.bytes };
      if (info.state.consumer_count === 0) return;
      for await (const ci of bus.jsm.consumers.list(name)) {
        status.consumers.push({
          stream: name,
          name: ci.name,
          pending: ci.num_pending,
          ack_pending: ci.num_ack_pending,
          redelivered: ci.num_redelivered,
          waiting: ci.num_waiting,
        });
      }
    }),
  );
  status.streams.sort((a, b) => a.name.localeCompare(b.name));
  const max = opts.maxConsumers ?? 200;
  if (status.consumers.length > max) {
    const behind = (c: BusStatus['consumers'][number]) => c.pending + c.ack_pending;
    status.consumers.sort((a, b) => behind(b) - behind(a));
    status.consumersOmitted = status.consumers.length - max;
    status.consumers.length = max;
  }
  status.consumers.sort((a, b) => a.stream.localeCompare(b.stream) || a.name.localeCompare(b.name));
  if (opts.includeLocal !== false) status.local = bus.metrics.snapshot();
  return status;
}

/** Starts the periodic publisher; the first sample goes out right away. */
export function startStatusPublisher(bus: Bus, opts: StatusPublisherOptions = {}): StatusPublisher {
  const subject = bus.names.subjects.busStatus;
  let running = false;
  const tick = async () => {
    if (running || bus.isClosed()) return;
    running = true;
    try {
      const s = await sampleBusStatus(bus, opts);
      if (!bus.isClosed()) bus.nc.publish(subject, JSON.stringify(s));
    } catch (err) {
      bus.log.warn({ err }, 'bus status sample failed');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(tick, opts.intervalMs ?? 5_000);
  timer.unref();
  void tick();
  return {
    sample: () => sampleBusStatus(bus, opts),
    stop: () => clearInterval(timer),
  };
}
