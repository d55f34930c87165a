/**
 * @module presence/process
 * The Presence actor: who is online, and which session of each agent is live. It runs on every hub
 * (not only the leader), so a hub that takes over already knows who is alive and what each live
 * session holds. It answers agent hellos (one hub per hello, via a queue group): provisions the
 * agent's inbox durable, stores its registration (capabilities, queues, slots, session) in KV, and
 * tells its subscribers `agent_up`. Every hub follows every heartbeat and every registration (KV
 * watch). An agent that misses `missedBeats` intervals, or says goodbye, is reported `agent_down`;
 * the scheduler then reclaims its work.
 *
 * Sessions: a hello from a new session (the agent process restarted) first has the server
 * redeliver at once whatever the old session left unacknowledged on the agent's inbox durable, so
 * the new one gets those assignments as soon as it pulls instead of after `ack_wait`. Heartbeats of
 * the live session that list what it holds are passed on (`agent_beat`) for the lifeline to
 * reconcile; beats of any other session (a dead process's last beat still in flight) are ignored.
 * Registrations survive hub restarts; liveness does not (after a restart each known agent gets one
 * full timeout to beat again, and is announced on its first beat).
 *
 * Limits (docs/security.md, "Rate limits" and "Suspension"): hellos are rate limited per agent (`rate_limited` with a
 * retry-after). Presence keeps the violation tracker: invalid hellos, and the malformed or forged
 * messages the TaskQueue tells it of, count; at the threshold the agent is suspended (config
 * bucket). A suspended agent is forgotten at once (its work reclaimed) on every hub, its hellos are
 * refused `suspended` until the suspension ends or an operator restores it.
 */
import type { Logger } from 'pino';
import type { Bus } from '../../src/bus/connection.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { type LiveLimits, openLiveLimits } from '../../src/bus/live-limits.js';
import { agentInboxConsumerSpec, ensureConsumer } from '../../src/bus/provision.js';
import { redeliverUnacked } from '../../src/bus/redeliver.js';
import { type CoreSubscription, subscribeTyped } from '../../src/bus/subscribe.js';
import {
  type AgentHello,
  AgentHelloSchema,
  GoodbyeSchema,
  type Heartbeat,
  HeartbeatSchema,
} from '../../src/protocol/agent.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { type AgentId, AgentIdSchema, type TaskId } from '../../src/protocol/ids.js';
import {
  rateFor,
  SUSPENSION_KEYS,
  type Suspension,
  suspensionKey,
  violationPolicy,
} from '../../src/protocol/limits.js';
import {
  type AgentRegistration,
  AgentRegistrationSchema,
  type HelloReply,
} from '../../src/protocol/registration.js';
import { parseAgentSubject } from '../../src/protocol/subjects.js';
import { cast, type Registry } from '../../src/runtime/index.js';
import { KeyedRateLimiter } from '../../src/runtime/rate-limit.js';
import type { Server, ServerContext } from '../../src/runtime/server.js';
import type { AgentBeat, AgentDown, AgentUp } from '../scheduler/index.js';
import { openSuspensions, suspendAgent } from './registrations.js';
import { Presence } from './state.js';
import { suspensionMs, ViolationTracker } from './violations.js';

export interface PresenceInput {
  bus: Bus;
  registry: Registry;
  log: Logger;
  hubId: string;
  heartbeatIntervalMs: number;
  missedBeats: number;
  /** Registered names that receive `agent_up`, `agent_beat` and `agent_down` (absent ones are skipped). */
  subscribers: string[];
  /** Registered names told `agent_down` only (the field releases claims; heartbeats are not its business). */
  downSubscribers?: string[];
  /** Registered names told `agent_up` and `agent_down`, not heartbeats (messaging's presence messages). */
  upDownSubscribers?: string[];
  /** Ack wait of each agent's inbox durable (default 30 s). */
  inboxAckWaitMs?: number;
}

export type PresenceMessage =
  /** The expiry timer; `due` names the arming it belongs to (a later arming supersedes it). */
  | { type: 'tick'; due: number }
  /** call: every registered agent and whether it is online now. */
  | {
      type: 'agents';
      reply?: (
        agents: { registration: AgentRegistration; online: boolean; lastHeartbeat: number | null }[],
      ) => void;
    }
  /**
   * call: every online agent as an `agent_up`, followed by the latest `agent_beat` of its live
   * session when there was one (what a leader that starts now needs to know).
   */
  | { type: 'online'; reply?: (msgs: (AgentUp | AgentBeat)[]) => void }
  /** cast: an invalid message of this agent (it counts toward suspension). */
  | { type: 'violation'; agentId: AgentId; reason: string }
  /** call: the suspensions in force now. */
  | { type: 'suspended'; reply?: (s: Suspension[]) => void };

