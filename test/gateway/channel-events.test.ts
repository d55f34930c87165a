/**
 * Channel posts on the event stream (`GET /api/events?channels=...`, `message` events) over real
 * sockets against a live hub: a post in #room reaches a stream that asked for it, without an id,
 * with the stored message's fields; a post in a channel the client did not ask for does not; a long
 * body is cut with `truncated`; bad channel lists get the structured 400; an agent token's request
 * is ignored (no events, no follow started); a post made as soon as the stream's headers arrive is
 * delivered (the follow runs before the headers go out: no gap with the history read after); and
 * the gateway's one follow (a consumer on `<p>.msg.channel.>`) is shared, stops once its last
 * client has been gone for the idle delay, and starts again for the next one.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startGateway } from '../../src/gateway/index.js';
import { eventually } from '../support/eventually.js';
import { type GatewayHarness, type SseEvent, useGateway } from '../support/gateway.js';

const gw = useGateway('gwchan');

/** An open event stream: every event read so far, in order, until closed. */
class Stream {
  readonly events: SseEvent[] = [];
  private readonly ac = new AbortController();
  private ended: Error | undefined;
  private constructor(readonly status: number) {}

  /** Opens the stream; resolves as soon as the response's headers have arrived. */
  static async open(url: string, token: string): Promise<Stream> {
    const ac = new AbortController();
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
    if (res.status !== 200) throw new Error(`event stream: ${res.status} ${await res.text()}`);
    const s = new Stream(res.status);
    s.ac.signal.addEventListener('abort', () => ac.abort());
    void s.pump(res.body!.getReader());
    return s;
  }

  private async pump(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buf += decoder.decode(value, { stream: true });
        for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const e: { id?: string; event?: string; data?: string } = {};
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) e.id = line.slice(4);
            else if (line.startsWith('event: ')) e.event = line.slice(7);
            else if (line.startsWith('data: ')) e.data = line.slice(6);
          }
          if (e.event && e.data !== undefined)
            this.events.push({ id: e.id, event: e.event, data: JSON.parse(e.data) });
        }
      }
    } catch (err) {
      this.ended = err as Error;
    }
  }

  messages(): SseEvent[] {
    return this.events.filter((e) => e.event === 'message');
  }

  /** Waits until an event matching `pred` has been read; returns it. */
  async waitFor(pred: (e: SseEvent) => boolean, what: string, timeout = 15_000): Promise<SseEvent> {
    return eventually(
      () => {
        const e = this.events.find(pred);
        if (e) return e;
        if (this.ended && !this.ac.signal.aborted) throw new Error(`${what}: ${this.ended.message}`);
        throw new Error(`no ${what} yet; got ${JSON.stringify(this.events.map((x) => x.event))}`);
      },
      { timeout, interval: 10 },
    );
  }

  close(): void {
    this.ac.abort();
  }
}

const isPost = (seq: number) => (e: SseEvent) => e.event === 'message' && e.data.seq === seq;

/** Posts in a channel over HTTP (a submitter token: the human named after it); the stored message. */
async function post(g: GatewayHarness, channel: string, body: unknown, token = g.tokens.submitter) {
  const r = await g.http('POST', `/api/channels/${channel}/messages`, { token, body });
  expect(r.status, r.text).toBe(201);
  return r.body.message;
}

/** Stores a #room post the way the hub does (one JetStream publish): its seq. */
async function storeDirect(g: GatewayHarness, body: string): Promise<{ seq: number }> {
  const stored = {
    v: 1,
    kind: 'channel',
    from: 'direct',
    fromKind: 'human',
    channel: 'room',
    body,
    at: Date.now(),
  };
  const ack = await g.bus.js.publish(g.bus.names.subjects.msgChannel('room'), JSON.stringify(stored));
  return { seq: ack.seq };
}

/** An agent the hub knows, speaking HTTP: its token. */
async function httpAgent(g: GatewayHarness, agentId: string): Promise<string> {
  const { token } = await g.token('agent', { agentId });
  const hello = await g.http('POST', `/api/agents/${agentId}/hello`, { token, body: {} });
  expect(hello.status, hello.text).toBe(200);
  return token;
}

/** Consumers on the messaging stream that follow every channel: the channel feeds running. */
async function feeds(g: GatewayHarness): Promise<number> {
  const filter = g.bus.names.subjects.msgChannel('>');
  const list = await (await g.bus.jsm.consumers.list(g.bus.names.streams.messages)).next();
  return list.filter(
    (c) => c.config.filter_subject === filter || (c.config.filter_subjects ?? []).includes(filter),
  ).length;
}

