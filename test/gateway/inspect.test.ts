/**
 * The inspection WebSocket (`GET /api/inspect`, src/gateway/routes/inspect.ts) over real sockets
 * against a live hub: `@statelyai/inspect`'s own `createWebSocketReceiver` decodes what an XState
 * machine's inspector (the package's `createInspector`) published on NATS, in order; a listen
 * names the socket's targets on `<p>.inspecting` while it is open and stops when it closes; auth,
 * roles, targets and the per-token cap are checked before the upgrade; a client that stops reading
 * is cut off past the bound while another one on the same targets is not.
 */
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { createInspector, createWebSocketReceiver, type StatelyInspectionEvent } from '@statelyai/inspect';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createActor, createMachine } from 'xstate';
import type { Bus } from '../../src/bus/connection.js';
import { startGateway } from '../../src/gateway/index.js';
import { type InspectListen, InspectListenSchema } from '../../src/protocol/inspect.js';
import { eventually, waitUntil } from '../support/eventually.js';
import { useGateway } from '../support/gateway.js';
import { spawnSimAgent } from '../support/sim-agents.js';

const gw = useGateway('gwinspect');

/** The part of the `ws` client used here (the package ships no types; @fastify/websocket depends on it). */
interface WsClient {
  readonly readyState: number;
  on(ev: 'open', fn: () => void): unknown;
  on(ev: 'message', fn: (data: Buffer, isBinary: boolean) => void): unknown;
  on(ev: 'close', fn: (code: number) => void): unknown;
  on(ev: 'error', fn: (err: Error) => void): unknown;
  on(ev: 'unexpected-response', fn: (req: { destroy(): void }, res: IncomingMessage) => void): unknown;
  close(code?: number): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}
const WebSocket = createRequire(import.meta.url)('ws') as new (
  url: string,
  opts?: { headers?: Record<string, string> },
) => WsClient;

interface OpenSocket {
  ws: WsClient;
  /** Text frames received so far. */
  frames: string[];
  binary: number;
  closed: Promise<number>;
}
type Refused = { status: number; body: { code: string; message: string; path?: unknown[] } };

/** Opens a WebSocket: the open socket, or the HTTP answer that refused the upgrade. */
function connect(url: string, headers: Record<string, string> = {}): Promise<OpenSocket | Refused> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const s: OpenSocket = { ws, frames: [], binary: 0, closed: new Promise((r) => ws.on('close', r)) };
    ws.on('message', (data, isBinary) => {
      if (isBinary) s.binary++;
      else s.frames.push(data.toString('utf8'));
    });
    ws.on('open', () => resolve(s));
    ws.on('unexpected-response', (req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
      });
    });
    ws.on('error', (err) => reject(err));
  });
}

async function open(url: string, headers: Record<string, string> = {}): Promise<OpenSocket> {
  const s = await connect(url, headers);
  if ('status' in s) throw new Error(`refused: ${s.status} ${JSON.stringify(s.body)}`);
  return s;
}

async function refused(url: string, headers: Record<string, string> = {}): Promise<Refused> {
  const s = await connect(url, headers);
  if (!('status' in s)) {
    s.ws.terminate();
    throw new Error('the socket was opened');
  }
  return s;
}

/** `p`, or a failure naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const wsUrl = (httpUrl: string, query: string) => `${httpUrl.replace(/^http/, 'ws')}/api/inspect?${query}`;

/** Every listen published on `<p>.inspecting`, in order, validated. */
function watchListens(bus: Bus) {
  const got: InspectListen[] = [];
  const sub = bus.nc.subscribe(bus.names.subjects.inspecting, {
    callback: (_err, m) => {
      got.push(InspectListenSchema.parse(m.json()));
    },
  });
  return {
    got,
    /** The listener id of the first listen with exactly these targets. */
    async listenerFor(targets: string[]): Promise<string> {
      let id = '';
      await waitUntil(() => {
        id = got.find((l) => l.targets.join() === targets.join())?.listener ?? '';
        return id !== '';
      }, `a listen for ${targets.join()}`);
      return id;
    },
    of: (listener: string) => got.filter((l) => l.listener === listener),
    stop: () => sub.unsubscribe(),
  };
}

const light = createMachine({
  id: 'light',
  initial: 'green',
  context: { changes: 0 },
  states: {
    green: { on: { NEXT: 'yellow' } },
    yellow: { on: { NEXT: 'red' } },
    red: { type: 'final' },
  },
});