export class PresenceProcess implements Server<PresenceMessage> {
  private readonly presence: Presence;
  private readonly registrations = new Map<AgentId, AgentRegistration>();
  /** Registered before this hub started: online on probation until their first heartbeat. */
  private readonly unconfirmed = new Set<AgentId>();
  /** The latest beat of each agent's live session that said what it holds. */
  private readonly lastBeat = new Map<AgentId, AgentBeat>();
  private readonly subs: CoreSubscription[] = [];
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed tick is due (to notice a tick that comes late). */
  private tickDueAt = Number.POSITIVE_INFINITY;
  /** After a late tick, nobody is declared offline before this (epoch ms): the beats are read first. */
  private readBeatsUntil = 0;
  private readonly stopWatches: (() => void)[] = [];
  /** Suspensions seen in the config bucket (ended ones are dropped when next looked at). */
  private readonly suspensions = new Map<AgentId, Suspension>();
  private readonly violations = new ViolationTracker();
  /** Agents whose suspension is being written (violations meanwhile are not counted again). */
  private readonly suspending = new Set<AgentId>();
  /** Forgotten because suspended: taken back at their first beat once that is over (readmit). */
  private readonly forgottenWhileSuspended = new Set<AgentId>();
  private readonly hellos: KeyedRateLimiter;

  private constructor(
    private readonly input: PresenceInput,
    private readonly ctx: ServerContext,
    private readonly kv: TypedKv<AgentRegistration>,
    private readonly suspensionKv: TypedKv<Suspension>,
    private readonly limits: LiveLimits,
  ) {
    this.presence = new Presence({ intervalMs: input.heartbeatIntervalMs, missedBeats: input.missedBeats });
    this.log = input.log.child({ actor: 'presence' });
    this.hellos = new KeyedRateLimiter((id) => rateFor(this.limits.current, id, 'hellos'));
  }

  static async start(input: PresenceInput, ctx: ServerContext): Promise<PresenceProcess> {
    const { bus } = input;
    const kv = await openKv(bus, bus.names.buckets.agents, AgentRegistrationSchema);
    const suspensionKv = await openSuspensions(bus);
    const p = new PresenceProcess(input, ctx, kv, suspensionKv, await openLiveLimits(bus));
    p.stopWatches.push(() => p.limits.stop());
    // Each bucket in one pass: a request per key took 13 s at 10,000 agents, and the beats the
    // registrations were seeded with were then as old as that, so the first tick declared every
    // agent offline. The seeded beat is taken once everything is read.
    const suspensions = await suspensionKv.entries(SUSPENSION_KEYS);
    // Registrations are the single-token keys; `<id>.fsm` keys hold the AgentFSM snapshots.
    const registrations = await kv.entries('*');
    const now = Date.now();
    for (const { value } of suspensions.values())
      if (value.until > now) p.suspensions.set(value.agentId, value);
    for (const { value } of registrations.values()) {
      if (value.removed) continue;
      if (p.suspendedNow(value.id, now)) p.forgottenWhileSuspended.add(value.id);
      else p.register(value, now, false);
    }
    const watch = await kv.watch({ key: '*', updatesOnly: true });
    p.stopWatches.push(() => watch.stop());
    void (async () => {
      for await (const c of watch) {
        const id = c.key as AgentId;
        if (c.value && !c.value.removed && p.suspendedNow(id, Date.now())) p.forgottenWhileSuspended.add(id);
        else if (c.value && !c.value.removed) p.register(c.value, Date.now());
        else if (c.operation !== 'put' || c.value?.removed) p.forget(id, 'removed');
      }
    })().catch(() => {});
    const suspended = await suspensionKv.watch({ key: SUSPENSION_KEYS, updatesOnly: true });
    p.stopWatches.push(() => suspended.stop());
    void (async () => {
      for await (const c of suspended)
        p.onSuspension(c.key.slice(c.key.indexOf('.') + 1) as AgentId, c.value);
    })().catch(() => {});
    p.subscribe();
    p.arm();
    p.log.info({ phase: 'start', agents: p.registrations.size }, 'presence started');
    return p;
  }

