/**
 * Alerts across a change of leader, against a real nats-server: the cooldown and the outbox are in
 * the alerts bucket, so the hub that takes over delivers what its predecessor had not (same event
 * id) and does not notify a firing rule again inside its cooldown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HubClient } from '../../../src/bus/hub-client.js';
import type { HubHandle } from '../../../src/hub/main.js';
import { ALERT_RULES, type AlertConfigInput } from '../../../src/protocol/alert.js';
import { eventually } from '../../support/eventually.js';
import { startTestHub, type TestClient, testClient } from '../../support/hub.js';
import { uniqueName } from '../../support/names.js';
import { useNatsServer } from '../../support/nats-server.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/webhook-receiver.js';

const nats = useNatsServer();
const open: { hubs: HubHandle[]; client?: TestClient; hook?: WebhookReceiver } = { hubs: [] };
afterEach(async () => {
  await open.hook?.close();
  await open.client?.close();
  for (const hub of open.hubs.splice(0).reverse()) await hub.stop();
});

describe('alerts across a failover', () => {
  it('the new leader delivers the undelivered event again and keeps the cooldown', async () => {
    const prefix = uniqueName('alertfo').replace(/_/g, '-').toLowerCase();
    const first = await startTestHub(nats.url, prefix);
    open.hubs.push(first);
    open.client = await testClient(nats.url, prefix);
    const api = new HubClient(open.client.bus, 10_000);
    await eventually(() => api.alerts(), { timeout: 15_000, interval: 50 });

    // The receiver holds the first POST unanswered: the event stays in the outbox.
    let hanging = true;
    const hook = await startWebhookReceiver(() => (hanging ? 'hang' : 200));
    open.hook = hook;
    const off = Object.fromEntries(
      ALERT_RULES.map((r) => [r, { enabled: false }]),
    ) as AlertConfigInput['rules'];
    await api.setAlertConfig({
      v: 1,
      sampleIntervalMs: 100,
      rules: { ...off, no_agents_online: { enabled: true, forMs: 0, cooldownMs: 600_000, minQueued: 1 } },
      webhooks: [{ url: hook.url }],
      delivery: { attempts: 3, timeoutMs: 30_000, backoffMinMs: 50, backoffMaxMs: 200 },
    });
    await api.submit({ title: 'nobody serves this', queue: 'fo' as never });
    await eventually(() => expect(hook.got).toHaveLength(1), { timeout: 15_000 });
    const event = hook.got[0]!.event;
    expect(event).toMatchObject({ rule: 'no_agents_online', status: 'firing', id: 'no_agents_online.1.1' });
    expect((await api.alerts()).alerts.find((a) => a.rule === 'no_agents_online')).toMatchObject({
      status: 'firing',
      undelivered: 1,
    });

    // The leader stops mid-delivery; another hub takes over with the receiver answering now.
    await first.stop();
    open.hubs.pop();
    hanging = false;
    open.hubs.push(await startTestHub(nats.url, prefix));
    await eventually(() => expect(hook.got.filter((p) => p.status === 200)).toHaveLength(1), {
      timeout: 20_000,
    });
    expect(hook.got[1]!.event).toEqual(event);

    // The new leader samples (a second task changes the value it writes) but stays silent: the
    // cooldown started on the first hub.
    await api.submit({ title: 'still nobody', queue: 'fo' as never });
    await eventually(
      async () => {
        const a = (await api.alerts()).alerts.find((x) => x.rule === 'no_agents_online')!;
        expect(a).toMatchObject({ status: 'firing', value: 2, undelivered: 0, firing: 1 });
      },
      { timeout: 20_000 },
    );
    expect(hook.got.map((p) => p.event.id)).toEqual(['no_agents_online.1.1', 'no_agents_online.1.1']);
  });
});
