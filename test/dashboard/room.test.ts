/**
 * The dashboard's chat room (#room) in a real headless Chromium against a live hub: messages posted
 * before the page opened are shown (sender, human or agent, title, a reply marked with the message
 * it answers); an agent connected over NATS with the SDK posts and the page shows it live, without a
 * reload; the operator types a message and posts it from the page, and it is shown once and stored
 * once, also when the first attempt's response was lost and the post is sent again (its clientId);
 * with a read token the post is refused, the API's 403 is shown in the log line and the text stays.
 * Screenshots go to test-output/screenshots/.
 */
import { pino } from 'pino';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { launchBrowser, SHOTS, signIn } from '../support/browser.js';
import { eventually } from '../support/eventually.js';
import { type GatewayHarness, useGateway } from '../support/gateway.js';

const g = useGateway('room');
let browser: Browser;
let agents: AgentClient[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);
afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop({ goodbye: false }).catch(() => {})));
  agents = [];
});
afterAll(async () => {
  await browser?.close();
});

/** An agent over NATS (the SDK), a member of #room. */
async function roomAgent(h: GatewayHarness, agentId: string): Promise<AgentClient> {
  const a = await AgentClient.connect({
    connection: { servers: h.natsUrl, prefix: h.prefix },
    agentId,
    logger: pino({ level: 'silent' }),
    helloTimeoutMs: 20_000,
  });
  agents.push(a);
  await a.messages.channels.join('room');
  return a;
}

interface Stored {
  seq: number;
  body: string;
  from: string;
}

/** Every message in #room, as the API's history has them. */
async function history(h: GatewayHarness): Promise<Stored[]> {
  const out: Stored[] = [];
  let after = 0;
  for (;;) {
    const r = await h.http('GET', `/api/channels/room/messages?after=${after}&limit=1000`, {
      token: h.tokens.read,
    });
    expect(r.status, r.text).toBe(200);
    out.push(...r.body.messages);
    if (r.body.next === null) return out;
    after = r.body.next;
  }
}

const msg = (seq: number) => `#room-list li[data-seq="${seq}"]`;
const text = async (page: Page, selector: string) => (await page.textContent(selector))?.trim();

