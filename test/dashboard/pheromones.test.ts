/**
 * The dashboard's pheromone map (src/gateway/dashboard/pheromones.js) in a real headless Chromium
 * (Debian's, driven by playwright-core) against a live hub, opened with a read token: a pheromone
 * emitted through the API appears as an unclaimed dot whose details show on click; claimed, it
 * turns claimed and names its claimer; an agent that starts observing a pattern gets a line to the
 * dots the pattern matches (and none to the others) once the page refreshes the observers; a
 * pheromone that expires, and one that is removed, leave the map; the flow chart counts them. With
 * more pheromones than it draws, the map draws the newest 500 and says how many more. Nothing is
 * slept on: each step waits for what the page shows. Screenshots go to test-output/screenshots/.
 */
import { pino } from 'pino';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { request } from '../../src/bus/service.js';
import { PheromoneReplySchema } from '../../src/protocol/field.js';
import { launchBrowser, SHOTS } from '../support/browser.js';
import { type GatewayHarness, useGateway } from '../support/gateway.js';

const g = useGateway('phmap');
let browser: Browser;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => {});
});
afterAll(async () => {
  await browser?.close();
});

/** Opens the dashboard signed in; collects page errors and console errors (a CSP refusal is one). */
async function openDashboard(h: GatewayHarness, token: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  cleanups.push(() => page.close());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // A refused request is a console error too: named here by its URL instead (the browser's own
  // favicon request is not the page's).
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) errors.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(`${h.url}/dashboard`);
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#status[data-status="live"]', { timeout: 30_000 });
  return { page, errors };
}

const shot = async (page: Page, name: string) => {
  await page.locator('#pheromones-panel').screenshot({ path: new URL(name, SHOTS).pathname });
};

async function emit(h: GatewayHarness, body: Record<string, unknown>): Promise<string> {
  const r = await h.http('POST', '/api/pheromones', { token: h.tokens.admin, body });
  expect(r.status).toBe(201);
  return r.body.pheromone.id;
}

const dot = (id: string) => `#ph-map .ph-dot[data-pheromone-id="${id}"]`;
const WAIT = { timeout: 30_000 };

/**
 * Waits until the element's text starts with (or, `exact`, is) `want`. The predicate is a function:
 * a string one is compiled by eval in the page, which its Content-Security-Policy forbids.
 */
const textStarts = (page: Page, selector: string, want: string, exact = false) =>
  page.waitForFunction(
    ([sel, w, ex]) => {
      const text =
        (
          globalThis as unknown as {
            document: { querySelector(s: string): { textContent: string | null } | null };
          }
        ).document.querySelector(sel as string)?.textContent ?? '';
      return ex ? text === w : text.startsWith(w as string);
    },
    [selector, want, exact] as const,
    WAIT,
  );

