/**
 * The dashboard's long lists in a real headless Chromium against a live hub: 300 agents (simulated
 * over one NATS connection, each with its own id, session, hello and heartbeats: the hub sees 300
 * agents) are one virtualised table. Only the rows in view are in the DOM; scrolling to the end
 * shows the last agent; the filter box finds an agent by id and by state; an agent in view that
 * says goodbye (and hello again) changes its row; a suspended agent shows as such. The tasks table
 * is virtualised too, and its filter finds a task the page does not hold by asking the hub.
 * Nothing sleeps: every wait is for a row attribute or a value.
 */
import { pino } from 'pino';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submitTask } from '../../src/agent/submit.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { publishCore, requestTyped } from '../../src/bus/subscribe.js';
import { AgentHelloSchema, GoodbyeSchema, HeartbeatSchema } from '../../src/protocol/agent.js';
import { newSessionId } from '../../src/protocol/ids.js';
import { HelloReplySchema } from '../../src/protocol/registration.js';
import { launchBrowser, SHOTS, signIn } from '../support/browser.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/gateway.js';

const g = useGateway('lists');
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

/**
 * Many agents over one connection: each says hello with its own session and beats at the interval
 * the hub asks for, until it says goodbye.
 */
class MuxAgents {
  private readonly sessions = new Map<string, string>();
  private readonly beating = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly slots: number,
  ) {}

  async hello(id: string): Promise<void> {
    const session = newSessionId();
    const reply = await requestTyped(
      this.bus,
      this.bus.names.subjects.agentHello(id),
      AgentHelloSchema,
      AgentHelloSchema.parse({ v: 1, slots: this.slots, queues: ['default'], session }),
      HelloReplySchema,
      15_000,
    );
    if (!reply.ok) throw new Error(`hello ${id}: ${reply.error.code} ${reply.error.message}`);
    this.sessions.set(id, session);
    this.beating.add(id);
    this.timer ??= setInterval(() => this.beat(), reply.heartbeatIntervalMs);
  }

  async helloAll(ids: string[], concurrency = 16): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (next < ids.length) await this.hello(ids[next++]!);
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  }

  /** Stops beating for `id` too: the hub would take a beat for the agent coming back. */
  goodbye(id: string): void {
    this.beating.delete(id);
    publishCore(this.bus, this.bus.names.subjects.agentGoodbye(id), GoodbyeSchema, {
      v: 1,
      session: this.sessions.get(id),
    });
  }

  private beat(): void {
    const at = Date.now();
    try {
      for (const id of this.beating)
        publishCore(this.bus, this.bus.names.subjects.agentHeartbeat(id), HeartbeatSchema, {
          v: 1,
          at,
          session: this.sessions.get(id),
        });
    } catch {
      // The connection is closing at the end of the test.
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.beating.clear();
  }
}

/**
 * 1,000 calls in one task: the first renders at once, the other 999 make one render at the next
 * frame, and none after. 2,000 inserts and 500 removals keep the list in order.
 */
const PROBE = `
import { coalesce, SortedList } from './virtual-list.js';
let runs = 0;
const schedule = coalesce(() => runs++);
for (let i = 0; i < 1000; i++) schedule();
const atOnce = runs;
requestAnimationFrame(() =>
  requestAnimationFrame(() => {
    const list = new SortedList((a, b) => a - b);
    const xs = Array.from({ length: 2000 }, (_, i) => (i * 7919) % 2003);
    for (const x of xs) list.insert(x);
    const removed = xs.slice(0, 500);
    for (const x of removed) list.remove(x);
    window.__probe = {
      atOnce,
      afterTwoFrames: runs,
      size: list.size,
      sorted: list.items.every((x, i, a) => i === 0 || a[i - 1] <= x),
      removedGone: removed.every((x) => !list.items.includes(x)),
    };
  }),
);
`;