  handle(msg: PresenceMessage): void {
    switch (msg.type) {
      case 'tick': {
        // A tick of a timer armed again since (its message already queued, e.g. while start ran).
        if (msg.due !== this.tickDueAt) return;
        // Its timer has fired: the arm() below sets the next one.
        this.timer = undefined;
        const now = Date.now();
        // A tick that comes much later than it was set for means this process did not run (a
        // stall, a long pause): the beats that arrived meanwhile wait unread behind this timer, so
        // nobody is declared offline before they have been read.
        if (now - this.tickDueAt > this.input.heartbeatIntervalMs) {
          this.log.warn(
            { phase: 'stall', late_ms: now - this.tickDueAt },
            'presence ran late; reading beats first',
          );
          this.readBeatsUntil = now + this.input.heartbeatIntervalMs;
          this.arm();
          return;
        }
        for (const id of this.presence.expired(now)) this.down(id, 'missed heartbeats');
        this.arm();
        return;
      }
      case 'agents':
        msg.reply?.(
          [...this.registrations.values()].map((registration) => ({
            registration,
            online: this.isOnline(registration.id),
            // Its latest heartbeat or hello this hub saw while it was online (null: offline).
            lastHeartbeat: this.presence.lastBeat(registration.id) ?? null,
          })),
        );
        return;
      case 'online': {
        const out: (AgentUp | AgentBeat)[] = [];
        for (const reg of this.registrations.values()) {
          if (!this.isOnline(reg.id)) continue;
          out.push(this.upMessage(reg, false));
          const beat = this.lastBeat.get(reg.id);
          if (beat) out.push(beat);
        }
        msg.reply?.(out);
        return;
      }
      case 'violation':
        this.violation(msg.agentId, msg.reason);
        return;
      case 'suspended': {
        const now = Date.now();
        msg.reply?.([...this.suspensions.values()].filter((s) => s.until > now));
        return;
      }
    }
  }

  // --- Violations and suspensions ---

  private suspendedNow(id: AgentId, now: number): Suspension | undefined {
    const s = this.suspensions.get(id);
    if (s && s.until <= now) this.suspensions.delete(id);
    return s && s.until > now ? s : undefined;
  }

  /** Re-reads a suspension this hub holds (a hello is rare enough to afford it). */
  private async stillSuspended(id: AgentId): Promise<Suspension | undefined> {
    const got = await this.suspensionKv.get(suspensionKey(id));
    if (got && got.value.until > Date.now()) return got.value;
    this.suspensions.delete(id);
    return undefined;
  }

  private violation(agentId: AgentId, reason: string): void {
    const now = Date.now();
    if (this.suspending.has(agentId) || this.suspendedNow(agentId, now)) return;
    const policy = violationPolicy(this.limits.current);
    if (!this.violations.record(agentId, now, policy)) {
      this.log.debug({ agent_id: agentId, phase: 'violation', reason }, 'invalid message');
      return;
    }
    this.suspending.add(agentId);
    suspendAgent(this.suspensionKv, agentId, reason, now, (count) => suspensionMs(policy, count))
      .then((s) => {
        this.log.warn(
          {
            agent_id: agentId,
            phase: 'suspended',
            until: new Date(s.until).toISOString(),
            count: s.count,
            threshold: policy.threshold,
            reason,
          },
          `agent suspended: ${policy.threshold} invalid messages within ${policy.windowMs} ms`,
        );
        this.onSuspension(agentId, s);
      })
      .catch((err) =>
        this.log.warn({ agent_id: agentId, err }, 'suspension not written; the next violation retries'),
      )
      .finally(() => this.suspending.delete(agentId));
  }

  /** A suspension written (by this hub or another) or ended. */
  private onSuspension(agentId: AgentId, s: Suspension | null): void {
    if (!s || s.until <= Date.now()) {
      if (this.suspensions.delete(agentId))
        this.log.info({ agent_id: agentId, phase: 'restored' }, 'agent suspension ended');
      return;
    }
    this.suspensions.set(agentId, s);
    this.forgottenWhileSuspended.add(agentId);
    if (this.registrations.has(agentId)) this.forget(agentId, 'suspended');
  }

  /**
   * A suspended agent that stayed connected (no auth directory to drop it) goes on beating without
   * saying hello again: once its suspension is over, its first beat brings back its registration
   * (still in the bucket), as a hub restart would.
   */
  private async readmit(id: AgentId): Promise<void> {
    if (this.suspendedNow(id, Date.now()) || !this.forgottenWhileSuspended.delete(id)) return;
    const got = await this.kv.get(id);
    if (got && !got.value.removed && !this.registrations.has(id)) this.register(got.value, Date.now(), false);
  }

