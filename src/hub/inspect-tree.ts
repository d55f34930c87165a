/**
 * @module inspect-tree
 * A hub's supervision tree as inspection events (docs/protocol.md §11e), published on
 * `<p>.inspect.hub.<inspectId(hubId)>` while a listen names `hub.<that id>` or `hub.*`.
 *
 * Supervisors and their children are reported as actors with `@statelyai/inspect`'s manual API,
 * one session per process incarnation (`hub:<id>:p<pid>`; a restarted child is a new session, as
 * a restarted XState actor is): a supervisor's snapshot is `{ value: running | terminating | dead,
 * context: { kind, name, strategy, intensity, period, restarts, children } }`, a child's is
 * `{ value: running | terminated, context: { kind, childId, name, pid, reason? } }`.
 * Each supervision report (runtime/reports.ts: progress, child_terminated, restarted,
 * restart_scheduled, start_error, shutdown_error, reached_max_restart_intensity, auto_shutdown,
 * shutdown) is an `@xstate.event` on its supervisor (from the child it is about), followed by the
 * supervisor's new snapshot. On attach, every live process of the tree is announced with its
 * current state (a walk with `whichChildren`). Nested supervisors are found as they start. For a
 * listener that joins later, {@link TreeInspection.announce} sends every process it follows again
 * with its state now, without detaching (the relay calls it, coalesced, for each new listener), so
 * what it remembers (the incarnations that exited, the sources of restarts to come) is kept: the
 * supervisors at once, the other processes {@link ANNOUNCE_BATCH} per turn of the event loop.
 *
 * It only observes (report subscriptions and exit monitors, removed on detach): it can neither
 * delay nor break the tree. Not guaranteed: children of a dynamic supervisor have no child id (they
 * are named by their registered name when they have one).
 */
import type { Logger } from 'pino';
import type { Bus } from '../bus/connection.js';
import { type InspectPublisher, InspectRelay } from '../bus/inspect-relay.js';
import { inspectId } from '../protocol/inspect.js';
import {
  DynamicSupervisor,
  type ExitReason,
  type Pid,
  type Registry,
  Supervisor,
  type SupervisorReport,
} from '../runtime/index.js';
import type { Server } from '../runtime/server.js';

type AnySupervisor = Supervisor | DynamicSupervisor;

/** An actor-like handle for the inspector's manual API (it reads sessionId, _parent and logic.config). */
interface Ref {
  sessionId: string;
  id: string;
  _parent?: Ref;
  logic: { config: Record<string, unknown> };
  send(): void;
  getSnapshot(): unknown;
}

interface Node {
  ref: Ref;
  pid: Pid;
  childId: string | undefined;
  value: 'running' | 'terminated';
  reason?: string;
  offExit: () => void;
}

interface SupNode {
  ref: Ref;
  sup: AnySupervisor;
  off: () => void;
}

const isSupervisor = (p: Pid): p is AnySupervisor =>
  p instanceof Supervisor || p instanceof DynamicSupervisor;

/** A pseudo machine definition, so the Stately inspector draws a supervisor's and a child's life. */
const SUPERVISOR_DEFINITION = {
  initial: 'running',
  states: {
    running: { on: { shutdown: 'dead', reached_max_restart_intensity: 'terminating' } },
    terminating: { on: { shutdown: 'dead' } },
    dead: { type: 'final' },
  },
};
const CHILD_DEFINITION = {
  initial: 'running',
  states: {
    running: { on: { exit: 'terminated' } },
    terminated: { type: 'final' },
  },
};

/** Processes re-announced per turn of the event loop (an agent-fsms of thousands spread out). */
export const ANNOUNCE_BATCH = 200;

