/**
 * Alerting through a real hub on a test nats-server: the lease holder's AlertsProcess samples every
 * 100 ms, real node:http webhook receivers get the events, a NATS subscriber on `<p>.alert.>` sees
 * them too, and `agentcom alerts ...` and the API change the rules at runtime. Each test switches on
 * only the rule it is about (all share one hub), and leaves no task queued and no agent online.
 */
import { createHmac } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { openKv } from '../../src/bus/kv.js';
import {
  ALERT_RULES,
  ALERTS_KEY,
  type AlertConfigInput,
  AlertConfigSchema,
  type AlertEvent,
} from '../../src/protocol/alert.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { useCliHub } from '../support/cli-hub.js';
import { eventually } from '../support/eventually.js';
import {
  type ReceivedPost,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../support/webhook-receiver.js';

const h = useCliHub('clialert');
const SECRET = 'a-shared-secret-1';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** Every rule off but the ones given; sampled every 100 ms; quick retries. */
function config(
  rules: AlertConfigInput['rules'],
  webhooks: AlertConfigInput['webhooks'] = [],
): AlertConfigInput {
  const off = Object.fromEntries(
    ALERT_RULES.map((r) => [r, { enabled: false }]),
  ) as AlertConfigInput['rules'];
  return {
    v: 1,
    sampleIntervalMs: 100,
    rules: { ...off, ...rules },
    webhooks,
    delivery: { attempts: 3, timeoutMs: 3_000, backoffMinMs: 50, backoffMaxMs: 200 },
  };
}

async function receiver(respond?: (n: number) => number | 'hang'): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(respond);
  cleanups.push(() => r.close());
  return r;
}

/** Events on `<p>.alert.>`, as a subscriber sees them. */
function natsEvents(): AlertEvent[] {
  const seen: AlertEvent[] = [];
  const sub = h.client.bus.nc.subscribe(h.client.bus.names.subjects.alertAll, {
    callback: (_err, m) => {
      seen.push(JSON.parse(new TextDecoder().decode(m.data)) as AlertEvent);
    },
  });
  cleanups.push(async () => sub.unsubscribe());
  return seen;
}

async function queueTask(queue: string): Promise<string> {
  const t = await h.api.submit({ title: `waits in ${queue}`, queue: queue as never });
  cleanups.push(() => h.api.cancel(t.id));
  return t.id;
}

async function alert(rule: string) {
  return (await h.api.alerts()).alerts.find((a) => a.rule === rule)!;
}

async function noAgentOnline() {
  await eventually(async () => expect((await h.api.agents()).agents.filter((a) => a.online)).toEqual([]), {
    timeout: 15_000,
  });
}

describe('no_agents_online to a webhook and NATS', () => {
  it('fires exactly once per cooldown while it holds, signed, then resolves once when an agent comes', async () => {
    await noAgentOnline();
    const hook = await receiver();
    const onNats = natsEvents();
    const cooldownMs = 2_000;
    await h.api.setAlertConfig(
      config({ no_agents_online: { enabled: true, forMs: 0, cooldownMs, minQueued: 1 } }, [
        { url: hook.url, secret: SECRET },
      ]),
    );
    const taskId = await queueTask('alertq-1');

    await eventually(() => expect(hook.firing('no_agents_online').length).toBeGreaterThanOrEqual(2), {
      timeout: 20_000,
      interval: 50,
    });
    const [first, second] = hook.firing('no_agents_online') as [ReceivedPost, ReceivedPost];
    const episode = first.event.firing;
    expect(first.event).toMatchObject({
      v: 1,
      id: `no_agents_online.${episode}.1`,
      rule: 'no_agents_online',
      status: 'firing',
      severity: 'critical',
      value: 1,
      threshold: 1,
    });
    expect(first.event.message).toMatch(/no agent online/);
    expect(second.event.id).toBe(`no_agents_online.${episode}.2`);
    // Once per cooldown: nothing between the two, and the second no sooner than the cooldown.
    expect(second.event.at - first.event.at).toBeGreaterThanOrEqual(cooldownMs);
    const inFirstCooldown = (p: ReceivedPost) =>
      p.event.at >= first.event.at && p.event.at < first.event.at + cooldownMs;
    expect(hook.got.filter(inFirstCooldown)).toHaveLength(1);
    expect(onNats.filter((e) => e.at >= first.event.at && e.at < first.event.at + cooldownMs)).toHaveLength(
      1,
    );
    // Signed with the webhook's secret over the exact body.
    expect(first.headers['x-agentcom-signature']).toBe(
      `sha256=${createHmac('sha256', SECRET).update(first.body).digest('hex')}`,
    );
    expect(first.headers['x-agentcom-event']).toBe(first.event.id);
    expect(first.headers['content-type']).toBe('application/json');

    // An agent (of another queue: the task stays queued) comes online: resolved, once.
    const agent = await AgentClient.connect({
      connection: { servers: h.url, prefix: h.prefix },
      agentId: 'alert-agent-1',
      hello: { queues: ['elsewhere'] },
      logger: pino({ level: 'silent' }),
      helloTimeoutMs: 10_000,
    });
    await agent.start(async () => ({ type: 'completed', result: null }));
    await eventually(() => expect(hook.resolved('no_agents_online')).toHaveLength(1), { timeout: 15_000 });
    const resolved = hook.resolved('no_agents_online')[0]!;
    expect(resolved.event).toMatchObject({ id: `no_agents_online.${episode}.resolved`, status: 'resolved' });
    expect(resolved.event.message).toMatch(/1 agent online/);
    const view = await alert('no_agents_online');
    expect(view).toMatchObject({ status: 'ok', firing: episode, resolvedAt: resolved.event.at });
    await eventually(async () => expect((await alert('no_agents_online')).undelivered).toBe(0));

    // The NATS subscriber saw the same events, in order.
    const ids = hook.got.map((p) => p.event.id);
    await eventually(() => expect(onNats.map((e) => e.id)).toEqual(ids));

    // The task is cancelled before the agent leaves, so nothing fires again.
    await h.api.cancel(taskId);
    await agent.stop({ goodbye: true });
    await noAgentOnline();
  });
});

