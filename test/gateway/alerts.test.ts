/**
 * Alerts over HTTP against a live hub: the configuration replaced with PUT, a rule firing seen
 * by a real webhook receiver once within its cooldown, in GET /api/alerts and on the event
 * stream, and acknowledged with POST.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ALERT_RULES } from '../../src/protocol/alert.js';
import { eventually } from '../support/eventually.js';
import { readEvents, useGateway } from '../support/gateway.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const gw = useGateway('gwalerts');
let receiver: WebhookReceiver | undefined;
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

describe('alerts over HTTP', () => {
  it('configures, fires once per cooldown to a webhook, streams, and acknowledges', async () => {
    const g = await gw.setup();
    receiver = await startWebhookReceiver();
    const off = Object.fromEntries(ALERT_RULES.map((r) => [r, { enabled: false }]));
    const config = {
      v: 1,
      sampleIntervalMs: 100,
      rules: { ...off, no_agents_online: { enabled: true, minQueued: 1, forMs: 0, cooldownMs: 60_000 } },
      webhooks: [{ url: receiver.url }],
    };
    expect((await g.http('PUT', '/api/alerts/config', { token: g.tokens.read, body: config })).status).toBe(
      403,
    );
    const bad = await g.http('PUT', '/api/alerts/config', { body: { ...config, sampleIntervalMs: -1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.path?.[0]).toBe('body');
    const put = await g.http('PUT', '/api/alerts/config', { body: config });
    expect(put.status, put.text).toBe(200);
    expect(put.body.stored).toBe(true);

    const events = await readEvents(
      `${g.url}/api/events?types=alert`,
      g.tokens.read,
      (ev) => ev.some((e) => e.event === 'alert' && e.data.status === 'firing'),
      {
        onOpen: async () => void (await g.http('POST', '/api/tasks', { body: { title: 'nobody to do it' } })),
      },
    );
    expect(events.find((e) => e.event === 'alert' && e.data.status === 'firing')!.data.key).toBe(
      'rule.no_agents_online',
    );
    await eventually(() => expect(receiver!.firing('no_agents_online')).toHaveLength(1));
    const list = await g.http('GET', '/api/alerts', { token: g.tokens.read });
    const rule = list.body.alerts.find((a: { rule: string }) => a.rule === 'no_agents_online');
    expect(rule.status).toBe('firing');
    const acked = await g.http('POST', '/api/alerts/no_agents_online/ack');
    expect(acked.status).toBe(200);
    expect(acked.body.alert).toMatchObject({ status: 'acknowledged', ackedBy: 'http:admin' });
    expect((await g.http('POST', '/api/alerts/high_error_rate/ack')).status).toBe(409);
    expect((await g.http('POST', '/api/alerts/no_such_rule/ack')).status).toBe(400);
    // Within its cooldown, nothing more was sent.
    expect(receiver.firing('no_agents_online')).toHaveLength(1);
  });
});