  terminate(): void {
    clearTimeout(this.timer);
    for (const stop of this.stopWatches) stop();
    for (const s of this.subs) s.unsubscribe();
  }

  private isOnline(id: AgentId): boolean {
    return this.presence.isOnline(id) && !this.unconfirmed.has(id);
  }

  private subscribe(): void {
    const { bus } = this.input;
    const n = bus.names;
    const agentOf = (subject: string) => {
      const a = parseAgentSubject(n, subject);
      const id = a ? AgentIdSchema.safeParse(a.agentId) : null;
      return id?.success ? id.data : null;
    };
    this.subs.push(
      subscribeTyped(
        bus,
        n.subjects.agentAll('hello'),
        AgentHelloSchema,
        async (hello, m) => {
          const id = agentOf(m.subject);
          if (!id) return;
          m.respond(await this.hello(id, hello));
        },
        {
          queue: 'agentcom-hub',
          onInvalid: (error, subject) => {
            const id = agentOf(subject);
            if (id) this.violation(id, `invalid hello: ${error.message}`);
          },
        },
      ),
      subscribeTyped(bus, n.subjects.agentAll('heartbeat'), HeartbeatSchema, (hb, m) => {
        const id = agentOf(m.subject);
        if (id) this.heartbeat(id, hb);
      }),
      subscribeTyped(bus, n.subjects.agentAll('goodbye'), GoodbyeSchema, (bye, m) => {
        const id = agentOf(m.subject);
        if (!id) return;
        const reg = this.registrations.get(id);
        // A goodbye of an old session (its last words, late) does not end the live one.
        if (
          reg &&
          bye.session !== undefined &&
          reg.hello.session !== undefined &&
          bye.session !== reg.hello.session
        )
          return;
        this.lastBeat.delete(id);
        if (this.presence.goodbye(id)) this.down(id, `goodbye${bye.reason ? `: ${bye.reason}` : ''}`);
      }),
    );
  }

  private async hello(id: AgentId, hello: AgentHello): Promise<HelloReply> {
    const { bus } = this.input;
    const now = Date.now();
    // Each hello provisions a durable and writes a record: a hello loop must not cost that each time.
    const wait = this.hellos.take(id, now);
    if (wait > 0)
      return {
        v: 1,
        ok: false,
        error: { code: ERROR_CODES.RATE_LIMITED, message: `too many hellos from ${id}`, retryAfterMs: wait },
      };
    // Ended by an operator a moment ago, perhaps, and this hub has not seen the delete yet.
    const suspended = this.suspendedNow(id, now) && (await this.stillSuspended(id));
    if (suspended)
      return {
        v: 1,
        ok: false,
        error: {
          code: ERROR_CODES.SUSPENDED,
          message: `agent ${id} is suspended until ${new Date(suspended.until).toISOString()}: ${suspended.reason}`,
          retryAfterMs: suspended.until - now,
        },
      };
    const existing = await this.kv.get(id);
    if (existing?.value.removed) {
      return { v: 1, ok: false, error: { code: ERROR_CODES.FORBIDDEN, message: `agent ${id} was removed` } };
    }
    const spec = agentInboxConsumerSpec(bus.names, id, { ackWaitMs: this.input.inboxAckWaitMs ?? 30_000 });
    await ensureConsumer(bus, spec);
    const newSession =
      existing !== null && hello.session !== undefined && existing.value.hello.session !== hello.session;
    if (newSession) {
      // The previous process is gone: what it pulled and never acked comes back to this one now.
      const pending = await redeliverUnacked(bus, spec.stream, spec.durable);
      if (pending > 0)
        this.log.info(
          { agent_id: id, phase: 'session', pending },
          'new session: redelivering what the old one left unacknowledged',
        );
    }
    const reg: AgentRegistration = { v: 1, id, hello, registeredAt: Date.now(), hubId: this.input.hubId };
    await this.kv.put(id, reg);
    this.register(reg, Date.now());
    this.log.info(
      { agent_id: id, phase: 'hello', slots: hello.slots, session: hello.session, new_session: newSession },
      'agent connected',
    );
    return {
      v: 1,
      ok: true,
      heartbeatIntervalMs: this.input.heartbeatIntervalMs,
      inbox: { stream: spec.stream, consumer: spec.durable },
    };
  }

