/**
 * The stigmergy field under the generated permissions: a real nats-server running the config the
 * auth directory generates, a real hub, and SDK agents with their own credentials, two of them
 * added by `agentcom agent add --emit/--claim` as an operator adds them:
 * - A (emit and claim `request.>`) emits `request.code.review` and is its source whatever the
 *   request says; the server refuses its `error.timeout` and anything on another agent's subject;
 * - B (no field grants) can neither emit, claim nor release, but observes the field;
 * - no agent writes the field's bucket or its audit stream directly;
 * - C (claim `request.>`) wins A's pheromone; A then gets claimed: false and cannot release C's
 *   claim, C can; a claim on a subject naming another type finds nothing (the key holds the type).
 * Every refusal is followed by a read of the state after its error arrived, and each is paired
 * with a control showing the same operation works where it is allowed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentClient } from '../../src/agent/client.js';
import { FieldClient, type Observation, type Observed } from '../../src/agent/field.js';
import type { Bus } from '../../src/bus/connection.js';
import { HubClient } from '../../src/bus/hub-client.js';
import { openKv, type TypedKv } from '../../src/bus/kv.js';
import { request } from '../../src/bus/service.js';
import type { HubHandle } from '../../src/hub/main.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import {
  FieldClaimReplySchema,
  type Pheromone,
  PheromoneReplySchema,
  PheromoneSchema,
} from '../../src/protocol/field.js';
import type { Names } from '../../src/protocol/subjects.js';
import { runCli, USER_SEED_IN_OUTPUT } from '../support/cli.js';
import { eventually, waitUntil } from '../support/eventually.js';
import { startTestHub } from '../support/hub.js';
import {
  type AuthFixture,
  connectAgentClient,
  denial,
  expectHubRefusal,
  expectServerRefusal,
  PERMISSION_VIOLATION,
  startAuthFixture,
} from './fixture.js';

const REVIEW = 'request.code.review';
const json = (v: unknown) => JSON.stringify(v);

/**
 * Publishes on core NATS and waits for the server's refusal (its -ERR, a status error naming the
 * subject): a refused publish has no reply to wait for. Returns the refusal; a publish the server
 * lets through never gets one, and the wait fails at its deadline.
 */
async function corePublishRefusal(bus: Bus, subject: string, data: string): Promise<string> {
  let refusal = '';
  const off = bus.onStatus((e) => {
    if (e.type === 'error' && e.message.includes(`"${subject}"`)) refusal = e.message;
  });
  try {
    bus.nc.publish(subject, data);
    await waitUntil(() => refusal !== '', `the server's refusal of a publish to ${subject}`);
  } finally {
    off();
  }
  return refusal;
}

/** Reads an observation until `done` holds (with a deadline), then stops it. */
async function observeUntil(
  o: Observation,
  done: (seen: Observed[]) => boolean,
  what: string,
): Promise<Observed[]> {
  const seen: Observed[] = [];
  const reading = (async () => {
    for await (const x of o) {
      seen.push(x);
      if (done(seen)) return;
    }
  })();
  try {
    await waitUntil(() => done(seen), what, { timeout: 15_000 });
  } finally {
    o.stop();
    await reading;
  }
  return seen;
}

