/**
 * A hub with its HTTP gateway on a free port, for gateway tests: tokens of each role, and `http()`
 * for requests over a real socket (Node's fetch). Event streams are read with {@link readEvents}.
 */

import { pino } from 'pino';
import { afterEach } from 'vitest';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { createToken, openTokensKv } from '../../src/gateway/tokens.js';
import type { HubHandle } from '../../src/hub/main.js';
import type { RateLimit } from '../../src/protocol/limits.js';
import type { TokenRole } from '../../src/protocol/token.js';
import { eventually } from './eventually.js';
import { startTestHub } from './hub.js';
import { uniqueName } from './names.js';
import { useNatsServer } from './nats-server.js';

export interface HttpReply {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: replies of every route, read field by field in tests
  body: any;
  text: string;
}

export interface GatewayHarness {
  readonly url: string;
  readonly prefix: string;
  readonly natsUrl: string;
  readonly bus: Bus;
  readonly hub: HubHandle;
  /** Tokens made at setup: admin, submitter, read. */
  readonly tokens: Record<'admin' | 'submitter' | 'read', string>;
  token(
    role: TokenRole,
    opts?: { agentId?: string; rate?: RateLimit; name?: string; ttlMs?: number },
  ): Promise<{ token: string; id: string }>;
  http(
    method: string,
    path: string,
    opts?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<HttpReply>;
}

export function useGateway(tag: string) {
  const nats = useNatsServer();
  let state: { hub: HubHandle; bus: Bus } | undefined;
  afterEach(async () => {
    await state?.bus.drain();
    await state?.hub.stop();
    state = undefined;
  });
  return {
    nats,
    async setup(over: Parameters<typeof startTestHub>[2] = {}): Promise<GatewayHarness> {
      const prefix = uniqueName(tag).replace(/_/g, '-').toLowerCase();
      const hub = await startTestHub(nats.url, prefix, { http: 'on', httpPort: 0, ...over });
      const bus = await connectBus({ servers: nats.url, prefix, logger: pino({ level: 'silent' }) });
      state = { hub, bus };
      const url = hub.gatewayUrl();
      if (!url) throw new Error('the gateway is not listening');
      const kv = await openTokensKv(bus);
      const token: GatewayHarness['token'] = async (role, o = {}) => {
        const made = await createToken(kv, {
          name: o.name ?? `${role}-${Math.random().toString(36).slice(2, 8)}`,
          role,
          ...(o.agentId ? { agentId: o.agentId } : {}),
          ...(o.rate ? { rate: o.rate } : {}),
          ...(o.ttlMs ? { ttlMs: o.ttlMs } : {}),
        });
        return { token: made.token, id: made.record.id };
      };
      const tokens = {
        admin: (await token('admin', { name: 'admin' })).token,
        submitter: (await token('submitter', { name: 'submitter' })).token,
        read: (await token('read', { name: 'reader' })).token,
      };
      const http: GatewayHarness['http'] = async (method, path, o = {}) => {
        const headers: Record<string, string> = { ...o.headers };
        const tok = o.token === undefined ? tokens.admin : o.token;
        if (tok !== null) headers.authorization = `Bearer ${tok}`;
        let body: string | undefined;
        if (o.raw !== undefined) body = o.raw;
        else if (o.body !== undefined) {
          body = JSON.stringify(o.body);
          headers['content-type'] ??= 'application/json';
        }
        const res = await fetch(`${url}${path}`, {
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
        });
        const text = await res.text();
        let parsed: unknown;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        return { status: res.status, headers: res.headers, body: parsed, text };
      };
      // The hub's API starts once it leads: wait until it answers through the gateway.
      await eventually(async () => {
        const r = await http('GET', '/api/tasks/stats');
        if (r.status !== 200) throw new Error(`hub not answering yet: ${r.status}`);
      });
      return { url, prefix, natsUrl: nats.url, bus, hub, tokens, token, http };
    },
  };
}

export interface SseEvent {
  id?: string;
  event: string;
  // biome-ignore lint/suspicious/noExplicitAny: events of every source, read field by field in tests
  data: any;
}

/**
 * Opens an event stream and collects its events until `until(events)` holds (or the deadline
 * passes: then it throws with what arrived). The stream is closed before returning.
 */
export async function readEvents(
  url: string,
  token: string,
  until: (events: SseEvent[]) => boolean,
  opts: { lastEventId?: string; timeoutMs?: number; onOpen?: () => Promise<void> } = {},
): Promise<SseEvent[]> {
  const ac = new AbortController();
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'text/event-stream' };
  if (opts.lastEventId) headers['last-event-id'] = opts.lastEventId;
  const res = await fetch(url, { headers, signal: ac.signal });
  if (res.status !== 200) throw new Error(`event stream: ${res.status} ${await res.text()}`);
  const events: SseEvent[] = [];
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs ?? 15_000);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let opened = false;
  try {
    for (;;) {
      if (until(events)) return events;
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended after ${JSON.stringify(events)}`);
      buf += decoder.decode(value, { stream: true });
      let cut = buf.indexOf('\n\n');
      while (cut >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        cut = buf.indexOf('\n\n');
        const e: Partial<SseEvent> & { dataText?: string } = {};
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) e.id = line.slice(4);
          else if (line.startsWith('event: ')) e.event = line.slice(7);
          else if (line.startsWith('data: ')) e.dataText = line.slice(6);
        }
        if (e.event && e.dataText !== undefined)
          events.push({ id: e.id, event: e.event, data: JSON.parse(e.dataText) });
      }
      if (!opened && opts.onOpen && events.length > 0) {
        opened = true;
        await opts.onOpen();
      }
    }
  } catch (err) {
    if (ac.signal.aborted)
      throw new Error(`no matching events within the deadline; got ${JSON.stringify(events)}`);
    throw err;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}