describe('the chat room', () => {
  it('shows earlier messages, an agent’s post live, and the operator’s own post once', async () => {
    const h = await g.setup();
    const agent = await roomAgent(h, 'room-agent');
    // Before the page opens: an operator's post with a title, and the agent's reply to it.
    const first = await h.http('POST', '/api/channels/room/messages', {
      token: h.tokens.submitter,
      body: { title: 'standup', body: 'what is everyone on?' },
    });
    expect(first.status, first.text).toBe(201);
    const firstSeq: number = first.body.message.seq;
    const answer = await agent.messages.reply(firstSeq, 'reviewing <b>#42</b>');
    const answerSeq = answer.message.seq;

    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await signIn(page, h.url, h.tokens.admin);
    await page.waitForSelector(msg(answerSeq), { timeout: 30_000 });
    expect(await page.getAttribute(msg(firstSeq), 'data-from-kind')).toBe('human');
    expect(await text(page, `${msg(firstSeq)} .room-from`)).toBe('submitter');
    expect(await text(page, `${msg(firstSeq)} .room-title`)).toBe('standup');
    expect(await text(page, `${msg(firstSeq)} .room-body`)).toBe('what is everyone on?');
    expect(await page.getAttribute(msg(answerSeq), 'data-from-kind')).toBe('agent');
    expect(await text(page, `${msg(answerSeq)} .room-from`)).toBe('room-agent');
    // The reply is marked with the message it answers, and indented.
    expect(await page.getAttribute(msg(answerSeq), 'data-reply-to')).toBe(String(firstSeq));
    expect(await page.getAttribute(msg(answerSeq), 'class')).toContain('reply');
    expect(await text(page, `${msg(answerSeq)} .room-re`)).toContain(`re #${firstSeq}`);
    // Text, never HTML.
    expect(await text(page, `${msg(answerSeq)} .room-body`)).toBe('reviewing <b>#42</b>');
    expect(await page.$(`${msg(answerSeq)} .room-body b`)).toBeNull();
    // In seq order.
    const order = async () =>
      (await page.$$eval('#room-list li', (lis) => lis.map((li) => Number(li.getAttribute('data-seq')))))!;
    expect(await order()).toEqual([firstSeq, answerSeq]);
    // Marks this document: a reload would lose it.
    await page.evaluate('window.__roomMark = 7');

    // The agent posts while the page is open: shown live.
    const live = await agent.messages.post('room', 'build is green', { title: 'ci' });
    await page.waitForSelector(`${msg(live.message.seq)}[data-from-kind="agent"]`, { timeout: 15_000 });
    expect(await text(page, `${msg(live.message.seq)} .room-body`)).toBe('build is green');

    // The operator answers from the page.
    await page.click(`${msg(live.message.seq)} .room-answer`);
    await page.fill('#room-body', 'thanks, shipping it');
    await page.click('#room-send');
    const stored = await eventually(async () => {
      const mine = (await history(h)).filter((m) => m.body === 'thanks, shipping it');
      expect(mine).toHaveLength(1);
      return mine[0]!;
    });
    expect(stored.from).toBe('admin');
    await page.waitForSelector(`${msg(stored.seq)}[data-from-kind="human"]`);
    expect(await page.getAttribute(msg(stored.seq), 'data-reply-to')).toBe(String(live.message.seq));
    expect(await page.inputValue('#room-body')).toBe('');
    // Its live event has come too by the time a later post has (events come in seq order): still one.
    const later = await agent.messages.post('room', 'noted');
    await page.waitForSelector(msg(later.message.seq), { timeout: 15_000 });
    expect(await page.$$(msg(stored.seq))).toHaveLength(1);
    expect(await page.$$('#room-list li.room-msg:has-text("thanks, shipping it")')).toHaveLength(1);
    expect(await order()).toEqual([firstSeq, answerSeq, live.message.seq, stored.seq, later.message.seq]);
    expect(await page.evaluate('window.__roomMark')).toBe(7);
    await (await page.$('#room-panel'))!.screenshot({ path: new URL('room.png', SHOTS).pathname });
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('sends a post again with its clientId when the response was lost: stored once, shown once', async () => {
    const h = await g.setup();
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    await signIn(page, h.url, h.tokens.submitter);
    await page.waitForSelector('#room-panel[data-loaded="true"]');
    // The first attempt reaches the gateway (and is stored), but its response never comes back.
    let attempts = 0;
    const clientIds: string[] = [];
    await page.route('**/api/channels/room/messages', async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      attempts++;
      clientIds.push(JSON.parse(route.request().postData() ?? '{}').clientId);
      if (attempts > 1) return route.continue();
      await route.fetch();
      await route.abort('failed');
    });
    await page.fill('#room-body', 'said once');
    await page.click('#room-send');
    await page.waitForSelector('#log:has-text("post failed")', { timeout: 15_000 });
    expect(await page.inputValue('#room-body')).toBe('said once');
    expect((await history(h)).filter((m) => m.body === 'said once')).toHaveLength(1);
    // Sent again: the same clientId, the same message.
    await page.click('#room-send');
    await page.waitForSelector('#log:has-text("posted")', { timeout: 15_000 });
    expect(attempts).toBe(2);
    expect(clientIds[0]).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    expect(clientIds[1]).toBe(clientIds[0]);
    const all = (await history(h)).filter((m) => m.body === 'said once');
    expect(all).toHaveLength(1);
    await page.waitForSelector(msg(all[0]!.seq));
    expect(await page.$$('#room-list li.room-msg:has-text("said once")')).toHaveLength(1);
    await page.close();
  }, 120_000);

  it('refuses a read token’s post: the 403 in the log line, the text kept, nothing stored', async () => {
    const h = await g.setup();
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    await signIn(page, h.url, h.tokens.read);
    await page.waitForSelector('#room-panel[data-loaded="true"]');
    await page.fill('#room-title', 'hello');
    await page.fill('#room-body', 'may I speak?');
    await page.click('#room-send');
    await page.waitForSelector('#log:has-text("403")', { timeout: 15_000 });
    expect(await text(page, '#log')).toMatch(/403 forbidden/);
    expect(await page.inputValue('#room-body')).toBe('may I speak?');
    expect(await page.inputValue('#room-title')).toBe('hello');
    expect(await page.isEnabled('#room-send')).toBe(true);
    expect((await history(h)).some((m) => m.body === 'may I speak?')).toBe(false);
    expect(await page.$$('#room-list li')).toHaveLength(0);
    await page.screenshot({ path: new URL('room-forbidden.png', SHOTS).pathname, fullPage: true });
    await page.close();
  }, 120_000);
});