export class TreeInspection {
  private readonly sups = new Map<number, SupNode>();
  private readonly nodes = new Map<number, Node>();
  /** The last incarnation of each static child (`<supervisor pid>/<child id>`), for restart_scheduled. */
  private readonly lastOf = new Map<string, Ref>();
  /**
   * Incarnations that exited lately, by pid: an exit is seen before its supervisor reports it, and
   * the report names it as the event's source. Bounded (oldest dropped).
   */
  private readonly exited = new Map<number, Ref>();
  /** Pids whose name is being looked up (dynamic children): announced once it is known. */
  private readonly naming = new Set<number>();
  /** Which re-announce is current: one still spreading over turns stops when a newer starts. */
  private announcing = 0;
  private stopped = false;

  constructor(
    private readonly pub: InspectPublisher,
    private readonly registry: Registry,
    private readonly log: Logger,
  ) {}

  /** Announces the tree under `root` and follows it until `stop`. */
  start(root: Pid): void {
    this.pub.root = session(root);
    if (isSupervisor(root)) this.addSupervisor(root, undefined, undefined);
    else this.addNode(root, undefined, undefined);
  }

  /**
   * Sends every supervisor and process it follows again (`@xstate.actor` with the current
   * snapshot), parents before children, for a listener that joined late; it keeps following
   * meanwhile and forgets nothing. The supervisors go at once; the other processes (leaves, whose
   * parents are all sent by then) {@link ANNOUNCE_BATCH} per turn, each if it is still alive.
   */
  announce(): void {
    if (this.stopped) return;
    const round = ++this.announcing;
    const depth = (ref: Ref) => {
      let d = 0;
      for (let r = ref._parent; r; r = r._parent) d++;
      return d;
    };
    const sups = [...this.sups.values()].sort((a, b) => depth(a.ref) - depth(b.ref));
    for (const s of sups) this.pub.inspector.actor(s.ref as never, this.supSnapshot(s));
    const nodes = [...this.nodes.values()];
    const some = (from: number) => {
      if (this.stopped || round !== this.announcing) return;
      const to = Math.min(nodes.length, from + ANNOUNCE_BATCH);
      for (let i = from; i < to; i++) {
        const n = nodes[i]!;
        if (this.nodes.get(n.pid.id) === n) this.pub.inspector.actor(n.ref as never, this.nodeSnapshot(n));
      }
      if (to < nodes.length) setImmediate(() => some(to));
    };
    some(0);
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.sups.values()) s.off();
    for (const n of this.nodes.values()) n.offExit();
    this.sups.clear();
    this.nodes.clear();
    this.exited.clear();
  }

  // --- Supervisors ---

  private addSupervisor(
    sup: AnySupervisor,
    parent: Ref | undefined,
    childId: string | undefined,
    specId?: string,
  ): void {
    if (this.stopped || this.sups.has(sup.id)) return;
    const name = this.nameOf(sup, childId, specId);
    const ref = makeRef(sup, name, parent, SUPERVISOR_DEFINITION);
    const node: SupNode = { ref, sup, off: () => {} };
    this.sups.set(sup.id, node);
    // Subscribed before the children are listed: a child started meanwhile is reported, not missed.
    node.off = sup.subscribe((r) => this.onReport(node, r));
    this.pub.inspector.actor(ref as never, this.supSnapshot(node));
    const offExit = sup.onExit((_p, reason) => this.onSupervisorExit(node, reason));
    const prevOff = node.off;
    node.off = () => {
      prevOff();
      offExit();
    };
    void sup.whichChildren().then(
      (r) => {
        if (!r.ok || this.stopped) return;
        // whichChildren lists newest first (OTP); announce in start order.
        for (const c of [...r.value].reverse()) {
          if (typeof c.pid === 'string') continue;
          this.addChild(node, c.pid, c.id);
        }
      },
      (err: unknown) => this.log.debug({ phase: 'inspect', err }, 'children not listed'),
    );
  }

  private supSnapshot(node: SupNode): Record<string, unknown> {
    const s = node.sup.inspectState();
    let children = 0;
    for (const n of this.nodes.values()) if (n.ref._parent === node.ref) children++;
    for (const c of this.sups.values()) if (c.ref._parent === node.ref) children++;
    return {
      status: s.state === 'dead' ? 'done' : 'active',
      value: s.state,
      context: {
        kind: node.sup.kind,
        name: node.ref.id,
        pid: node.sup.toString(),
        strategy: node.sup instanceof Supervisor ? node.sup.flags.strategy : 'one_for_one',
        intensity: s.intensity,
        period: s.period,
        restarts: s.restarts,
        children,
      },
    };
  }

  private onReport(node: SupNode, r: SupervisorReport): void {
    if (this.stopped) return;
    const event: Record<string, unknown> = { type: r.type };
    if (r.childId !== undefined) event.childId = r.childId;
    if ('pid' in r) event.pid = r.pid.toString();
    if ('reason' in r)
      event.reason =
        r.type === 'start_error' ? describeUnknown(r.reason) : reasonText(r.reason as ExitReason);
    if (r.type === 'restart_scheduled') {
      event.delay = r.delay;
      event.attempt = r.attempt;
    }
    // A new child is announced before the event that names it.
    const added =
      r.type === 'progress' || r.type === 'restarted' ? this.addChild(node, r.pid, r.childId) : undefined;
    if (added) void added.then(() => this.emitReport(node, r, event));
    else this.emitReport(node, r, event);
  }

  private emitReport(node: SupNode, r: SupervisorReport, event: Record<string, unknown>): void {
    if (this.stopped) return;
    let from: Ref | undefined;
    if ('pid' in r)
      from = this.nodes.get(r.pid.id)?.ref ?? this.sups.get(r.pid.id)?.ref ?? this.exited.get(r.pid.id);
    // A restart to come names the incarnation that exited (a new session appears when it starts).
    if (r.type === 'restart_scheduled' && r.childId !== undefined)
      from = this.lastOf.get(`${node.sup.id}/${r.childId}`);
    this.pub.inspector.event(
      node.ref as never,
      event as { type: string },
      from ? { source: from as never } : {},
    );
    this.pub.inspector.snapshot(node.ref as never, this.supSnapshot(node), {
      event: event as { type: string },
    });
  }

  private onSupervisorExit(node: SupNode, reason: ExitReason): void {
    if (this.stopped) return;
    this.pub.inspector.snapshot(node.ref as never, this.supSnapshot(node), {
      event: { type: 'exit', reason: reasonText(reason) },
    });
    node.off();
    this.sups.delete(node.sup.id);
    this.remember(node.sup, node.ref);
  }

  private remember(pid: Pid, ref: Ref): void {
    this.exited.set(pid.id, ref);
    if (this.exited.size > 1024) this.exited.delete(this.exited.keys().next().value as number);
  }

  // --- Children ---

  /**
   * Announces a child (and follows it when it is a supervisor). A dynamic supervisor's child with
   * no name of its own is announced once its spec id is read (the returned promise).
   */
  private addChild(parent: SupNode, pid: Pid, childId: string | undefined): Promise<void> | undefined {
    if (this.stopped || this.nodes.has(pid.id) || this.sups.has(pid.id) || this.naming.has(pid.id)) return;
    const named =
      childId !== undefined ||
      this.registry.keys(pid).length > 0 ||
      typeof (pid as { name?: unknown }).name === 'string';
    if (!named && parent.sup instanceof DynamicSupervisor) {
      this.naming.add(pid.id);
      return parent.sup.getChildSpec(pid).then(
        (r) => {
          this.naming.delete(pid.id);
          if (pid.alive) this.addNamed(parent, pid, undefined, r.ok ? r.value.id : undefined);
        },
        () => {
          this.naming.delete(pid.id);
        },
      );
    }
    this.addNamed(parent, pid, childId, undefined);
    return undefined;
  }

  private addNamed(parent: SupNode, pid: Pid, childId: string | undefined, specId: string | undefined): void {
    if (this.stopped || this.nodes.has(pid.id) || this.sups.has(pid.id)) return;
    if (isSupervisor(pid)) this.addSupervisor(pid, parent.ref, childId, specId);
    else this.addNode(pid, parent.ref, childId, specId);
    const ref = this.nodes.get(pid.id)?.ref ?? this.sups.get(pid.id)?.ref;
    if (childId !== undefined && ref) this.lastOf.set(`${parent.sup.id}/${childId}`, ref);
  }

  private addNode(pid: Pid, parent: Ref | undefined, childId: string | undefined, specId?: string): void {
    const ref = makeRef(pid, this.nameOf(pid, childId, specId), parent, CHILD_DEFINITION);
    const node: Node = { ref, pid, childId, value: 'running', offExit: () => {} };
    this.nodes.set(pid.id, node);
    this.pub.inspector.actor(ref as never, this.nodeSnapshot(node));
    node.offExit = pid.onExit((_p, reason) => {
      if (this.stopped) return;
      node.value = 'terminated';
      node.reason = reasonText(reason);
      this.childSnapshot(node, { type: 'exit', reason: node.reason });
      // A terminated incarnation is done; its restart is a new session.
      this.nodes.delete(pid.id);
      this.remember(pid, node.ref);
    });
  }

  private nodeSnapshot(node: Node): Record<string, unknown> {
    return {
      status: node.value === 'terminated' ? 'done' : 'active',
      value: node.value,
      context: {
        kind: node.pid.kind,
        childId: node.childId ?? null,
        name: node.ref.id,
        pid: node.pid.toString(),
        ...(node.reason !== undefined ? { reason: node.reason } : {}),
      },
    };
  }

  private childSnapshot(node: Node, event: { type: string; [k: string]: unknown }): void {
    this.pub.inspector.snapshot(node.ref as never, this.nodeSnapshot(node), { event });
  }

  /** A supervisor by its own name first (`services`), a worker by its child id (`task-queue`). */
  private nameOf(pid: Pid, childId: string | undefined, specId: string | undefined): string {
    const registered = this.registry.keys(pid)[0];
    if (isSupervisor(pid)) return pid.name ?? registered ?? childId ?? specId ?? pid.toString();
    return childId ?? registered ?? specId ?? pid.toString();
  }
}

