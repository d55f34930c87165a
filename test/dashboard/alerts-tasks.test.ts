/**
 * The dashboard's alerts and task-detail panels in a real headless Chromium (Debian's, driven by
 * playwright-core) against a live hub. (a) An alert rule fires for real (no agent online while a
 * task is queued), shows in the panel with its badge; a read token's Acknowledge gets the API's
 * structured 403 in the log and the button stays; an admin's Acknowledge acknowledges it (the
 * API says so too); an agent coming online resolves it. (b) A task row clicked opens the task's
 * detail with its history; as an agent (the SDK over NATS, paced by the test) reports progress and
 * completes, the open detail follows (working -> done, the history grows) without being reopened;
 * Cancel from the detail cancels a queued task; an unknown id shows as not found. Nothing sleeps:
 * every wait is for a selector or a condition, with a deadline. Screenshots are written to
 * test-output/screenshots/ (git-ignored) for people to look at.
 */
import { pino } from 'pino';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { ALERT_RULES } from '../../src/protocol/alert.js';
import { launchBrowser, SHOTS } from '../support/browser.js';
import { useGateway } from '../support/gateway.js';
import { type SimAgent, spawnSimAgent } from '../support/sim-agents.js';

const WAIT = { timeout: 30_000 };
const g = useGateway('dashat');
let browser: Browser;
const sims: SimAgent[] = [];
const clients: AgentClient[] = [];
const releases: (() => void)[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);
// Registered after useGateway's: runs before the hub it talks to is stopped.
afterEach(async () => {
  for (const release of releases.splice(0)) release();
  await Promise.all(sims.splice(0).map((a) => a.kill()));
  await Promise.all(clients.splice(0).map((c) => c.stop({ abort: true })));
});
afterAll(async () => {
  await browser?.close();
});

const shot = (page: Page, name: string) =>
  page.screenshot({ path: new URL(name, SHOTS).pathname, fullPage: true });

async function openDashboard(url: string, token: string, errors: string[]): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  // Failed module loads and requests show here only: reported if the page never goes live.
  const consoleErrors: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && consoleErrors.push(m.text())));
  await page.goto(`${url}/dashboard`);
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#status[data-status="live"]', WAIT).catch(async (err) => {
    const status = await page.textContent('#status').catch(() => '?');
    throw new Error(
      `not live (status "${status}", errors ${JSON.stringify([...errors, ...consoleErrors])}): ${err}`,
    );
  });
  return page;
}