const AGENTS = 300;
const agentId = (i: number) => `mux-${String(i).padStart(3, '0')}`;
const agentRows = (page: Page) => page.locator('#agents tbody tr[data-agent-id]').count();
const taskRows = (page: Page) => page.locator('#tasks tbody tr[data-task-id]').count();
/** What the checks below use of the page's document (this file is compiled without the DOM library). */
type PageDocument = {
  getElementById(id: string): { textContent: string | null } | null;
  querySelectorAll(selector: string): { length: number };
};
/** Waits until the element's text is `want` (checked in the page at each frame). */
const textIs = (page: Page, id: string, want: string) =>
  page.waitForFunction(
    ([i, w]) =>
      (globalThis as unknown as { document: PageDocument }).document.getElementById(i!)?.textContent === w,
    [id, want],
  );
/** Waits until `selector` matches exactly `n` elements. */
const rowsAre = (page: Page, selector: string, n: number) =>
  page.waitForFunction(
    ([sel, count]) =>
      (globalThis as unknown as { document: PageDocument }).document.querySelectorAll(sel as string)
        .length === count,
    [selector, n] as const,
  );

describe('the dashboard lists', () => {
  it('render only the rows in view of 300 agents; scroll, filter and a state change reach the row', async () => {
    // Beats every second, 10 missed before offline: 300 agents stay online on two busy cores.
    const h = await g.setup({ heartbeatIntervalMs: 1_000, missedBeats: 10 });
    const bus = await connectBus({ servers: h.natsUrl, prefix: h.prefix, logger: pino({ level: 'silent' }) });
    const mux = new MuxAgents(bus, 2);
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await mux.helloAll(Array.from({ length: AGENTS }, (_, i) => agentId(i)));
      // One agent suspended by an operator: the hub forgets it, the page still lists it.
      const suspended = agentId(290);
      const s = await h.http('POST', `/api/agents/${suspended}/suspend`, {
        body: { forMs: 600_000, reason: 'lists test' },
      });
      expect(s.status).toBe(200);
      await eventually(async () => {
        const list = await h.http('GET', '/api/agents');
        expect(list.body.agents).toHaveLength(AGENTS - 1);
        expect(list.body.suspended.map((x: { agentId: string }) => x.agentId)).toEqual([suspended]);
      });
      // Tasks nobody serves (they stay queued): 30 before the page opens, of which it gets the 20 newest.
      const early: string[] = [];
      for (let i = 0; i < 30; i++)
        early.push((await submitTask(bus, { title: `early ${i}`, queue: 'parked' })).taskId);

      await signIn(page, h.url, h.tokens.admin);
      await page.waitForSelector(`#agents tr[data-agent-id="${agentId(0)}"][data-state="idle"]`);
      await textIs(page, 'agents-count', `${AGENTS}`);
      const inView = await agentRows(page);
      expect(inView).toBeGreaterThan(5);
      expect(inView).toBeLessThan(100);
      expect(await page.$(`#agents tr[data-agent-id="${agentId(AGENTS - 1)}"]`)).toBeNull();
      // The columns: slots in use of the hello's 2, no flags, an age for "seen".
      const first = await page.$$eval(`#agents tr[data-agent-id="${agentId(0)}"] td`, (tds) =>
        tds.map((c) => c.textContent),
      );
      expect(first[2]).toBe('0/2');
      expect(first[6]).toBe('0');
      expect(first[8]).toBe('default');

      // Scrolled to the end: the last agent is there, the first is not, the window stays small.
      await page.$eval('#agents-scroll', (e) => {
        e.scrollTop = e.scrollHeight;
      });
      await page.waitForSelector(`#agents tr[data-agent-id="${agentId(AGENTS - 1)}"]`);
      expect(await page.$(`#agents tr[data-agent-id="${agentId(0)}"]`)).toBeNull();
      expect(await agentRows(page)).toBeLessThan(100);

      // The filter finds one agent by id, and the suspended one by its state.
      await page.fill('#agents-filter', agentId(150));
      await page.waitForSelector(`#agents tr[data-agent-id="${agentId(150)}"]`);
      await rowsAre(page, '#agents tr[data-agent-id]', 1);
      await textIs(page, 'agents-count', `1 of ${AGENTS}`);
      await page.fill('#agents-filter', 'suspended');
      const row = await page.waitForSelector(
        `#agents tr[data-agent-id="${suspended}"][data-state="suspended"]`,
      );
      expect(await row.$eval('td.suspension', (c) => c.textContent)).toContain('lists test');
      await rowsAre(page, '#agents tr[data-agent-id]', 1);

      // Back to every agent, at the top: an agent in view says goodbye, then hello again.
      await page.fill('#agents-filter', '');
      const mover = agentId(3);
      await page.waitForSelector(`#agents tr[data-agent-id="${mover}"][data-state="idle"]`);
      mux.goodbye(mover);
      await page.waitForSelector(`#agents tr[data-agent-id="${mover}"][data-state="offline"]`);
      await mux.hello(mover);
      await page.waitForSelector(`#agents tr[data-agent-id="${mover}"][data-state="idle"]`);
      // An agent the page first hears of from events (sorted first, so in view): its slots and
      // queues come with the events (registration and FSM), not from the state loaded at open.
      await mux.hello('a-late');
      await page.waitForSelector('#agents tr[data-agent-id="a-late"][data-state="idle"]');
      const late = await page.$$eval('#agents tr[data-agent-id="a-late"] td', (tds) =>
        tds.map((c) => c.textContent),
      );
      expect([late[2], late[6], late[8]]).toEqual(['0/2', '0', 'default']);
      await textIs(page, 'agents-count', `${AGENTS + 1}`);

      // Tasks: 250 more arrive as events; only a window of rows is in the DOM, newest first.
      const later: string[] = [];
      for (let i = 0; i < 250; i++)
        later.push((await submitTask(bus, { title: `later ${i}`, queue: 'parked' })).taskId);
      await page.waitForSelector(`#tasks tr[data-task-id="${later.at(-1)}"][data-status="queued"]`);
      await page.screenshot({ path: new URL('long-lists.png', SHOTS).pathname, fullPage: true });
      const tasksInView = await taskRows(page);
      expect(tasksInView).toBeGreaterThan(5);
      expect(tasksInView).toBeLessThan(100);
      expect(await page.$(`#tasks tr[data-task-id="${later[0]}"]`)).toBeNull();
      // The filter finds a task the page holds out of view, and one it never held (the hub has it).
      await page.fill('#tasks-filter', later[0]!);
      await page.waitForSelector(`#tasks tr[data-task-id="${later[0]}"][data-status="queued"]`);
      await page.fill('#tasks-filter', early[0]!);
      await page.waitForSelector(`#tasks tr[data-task-id="${early[0]}"][data-status="queued"]`);
      await rowsAre(page, '#tasks tr[data-task-id]', 1);
      expect(errors).toEqual([]);
    } finally {
      mux.stop();
      await page.close();
      await bus.drain();
    }
  }, 180_000);

  it('renders at most once a frame however many changes come, and keeps sorted order by binary search', async () => {
    const h = await g.setup();
    const page = await browser.newPage();
    // A probe module served beside the page's own (the page's policy runs same-origin modules only).
    await page.route('**/dashboard/assets/lists-probe.js', (route) =>
      route.fulfill({ status: 200, contentType: 'text/javascript', body: PROBE }),
    );
    try {
      await page.goto(`${h.url}/dashboard`);
      await page.addScriptTag({ url: '/dashboard/assets/lists-probe.js', type: 'module' });
      const probe = await page.waitForFunction(() => (globalThis as unknown as { __probe?: object }).__probe);
      expect(await probe.jsonValue()).toEqual({
        atOnce: 1,
        afterTwoFrames: 2,
        size: 1500,
        sorted: true,
        removedGone: true,
      });
    } finally {
      await page.close();
    }
  });
});
