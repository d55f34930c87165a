/**
 * The inspection relay (src/bus/inspect-relay.ts) against a real nats-server: listens expire,
 * inspection attaches only while a listen names the target and detaches after, nothing is
 * published without a listen, malformed listens are ignored, a listener that joins late gets the
 * actors (and their machine definitions) announced again (once for a burst of new listeners, at
 * most once a second, a thousand follows spread over turns of the event loop), and nothing it does
 * throws.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { assign, createActor, setup } from 'xstate';
import { connectBus } from '../../src/bus/connection.js';
import {
  InspectListens,
  InspectPublisher,
  InspectRelay,
  inspectActor,
  REANNOUNCE_BATCH,
  REANNOUNCE_DELAY_MS,
  REANNOUNCE_INTERVAL_MS,
} from '../../src/bus/inspect-relay.js';
import type { InspectListen } from '../../src/protocol/inspect.js';
import { eventually } from '../support/eventually.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

const listen = (targets: string[], ttlMs = 10_000, listener = 'l1'): InspectListen => ({
  v: 1,
  listener,
  targets,
  ttlMs,
});

describe('InspectListens', () => {
  it('holds a listen until its ttl runs out, per listener, and matches ids and *', () => {
    const l = new InspectListens();
    expect(l.wants('agent', 'a1', 0)).toBe(false);
    expect(l.add(listen(['agent.a1'], 1_000), 0)).toBe(true);
    expect(l.wants('agent', 'a1', 999)).toBe(true);
    expect(l.wants('agent', 'a2', 999)).toBe(false);
    expect(l.wants('hub', 'a1', 999)).toBe(false);
    expect(l.wants('agent', 'a1', 1_000)).toBe(false);
    // Repeating the same listen only extends it.
    expect(l.add(listen(['agent.a1'], 1_000), 900)).toBe(false);
    expect(l.wants('agent', 'a1', 1_500)).toBe(true);
    // A listener's new listen replaces its targets.
    expect(l.add(listen(['hub.*'], 1_000), 1_000)).toBe(true);
    expect(l.wants('agent', 'a1', 1_100)).toBe(false);
    expect(l.wants('hub', 'h7', 1_100)).toBe(true);
    expect(l.wantsAny('hub', 1_100)).toBe(true);
    expect(l.wantsAny('agent', 1_100)).toBe(false);
    // Another listener adds its own.
    l.add(listen(['agent.*'], 5_000, 'l2'), 1_000);
    expect(l.wants('agent', 'zz', 1_100)).toBe(true);
    expect(l.nextExpiry()).toBe(2_000);
    expect(l.expire(2_000)).toBe(true);
    expect(l.size).toBe(1);
    expect(l.wants('hub', 'h7', 2_000)).toBe(false);
    expect(l.wants('agent', 'zz', 5_999)).toBe(true);
    expect(l.expire(6_000)).toBe(true);
    expect(l.nextExpiry()).toBeUndefined();
  });
});

const counter = setup({
  types: { context: {} as { n: number }, events: {} as { type: 'INC' } | { type: 'DONE' } },
}).createMachine({
  id: 'counter',
  context: { n: 0 },
  initial: 'low',
  states: {
    low: {
      on: {
        INC: [
          {
            guard: ({ context }) => context.n >= 1,
            target: 'high',
            actions: assign({ n: ({ context }) => context.n + 1 }),
          },
          { actions: assign({ n: ({ context }) => context.n + 1 }) },
        ],
      },
    },
    high: { on: { DONE: 'low' } },
  },
});

interface Got {
  subject: string;
  event: Record<string, unknown> & { type: string; sessionId: string };
  /** When it arrived (epoch ms). */
  at: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('InspectRelay', () => {
  const nats = useNatsServer();
  const opened: { close(): void | Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close();
  });

  async function fixture() {
    const prefix = uniqueName('insp').replace(/_/g, '-').toLowerCase();
    const bus = await connectBus({ servers: nats.url, prefix, logger: pino({ level: 'silent' }) });
    opened.push({ close: () => bus.drain() });
    const got: Got[] = [];
    const sentinels: string[] = [];
    const dec = new TextDecoder();
    bus.nc.subscribe(bus.names.subjects.inspectAll, {
      callback: (_e, m) => {
        const body = JSON.parse(dec.decode(m.data));
        if (m.subject.endsWith('.sentinel')) sentinels.push(body.id);
        else got.push({ subject: m.subject, event: body, at: Date.now() });
      },
    });
    await bus.nc.flush();
    const relay = InspectRelay.start(bus, { log: pino({ level: 'silent' }) });
    opened.push(relay);
    await bus.nc.flush();
    const say = (l: InspectListen | unknown) =>
      bus.nc.publish(bus.names.subjects.inspecting, typeof l === 'string' ? l : JSON.stringify(l));
    /**
     * Everything published before now on this connection has arrived, and what the relay published
     * at once for it: a flush returns after the server has sent back all that came before it (the
     * listens, whose handlers run as they arrive, publishing any announce then); the inspector
     * converts XState's events one timer turn later (a zero timer queued after its own runs after
     * them); then a sentinel published on the same connection arrives after all of it (NATS keeps
     * a connection's order to a subscriber). Re-announces for new listeners come later (coalesced).
     */
    let k = 0;
    const settled = async () => {
      await bus.nc.flush();
      await new Promise((r) => setTimeout(r, 0));
      const id = `s${k++}`;
      bus.nc.publish(bus.names.subjects.inspect('agent', 'sentinel'), JSON.stringify({ id }));
      await eventually(() => expect(sentinels).toContain(id), { timeout: 5_000 });
    };
    return { bus, relay, got, say, settled };
  }

  function counterActor() {
    const actor = createActor(counter).start();
    opened.push({
      close: () => {
        actor.stop();
      },
    });
    return actor;
  }

  it('attaches nothing and publishes nothing while no listen names the target', async () => {
    const { relay, got, say, settled } = await fixture();
    const actor = counterActor();
    let attaches = 0;
    relay.follow('agent', 'a1', (pub) => {
      attaches++;
      return inspectActor(actor, pub);
    });
    // Listens for other targets only.
    say(listen(['agent.a2', 'hub.*', 'sidecar.a1']));
    await eventually(() => expect(relay.wants('agent', 'a2')).toBe(true));
    actor.send({ type: 'INC' });
    actor.send({ type: 'INC' });
    await settled();
    expect(attaches).toBe(0);
    expect(relay.wants('agent', 'a1')).toBe(false);
    expect(got).toEqual([]);
  });

  it('ignores malformed listens', async () => {
    const { relay, say, bus } = await fixture();
    let attaches = 0;
    relay.follow('agent', 'a1', () => {
      attaches++;
      return () => {};
    });
    say('not json');
    say({ v: 2, listener: 'x', targets: ['agent.a1'], ttlMs: 10_000 });
    say({ v: 1, listener: 'x', targets: ['agent.a1.more'], ttlMs: 10_000 });
    say({ v: 1, listener: 'x', targets: ['robot.a1'], ttlMs: 10_000 });
    say({ v: 1, listener: 'x', targets: [], ttlMs: 10_000 });
    say({ v: 1, listener: 'x', targets: ['agent.a1'], ttlMs: 5 });
    say({ v: 1, listener: 'x y', targets: ['agent.a1'], ttlMs: 10_000 });
    say({ v: 1, listener: 'x', targets: ['agent.a1'], ttlMs: 10_000, extra: true });
    // A valid one afterwards, on the same connection: once it is seen, the bad ones were handled.
    say(listen(['agent.marker']));
    await bus.nc.flush();
    await eventually(() => expect(relay.wants('agent', 'marker')).toBe(true));
    expect(relay.wants('agent', 'a1')).toBe(false);
    expect(attaches).toBe(0);
  });

  it('attaches while a listen names the target, sends the actor first, and detaches when it expires', async () => {
    const { relay, got, say, settled } = await fixture();
    const actor = counterActor();
    actor.send({ type: 'INC' }); // before any listen: n = 1, still low
    let detached = 0;
    const following = relay.follow('agent', 'a1', (pub) => {
      const off = inspectActor(actor, pub);
      return () => {
        detached++;
        off();
      };
    });
    await settled();
    expect(got).toEqual([]);

    say(listen(['agent.a1'], 1_000));
    await eventually(() => expect(following.attached).toBe(true), { timeout: 5_000 });
    actor.send({ type: 'INC' }); // n = 2: high
    await settled();
    const subjectOk = got.every((g) => g.subject.endsWith('.inspect.agent.a1'));
    expect(subjectOk).toBe(true);
    const [first, ...rest] = got.map((g) => g.event);
    // The actor with its current snapshot, before anything else.
    expect(first).toMatchObject({
      type: '@xstate.actor',
      name: 'counter',
      snapshot: { value: 'low', context: { n: 1 } },
    });
    expect(first!.sessionId).toMatch(/^agent:a1:x:\d+$/);
    expect(first!.rootId).toBe(first!.sessionId);
    expect(rest.find((e) => e.type === '@xstate.event')).toMatchObject({ event: { type: 'INC' } });
    expect(rest.find((e) => e.type === '@xstate.snapshot')).toMatchObject({
      snapshot: { value: 'high', context: { n: 2 } },
      sessionId: first!.sessionId,
      rootId: first!.sessionId,
    });

    // Not repeated: the listen runs out (1 s) and inspection detaches.
    await eventually(() => expect(following.attached).toBe(false), { timeout: 5_000 });
    expect(detached).toBe(1);
    const before = got.length;
    actor.send({ type: 'DONE' });
    await settled();
    expect(got.length).toBe(before);

    // A new listen attaches again (the actor announced again with its state now).
    say(listen(['agent.*'], 10_000, 'l2'));
    await eventually(() => expect(got.length).toBeGreaterThan(before), { timeout: 5_000 });
    expect(got[before]!.event).toMatchObject({ type: '@xstate.actor', snapshot: { value: 'low' } });
    following.stop();
    expect(detached).toBe(2);
  });

  it('announces again for a listener that joins while attached (with the machine definition), not for a repeated listen', async () => {
    const { relay, got, say, settled } = await fixture();
    const actor = counterActor();
    let attaches = 0;
    let detaches = 0;
    const following = relay.follow('agent', 'a1', (pub) => {
      attaches++;
      return inspectActor(actor, pub);
    });
    // Something attached with a plain detach (no announce): detached and attached again.
    let treeAttaches = 0;
    relay.follow('hub', 'h1', () => {
      treeAttaches++;
      return () => {
        detaches++;
      };
    });
    say(listen(['agent.a1', 'hub.h1'], 10_000, 'first'));
    await eventually(() => expect(following.attached).toBe(true), { timeout: 5_000 });
    await settled();
    const announced = () => got.filter((g) => g.event.type === '@xstate.actor').map((g) => g.event);
    expect(announced()).toHaveLength(1);
    // The definition travels with the actor: the states and transitions a diagram is drawn from.
    const definition = JSON.parse(String(announced()[0]!.definition));
    expect(definition).toMatchObject({
      id: 'counter',
      initial: 'low',
      states: { low: { on: { INC: expect.any(Array) } }, high: { on: { DONE: 'low' } } },
    });

    // The same listener repeating itself: nothing new (not even once a re-announce would be due).
    say(listen(['agent.a1', 'hub.h1'], 10_000, 'first'));
    actor.send({ type: 'INC' }); // n = 1, still low
    await settled();
    await sleep(REANNOUNCE_DELAY_MS + 200);
    await settled();
    expect(announced()).toHaveLength(1);

    // A second listener: the actor again, with its state now, and nothing detached.
    say(listen(['agent.*'], 10_000, 'second'));
    await eventually(() => expect(announced()).toHaveLength(2), { timeout: 5_000 });
    expect(announced()[1]).toMatchObject({
      sessionId: announced()[0]!.sessionId,
      snapshot: { value: 'low', context: { n: 1 } },
    });
    expect(attaches).toBe(1);
    // It does not name hub.h1: that one is left alone.
    expect(treeAttaches).toBe(1);
    expect(detaches).toBe(0);
    // Events keep flowing to everyone on the one subject.
    actor.send({ type: 'INC' });
    await settled();
    expect(got.at(-1)!.event).toMatchObject({ type: '@xstate.snapshot', snapshot: { value: 'high' } });

    // A third naming hub.h1: its plain detach is detached and attached again.
    say(listen(['hub.*'], 10_000, 'third'));
    await eventually(() => expect(treeAttaches).toBe(2), { timeout: 5_000 });
    expect(detaches).toBe(1);
    expect(attaches).toBe(1);
    expect(announced()).toHaveLength(2);
  });

  it('re-announces once for a burst of new listeners, after it, and at most once a second', async () => {
    const { relay, got, say, settled } = await fixture();
    const actor = counterActor();
    let detaches = 0;
    const following = relay.follow('agent', 'a1', (pub) => {
      const off = inspectActor(actor, pub);
      return Object.assign(
        () => {
          detaches++;
          off();
        },
        { announce: off.announce },
      );
    });
    say(listen(['agent.a1'], 10_000, 'first'));
    await eventually(() => expect(following.attached).toBe(true), { timeout: 5_000 });
    await settled();
    const announced = () => got.filter((g) => g.event.type === '@xstate.actor');
    expect(announced()).toHaveLength(1);

    // Ten dashboards reconnect at once: one re-announce for all of them, once the burst is over.
    for (let i = 0; i < 10; i++) say(listen(['agent.*'], 10_000, `burst-${i}`));
    await settled();
    const burstAt = Date.now();
    await eventually(() => expect(announced()).toHaveLength(2), { timeout: 5_000 });
    expect(announced()[1]!.at).toBeGreaterThanOrEqual(burstAt);
    await sleep(REANNOUNCE_DELAY_MS + 200);
    await settled();
    expect(announced()).toHaveLength(2);

    // Another right after: its own re-announce, but not within a second of the last one.
    say(listen(['agent.a1'], 10_000, 'late'));
    await eventually(() => expect(announced()).toHaveLength(3), { timeout: 5_000 });
    const [, second, third] = announced();
    expect(third!.at - second!.at).toBeGreaterThanOrEqual(REANNOUNCE_INTERVAL_MS - 200);
    expect(third!.event).toMatchObject({ sessionId: second!.event.sessionId, snapshot: { value: 'low' } });
    // Announced, never detached for it.
    expect(detaches).toBe(0);
  });

  it('spreads the re-announce of many follows over turns of the event loop', async () => {
    const { relay, say } = await fixture();
    const follows = 2 * REANNOUNCE_BATCH + 100;
    /** The turn of the event loop each announce ran in. */
    const turns: number[] = [];
    let turn = 0;
    const followings = Array.from({ length: follows }, (_, i) =>
      relay.follow('agent', `a${i}`, () => Object.assign(() => {}, { announce: () => turns.push(turn) })),
    );
    say(listen(['agent.*'], 10_000, 'first'));
    await eventually(() => expect(followings.every((f) => f.attached)).toBe(true), { timeout: 5_000 });
    // Count the turns while a new listener has all of them announced again.
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    tick();
    try {
      say(listen(['agent.*'], 10_000, 'second'));
      await eventually(() => expect(turns).toHaveLength(follows), { timeout: 5_000 });
    } finally {
      ticking = false;
    }
    const perTurn = new Map<number, number>();
    for (const t of turns) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(REANNOUNCE_BATCH);
    expect(perTurn.size).toBeGreaterThanOrEqual(3);
  });

  it('never throws into the caller: failing attach, detach and serialization are contained', async () => {
    const { relay, bus, say } = await fixture();
    const f = relay.follow('hub', 'h1', () => {
      throw new Error('attach failed');
    });
    const g = relay.follow('hub', 'h2', () => () => {
      throw new Error('detach failed');
    });
    say(listen(['hub.*']));
    await eventually(() => expect(f.attached && g.attached).toBe(true));
    expect(() => g.stop()).not.toThrow();
    const pub = new InspectPublisher(bus, 'hub', 'h3', pino({ level: 'silent' }));
    const circular: Record<string, unknown> = { type: 'X' };
    circular.self = circular;
    expect(() =>
      pub.send({
        type: '@xstate.event',
        event: circular as { type: string },
        sessionId: 's',
        rootId: 'r',
        sourceId: undefined,
        createdAt: '1',
        id: 'i',
        _version: '0.7.2',
      }),
    ).not.toThrow();
    expect(pub.published).toBe(0);
    expect(() => pub.observer.next?.({ type: '@xstate.bogus' } as never)).not.toThrow();
    relay.close();
    expect(f.attached).toBe(false);
  });
});