/** A promise the test resolves when it decides; released at the latest when the test ends. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  releases.push(open);
  return { promise, open };
}

describe('the alerts panel', () => {
  it('shows a rule firing for real; a read token cannot acknowledge it, an admin can from the page; it resolves', async () => {
    const h = await g.setup();
    // Only no_agents_online, at once and sampled often: it fires when a task waits and no agent is online.
    const off = Object.fromEntries(ALERT_RULES.map((r) => [r, { enabled: false }]));
    const put = await h.http('PUT', '/api/alerts/config', {
      body: {
        v: 1,
        sampleIntervalMs: 200,
        rules: {
          ...off,
          no_agents_online: {
            enabled: true,
            minQueued: 1,
            forMs: 0,
            cooldownMs: 60_000,
            severity: 'critical',
          },
        },
      },
    });
    expect(put.status, put.text).toBe(200);
    const errors: string[] = [];
    const page = await openDashboard(h.url, h.tokens.admin, errors);
    await page.waitForSelector('#alerts-count[data-count="0"]', WAIT);
    await page.waitForSelector('#alerts-summary:has-text("All rules ok")', WAIT);
    const row = '#alerts tr[data-rule="no_agents_online"]';
    expect(await page.$(row)).toBeNull();

    const submitted = await h.http('POST', '/api/tasks', { body: { title: 'nobody to do it' } });
    expect(submitted.status).toBe(201);
    await page.waitForSelector(`${row}[data-status="firing"][data-severity="critical"]`, WAIT);
    await page.waitForSelector('#alerts-count[data-count="1"][data-severity="critical"]', WAIT);
    expect(await page.textContent(`${row} td.message`)).toContain('no agent online');
    await shot(page, 'alert-firing.png');

    // A read token sees it, but its Acknowledge is refused: the structured 403 is logged, the button stays.
    const readErrors: string[] = [];
    const reader = await openDashboard(h.url, h.tokens.read, readErrors);
    await reader.click(`${row}[data-status="firing"] button`);
    await reader.waitForSelector('#log:has-text("Acknowledge: 403 forbidden")', WAIT);
    await reader.waitForSelector(`${row}[data-status="firing"] button:enabled`, WAIT);
    await shot(reader, 'alert-ack-forbidden.png');
    await reader.close();
    expect(readErrors).toEqual([]);
    const still = await h.http('GET', '/api/alerts', { token: h.tokens.read });
    expect(still.body.alerts.find((a: { rule: string }) => a.rule === 'no_agents_online').status).toBe(
      'firing',
    );

    // The admin's Acknowledge, clicked in the page.
    await page.click(`${row}[data-status="firing"] button`);
    await page.waitForSelector(`${row}[data-status="acknowledged"]`, WAIT);
    expect(await page.textContent(`${row} td.alert-status`)).toContain('acknowledged by http:admin');
    expect(await page.$(`${row} button`)).toBeNull();
    await page.waitForSelector('#alerts-count[data-count="0"]', WAIT);
    const acked = await h.http('GET', '/api/alerts', { token: h.tokens.read });
    expect(acked.body.alerts.find((a: { rule: string }) => a.rule === 'no_agents_online')).toMatchObject({
      status: 'acknowledged',
      ackedBy: 'http:admin',
    });
    await shot(page, 'alert-acknowledged.png');

    // An agent comes online (and does the task): the rule resolves, and the page shows it live.
    sims.push(await spawnSimAgent({ url: g.nats.url, prefix: h.prefix, agentId: 'alert-worker' }));
    await page.waitForSelector(`${row}[data-status="resolved"]`, WAIT);
    const resolved = await h.http('GET', '/api/alerts', { token: h.tokens.read });
    const rule = resolved.body.alerts.find((a: { rule: string }) => a.rule === 'no_agents_online');
    expect(rule.status).toBe('ok');
    expect(rule.resolvedAt).toEqual(expect.any(Number));
    await shot(page, 'alert-resolved.png');
    expect(errors).toEqual([]);
  }, 180_000);
});

describe('the task detail panel', () => {
  it('opens from a task row with its history and follows progress and completion live; cancels; says not found', async () => {
    const h = await g.setup();
    const progressGate = gate();
    const finishGate = gate();
    let startedId: string | undefined;
    const client = await AgentClient.connect({
      connection: { servers: g.nats.url, prefix: h.prefix },
      agentId: 'detail-worker',
      hello: { capabilities: [], queues: ['default'], slots: 1 },
      logger: pino({ level: 'silent' }),
    });
    clients.push(client);
    const aborted = (signal: AbortSignal) =>
      new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    await client.start(async (ctx) => {
      startedId = ctx.taskId;
      await Promise.race([progressGate.promise, aborted(ctx.signal)]);
      await ctx.progress({ pct: 40, message: 'halfway there', tokensUsed: 7 });
      await Promise.race([finishGate.promise, aborted(ctx.signal)]);
      return { type: 'completed', result: { summary: 'all good', lines: 3 }, tokensUsed: 12 };
    });

    const errors: string[] = [];
    const page = await openDashboard(h.url, h.tokens.admin, errors);
    const reads: number[] = [];
    const submitted = await h.http('POST', '/api/tasks', { body: { title: 'watch my detail' } });
    expect(submitted.status).toBe(201);
    const id: string = submitted.body.task.id;
    page.on('request', (r) => {
      if (new URL(r.url()).pathname === `/api/tasks/${id}`) reads.push(Date.now());
    });
    await page.waitForSelector(`#tasks tr[data-task-id="${id}"][data-status="working"]`, WAIT);
    expect(startedId).toBe(id);

    const panel = `#task-detail-panel[data-task-id="${id}"]`;
    await page.click(`#tasks tr[data-task-id="${id}"] td:first-child`);
    const opened = Date.now();
    await page.waitForSelector(`${panel}[data-state="loaded"][data-status="working"]`, WAIT);
    expect(await page.textContent('#task-detail-fields dd[data-field="title"]')).toBe('watch my detail');
    expect(await page.textContent('#task-detail-fields dd[data-field="assignee"]')).toBe('detail-worker');
    for (const to of ['queued', 'assigned', 'working'])
      await page.waitForSelector(`#task-history tr[data-to="${to}"]`, WAIT);
    const historyAtOpen = await page.$$eval('#task-history tbody tr', (rows) => rows.length);
    expect(await page.$('#task-detail-actions button[data-action="cancel"]')).not.toBeNull();
    expect(await page.$('#task-detail-actions button[data-action="retry"]')).toBeNull();

    // Progress: the open detail shows it from the event stream.
    progressGate.open();
    await page.waitForSelector(
      '#task-detail-progress[data-pct="40"] .message:has-text("halfway there")',
      WAIT,
    );
    await shot(page, 'task-detail-working.png');

    // Completion: status, history (only in the record: read again on the events), result, tokens.
    finishGate.open();
    await page.waitForSelector(`${panel}[data-status="done"]`, WAIT);
    await page.waitForSelector('#task-history tr[data-to="done"]', WAIT);
    await page.waitForSelector('#task-detail-fields dd[data-field="result"]:has-text("all good")', WAIT);
    await page.waitForSelector('#task-detail-fields dd[data-field="tokens used"]:has-text("12")', WAIT);
    const historyAtEnd = await page.$$eval('#task-history tbody tr', (rows) => rows.length);
    expect(historyAtEnd).toBeGreaterThan(historyAtOpen);
    expect(await page.$('#task-detail-actions button[data-action="cancel"]')).toBeNull();
    const record = await h.http('GET', `/api/tasks/${id}`, { token: h.tokens.read });
    expect(record.body.task.status).toBe('done');
    expect(historyAtEnd).toBe(record.body.task.history.length);
    // Read at open and again as events came, never more than once a second.
    expect(reads.length).toBeGreaterThanOrEqual(2);
    expect(reads.length).toBeLessThanOrEqual(2 + Math.ceil((Date.now() - opened) / 1_000));
    await shot(page, 'task-detail-done.png');

    // Cancel from the detail: a task in a queue nobody serves waits, queued.
    const waiting = await h.http('POST', '/api/tasks', { body: { title: 'never picked', queue: 'nowhere' } });
    const waitingId: string = waiting.body.task.id;
    await page.click(`#tasks tr[data-task-id="${waitingId}"][data-status="queued"] td:first-child`);
    const waitingPanel = `#task-detail-panel[data-task-id="${waitingId}"]`;
    await page.waitForSelector(`${waitingPanel}[data-status="queued"]`, WAIT);
    await page.click('#task-detail-actions button[data-action="cancel"]');
    await page.waitForSelector(`${waitingPanel}[data-status="cancelled"]`, WAIT);
    await page.waitForSelector('#task-detail-actions button[data-action="retry"]', WAIT);
    await page.waitForSelector('#task-history tr[data-to="cancelled"]', WAIT);
    const cancelled = await h.http('GET', `/api/tasks/${waitingId}`, { token: h.tokens.read });
    expect(cancelled.body.task.status).toBe('cancelled');
    await page.click('#task-detail-actions button[data-action="close"]');
    await page.waitForSelector('#task-detail-panel', { state: 'hidden', ...WAIT });

    // An id the hub does not know: the API's structured 404, and the panel says not found.
    const missing = await h.http('GET', '/api/tasks/no-such-task', { token: h.tokens.read });
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('not_found');
    // As a row click would (core.js openTask): the test file has no DOM types, so the page runs a string.
    await page.evaluate(
      `document.dispatchEvent(new CustomEvent('dashboard:task', { detail: { id: 'no-such-task' } }))`,
    );
    await page.waitForSelector(
      '#task-detail-panel[data-task-id="no-such-task"][data-state="not-found"]',
      WAIT,
    );
    expect(await page.textContent('#task-detail-note')).toContain('not found');
    expect(await page.$$('#task-history tbody tr')).toHaveLength(0);
    await shot(page, 'task-detail-not-found.png');
    expect(errors).toEqual([]);
  }, 180_000);
});