describe('acknowledgement', () => {
  it('an acknowledged alert is silent until it resolves, then resolves once; acking an ok rule is refused', async () => {
    await noAgentOnline();
    const hook = await receiver();
    const cooldownMs = 400;
    await h.api.setAlertConfig(
      config({ no_agents_online: { enabled: true, forMs: 0, cooldownMs, minQueued: 1 } }, [
        { url: hook.url },
      ]),
    );
    const t1 = await queueTask('alertq-2');
    await eventually(() => expect(hook.firing('no_agents_online').length).toBeGreaterThanOrEqual(1), {
      timeout: 15_000,
    });
    const episode = hook.firing('no_agents_online')[0]!.event.firing;

    const ack = await h.cli('alerts', 'ack', 'no_agents_online', '--by', 'tester', '--json');
    expect(ack.code, ack.stderr).toBe(0);
    const acked = ack.json<{ alert: { status: string; ackedBy: string; ackedAt: number } }>().alert;
    expect(acked).toMatchObject({ status: 'acknowledged', ackedBy: 'tester' });

    // Still holding (a second task moves its value), for several cooldowns: nothing decided after the ack.
    const t2 = await queueTask('alertq-2');
    await eventually(
      async () => {
        const a = await alert('no_agents_online');
        expect(a).toMatchObject({ status: 'acknowledged', value: 2 });
        expect(Date.now() - acked.ackedAt).toBeGreaterThan(5 * cooldownMs);
      },
      { timeout: 15_000, interval: 100 },
    );
    const list = await h.cli('alerts', 'list');
    expect(list.stdout).toMatch(/no_agents_online\s+acknowledged \(tester\)\s+critical\s+2\s+1/);
    expect(hook.firing('no_agents_online').filter((p) => p.event.at > acked.ackedAt)).toEqual([]);

    // It resolves (nothing queued): one resolved event, and the acknowledgement is over.
    await h.api.cancel(t1);
    await h.api.cancel(t2);
    await eventually(() => expect(hook.resolved('no_agents_online')).toHaveLength(1), { timeout: 15_000 });
    expect(hook.resolved('no_agents_online')[0]!.event.id).toBe(`no_agents_online.${episode}.resolved`);
    expect(await alert('no_agents_online')).toMatchObject({ status: 'ok', ackedBy: null });

    const again = await h.cli('alerts', 'ack', 'no_agents_online', '--json');
    expect(again.code).toBe(4);
    expect(JSON.parse(again.stderr).error.code).toBe(ERROR_CODES.INVALID_STATE);
  });
});