describe('the pheromone map', () => {
  it('shows dots claimed and unclaimed, details, observers’ lines, and dots leaving on expiry and removal', async () => {
    const h = await g.setup();
    const { page, errors } = await openDashboard(h, h.tokens.read);
    // The page has asked for the observers once (nobody yet).
    await page.waitForSelector('#ph-summary .ph-observers', WAIT);

    const review = await emit(h, {
      type: 'map.request.review',
      selector: 'file[name=main.py]',
      payload: { file: 'main.py' },
      ttl: 600,
    });
    await page.waitForSelector(`${dot(review)}[data-claimed="false"][data-state="free"]`, WAIT);
    expect(await page.locator(`#ph-map text.ph-lane-label[data-type="map.request.review"]`).count()).toBe(1);

    // Its record, on click (written as text).
    await page.click(dot(review));
    const detail = `#ph-detail[data-pheromone-id="${review}"]`;
    await page.waitForSelector(detail, WAIT);
    const field = (name: string) => page.locator(`${detail} dd[data-field="${name}"]`).textContent();
    expect(await field('type')).toBe('map.request.review');
    expect(await field('selector')).toBe('file[name=main.py]');
    expect(await field('source')).toBe('http:admin');
    expect(await field('claimer')).toBe('unclaimed');
    expect(await field('ttl')).toMatch(/^\d+ min \d+ s left of 10 min 0 s$/);
    await shot(page, 'pheromones-unclaimed.png');

    // Claimed: the dot turns claimed and names its claimer; the pinned details follow.
    const claim = await h.http('POST', `/api/pheromones/${review}/claim`, { token: h.tokens.submitter });
    expect(claim.body.claimed).toBe(true);
    await page.waitForSelector(
      `${dot(review)}[data-claimed="true"][data-state="claimed"][data-claimed-by="http:submitter"]`,
      WAIT,
    );
    await page.waitForSelector(`${dot(review)} text.ph-claimer`, WAIT);
    expect(await page.locator(`${dot(review)} text.ph-claimer`).textContent()).toBe('http:submitter');
    await textStarts(page, `${detail} dd[data-field="claimer"]`, 'http:submitter');

    // An agent that starts observing: the page learns of it on its next observers refresh (10 s),
    // and draws a line from it to each dot its pattern matches, none to the others.
    const other = await emit(h, { type: 'map.other.thing', ttl: 600 });
    await page.waitForSelector(dot(other), WAIT);
    const watcher = await AgentClient.connect({
      connection: { servers: h.natsUrl, prefix: h.prefix },
      agentId: 'map-watcher',
      hello: { queues: ['default'] },
      logger: pino({ level: 'silent' }),
      helloTimeoutMs: 10_000,
    });
    cleanups.push(() => watcher.stop());
    const observation = await watcher.field.observe(['map.request.*']);
    cleanups.push(async () => observation.stop());
    const line = (id: string) =>
      `#ph-map line.ph-sub[data-observer="map-watcher"][data-pheromone-id="${id}"]`;
    // Attached, not visible: a line between a dot and an observer at the same height has a box of
    // zero height, which Playwright counts as hidden (the dot's place follows its random id).
    const LINE_WAIT = { ...WAIT, state: 'attached' } as const;
    await page.waitForSelector(`${line(review)}[data-kind="live"][data-pattern="map.request.*"]`, LINE_WAIT);
    await page.waitForSelector('#ph-map .ph-agent[data-observer="map-watcher"]', WAIT);
    expect(await page.locator(line(other)).count()).toBe(0);
    await shot(page, 'pheromones-claimed-observed.png');

    // A pheromone that expires leaves the map; so does one that is removed.
    // Long enough to be drawn first on a loaded machine, short enough to wait for.
    const brief = await emit(h, { type: 'map.request.brief', ttl: 15 });
    await page.waitForSelector(`${dot(brief)}[data-claimed="false"]`, WAIT);
    // map.request.* matches it: a line, drawn from the observers the page already has.
    await page.waitForSelector(line(brief), LINE_WAIT);
    await page.waitForSelector(dot(brief), { state: 'detached', timeout: 30_000 });
    expect(await page.locator(line(brief)).count()).toBe(0);
    expect((await h.http('GET', `/api/pheromones/${brief}`)).status).toBe(404);

    const removed = await h.http('DELETE', `/api/pheromones/${review}`, { token: h.tokens.admin });
    expect(removed.status).toBe(200);
    await page.waitForSelector(dot(review), { state: 'detached', timeout: 30_000 });
    expect(await page.locator(line(review)).count()).toBe(0);
    // The pinned details keep its last record, marked gone.
    await page.waitForSelector(`${detail}[data-live="false"]`, WAIT);
    expect(await field('ttl')).toMatch(/^removed \d+ s ago$/);
    expect(await field('claimer')).toMatch(/^http:submitter/);

    // The counts and the flow: one live (other), one expired; 3 emitted, 1 claimed, 2 ended.
    await textStarts(page, '#ph-summary .ph-counts', 'Environment: 1 active | 0 claimed | 1 expired', true);
    // The page's code is a string: this project's TypeScript has no DOM types.
    const flow = (series: string) =>
      page.evaluate(
        `[...document.querySelectorAll('#ph-flow .ph-minute')].reduce((n, e) => n + Number(e.dataset.${series}), 0)`,
      ) as Promise<number>;
    expect(await flow('emitted')).toBe(3);
    expect(await flow('claimed')).toBe(1);
    expect(await flow('ended')).toBe(2);
    expect(await page.locator('#ph-summary .ph-more').count()).toBe(0);
    await shot(page, 'pheromones-after-expiry.png');
    expect(errors).toEqual([]);
  }, 180_000);

  it('draws the newest 500 of more, says how many more, and counts them from the server', async () => {
    const h = await g.setup();
    // Some before the page opens (from the list), the rest while it is open (from events).
    const emitMany = async (n: number, from: number) => {
      const ids: string[] = [];
      for (let i = 0; i < n; i += 25) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(25, n - i) }, (_, j) =>
            request(
              h.bus,
              'field.emit',
              { v: 1, type: `bulk.t${(from + i + j) % 7}`, ttl: 600 },
              PheromoneReplySchema,
              { timeoutMs: 10_000 },
            ),
          ),
        );
        ids.push(...batch.map((r) => r.pheromone.id));
      }
      return ids;
    };
    const before = await emitMany(300, 0);
    const { page, errors } = await openDashboard(h, h.tokens.read);
    await page.waitForSelector('#ph-map[data-dots="300"]', WAIT);
    const after = await emitMany(230, 300);
    await page.waitForSelector('#ph-map[data-dots="500"]', WAIT);
    await page.waitForSelector('#ph-summary .ph-more[data-more="30"]', WAIT);
    expect(await page.locator('#ph-map .ph-dot').count()).toBe(500);
    expect(await page.locator('#ph-summary .ph-counts').textContent()).toBe(
      'Environment: 530 active | 0 claimed | 0 expired',
    );
    // The newest are drawn: every one emitted while the page was open, and the oldest are not.
    expect(await page.locator(dot(after[after.length - 1]!)).count()).toBe(1);
    expect(await page.locator(dot(before[0]!)).count()).toBe(0);
    expect(await page.locator('#ph-map text.ph-lane-label').count()).toBe(7);
    await shot(page, 'pheromones-bounded.png');
    expect(errors).toEqual([]);
  }, 180_000);
});