describe('the stigmergy field under the generated permissions', () => {
  let fx: AuthFixture;
  let hub: HubHandle;
  let admin: Bus;
  let api: HubClient;
  let n: Names;
  let fieldKv: TypedKv<Pheromone>;
  let a: AgentClient;
  let b: AgentClient;
  let c: AgentClient;
  const agents: AgentClient[] = [];

  const keyOf = (p: Pick<Pheromone, 'id' | 'type'>) => `${p.id}.${p.type}`;
  /** The stored record and its revision, read by the admin (full access). */
  const stored = async (p: Pick<Pheromone, 'id' | 'type'>) => {
    const got = await fieldKv.get(keyOf(p));
    if (!got) throw new Error(`pheromone ${p.id} is not in the bucket`);
    return got;
  };

  beforeAll(async () => {
    // B through the fixture (no field grants: what the fixture's agents get).
    fx = await startAuthFixture([{ id: 'b' }], 'fieldsec');
    hub = await startTestHub(fx.url, fx.prefix, { authDir: fx.dir });
    admin = await fx.connectAs('admin');
    api = new HubClient(admin);
    await eventually(() => api.fieldStats(), { timeout: 15_000, interval: 100 });
    n = admin.names;
    fieldKv = await openKv(admin, n.buckets.field, PheromoneSchema);
    // A and C as an operator adds them: the CLI rewrites the config, reloads the server and proves
    // the credentials work before it exits 0.
    for (const [id, grants, emitTypes, claimTypes] of [
      ['a', ['--emit', 'request.>', '--claim', 'request.>'], ['request.>'], ['request.>']],
      ['c', ['--claim', 'request.>'], undefined, ['request.>']],
    ] as const) {
      const r = await runCli(
        [
          'agent',
          'add',
          '--id',
          id,
          '--name',
          `agent ${id}`,
          '--capabilities',
          '',
          ...grants,
          '--json',
          '--auth-dir',
          fx.dir,
          '--nats-url',
          fx.url,
          '--prefix',
          fx.prefix,
        ],
        { env: { AGENTCOM_AUTH_DIR: undefined } },
      );
      expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
      expect(`${r.stdout}${r.stderr}`).not.toMatch(USER_SEED_IN_OUTPUT);
      const out = r.json<{ agent: Record<string, unknown>; verified: { ok: boolean } }>();
      expect(out.verified.ok).toBe(true);
      expect(out.agent.emitTypes).toEqual(emitTypes);
      expect(out.agent.claimTypes).toEqual(claimTypes);
    }
    for (const id of ['a', 'b', 'c']) agents.push(await connectAgentClient(fx, id, { capabilities: [] }));
    [a, b, c] = agents as [AgentClient, AgentClient, AgentClient];
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((x) => x.stop().catch(() => undefined)));
    await hub?.stop();
    await fx?.dispose();
  });

  it('A emits a type its grant covers, as itself whatever the request says; the server refuses error.timeout and the field holds none', async () => {
    // `by` and the payload both name B: on an agent's subject the hub takes the source from it.
    const forged = await request(
      a.bus,
      `field.emit.a.${REVIEW}`,
      { v: 1, by: 'b', type: REVIEW, selector: 'file[name=main.py]', payload: { source: 'b' } },
      PheromoneReplySchema,
      { timeoutMs: 10_000 },
    );
    expect(forged.pheromone).toMatchObject({ type: REVIEW, source: 'a', eventBy: 'a', claimedBy: null });
    const plain = await a.field.emit(REVIEW, { payload: { file: 'main.py' } });
    expect(plain.source).toBe('a');
    for (const p of [forged.pheromone, plain]) {
      const { value } = await stored(p);
      expect(value).toMatchObject({ id: p.id, type: REVIEW, source: 'a', eventBy: 'a', event: 'emitted' });
    }
    expect((await stored(forged.pheromone)).value.payload).toEqual({ source: 'b' });

    // A type outside the grant: refused by the server, so the hub never sees it.
    expectServerRefusal(await denial(a.field.emit('error.timeout')), 'emit error.timeout');
    // On its own subject for a granted type, a payload naming another type: refused by the hub.
    const mismatch = await denial(
      request(a.bus, `field.emit.a.${REVIEW}`, { v: 1, type: 'error.timeout' }, PheromoneReplySchema),
    );
    expectHubRefusal(mismatch, ERROR_CODES.FORBIDDEN, 'payload type other than the subject');
    const errors = await api.fieldList({ pattern: 'error.>' });
    expect(errors.total).toBe(0);
    // Control: the same listing sees A's pheromones.
    const requests = await api.fieldList({ pattern: 'request.>' });
    expect(requests.pheromones.map((p) => p.id)).toEqual(
      expect.arrayContaining([forged.pheromone.id, plain.id]),
    );
  });

  it("A cannot emit as someone else: B's subject and the trusted endpoint are refused by the server", async () => {
    const onB = await denial(
      request(a.bus, 'field.emit.b.request.x', { v: 1, type: 'request.x' }, PheromoneReplySchema),
    );
    expectServerRefusal(onB, 'field.emit.b.request.x');
    const raw = await denial(
      a.bus.nc.request(n.subjects.apiFieldAs('emit', 'b', 'request.x'), json({ v: 1, type: 'request.x' })),
    );
    expect(raw.message).toMatch(PERMISSION_VIOLATION);
    const trusted = await denial(
      request(a.bus, 'field.emit', { v: 1, by: 'b', type: 'request.x' }, PheromoneReplySchema),
    );
    expectServerRefusal(trusted, 'field.emit as b');
    const listed = await api.fieldList({ pattern: '*', limit: 1000 });
    expect(listed.pheromones.filter((p) => p.type === 'request.x' || p.source === 'b')).toEqual([]);
    // Control: the type itself is A's to emit, on its own subject.
    expect((await a.field.emit('request.x')).source).toBe('a');
  });

  it('B, without grants, can neither emit, claim nor release, but observes the field (catch-up and changes)', async () => {
    const p = await a.field.emit(REVIEW, { payload: { for: 'b to see' } });
    const before = await stored(p);

    expectServerRefusal(await denial(b.field.emit(REVIEW)), 'B emits');
    expectServerRefusal(await denial(b.field.emit('error.timeout')), 'B emits error.timeout');
    expectServerRefusal(await denial(b.field.claim(p)), 'B claims');
    expectServerRefusal(await denial(b.field.release(p)), 'B releases');
    const after = await stored(p);
    expect(after.revision).toBe(before.revision);
    expect(after.value.claimedBy).toBeNull();
    const fromB = await api.fieldList({ pattern: '*', limit: 1000 });
    expect(fromB.pheromones.filter((x) => x.source === 'b')).toEqual([]);

    // Observing every type: A's pheromone is among the live ones delivered first.
    const all = await observeUntil(
      await b.field.observe(['*']),
      (seen) => seen.some((o) => o.pheromone.id === p.id),
      "A's pheromone observed by B on *",
    );
    expect(all.find((o) => o.pheromone.id === p.id)).toMatchObject({
      initial: true,
      revision: before.revision,
      pheromone: { source: 'a', type: REVIEW, payload: { for: 'b to see' } },
    });
    // Observing request.>: a pheromone A emits after the watch started arrives as a change.
    const watching = await b.field.observe(['request.>']);
    const later = await a.field.emit('request.code.test');
    const seen = await observeUntil(
      watching,
      (s) => s.some((o) => o.pheromone.id === later.id),
      "A's later pheromone observed by B on request.>",
    );
    expect(seen.find((o) => o.pheromone.id === later.id)).toMatchObject({
      initial: false,
      pheromone: { source: 'a', type: 'request.code.test' },
    });
    expect(seen.every((o) => o.pheromone.type.startsWith('request.'))).toBe(true);
  });

  it('an agent observes only into its own inbox, and creates no consumer on the field itself', async () => {
    // The hub makes an agent's observations; one delivering into another agent's inbox is refused.
    const intoA = await denial(
      request(
        b.bus,
        `field.observe.b`,
        { v: 1, pattern: '*', deliverSubject: '_INBOX.a.stolen', slot: 0 },
        PheromoneReplySchema,
      ),
    );
    expectHubRefusal(intoA, ERROR_CODES.FORBIDDEN, 'B observes into A’s inbox');
    // The attack that made this necessary: a consumer whose deliver subject is the API. The server
    // refuses B the consumer API on the field's stream altogether.
    const stream = `KV_${n.buckets.field}`;
    const created = await denial(
      b.bus.jsm.consumers.add(stream, {
        name: 'b-evil',
        deliver_subject: `${n.subjects.apiPrefix}.field.remove`,
        deliver_group: 'q',
        ack_policy: 'none' as never,
      }),
    );
    expect(String(created.message)).toMatch(PERMISSION_VIOLATION);
    await expect(admin.jsm.consumers.info(stream, 'b-evil')).rejects.toThrow(/consumer not found/i);
  });

  it("no agent writes the field's bucket or its audit stream directly", async () => {
    const p = await a.field.emit(REVIEW, { payload: { honest: true } });
    const before = await stored(p);
    const bucketStream = `KV_${n.buckets.field}`;
    const kvSubject = `$KV.${n.buckets.field}.${keyOf(p)}`;
    const auditSubject = n.subjects.fieldAudit('removed', p.id, p.type);
    for (const [id, agent] of [
      ['a', a],
      ['b', b],
      ['c', c],
    ] as const) {
      const forged: Pheromone = {
        ...p,
        source: 'b',
        payload: { forgedBy: id },
        claimedBy: id,
        claimedAt: Date.now(),
        event: 'claimed',
        eventBy: id,
      };
      expect(await corePublishRefusal(agent.bus, kvSubject, json(forged)), id).toMatch(
        /Permissions Violation for Publish/,
      );
      expect((await denial(agent.bus.js.publish(kvSubject, json(forged)))).message, id).toMatch(
        PERMISSION_VIOLATION,
      );
      const removed = { ...p, event: 'removed', eventBy: id };
      expect(await corePublishRefusal(agent.bus, auditSubject, json(removed)), id).toMatch(
        /Permissions Violation for Publish/,
      );
      expect((await denial(agent.bus.js.publish(auditSubject, json(removed)))).message, id).toMatch(
        PERMISSION_VIOLATION,
      );
      // Nor through the stream API: deleting or purging the pheromone's message.
      expect(
        (await denial(agent.bus.jsm.streams.deleteMessage(bucketStream, before.revision))).message,
        id,
      ).toMatch(PERMISSION_VIOLATION);
      expect(
        (await denial(agent.bus.jsm.streams.purge(bucketStream, { filter: kvSubject }))).message,
        id,
      ).toMatch(PERMISSION_VIOLATION);
    }
    // Read back after every refusal has arrived: the record, its revision and its trail unchanged.
    const after = await stored(p);
    expect(after.revision).toBe(before.revision);
    expect(after.value).toEqual(p);
    expect(await admin.jsm.streams.getMessage(n.streams.field, { last_by_subj: auditSubject })).toBeNull();
    const history = await api.fieldHistory({ pattern: REVIEW, limit: 1000 });
    expect(history.events.filter((e) => e.id === p.id).map((e) => e.event)).toEqual(['emitted']);
    // Control: the audit subjects are the ones the hub writes (its emitted event is there).
    const emitted = await admin.jsm.streams.getMessage(n.streams.field, {
      last_by_subj: n.subjects.fieldAudit('emitted', p.id, p.type),
    });
    expect(emitted?.header.get('Nats-Msg-Id')).toBe(`${p.id}@${before.revision}`);
  });

  it("C claims A's pheromone; A then gets claimed: false and cannot release C's claim; C can", async () => {
    const p = await a.field.emit(REVIEW, { payload: { job: 'review' } });
    const won = await c.field.claim(p);
    expect(won.claimed).toBe(true);
    expect(won.pheromone).toMatchObject({ id: p.id, claimedBy: 'c', event: 'claimed', eventBy: 'c' });
    const lost = await a.field.claim(p);
    expect(lost.claimed).toBe(false);
    expect(lost.pheromone.claimedBy).toBe('c');
    const claimed = await stored(p);

    // On its own release subject: the hub refuses (the claim is C's).
    const own = await denial(a.field.release(p));
    expectHubRefusal(own, ERROR_CODES.FORBIDDEN, "A releases C's claim");
    expect(own.message).toContain('claimed by c');
    // On C's subject, or the trusted endpoint naming C: the server refuses.
    expectServerRefusal(
      await denial(request(a.bus, 'field.release.c', { v: 1, id: p.id }, PheromoneReplySchema)),
      'field.release.c from A',
    );
    expectServerRefusal(
      await denial(request(a.bus, 'field.release', { v: 1, id: p.id, by: 'c' }, PheromoneReplySchema)),
      'field.release from A',
    );
    const still = await stored(p);
    expect(still.revision).toBe(claimed.revision);
    expect(still.value).toMatchObject({ claimedBy: 'c', event: 'claimed' });

    const released = await c.field.release(p);
    expect(released).toMatchObject({ claimedBy: null, event: 'released', eventBy: 'c' });
    expect((await stored(p)).value.claimedBy).toBeNull();
    // Control: with the claim given back, A's claim (its grant covers the type) wins.
    expect((await a.field.claim(p)).claimed).toBe(true);
  });

  it("a claim on a subject naming another type finds nothing: a type grant cannot reach other types' pheromones", async () => {
    const p = await a.field.emit(REVIEW, { payload: { job: 'typed' } });
    const other = await denial(c.field.claim({ id: p.id, type: 'request.other' }));
    expectHubRefusal(other, ERROR_CODES.NOT_FOUND, 'claim on field.claim.c.request.other');
    const raw = await denial(
      request(c.bus, 'field.claim.c.request.other', { v: 1, id: p.id }, FieldClaimReplySchema),
    );
    expectHubRefusal(raw, ERROR_CODES.NOT_FOUND, 'raw claim on field.claim.c.request.other');
    expect((await stored(p)).value.claimedBy).toBeNull();

    // A pheromone of a type outside C's grant (emitted by an operator): C's granted subjects do not
    // find it, and its own type's subject is refused by the server.
    const outside = await new FieldClient(admin, { by: 'ops' }).emit('error.timeout');
    expect(outside.source).toBe('ops');
    expectHubRefusal(
      await denial(c.field.claim({ id: outside.id, type: REVIEW })),
      ERROR_CODES.NOT_FOUND,
      'error.timeout through a request.> subject',
    );
    expectServerRefusal(await denial(c.field.claim(outside)), 'claim on field.claim.c.error.timeout');
    expect((await stored(outside)).value.claimedBy).toBeNull();

    // Control: on the subject naming its type, C claims it.
    const won = await c.field.claim(p);
    expect(won).toMatchObject({ claimed: true, pheromone: { claimedBy: 'c' } });
  });
});