/** A second gateway on the same hub with a short idle delay; only the test's streams use it. */
async function ownGateway(g: GatewayHarness, idleMs: number) {
  return startGateway({
    bus: g.bus,
    log: pino({ level: 'silent' }),
    port: 0,
    channelFeed: { idleMs },
  });
}

describe('channel posts on the event stream', () => {
  it('sends #room posts as id-less message events with their fields; other channels only when asked; long bodies cut', async () => {
    const g = await gw.setup();
    const agent = await httpAgent(g, 'chan-writer');
    const made = await g.http('POST', '/api/channels', { token: agent, body: { name: 'ops' } });
    expect(made.status, made.text).toBe(201);

    const room = await Stream.open(`${g.url}/api/events?channels=room`, g.tokens.read);
    const both = await Stream.open(`${g.url}/api/events?channels=room,ops&types=task`, g.tokens.read);
    try {
      const first = await post(g, 'room', { title: 'hello', body: 'good morning', clientId: 'c-1' });
      const seen = await room.waitFor(isPost(first.seq), 'the room post');
      expect(seen.id).toBeUndefined();
      expect(seen.data).toEqual({
        seq: first.seq,
        channel: 'room',
        from: 'submitter',
        fromKind: 'human',
        title: 'hello',
        body: 'good morning',
        at: first.at,
      });
      // The same as the channel's history has it.
      const hist = await g.http('GET', `/api/channels/room/messages?after=${first.seq - 1}&limit=1`, {
        token: g.tokens.read,
      });
      expect(hist.body.messages[0]).toMatchObject({ seq: first.seq, from: 'submitter', at: first.at });

      // A reply by an agent, in the room: replyTo and threadId, from the agent.
      const joined = await g.http('POST', '/api/channels/room/join', { token: agent, body: {} });
      expect(joined.status, joined.text).toBe(200);
      const answer = await post(g, 'room', { body: 'on it', replyTo: first.seq }, agent);
      const reply = await room.waitFor(isPost(answer.seq), 'the reply');
      expect(reply.data).toEqual({
        seq: answer.seq,
        channel: 'room',
        from: 'chan-writer',
        fromKind: 'agent',
        body: 'on it',
        replyTo: first.seq,
        threadId: first.seq,
        at: answer.at,
      });

      // A post in #ops (the room-only stream did not ask for it), then a marker in #room: the one
      // follow delivers in sequence order, so the ops post would have come before the marker.
      const ops = await post(g, 'ops', { body: 'deploying' }, agent);
      const long = `${'x'.repeat(2_990)}ending...!`;
      const marker = await post(g, 'room', { body: long });
      const cut = await room.waitFor(isPost(marker.seq), 'the long post');
      expect(room.messages().some((e) => e.data.channel === 'ops' || e.data.seq === ops.seq)).toBe(false);
      expect(cut.data.body).toBe('x'.repeat(2_000));
      expect(cut.data.truncated).toBe(true);
      expect(seen.data.truncated).toBeUndefined();
      // The stored message is whole.
      expect(marker.body).toHaveLength(3_000);

      // The stream that asked for both channels has every post, in seq order, without ids.
      await both.waitFor(isPost(marker.seq), 'the marker on the two-channel stream');
      const got = both.messages();
      expect(got.map((e) => [e.data.seq, e.data.channel])).toEqual([
        [first.seq, 'room'],
        [answer.seq, 'room'],
        [ops.seq, 'ops'],
        [marker.seq, 'room'],
      ]);
      expect(got.every((e) => e.id === undefined)).toBe(true);
      // The durable sequence is untouched: the stream's `ready` carries an id, no message does.
      expect(both.events[0]!.event).toBe('ready');
      expect(typeof both.events[0]!.id).toBe('string');
    } finally {
      room.close();
      both.close();
    }
  }, 60_000);

  it('refuses bad channel lists with a structured 400', async () => {
    const g = await gw.setup();
    const cases: [string, unknown[]][] = [
      ['Room', ['query', 'channels', 0]],
      ['room,bad.name', ['query', 'channels', 1]],
      [`room,${'a'.repeat(65)}`, ['query', 'channels', 1]],
      ['', ['query', 'channels', 0]],
      [Array.from({ length: 9 }, (_, i) => `c${i}`).join(','), ['query', 'channels']],
    ];
    for (const [list, path] of cases) {
      const r = await g.http('GET', `/api/events?channels=${encodeURIComponent(list)}`, {
        token: g.tokens.read,
      });
      expect(r.status, list).toBe(400);
      expect(r.body, list).toMatchObject({ code: 'invalid_payload', path });
      expect(typeof r.body.message).toBe('string');
    }
    // Eight is allowed (channels that do not exist are simply quiet).
    const eight = await Stream.open(
      `${g.url}/api/events?channels=${Array.from({ length: 8 }, (_, i) => `c${i}`).join(',')}`,
      g.tokens.read,
    );
    eight.close();
    // Listed in the OpenAPI document, with its description.
    const doc = await g.http('GET', '/api/openapi.json', { token: null });
    const params: { name: string; description?: string }[] = doc.body.paths['/api/events'].get.parameters;
    expect(params.find((p) => p.name === 'channels')?.description).toMatch(/agent token/);
  });

  it('ignores channels for an agent token: no message events, no follow started', async () => {
    const g = await gw.setup();
    const own = await ownGateway(g, 100);
    try {
      const agentId = 'chan-agent';
      const { token } = await g.token('agent', { agentId });
      const asAgent = await Stream.open(`${own.url}/api/events?channels=room`, token);
      // Opening it started nothing.
      expect(await feeds(g)).toBe(0);
      const reader = await Stream.open(`${own.url}/api/events?channels=room&types=task`, g.tokens.read);
      try {
        const m = await post(g, 'room', { body: 'for humans and agents' });
        await reader.waitFor(isPost(m.seq), 'the post on the read stream');
        // The agent's own event now: had its stream watched #room, the post (written to every
        // watcher in the same turn) would be on its socket before it.
        const hello = await g.http('POST', `/api/agents/${agentId}/hello`, { token, body: {} });
        expect(hello.status).toBe(200);
        await asAgent.waitFor((e) => e.event === 'agent' && e.data.id === agentId, 'the agent event');
        expect(asAgent.messages()).toEqual([]);
      } finally {
        asAgent.close();
        reader.close();
      }
    } finally {
      await own.close();
    }
  }, 60_000);

  it('delivers a post made as soon as the headers arrive (the follow starts before them), each time it starts', async () => {
    const g = await gw.setup();
    const own = await ownGateway(g, 50);
    try {
      for (let round = 0; round < 5; round++) {
        // Nothing running: this open starts the gateway's follow.
        await eventually(async () => expect(await feeds(g)).toBe(0), { timeout: 15_000 });
        const s = await Stream.open(`${own.url}/api/events?channels=room&types=task`, g.tokens.read);
        try {
          // Right after the headers, before a byte of the body is read, stored the quickest way
          // there is: straight into the stream, as the hub stores a post (no HTTP, no hub round trip).
          const m = await storeDirect(g, `round ${round}`);
          const got = await s.waitFor(isPost(m.seq), `the post of round ${round}`);
          expect(got.data.body).toBe(`round ${round}`);
          // The history read after the open has it too: the client de-duplicates by seq.
          const hist = await g.http('GET', `/api/channels/room/messages?after=${m.seq - 1}`, {
            token: g.tokens.read,
          });
          expect(hist.body.messages.map((x: { seq: number }) => x.seq)).toContain(m.seq);
        } finally {
          s.close();
        }
      }
    } finally {
      await own.close();
    }
  }, 90_000);

  it('runs one follow per gateway, shared; stops it after the idle delay once the last client left; starts it again', async () => {
    const g = await gw.setup();
    const own = await ownGateway(g, 300);
    try {
      expect(await feeds(g)).toBe(0);
      const a = await Stream.open(`${own.url}/api/events?channels=room&types=task`, g.tokens.read);
      const b = await Stream.open(`${own.url}/api/events?channels=room&types=task`, g.tokens.admin);
      expect(await feeds(g)).toBe(1);
      a.close();
      // One client left: the follow runs on and still delivers.
      const m1 = await post(g, 'room', { body: 'still here' });
      await b.waitFor(isPost(m1.seq), 'the post to the remaining client');
      expect(await feeds(g)).toBe(1);
      b.close();
      // The last one gone: the consumer is deleted after the idle delay.
      await eventually(async () => expect(await feeds(g)).toBe(0), { timeout: 15_000 });
      // The next client starts it again, and gets the posts stored from then on.
      const c = await Stream.open(`${own.url}/api/events?channels=room&types=task`, g.tokens.read);
      try {
        expect(await feeds(g)).toBe(1);
        const m2 = await post(g, 'room', { body: 'again' });
        const got = await c.waitFor(isPost(m2.seq), 'the post after the restart');
        expect(got.data.body).toBe('again');
        // Nothing from before it started.
        expect(c.messages().map((e) => e.data.seq)).toEqual([m2.seq]);
      } finally {
        c.close();
      }
    } finally {
      await own.close();
    }
  }, 60_000);
});
