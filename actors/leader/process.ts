/**
 * @module leader/process
 * The Leader actor: leader election for a deployment with several hubs. It renews a KV lease
 * (lease.ts) every third of its lifetime; while this hub holds it, the hub's work tree (TaskQueue,
 * Agents, Presence, Scheduler, API, DLQ forwarder, status) runs as the only child of the `work-slot`
 * dynamic supervisor, and on every other hub it does not run at all. So exactly one hub consumes
 * submissions and reports and writes task records in the normal case; compare-and-set on every
 * record still protects the short overlap when a leader loses the lease mid-write.
 * If the lease cannot be renewed before it runs out (NATS unreachable, process starved), the work
 * tree is stopped: another hub may take over right after expiry. A standby takes over within one
 * lease lifetime of the leader's death; a leader that stops gracefully releases the lease at once.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import { openKv } from '../../src/bus/kv.js';
import { LeaseSchema } from '../../src/protocol/registration.js';
import type { ChildSpecInput, DynamicSupervisor, Pid, Registry } from '../../src/runtime/index.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import { LeaseKeeper } from './lease.js';

export interface LeaderInput {
  bus: Bus;
  registry: Registry;
  log: Logger;
  hubId: string;
  leaseTtlMs: number;
  /** Registered name of the one-slot dynamic supervisor the work tree runs in. */
  workSlot: string;
  /** The work tree, started while the lease is held. */
  work: ChildSpecInput;
}

export type LeaderMessage =
  | { type: 'tick' }
  | { type: 'status'; reply?: (s: { leader: boolean; expiresAt: number }) => void };

export class LeaderProcess implements Server<LeaderMessage> {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private work: Pid | undefined;
  private busy = false;
  private stopped = false;

  private constructor(
    private readonly input: LeaderInput,
    private readonly ctx: ServerContext,
    private readonly lease: LeaseKeeper,
  ) {
    this.log = input.log.child({ actor: 'leader' });
  }

  static async start(input: LeaderInput, ctx: ServerContext): Promise<LeaderProcess> {
    const kv = await openKv(input.bus, input.bus.names.buckets.leases, LeaseSchema);
    const l = new LeaderProcess(input, ctx, new LeaseKeeper(kv, input.hubId, input.leaseTtlMs));
    l.timer = setInterval(() => ctx.send({ type: 'tick' }), Math.max(100, Math.floor(input.leaseTtlMs / 3)));
    l.timer.unref();
    ctx.send({ type: 'tick' });
    return l;
  }

  handle(msg: LeaderMessage): void {
    if (msg.type === 'status') {
      msg.reply?.({ leader: this.lease.isHeld && this.work !== undefined, expiresAt: this.lease.expiresAt });
      return;
    }
    if (this.busy || this.stopped) return; // one election step at a time
    this.busy = true;
    this.step()
      .catch((err) => this.ctx.crash(err))
      .finally(() => {
        this.busy = false;
      });
  }

  async terminate(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.stopWork('hub stopping');
    await this.lease.release().catch(() => {});
  }

  private async step(): Promise<void> {
    let held: boolean;
    try {
      held = await this.lease.refresh();
    } catch (err) {
      // Cannot reach the lease: keep working only while the lease we last renewed still runs.
      held = this.lease.isHeld && Date.now() < this.lease.expiresAt - this.input.leaseTtlMs / 3;
      this.log.warn({ err, phase: 'lease', held }, 'lease refresh failed');
    }
    if (held && !this.work?.alive) await this.startWork();
    else if (!held && this.work) await this.stopWork('lease lost');
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
    const r = await slot.startChild(this.input.work);
    if (!r.ok || !r.value.pid)
      throw new Error(`work tree failed to start: ${JSON.stringify(r.ok ? 'ignored' : r.error)}`);
    this.work = r.value.pid;
    this.log.info({ phase: 'leader', hub: this.input.hubId }, 'took the scheduler lease; work started');
  }

  private async stopWork(why: string): Promise<void> {
    const pid = this.work;
    this.work = undefined;
    if (!pid?.alive) return;
    const slot = this.input.registry.whereis(this.input.workSlot) as DynamicSupervisor | undefined;
    this.log.info({ phase: 'standby', why }, 'stopping work');
    await slot?.terminateChild(pid);
  }
}