function session(pid: Pid): string {
  return `p${pid.id}`;
}

function makeRef(pid: Pid, name: string, parent: Ref | undefined, definition: object): Ref {
  return {
    sessionId: session(pid),
    id: name,
    ...(parent ? { _parent: parent } : {}),
    logic: { config: { id: name, ...definition } },
    send() {},
    getSnapshot: () => undefined,
  };
}

/** An exit reason in one line: `normal`, `shutdown`, `killed`, an error's message, or JSON. */
function reasonText(reason: ExitReason): string {
  if (typeof reason === 'string') return reason;
  if (reason.kind === 'error') return describeUnknown(reason.error);
  return describeUnknown(reason);
}

function describeUnknown(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  try {
    return JSON.stringify(reason) ?? String(reason);
  } catch {
    return String(reason);
  }
}

export interface HubInspectInput {
  bus: Bus;
  registry: Registry;
  log: Logger;
  hubId: string;
  /** Registered names tried in turn for the root of the tree (default `hub`, then `services`). */
  roots?: readonly string[];
}

/**
 * The `inspect` child of the services tree: follows the listens and publishes this hub's tree
 * while one names it. Never crashes the tree: every failure is logged.
 */
export function startHubInspection(input: HubInspectInput): Server {
  const { bus, registry, hubId } = input;
  const log = input.log.child({ actor: 'inspect' });
  const relay = InspectRelay.start(bus, { log });
  const following = relay.follow('hub', inspectId(hubId), (pub) => {
    const root = (input.roots ?? ['hub', 'services']).map((n) => registry.whereis(n)).find((p) => p);
    // No root yet: a plain detach, so that a new listener has it looked up again.
    if (!root) return () => {};
    const tree = new TreeInspection(pub, registry, log);
    tree.start(root);
    return Object.assign(() => tree.stop(), { announce: () => tree.announce() });
  });
  return {
    handle() {},
    terminate() {
      following.stop();
      relay.close();
    },
  };
}
