/**
 * The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against a live
 * hub with agents as processes: the page shows an agent go idle -> working -> idle as a task runs,
 * and a dead task's Retry clicked in the page requeues it (the agent then finishes it). Nothing is
 * polled: the page follows the gateway's event stream. Screenshots are written to
 * test-output/screenshots/ (git-ignored) for people to look at.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, SHOTS, signIn } from '../support/browser.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/gateway.js';
import { type SimAgent, spawnSimAgent } from '../support/sim-agents.js';

const g = useGateway('dash');
let browser: Browser;
const agents: SimAgent[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill()));
  await browser?.close();
});

describe('the dashboard', () => {
  it('shows an agent go idle, working, idle as a task runs; a dead task retried from the page is requeued', async () => {
    const h = await g.setup();
    const worker = await spawnSimAgent({
      url: g.nats.url,
      prefix: h.prefix,
      agentId: 'dash-worker',
      workMs: 2_500,
    });
    agents.push(worker);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await signIn(page, h.url, h.tokens.admin);
    const row = 'tr[data-agent-id="dash-worker"]';
    await page.waitForSelector(`${row}[data-state="idle"]`, { timeout: 30_000 });
    await page.screenshot({ path: new URL('agent-idle.png', SHOTS).pathname, fullPage: true });

    const submitted = await h.http('POST', '/api/tasks', {
      token: h.tokens.admin,
      body: { title: 'watch me work' },
    });
    expect(submitted.status).toBe(201);
    const taskId: string = submitted.body.task.id;
    await page.waitForSelector(`${row}[data-state="working"]`, { timeout: 30_000 });
    await page.waitForSelector(`#tasks tr[data-task-id="${taskId}"][data-status="working"]`, {
      timeout: 30_000,
    });
    await page.screenshot({ path: new URL('agent-working.png', SHOTS).pathname, fullPage: true });
    await page.waitForSelector(`#tasks tr[data-task-id="${taskId}"][data-status="done"]`, {
      timeout: 30_000,
    });
    await page.waitForSelector(`${row}[data-state="idle"]`, { timeout: 30_000 });

    // A task that dies: its first attempt fails and it has no retries left.
    const flaky = await spawnSimAgent({
      url: g.nats.url,
      prefix: h.prefix,
      agentId: 'dash-flaky',
      queues: ['flaky'],
      failTimes: 1,
      retryable: true,
    });
    agents.push(flaky);
    const doomed = await h.http('POST', '/api/tasks', {
      token: h.tokens.admin,
      body: { title: 'fails once', queue: 'flaky', maxRetries: 0 },
    });
    const deadId: string = doomed.body.task.id;
    const deadRow = `#dead tr[data-task-id="${deadId}"]`;
    await page.waitForSelector(deadRow, { timeout: 30_000 });
    await page.screenshot({ path: new URL('dead-task.png', SHOTS).pathname, fullPage: true });
    await page.click(`${deadRow} button`);
    // Requeued, and this time the agent finishes it.
    await page.waitForSelector(`#tasks tr[data-task-id="${deadId}"][data-status="done"]`, {
      timeout: 30_000,
    });
    const after = await h.http('GET', `/api/tasks/${deadId}`, { token: h.tokens.admin });
    expect(after.body.task.status).toBe('done');
    expect(await page.$(deadRow)).toBeNull();
    await page.screenshot({ path: new URL('retried.png', SHOTS).pathname, fullPage: true });
    expect(errors).toEqual([]);
  }, 180_000);

  it('replays a dead letter clicked in the page: it leaves the list and the DLQ', async () => {
    const h = await g.setup();
    // A poison submission (malformed JSON on the submit stream) is dead-lettered by the hub.
    await h.bus.js.publish(h.bus.names.subjects.taskSubmit, '{"v":1,"title":');
    const letter = await eventually(async () => {
      const r = await h.http('GET', '/api/dlq', { token: h.tokens.admin });
      expect(r.body.items.length).toBe(1);
      return r.body.items[0] as { seq: number };
    });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await signIn(page, h.url, h.tokens.admin);
    const row = `#dlq tr[data-seq="${letter.seq}"]`;
    await page.waitForSelector(row, { timeout: 30_000 });
    await page.screenshot({ path: new URL('dead-letter.png', SHOTS).pathname, fullPage: true });
    await page.click(`${row} button`);
    await page.waitForSelector(row, { state: 'detached', timeout: 30_000 });
    // Replayed: the letter is gone from the DLQ (it is poison, so the hub dead-letters the copy again).
    await eventually(async () => {
      const r = await h.http('GET', '/api/dlq', { token: h.tokens.admin });
      const seqs = r.body.items.map((i: { seq: number }) => i.seq);
      expect(seqs).not.toContain(letter.seq);
      expect(seqs.length).toBe(1);
    });
    expect(errors).toEqual([]);
  }, 120_000);

  it('serves only its own files, with a policy allowing nothing from elsewhere', async () => {
    const h = await g.setup();
    const page = await h.http('GET', '/dashboard', { token: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.text).not.toMatch(/https?:\/\//);
    for (const asset of ['app.js', 'core.js', 'dashboard.css']) {
      const r = await h.http('GET', `/dashboard/assets/${asset}`, { token: null });
      expect(r.status).toBe(200);
      expect(r.text).not.toMatch(/https?:\/\/(?!localhost)/);
    }
    // The charting library comes from its installed package, and only the files the page names.
    const uplot = await h.http('GET', '/dashboard/vendor/uPlot.esm.js', { token: null });
    expect(uplot.status).toBe(200);
    expect(uplot.headers.get('content-type')).toContain('javascript');
    expect((await h.http('GET', '/dashboard/vendor/uPlot.d.ts', { token: null })).status).toBe(404);
    expect((await h.http('GET', '/dashboard/assets/..%2F..%2Fapp.ts', { token: null })).status).toBe(404);
    expect((await h.http('GET', '/dashboard/assets/index.html', { token: null })).status).toBe(404);
    // The data is the API's: without a token the page gets nothing.
    expect((await h.http('GET', '/api/dashboard/state', { token: null })).status).toBe(401);
  });
});
