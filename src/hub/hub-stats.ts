/**
 * @module hub-stats
 * Every hub process (leader or standby) publishes its own gauge on `<p>.hub.<hubId>.stats` every
 * status interval: children restarted by any of its supervisors, bus reconnects and disconnects,
 * event-loop lag over the interval, whether it leads and how often it took the lease, its memory.
 * Gateways export them per hub (src/gateway/metrics.ts). Core NATS, best effort: a sample published
 * during a disconnect is lost and the next one replaces it; a failed sample is logged, never thrown.
 *
 * Counters live per hub process (keyed by the hub's registry, which outlives restarts of its core),
 * so they do not fall back to 0 when the services tree restarts. Supervisors are found by walking
 * the tree from the named roots, and again from every supervisor a watched one starts: a restart
 * inside a supervisor that started less than a walk ago may be missed, never counted twice.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Bus } from '../bus/connection.js';
import { publishCore } from '../bus/subscribe.js';
import { type HubStats, HubStatsSchema } from '../protocol/status.js';
import {
  call,
  DynamicSupervisor,
  type Pid,
  type Registry,
  type ServerContext,
  Supervisor,
  type SupervisorReport,
} from '../runtime/index.js';
import type { Server } from '../runtime/server.js';

/** The counters of one hub process. */
export class HubCounters {
  readonly startedAt = Date.now();
  supervisorRestarts = 0;
  supervisorEscalations = 0;
  busReconnects = 0;
  busDisconnects = 0;
  leaseAcquisitions = 0;
  private readonly watched = new WeakSet<Pid>();

  /** Told by the Leader actor's role changes. */
  role(role: 'leader' | 'standby'): void {
    if (role === 'leader') this.leaseAcquisitions++;
  }

  /** Counts the reports of `sup` and of every supervisor below it, now and as they start. */
  async walk(sup: Supervisor | DynamicSupervisor): Promise<void> {
    if (!sup.alive) return;
    if (!this.watched.has(sup)) {
      this.watched.add(sup);
      sup.subscribe((r) => this.report(r));
    }
    const counts = await sup.countChildren();
    // A dynamic supervisor of workers (the AgentFSMs) is not listed child by child.
    if (!counts.ok || counts.value.supervisors === 0) return;
    const children = await sup.whichChildren();
    if (!children.ok) return;
    for (const c of children.value)
      if (typeof c.pid === 'object' && isSupervisor(c.pid)) await this.walk(c.pid);
  }

  private report(r: SupervisorReport): void {
    if (r.type === 'restarted') this.supervisorRestarts++;
    else if (r.type === 'reached_max_restart_intensity') this.supervisorEscalations++;
    if ((r.type === 'progress' || r.type === 'restarted') && isSupervisor(r.pid)) void this.walk(r.pid);
  }
}

function isSupervisor(pid: Pid): pid is Supervisor | DynamicSupervisor {
  return pid instanceof Supervisor || pid instanceof DynamicSupervisor;
}

const perHub = new WeakMap<Registry, HubCounters>();

/** The counters of the hub whose registry is `registry` (created on first use). */
export function hubCounters(registry: Registry): HubCounters {
  let c = perHub.get(registry);
  if (!c) {
    c = new HubCounters();
    perHub.set(registry, c);
  }
  return c;
}

export interface HubStatsInput {
  bus: Bus;
  registry: Registry;
  log: Logger;
  hubId: string;
  version: string;
  /** Publish period, ms. */
  intervalMs: number;
  counters: HubCounters;
  /** Registered names of the supervisors to walk from (default: the hub's root and `services`). */
  roots?: string[];
  /** Registered name of the Leader actor, asked whether this hub leads now (default `leader`). */
  leader?: string;
}

/** Event-loop delay sampling resolution, ms: the monitor's timer period, taken off every reading. */
const LAG_RESOLUTION_MS = 20;

/** The per-hub publisher (a server child of `services`: on every hub). */
export class HubStatsProcess implements Server<{ type: 'tick' }> {
  private readonly lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  private readonly timer: NodeJS.Timeout;
  private readonly offStatus: () => void;
  private running = false;

  private constructor(
    private readonly input: HubStatsInput,
    ctx: ServerContext,
  ) {
    const c = input.counters;
    this.lag.enable();
    this.offStatus = input.bus.onStatus((e) => {
      if (e.type === 'reconnect') c.busReconnects++;
      else if (e.type === 'disconnect') c.busDisconnects++;
    });
    this.timer = setInterval(() => ctx.send({ type: 'tick' }), input.intervalMs);
    this.timer.unref();
    ctx.send({ type: 'tick' });
  }

  static start(input: HubStatsInput, ctx: ServerContext): HubStatsProcess {
    return new HubStatsProcess(input, ctx);
  }

  handle(): void {
    if (this.running) return;
    this.running = true;
    this.publish()
      .catch((err) => this.input.log.warn({ err, actor: 'hub-stats' }, 'hub stats sample failed'))
      .finally(() => {
        this.running = false;
      });
  }

  terminate(): void {
    clearInterval(this.timer);
    this.offStatus();
    this.lag.disable();
  }

  /** One sample (also what each tick publishes). */
  async sample(): Promise<HubStats> {
    const { registry, counters: c } = this.input;
    for (const name of this.input.roots ?? ['hub', 'services']) {
      const pid = registry.whereis(name);
      if (pid && isSupervisor(pid)) await c.walk(pid);
    }
    const status = await call<{ leader: boolean }>(
      this.input.leader ?? 'leader',
      { type: 'status' },
      { registry, timeout: 1_000 },
    );
    const ms = (ns: number) => Math.max(0, ns / 1e6 - LAG_RESOLUTION_MS);
    const h = this.lag;
    const lag =
      h.count > 0
        ? {
            p50_ms: ms(h.percentile(50)),
            p99_ms: ms(h.percentile(99)),
            max_ms: ms(h.max),
            mean_ms: ms(h.mean),
          }
        : { p50_ms: 0, p99_ms: 0, max_ms: 0, mean_ms: 0 };
    h.reset();
    return {
      v: 1,
      hubId: this.input.hubId,
      version: this.input.version,
      at: Date.now(),
      intervalMs: this.input.intervalMs,
      startedAt: c.startedAt,
      leader: status.ok && status.value.leader,
      leaseAcquisitions: c.leaseAcquisitions,
      supervisorRestarts: c.supervisorRestarts,
      supervisorEscalations: c.supervisorEscalations,
      busReconnects: c.busReconnects,
      busDisconnects: c.busDisconnects,
      eventLoopLag: lag,
      rssBytes: process.memoryUsage.rss(),
    };
  }

  private async publish(): Promise<void> {
    const s = await this.sample();
    const bus = this.input.bus;
    if (!bus.isClosed()) publishCore(bus, bus.names.subjects.hubStats(this.input.hubId), HubStatsSchema, s);
  }
}