describe('inspection WebSocket', () => {
  it("delivers what is published for its targets to @statelyai/inspect's own receiver, decoded and in order", async () => {
    const g = await gw.setup();
    const listens = watchListens(g.bus);
    const received: StatelyInspectionEvent[] = [];
    // The package's receiver can only be given a URL: the token goes in the query.
    const receiver = createWebSocketReceiver({
      server: wsUrl(g.url, `targets=agent.ia1&token=${encodeURIComponent(g.tokens.read)}`),
    });
    receiver.subscribe((e) => received.push(e));
    // The listen says the gateway has subscribed (it subscribes first, then listens).
    await listens.listenerFor(['agent.ia1']);

    const subject = g.bus.names.subjects.inspect('agent', 'ia1');
    // Neither another target's event nor a payload that is not an inspection event reaches it
    // (the receiver would throw on a frame that is not JSON).
    g.bus.nc.publish(
      g.bus.names.subjects.inspect('agent', 'other'),
      JSON.stringify({ type: '@xstate.event' }),
    );
    g.bus.nc.publish(subject, 'not json');
    g.bus.nc.publish(subject, JSON.stringify({ type: 'something.else', sessionId: 'x', createdAt: '1' }));

    // A real machine's inspection, converted by the package, published as the publishers do.
    const sent: string[] = [];
    const inspector = createInspector({
      send: (e) => {
        const text = JSON.stringify(e);
        sent.push(text);
        g.bus.nc.publish(subject, text);
      },
    });
    const actor = createActor(light, { inspect: inspector.inspect }).start();
    actor.send({ type: 'NEXT' });
    actor.send({ type: 'NEXT' });
    // The converter defers every event (setTimeout 0): wait for the final snapshot to be sent.
    await waitUntil(
      () => sent.some((t) => t.includes('"@xstate.snapshot"') && t.includes('"value":"red"')),
      'the final snapshot published',
    );
    await eventually(() => expect(received.length).toBe(sent.length));
    expect(received).toEqual(sent.map((t) => JSON.parse(t)));
    expect(received.map((e) => e.type)).toEqual([
      '@xstate.actor',
      '@xstate.event',
      '@xstate.snapshot',
      '@xstate.event',
      '@xstate.snapshot',
      '@xstate.event',
      '@xstate.snapshot',
    ]);
    expect(received[0]).toMatchObject({ type: '@xstate.actor', name: 'light' });
    expect(received.at(-1)).toMatchObject({ snapshot: { value: 'red', status: 'done' } });
    listens.stop();
  });

  it('streams a real AgentFSM of the hub, attached while the socket listens', async () => {
    const g = await gw.setup();
    const listens = watchListens(g.bus);
    const received: StatelyInspectionEvent[] = [];
    const receiver = createWebSocketReceiver({
      server: wsUrl(g.url, `targets=agent.ie1&token=${encodeURIComponent(g.tokens.read)}`),
    });
    receiver.subscribe((e) => received.push(e));
    await listens.listenerFor(['agent.ie1']);
    // An agent process connects: the hub's AgentFSM for it goes online, then runs a task.
    const agent = await spawnSimAgent({ url: g.natsUrl, prefix: g.prefix, agentId: 'ie1', workMs: 300 });
    try {
      const states = () =>
        received.flatMap((e) =>
          e.type === '@xstate.snapshot' || e.type === '@xstate.actor'
            ? [String((e.snapshot as { value?: unknown }).value)]
            : [],
        );
      await waitUntil(() => states().includes('idle'), 'the FSM idle', { timeout: 15_000 });
      const task = await g.http('POST', '/api/tasks', { body: { title: 'inspected' } });
      expect(task.status).toBe(201);
      await agent.waitFor('the task done', () => agent.completed().includes(task.body.task.id));
      await waitUntil(
        () => {
          const seen = states();
          const working = seen.lastIndexOf('working');
          return working > 0 && seen.indexOf('idle') < working && seen.indexOf('idle', working) > working;
        },
        'idle, working, idle again',
        { timeout: 15_000 },
      );
    } finally {
      await agent.kill();
    }
    const actor = received.find((e) => e.type === '@xstate.actor');
    expect(actor?.sessionId).toMatch(/^agent:ie1:/);
    // The hub's supervision tree too: its actors, named by hub.
    const tree: StatelyInspectionEvent[] = [];
    createWebSocketReceiver({
      server: wsUrl(g.url, `targets=hub.*&token=${encodeURIComponent(g.tokens.read)}`),
    }).subscribe((e) => tree.push(e));
    await waitUntil(
      () => tree.some((e) => e.type === '@xstate.actor' && e.sessionId.startsWith('hub:')),
      'the supervision tree',
    );
    listens.stop();
  });

  it('listens for its targets while open, every ttl/3, and stops when it closes', async () => {
    const g = await gw.setup();
    const other = await startGateway({
      bus: g.bus,
      log: pino({ level: 'silent' }),
      port: 0,
      metrics: false,
      inspect: { listenTtlMs: 1_500 },
    });
    const listens = watchListens(g.bus);
    try {
      const a = await open(wsUrl(other.url, 'targets=agent.ib1,hub.*,agent.ib1'), {
        authorization: `Bearer ${g.tokens.admin}`,
      });
      // Repeats dropped; the listen names exactly the socket's targets, with the gateway's ttl.
      const aId = await listens.listenerFor(['agent.ib1', 'hub.*']);
      await waitUntil(() => listens.of(aId).length >= 3, 'the listen repeated');
      expect(listens.of(aId).every((l) => l.ttlMs === 1_500)).toBe(true);
      // `agent.*` covers `agent.x`: one subscription, one copy of each event.
      const wide = await open(wsUrl(other.url, 'targets=agent.x,agent.*'), {
        authorization: `Bearer ${g.tokens.admin}`,
      });
      await listens.listenerFor(['agent.*']);
      wide.ws.close();
      await wide.closed;

      a.ws.close();
      expect(await a.closed).toBe(1005);
      // A second socket's listens are a clock: the first socket's listener repeats at the same
      // interval, so while the second one repeats twice the first would have listened again.
      const b = await open(wsUrl(other.url, 'targets=sidecar.ib2'), {
        authorization: `Bearer ${g.tokens.admin}`,
      });
      const bId = await listens.listenerFor(['sidecar.ib2']);
      const from = listens.got.findIndex((l) => l.listener === bId);
      await waitUntil(() => listens.of(bId).length >= 3, 'the second listen repeated twice');
      expect(listens.got.slice(from).filter((l) => l.listener === aId)).toEqual([]);
      b.ws.close();
      await b.closed;
    } finally {
      listens.stop();
      await other.close();
    }
  });

  it('checks the token, the role and the targets before the upgrade, and caps the sockets per token', async () => {
    const g = await gw.setup();
    const q = (targets: string, token?: string) =>
      wsUrl(g.url, `targets=${targets}${token ? `&token=${encodeURIComponent(token)}` : ''}`);

    const none = await refused(q('agent.ic1'));
    expect(none).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    expect((await refused(q('agent.ic1', 'agc_nope'))).status).toBe(401);
    const submitter = await refused(q('agent.ic1', g.tokens.submitter));
    expect(submitter).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    const bad = await refused(q('task.x', g.tokens.read));
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_payload' } });
    expect(bad.body.path?.slice(0, 2)).toEqual(['query', 'targets']);
    expect((await refused(wsUrl(g.url, `token=${encodeURIComponent(g.tokens.read)}`))).status).toBe(400);

    // A read token, in the query or the header; the header wins over the query.
    (await open(q('hub.*', g.tokens.read))).ws.close();
    (await open(q('hub.*'), { authorization: `Bearer ${g.tokens.read}` })).ws.close();
    (await open(q('hub.*', 'agc_wrong'), { authorization: `Bearer ${g.tokens.read}` })).ws.close();

    // An agent token inspects its own agent and sidecar only.
    const agent = await g.token('agent', { agentId: 'ic1' });
    (await open(q('agent.ic1,sidecar.ic1', agent.token))).ws.close();
    for (const t of ['agent.ic2', 'agent.*', 'agent.ic1,hub.*', 'sidecar.ic2'])
      expect((await refused(q(t, agent.token))).body, t).toMatchObject({ code: 'forbidden' });

    // Other routes do not upgrade.
    for (const path of ['/api/tasks', '/healthz'])
      expect(
        await refused(`${g.url.replace(/^http/, 'ws')}${path}`, { authorization: `Bearer ${g.tokens.read}` }),
        path,
      ).toMatchObject({ status: 400, body: { code: 'invalid_payload' } });

    // A plain GET that passes every check is told to upgrade.
    const plain = await g.http('GET', '/api/inspect?targets=hub.*', { token: g.tokens.read });
    expect(plain.status).toBe(400);
    expect(plain.body.message).toMatch(/WebSocket/);

    // Revoking a token closes its sockets.
    const doomed = await g.token('read');
    const s = await open(q('hub.*', doomed.token));
    expect((await g.http('DELETE', `/api/tokens/${doomed.id}`)).status).toBe(200);
    expect(await within(s.closed, 10_000, 'the revoked socket closed')).toBe(1008);

    // The cap: a token's sockets beyond it are 429 with Retry-After; other tokens are not affected.
    // Everything this gateway logs, at every level: no token in it.
    const lines: string[] = [];
    const small = await startGateway({
      bus: g.bus,
      log: pino({ level: 'trace' }, { write: (line: string) => lines.push(line) }),
      port: 0,
      metrics: false,
      inspect: { maxSocketsPerToken: 1 },
    });
    try {
      const capped = (targets: string, token: string) =>
        wsUrl(small.url, `targets=${targets}&token=${encodeURIComponent(token)}`);
      const first = await open(capped('hub.*', g.tokens.read));
      const over = await refused(capped('agent.ic1', g.tokens.read));
      expect(over).toMatchObject({ status: 429, body: { code: 'rate_limited' } });
      const otherToken = await open(capped('hub.*', g.tokens.admin));
      first.ws.close();
      await first.closed;
      // Its slot is free once the first socket is gone.
      const again = await eventually(() => open(capped('hub.*', g.tokens.read)));
      again.ws.close();
      otherToken.ws.close();
      await Promise.all([again.closed, otherToken.closed]);
      expect(lines.join('\n')).toMatch(/inspection socket/);
      for (const t of [g.tokens.read, g.tokens.admin]) expect(lines.join('\n')).not.toContain(t.slice(17));
    } finally {
      await small.close();
    }
  });

  it('closes a socket whose client stops reading once its backlog passes the bound; others go on', async () => {
    const g = await gw.setup();
    const bound = 1024 * 1024;
    const small = await startGateway({
      bus: g.bus,
      log: pino({ level: 'silent' }),
      port: 0,
      metrics: false,
      inspect: { maxBufferedBytes: bound, pingIntervalMs: 600_000 },
    });
    const listens = watchListens(g.bus);
    try {
      const url = wsUrl(small.url, `targets=agent.id1&token=${encodeURIComponent(g.tokens.read)}`);
      const slow = await open(url);
      slow.ws.pause();
      const healthy = await open(url);
      await waitUntil(
        () =>
          new Set(listens.got.filter((l) => l.targets.join() === 'agent.id1').map((l) => l.listener)).size ===
          2,
        'both sockets listening',
      );
      // 20 MiB in events of 32 KiB, far more than the bound and the kernel's socket buffers.
      // Published in batches (an eighth of the bound) the healthy client reads before the next:
      // it never falls behind.
      const pad = 'x'.repeat(32 * 1024);
      const total = 640;
      const subject = g.bus.names.subjects.inspect('agent', 'id1');
      for (let i = 0; i < total; i += 4) {
        for (let j = i; j < i + 4; j++)
          g.bus.nc.publish(
            subject,
            JSON.stringify({
              type: '@xstate.event',
              sessionId: 'agent:id1:x:0',
              rootId: 'agent:id1:x:0',
              createdAt: String(Date.now()),
              _version: '0.7.2',
              id: null,
              event: { type: 'PAD', n: j, pad },
            }),
          );
        await waitUntil(() => healthy.frames.length >= i + 4, `batch ${i / 4} read`, { timeout: 15_000 });
      }
      expect(healthy.frames.map((f) => JSON.parse(f).event.n)).toEqual([...Array(total).keys()]);
      expect(healthy.binary).toBe(0);
      // Every event went through the gateway before the healthy client read it (one NATS
      // connection, in order): the slow socket is cut off by now. Reading again, it gets what the
      // kernel held, then the end.
      slow.ws.resume();
      expect(await within(slow.closed, 15_000, 'the slow socket closed')).toBe(1006);
      expect(slow.frames.length).toBeLessThan(total);
      expect(slow.frames.length * pad.length).toBeLessThan(total * pad.length - bound);
      expect(healthy.ws.readyState).toBe(1);
      healthy.ws.close();
      await healthy.closed;
    } finally {
      listens.stop();
      await small.close();
    }
  });
});
