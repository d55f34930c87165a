/**
 * The Presence process starting with agents already registered (a hub restarted, or a standby
 * started beside a busy leader): each registration counts as a beat taken when the start has
 * read them all, so an agent that beats from then on is never declared offline, however long the
 * read took. With a request per key and the beats seeded before it, a standby started beside
 * 10,000 agents declared every one of them offline at its first tick. And the one presence timer:
 * kept while beats move deadlines later, it must arm the next tick each time one fires, and after a
 * stall of the process wait for the queued beats without being pulled forward by each of them.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PresenceProcess } from '../../../actors/presence/index.js';
import type { Bus } from '../../../src/bus/connection.js';
import { openKv } from '../../../src/bus/kv.js';
import { defaultTopology, provision } from '../../../src/bus/provision.js';
import { AgentHelloSchema } from '../../../src/protocol/agent.js';
import { encodeTrusted } from '../../../src/protocol/envelope.js';
import { type AgentRegistration, AgentRegistrationSchema } from '../../../src/protocol/registration.js';
import { exit, type Pid, Registry, startServer } from '../../../src/runtime/index.js';
import { testBus } from '../../bus/support.js';
import { eventually } from '../../support/eventually.js';
import { useNatsServer } from '../../support/nats-server.js';

const nats = useNatsServer();
const AGENTS = 1_500;

describe('presence start with registered agents', () => {
  let bus: Bus;
  const pids: Pid[] = [];
  const registry = new Registry();

  beforeEach(async () => {
    bus = await testBus(nats.url);
    await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
  });

  afterEach(async () => {
    for (const p of pids.splice(0)) exit(p, 'shutdown');
    registry.unregister('downs');
    await bus.drain();
  });

  it('gives every registered agent a full timeout from the end of its start', async () => {
    const kv = await openKv(bus, bus.names.buckets.agents, AgentRegistrationSchema);
    const registration = (i: number): AgentRegistration => ({
      v: 1,
      id: `r${i}` as AgentRegistration['id'],
      hello: AgentHelloSchema.parse({ v: 1, slots: 1, session: 's1' }),
      registeredAt: Date.now(),
    });
    for (let i = 0; i < AGENTS; i += 250)
      await Promise.all(
        Array.from({ length: Math.min(250, AGENTS - i) }, (_, k) => kv.put(`r${i + k}`, registration(i + k))),
      );

    const downs = new Set<string>();
    const recorder = await startServer(
      () => ({
        handle(m: { type: string; agentId?: string }) {
          if (m.type === 'agent_down' && m.agentId) downs.add(m.agentId);
        },
      }),
      undefined,
    );
    if (recorder.kind !== 'ok') throw new Error('recorder did not start');
    pids.push(recorder.pid);
    registry.register('downs', recorder.pid);

    const heartbeatIntervalMs = 100;
    const started = await startServer(PresenceProcess.start, {
      bus,
      registry,
      log: pino({ level: 'silent' }),
      hubId: 'h1',
      heartbeatIntervalMs,
      missedBeats: 3,
      subscribers: ['downs'],
    });
    if (started.kind !== 'ok') throw new Error('presence did not start');
    pids.push(started.pid);
    // r0 beats from the moment the start returned; the others are silent.
    const beat = () =>
      bus.nc.publish(bus.names.subjects.agentHeartbeat('r0'), encodeTrusted({ v: 1, at: Date.now() }));
    beat();
    const beating = setInterval(beat, heartbeatIntervalMs / 2);
    try {
      await eventually(() => expect(downs.size).toBeGreaterThanOrEqual(AGENTS - 1), { timeout: 20_000 });
      expect(downs.has('r0')).toBe(false);
    } finally {
      clearInterval(beating);
    }
  });

  /**
   * Presence (heartbeat interval 100 ms, 3 missed beats) over agents `ids` registered before it
   * starts, the offline ones recorded in order, and `beating` beating every 10 ms from its start.
   */
  async function presenceWith(ids: string[], beating: Set<string>) {
    const kv = await openKv(bus, bus.names.buckets.agents, AgentRegistrationSchema);
    for (const id of ids)
      await kv.put(id, {
        v: 1,
        id: id as AgentRegistration['id'],
        hello: AgentHelloSchema.parse({ v: 1, slots: 1, session: 's1' }),
        registeredAt: Date.now(),
      });
    const downs: string[] = [];
    const recorder = await startServer(
      () => ({
        handle(m: { type: string; agentId?: string }) {
          if (m.type === 'agent_down' && m.agentId) downs.push(m.agentId);
        },
      }),
      undefined,
    );
    if (recorder.kind !== 'ok') throw new Error('recorder did not start');
    pids.push(recorder.pid);
    registry.register('downs', recorder.pid);
    const started = await startServer(PresenceProcess.start, {
      bus,
      registry,
      log: pino({ level: 'silent' }),
      hubId: 'h1',
      heartbeatIntervalMs: 100,
      missedBeats: 3,
      subscribers: ['downs'],
    });
    if (started.kind !== 'ok') throw new Error('presence did not start');
    pids.push(started.pid);
    const beat = () => {
      for (const id of beating)
        bus.nc.publish(bus.names.subjects.agentHeartbeat(id), encodeTrusted({ v: 1, at: Date.now() }));
    };
    beat();
    const timer = setInterval(beat, 10);
    return { downs, stop: () => clearInterval(timer) };
  }

  it('declares each silent agent offline in its turn while others beat all the time', async () => {
    // Beats keep moving deadlines later; the process keeps the tick it armed (it does not arm a
    // timer per beat), so each tick must still arm the next: c goes silent after b is down.
    const beating = new Set(['a', 'c']);
    const p = await presenceWith(['a', 'b', 'c'], beating);
    try {
      await eventually(() => expect(p.downs).toEqual(['b']), { timeout: 5_000 });
      beating.delete('c');
      await eventually(() => expect(p.downs).toEqual(['b', 'c']), { timeout: 5_000 });
    } finally {
      p.stop();
    }
  });

  it('after a stall of its process reads the beats first, then declares the silent agent offline', async () => {
    // The tick comes late, so presence waits an interval for the beats that queued meanwhile. A
    // beat read in that interval used to arm the tick for the silent agent's past deadline: it
    // came at once, late again, and so on while anyone beat, and b was never declared offline.
    const p = await presenceWith(['a', 'b'], new Set(['a']));
    try {
      const end = Date.now() + 800; // past b's deadline (300 ms) by more than an interval
      while (Date.now() < end);
      await eventually(() => expect(p.downs).toEqual(['b']), { timeout: 5_000 });
    } finally {
      p.stop();
    }
  });
});
