/**
 * A real HTTP webhook receiver for tests (node:http on a free loopback port): it records every
 * request (time, headers, raw body, the body parsed as an alert event) and answers each with the
 * status `respond(n)` returns for the n-th request (1-based; default 200), or holds it unanswered
 * when that is `'hang'` (until `close()`).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AlertEvent, AlertEventSchema } from '../../src/protocol/alert.js';

export interface ReceivedPost {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
  event: AlertEvent;
  status: number | 'hang';
}

export interface WebhookReceiver {
  readonly url: string;
  readonly got: ReceivedPost[];
  /** Posts of one event id. */
  of(id: string): ReceivedPost[];
  /** Firing events received (by arrival), optionally of one rule. */
  firing(rule?: string): ReceivedPost[];
  resolved(rule?: string): ReceivedPost[];
  respond: (n: number) => number | 'hang';
  close(): Promise<void>;
}

export async function startWebhookReceiver(
  respond: (n: number) => number | 'hang' = () => 200,
): Promise<WebhookReceiver> {
  const got: ReceivedPost[] = [];
  const r: WebhookReceiver = {
    url: '',
    got,
    of: (id) => got.filter((p) => p.event.id === id),
    firing: (rule) => got.filter((p) => p.event.status === 'firing' && (!rule || p.event.rule === rule)),
    resolved: (rule) => got.filter((p) => p.event.status === 'resolved' && (!rule || p.event.rule === rule)),
    respond,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = r.respond(got.length + 1);
      got.push({
        at: Date.now(),
        headers: req.headers,
        body,
        event: AlertEventSchema.parse(JSON.parse(body)),
        status,
      });
      if (status === 'hang') return;
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (r as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return r;
}
