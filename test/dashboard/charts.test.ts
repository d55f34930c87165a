/**
 * The dashboard's "Last hour" charts in a real headless Chromium against a live hub with an agent
 * process: the three charts draw 60 minutes; tasks the agent finishes show up in the throughput
 * chart's data and their latency in the latency chart, and a message sent through the API in the
 * message volume, all without reloading the page (the page follows the `series` events); a chart
 * narrows with its window. A screenshot of the panel is written to test-output/screenshots/.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, SHOTS, signIn } from '../support/browser.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/gateway.js';
import { type SimAgent, spawnSimAgent } from '../support/sim-agents.js';

const g = useGateway('charts');
let browser: Browser;
const agents: SimAgent[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill()));
  await browser?.close();
});

const attr = async (page: Page, selector: string, name: string) => page.getAttribute(selector, name);

describe('the last-hour charts', () => {
  it('show tasks done, their latency and a message sent, pushed without a reload; fit their box', async () => {
    const h = await g.setup();
    const worker = await spawnSimAgent({
      url: g.nats.url,
      prefix: h.prefix,
      agentId: 'charts-worker',
      workMs: 100,
    });
    agents.push(worker);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await signIn(page, h.url, h.tokens.read);
    for (const id of ['chart-tasks', 'chart-latency', 'chart-messages']) {
      await page.waitForSelector(`#${id}[data-points="60"] canvas`, { timeout: 30_000 });
    }
    // A fresh hub: nothing done yet, nothing broadcast.
    expect(await attr(page, '#chart-tasks', 'data-total-done')).toBe('0');
    expect(await attr(page, '#chart-messages', 'data-total-broadcast')).toBe('0');
    expect(await page.textContent('#charts-note')).not.toContain('unavailable');
    // Marks this document: a reload would lose it.
    await page.evaluate('window.__chartsMark = 42');

    for (const title of ['a', 'b', 'c']) {
      const r = await h.http('POST', '/api/tasks', { token: h.tokens.admin, body: { title } });
      expect(r.status).toBe(201);
    }
    await page.waitForSelector('#chart-tasks[data-total-done="3"]', { timeout: 30_000 });
    expect(await attr(page, '#chart-tasks', 'data-total-failed')).toBe('0');
    // The latency chart has the minute's p50 (an estimate in ms, never below 0).
    await page.waitForSelector('#chart-latency[data-last-p50]:not([data-last-p50=""])', { timeout: 10_000 });
    expect(Number(await attr(page, '#chart-latency', 'data-last-p50'))).toBeGreaterThanOrEqual(0);

    const sent = await h.http('POST', '/api/messages', {
      token: h.tokens.submitter,
      body: { broadcast: true, body: 'on the chart' },
    });
    expect(sent.status).toBe(201);
    await page.waitForSelector('#chart-messages[data-total-broadcast="1"]', { timeout: 30_000 });
    expect(await page.evaluate('window.__chartsMark')).toBe(42);
    await (await page.$('#charts-panel'))!.screenshot({ path: new URL('charts.png', SHOTS).pathname });

    // Narrower window, narrower charts (each redrawn to its box).
    const wide = Number(await attr(page, '#chart-tasks', 'data-width'));
    expect(wide).toBeGreaterThan(200);
    await page.setViewportSize({ width: 700, height: 1000 });
    // (Polled from here: the page's policy forbids the eval a waitForFunction polls with.)
    const narrow = await eventually(async () => {
      const w = Number(await attr(page, '#chart-tasks', 'data-width'));
      expect(w).toBeLessThan(wide);
      return w;
    });
    const box = await page.evaluate("document.querySelector('#chart-tasks .plot').clientWidth");
    expect(narrow).toBe(box);
    await (await page.$('#charts-panel'))!.screenshot({ path: new URL('charts-narrow.png', SHOTS).pathname });
  }, 120_000);
});