  private heartbeat(id: AgentId, hb: Heartbeat): void {
    const reg = this.registrations.get(id);
    if (!reg) {
      // Unknown agents must hello first; one forgotten for a suspension that is over is taken back.
      if (this.forgottenWhileSuspended.has(id))
        void this.readmit(id).catch((err) => this.log.warn({ agent_id: id, err }, 'readmission failed'));
      return;
    }
    const live = reg.hello.session;
    if (hb.session !== undefined && live !== undefined && hb.session !== live) return; // not the live session
    const now = Date.now();
    const r = this.presence.beat(id, now);
    if (r.joined || this.unconfirmed.delete(id)) this.up(reg, 'heartbeat', false);
    if (hb.running) {
      const beat: AgentBeat = {
        type: 'agent_beat',
        agentId: id,
        session: hb.session,
        running: hb.running as TaskId[],
        finished: (hb.finished ?? []) as TaskId[],
        at: now,
      };
      this.lastBeat.set(id, beat);
      this.tell(beat);
    }
    this.arm();
  }

  /**
   * A hello counts as a beat. A registration found at start counts as one too, so the agent gets a
   * full timeout to show up, but it is announced only on its first real heartbeat: no work goes to
   * an agent that may have died while no hub was watching.
   */
  private register(reg: AgentRegistration, now: number, announce = true): void {
    const prev = this.registrations.get(reg.id);
    if (prev && prev.registeredAt > reg.registeredAt) return;
    this.registrations.set(reg.id, reg);
    if (prev?.hello.session !== reg.hello.session) this.lastBeat.delete(reg.id);
    this.presence.beat(reg.id, now);
    if (announce) {
      this.unconfirmed.delete(reg.id);
      this.up(reg, prev ? 'hello again' : 'hello', true);
    } else {
      this.unconfirmed.add(reg.id);
    }
    this.arm();
  }

  private forget(id: AgentId, why: string): void {
    this.registrations.delete(id);
    this.unconfirmed.delete(id);
    this.lastBeat.delete(id);
    if (this.presence.goodbye(id)) this.down(id, why);
  }

  /**
   * `withHolding` only for a hello that just happened: what a session held when it said hello a
   * while ago says nothing about what it holds now (its beats do).
   */
  private upMessage(reg: AgentRegistration, withHolding: boolean): AgentUp {
    return {
      type: 'agent_up',
      agentId: reg.id,
      capabilities: reg.hello.capabilities,
      queues: reg.hello.queues,
      slots: reg.hello.slots,
      session: reg.hello.session,
      holding: withHolding ? (reg.hello.holding as TaskId[] | undefined) : undefined,
      at: reg.registeredAt,
    };
  }

  private up(reg: AgentRegistration, why: string, withHolding: boolean): void {
    this.log.debug({ agent_id: reg.id, phase: 'up', why }, 'agent up');
    this.tell(this.upMessage(reg, withHolding));
  }

  private down(id: AgentId, reason: string): void {
    this.unconfirmed.delete(id);
    this.lastBeat.delete(id);
    this.log.info({ agent_id: id, phase: 'offline', reason }, 'agent offline');
    const msg: AgentDown = { type: 'agent_down', agentId: id, reason };
    this.tell(msg);
  }

  private tell(msg: AgentUp | AgentDown | AgentBeat): void {
    for (const name of this.input.subscribers) cast(name, msg, this.input.registry);
    if (msg.type === 'agent_down')
      for (const name of this.input.downSubscribers ?? []) cast(name, msg, this.input.registry);
    if (msg.type !== 'agent_beat')
      for (const name of this.input.upDownSubscribers ?? []) cast(name, msg, this.input.registry);
  }

  /** One timer, for the earliest expiry (not before `readBeatsUntil`). */
  private arm(): void {
    const next = this.presence.nextDeadline();
    if (next === null) {
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    // The floor holds for every arm() until that tick: a beat read meanwhile, arming for the
    // deadline already past, would make it come at once, late again, and so on while anyone beats.
    const due = Math.max(next, this.readBeatsUntil) + 5;
    // A tick already armed no later than this stays: a beat only moves a deadline later, so that
    // tick finds nothing due yet and arms again for the deadline then. Re-arming on every beat was
    // a clearTimeout and a setTimeout per heartbeat (2,000 a second at 10,000 agents).
    if (this.timer !== undefined && due >= this.tickDueAt) return;
    clearTimeout(this.timer);
    this.tickDueAt = due;
    const tick: PresenceMessage = { type: 'tick', due };
    this.timer = setTimeout(() => this.ctx.send(tick), Math.max(0, due - Date.now()));
    this.timer.unref();
  }
}