describe('configuration', () => {
  it('refuses an invalid configuration with a structured error naming the path, storing nothing', async () => {
    await h.api.setAlertConfig(config({}));
    const before = await h.api.alertConfig();
    await expect(
      h.api.setAlertConfig({ v: 1, rules: { stuck_tasks: { cooldownMs: 5 } } }),
    ).rejects.toMatchObject({
      code: ERROR_CODES.INVALID_PAYLOAD,
      path: ['config', 'rules', 'stuck_tasks', 'cooldownMs'],
    });
    await expect(
      h.api.setAlertConfig({ v: 1, rules: { stuck_tasks: { bogus: 1 } as never } }),
    ).rejects.toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD, path: ['config', 'rules', 'stuck_tasks'] });
    await expect(
      h.api.setAlertConfig({ v: 1, webhooks: [{ url: 'ftp://example.com/x' }] }),
    ).rejects.toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD, path: ['config', 'webhooks', 0, 'url'] });
    await expect(
      h.api.setAlertConfig({ v: 1, webhooks: [{ url: 'http://127.0.0.1:1/x', secret: '<redacted>' }] }),
    ).rejects.toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD, path: ['config', 'webhooks', 0, 'secret'] });
    expect(await h.api.alertConfig()).toEqual(before);

    for (const args of [
      ['set', 'no_agents_online', '--threshold', '-1'],
      ['set', 'no_such_rule', '--threshold', '1'],
      ['set', 'stuck_tasks', '--cooldown', 'soon'],
      ['set', 'stuck_tasks'],
      ['webhook', 'add', 'not a url'],
    ]) {
      const r = await h.cli('alerts', ...args, '--json');
      expect(r.code, args.join(' ')).toBe(2);
      expect(JSON.parse(r.stderr).error.code, args.join(' ')).toBe(ERROR_CODES.INVALID_PAYLOAD);
    }
    expect(await h.api.alertConfig()).toEqual(before);
  });

  // Eight or more CLI processes one after another: on two busy cores each takes a few seconds.
  it('changes rules and webhooks at runtime; secrets are never shown and survive edits', {
    timeout: 90_000,
  }, async () => {
    await h.api.setAlertConfig(config({}));
    const set = await h.cli(
      'alerts',
      'set',
      'stuck_tasks',
      '--threshold',
      '3',
      '--cooldown',
      '5m',
      '--param',
      'noProgressMs=20m',
      '--json',
    );
    expect(set.code, set.stderr).toBe(0);
    expect(set.json<{ settings: unknown }>().settings).toMatchObject({
      enabled: false,
      minTasks: 3,
      cooldownMs: 300_000,
      noProgressMs: 1_200_000,
      assignedMs: 120_000,
    });
    const on = await h.cli('alerts', 'set', 'stuck_tasks', '--enabled');
    expect(on.code, on.stderr).toBe(0);
    expect(on.stdout).toMatch(/stuck_tasks: .*cooldown 5m00s, minTasks 3, noProgress 20m00s/);

    const add = await h.cli(
      'alerts',
      'webhook',
      'add',
      'https://hooks.example.com/a',
      '--secret',
      SECRET,
      '--rules',
      'stuck_tasks',
    );
    expect(add.code, add.stderr).toBe(0);
    const add2 = await h.cli('alerts', 'webhook', 'add', 'https://hooks.example.com/b');
    expect(add2.code, add2.stderr).toBe(0);
    const shown = await h.cli('alerts', 'config', '--json');
    expect(shown.stdout).not.toContain(SECRET);
    const doc = shown.json<{ config: { webhooks: unknown[] }; rules: Record<string, unknown> }>();
    expect(doc.config.webhooks).toEqual([
      { url: 'https://hooks.example.com/a', secret: '<redacted>', rules: ['stuck_tasks'] },
      { url: 'https://hooks.example.com/b' },
    ]);
    expect(doc.rules.stuck_tasks).toMatchObject({ enabled: true, minTasks: 3 });
    const text = await h.cli('alerts', 'config');
    expect(text.stdout).toMatch(/webhook https:\/\/hooks.example.com\/a \(signed\) rules stuck_tasks/);
    // The stored document still holds the secret the CLI never saw again.
    const kv = await openKv(h.client.bus, h.client.bus.names.buckets.config, AlertConfigSchema);
    expect((await kv.get(ALERTS_KEY))?.value.webhooks[0]).toMatchObject({ secret: SECRET });

    const rm = await h.cli('alerts', 'webhook', 'remove', 'https://hooks.example.com/a');
    expect(rm.code, rm.stderr).toBe(0);
    const missing = await h.cli('alerts', 'webhook', 'remove', 'https://hooks.example.com/a', '--json');
    expect(missing.code).toBe(3);
    expect((await h.api.alertConfig()).config.webhooks).toEqual([{ url: 'https://hooks.example.com/b' }]);
    await h.api.setAlertConfig(config({}));
  });
});

describe('webhook delivery', () => {
  it('retries a receiver that answered 500, gives up on one that always does, never blocking the other', async () => {
    const flaky = await receiver((n) => (n === 1 ? 500 : 200));
    const broken = await receiver(() => 500);
    await h.api.setAlertConfig(
      config(
        { queue_growing: { enabled: true, forMs: 0, cooldownMs: 600_000, growthTasks: 2, windowMs: 1_000 } },
        [{ url: flaky.url }, { url: broken.url, rules: ['queue_growing'] }],
      ),
    );
    await queueTask('alertq-4');
    await queueTask('alertq-4');
    await eventually(() => expect(flaky.firing('queue_growing').length).toBeGreaterThanOrEqual(2), {
      timeout: 15_000,
    });
    const id = flaky.firing('queue_growing')[0]!.event.id;
    // Every delivery has ended (delivered or given up) once the outbox is empty.
    await eventually(
      async () => {
        const a = await alert('queue_growing');
        expect(a.status).toBe('ok');
        expect(a.undelivered).toBe(0);
      },
      { timeout: 15_000 },
    );
    expect(flaky.of(id).map((p) => p.status)).toEqual([500, 200]);
    expect(flaky.of(id)[1]!.body).toBe(flaky.of(id)[0]!.body);
    expect(broken.of(id).map((p) => p.status)).toEqual([500, 500, 500]);
    const resolvedId = id.replace(/\.\d+$/, '.resolved');
    expect(flaky.of(resolvedId).map((p) => p.status)).toEqual([200]);
    await h.api.setAlertConfig(config({}));
  });
});
