/**
 * The dashboard's inspection panels (src/gateway/dashboard/tree.js and diagram.js) in a real
 * headless Chromium against a live hub with an agent as a process, fed by the gateway's inspection
 * WebSocket (GET /api/inspect, opened by the page with the token in its query):
 * - clicking an agent draws its AgentFSM from the definition the hub announces, the live state
 *   highlighted; a task moves the highlight idle -> working -> idle, and the events the FSM received
 *   appear in the log, newest first, each with the state it led to;
 * - the tree panel shows the hub's supervisors and children (the `work` subtree, with `task-queue`
 *   and the agent FSMs' supervisor inside), which hub holds the lease (the one /readyz names), and a
 *   child crashed inside the hub restarted and counted;
 * - a reloaded page (its old sockets' listens still held by the hub) gets the tree and the FSM
 *   again, at once: the publishers announce again for a new listener.
 * And, without a hub, the panels' pure parts in the page: a definition with nested and parallel
 * states laid out (children inside their parents, no two top-level boxes overlapping, `#id` and
 * `.child` targets resolved), and tree events folded into nodes (a scheduled restart, a new
 * incarnation counted, the lease holder). Screenshots go to test-output/screenshots/.
 */
import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectId } from '../../src/protocol/inspect.js';
import { errorReason, exit } from '../../src/runtime/index.js';
import { launchBrowser, SHOTS } from '../support/browser.js';
import { useGateway } from '../support/gateway.js';
import { type SimAgent, spawnSimAgent } from '../support/sim-agents.js';

const DASHBOARD = new URL('../../src/gateway/dashboard/', import.meta.url);
const g = useGateway('inspdash');
let browser: Browser;
const agents: SimAgent[] = [];
const WAIT = { timeout: 30_000 };

beforeAll(async () => {
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.kill()));
  await browser?.close();
});

/** The whole page, and the panel alone when one is named. */
async function shot(page: Page, name: string, panel?: string): Promise<void> {
  await page.screenshot({ path: new URL(`${name}.png`, SHOTS).pathname, fullPage: true });
  if (panel) await page.locator(panel).screenshot({ path: new URL(`${name}-panel.png`, SHOTS).pathname });
}

/**
 * The page's errors: uncaught ones, console errors (a CSP refusal is one) and failed requests
 * (by URL; the browser's own favicon probe aside).
 */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) errors.push(`${r.status()} ${r.url()}`);
  });
  return errors;
}

describe('the inspection panels', () => {
  it('draw the selected agent’s FSM live with its events, and each hub’s tree with the lease holder', async () => {
    const h = await g.setup();
    const hub = inspectId(h.hub.hubId);
    const worker = await spawnSimAgent({
      url: g.nats.url,
      prefix: h.prefix,
      agentId: 'insp-worker',
      workMs: 2_500,
    });
    agents.push(worker);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors = watchErrors(page);
    await page.goto(`${h.url}/dashboard`);
    // Nothing selected yet: a hint, no diagram.
    expect(await page.isVisible('#diagram-hint')).toBe(true);
    expect(await page.isHidden('#diagram')).toBe(true);
    await page.fill('#token', h.tokens.read);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#status[data-status="live"]', WAIT);

    // The tree: this hub's supervisors and children, `work` running under `work-slot`, so it leads.
    const hubBox = `#tree .tree-hub[data-hub-id="${hub}"]`;
    const work = `${hubBox} li[data-node-name="work-slot"] li[data-node-name="work"][data-status="running"]`;
    await page.waitForSelector(`${work} li[data-node-name="task-queue"][data-status="running"]`, WAIT);
    await page.waitForSelector(`${work} li[data-node-name="agents"] li[data-node-name="agent-fsms"]`, WAIT);
    await page.waitForSelector(`${hubBox}[data-lease="held"]`, WAIT);
    for (const name of ['hub', 'services', 'presence', 'leader', 'gateway', 'inspect'])
      expect(
        await page.$(`${hubBox} li[data-node-name="${name}"][data-status="running"]`),
        name,
      ).not.toBeNull();
    expect(await page.getAttribute('#tree-lease', 'data-holder')).toBe(hub);
    // The hub the page names is the one holding the lease in the store.
    const ready = await h.http('GET', '/readyz', { token: null });
    expect(ready.body.checks.lease.detail).toBe(`held by ${h.hub.hubId}`);

    // The diagram: click the agent's row.
    const row = 'tr[data-agent-id="insp-worker"]';
    await page.waitForSelector(`${row}[data-state="idle"]`, WAIT);
    await page.click(row);
    const node = (state: string) => `#diagram-svg [data-state-node="${state}"]`;
    await page.waitForSelector(`${node('idle')}[data-active="true"]`, WAIT);
    expect(await page.isHidden('#diagram-hint')).toBe(true);
    // Every state of machines/agent.ts, from the announced definition, and only one lit.
    const drawn = await page.$$eval('#diagram-svg [data-state-node]', (els) =>
      els.map((e) => e.getAttribute('data-state-node')).sort(),
    );
    expect(drawn).toEqual(['assigned', 'blocked', 'done', 'failed', 'idle', 'offline', 'route', 'working']);
    expect(await page.$$('#diagram-svg [data-state-node][data-active="true"]')).toHaveLength(1);
    expect(await page.$(`${node('route')}[data-transient="true"]`)).not.toBeNull();
    // The arrows the definition has: idle -> route on ASSIGN and more, idle -> offline on DISCONNECT.
    const titles = await page.$$eval('.diagram-edge title', (els) => els.map((e) => e.textContent));
    expect(titles).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^idle → route: .*ASSIGN/),
        'idle → offline: DISCONNECT',
        'offline → route: CONNECT',
        'working → done: COMPLETED',
      ]),
    );
    await shot(page, 'inspection-idle', '#diagram-panel');

    const submitted = await h.http('POST', '/api/tasks', {
      token: h.tokens.admin,
      body: { title: 'watch the diagram' },
    });
    expect(submitted.status).toBe(201);
    const taskId: string = submitted.body.task.id;
    await page.waitForSelector(`${node('working')}[data-active="true"]`, WAIT);
    expect(await page.getAttribute(node('idle'), 'data-active')).toBe('false');
    await page.waitForSelector(`#diagram-log li[data-event-type="ASSIGN"]`, WAIT);
    await shot(page, 'inspection-working', '#diagram-panel');
    await page.waitForSelector(`${node('idle')}[data-active="true"]`, WAIT);
    await page.waitForSelector(`#diagram-log li[data-event-type="COMPLETED"][data-state-after="idle"]`, WAIT);
    await shot(page, 'inspection-done', '#diagram-panel');
    const logged = await page.$$eval('#diagram-log li', (els) =>
      els.map((e) => ({
        type: e.getAttribute('data-event-type'),
        after: e.getAttribute('data-state-after'),
      })),
    );
    // Newest first: the completion above the acceptance above the assignment.
    const at = (type: string) => logged.findIndex((e) => e.type === type);
    expect(at('COMPLETED')).toBeGreaterThanOrEqual(0);
    expect(at('COMPLETED')).toBeLessThan(at('ACCEPTED'));
    expect(at('ACCEPTED')).toBeLessThan(at('ASSIGN'));
    expect(logged[at('ASSIGN')]!.after).toBe('assigned');
    expect(logged[at('ACCEPTED')]!.after).toBe('working');
    expect(logged.at(-1)!.type).toBe('session');
    expect((await h.http('GET', `/api/tasks/${taskId}`)).body.task.status).toBe('done');

    // A child crashes inside the hub: the tree shows it restarted (rest_for_one: `status` after it too).
    const alerts = h.hub.registry.whereis('alerts');
    expect(alerts).toBeDefined();
    exit(alerts!, errorReason(new Error('crashed for the tree panel')));
    await page.waitForSelector(
      `${work} > ul > li[data-node-name="alerts"][data-status="running"][data-restarts="1"]`,
      WAIT,
    );
    await page.waitForSelector(`${work} > ul > li[data-node-name="status"][data-restarts="1"]`, WAIT);
    await shot(page, 'inspection-tree', '#tree-panel');

    // A reload: the hub still holds the closed sockets' listens (for up to 10 s, so inspection stays
    // attached), and announces the tree and the FSM again for the new sockets' listens. Without that
    // the new page would wait for the next change, here forever.
    await page.reload();
    await page.waitForSelector('#status[data-status="live"]', WAIT);
    await page.waitForSelector(`${hubBox}[data-lease="held"] li[data-node-name="task-queue"]`, {
      timeout: 15_000,
    });
    await page.click(row);
    await page.waitForSelector(`${node('idle')}[data-active="true"]`, { timeout: 15_000 });
    // Closing the diagram brings the hint back.
    await page.click('#diagram-close');
    expect(await page.isVisible('#diagram-hint')).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);

  it('say so when inspection is refused to the token, and stop asking', async () => {
    const h = await g.setup();
    const page = await browser.newPage();
    const opened: string[] = [];
    page.on('websocket', (ws) => opened.push(ws.url()));
    await page.goto(`${h.url}/dashboard`);
    // A submitter sees the dashboard's state, but inspection is for admin and read tokens.
    await page.fill('#token', h.tokens.submitter);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#status[data-status="live"]', WAIT);
    await page.waitForSelector('#tree-panel[data-socket="refused: 403 forbidden"]', WAIT);
    expect(await page.textContent('#tree-lease')).toBe('inspection refused: 403 forbidden');
    // One refused upgrade, one plain GET to learn why, and no retry loop: the state stays refused.
    expect(opened).toHaveLength(1);
    expect(await page.getAttribute('#tree-panel', 'data-socket')).toBe('refused: 403 forbidden');
    await page.close();
  }, 60_000);

  it('lay out nested and parallel states and fold tree events into nodes (the pure parts, in the page)', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    // Only the panels' own modules and what they import, from the source folder, with no hub.
    const page404 = { status: 404, contentType: 'text/plain', body: 'not here' };
    await page.route('http://dashboard.test/**', async (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === '/dashboard')
        return route.fulfill({
          status: 200,
          contentType: 'text/html',
          body: '<!doctype html><title>panels</title><button id="diagram-close">x</button>',
        });
      const file = /^\/dashboard\/assets\/(core|tree|diagram)\.js$/.exec(path)?.[1];
      if (!file) return route.fulfill(page404);
      return route.fulfill({
        status: 200,
        contentType: 'text/javascript',
        body: await readFile(new URL(`${file}.js`, DASHBOARD)),
      });
    });
    await page.goto('http://dashboard.test/dashboard');
    // A string, so that nothing rewrites its dynamic imports.
    const result = (await page.evaluate(`(async () => {
      const d = await import('/dashboard/assets/diagram.js');
      const t = await import('/dashboard/assets/tree.js');
      const definition = JSON.stringify({
        id: 'm',
        initial: 'a',
        on: { STOP: '.z' },
        states: {
          a: { on: { GO: 'b', JUMP: 'b.b2' } },
          b: {
            initial: 'b1',
            on: { RESET: 'a' },
            states: { b1: { on: { NEXT: 'b2' } }, b2: { on: { BACK: '#m.a', LOOP: '#deep' } }, b3: { id: 'deep' } },
          },
          p: {
            type: 'parallel',
            states: {
              r1: { initial: 'x', states: { x: {}, y: {} } },
              r2: { initial: 'u', states: { u: { always: { target: 'v' } }, v: { type: 'final' } } },
            },
          },
          z: { type: 'final' },
        },
      });
      const model = d.machineModel(definition);
      const layout = d.layoutMachine(model);
      const boxes = Object.fromEntries([...layout.boxes].map(([k, b]) => [k, b]));
      const inside = (c, p) => c.x >= p.x && c.y >= p.y && c.x + c.w <= p.x + p.w && c.y + c.h <= p.y + p.h;
      const overlap = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      const nested = [...model.states.values()].filter((s) => s.parentPath).map((s) => [s.path, inside(boxes[s.path], boxes[s.parentPath])]);
      const tops = model.top;
      const overlaps = [];
      for (const a of tops) for (const b of tops) if (a < b && overlap(boxes[a], boxes[b])) overlaps.push(a + '/' + b);
      const siblings = [];
      for (const s of model.states.values())
        for (const a of s.children) for (const b of s.children) if (a < b && overlap(boxes[a], boxes[b])) siblings.push(a + '/' + b);
      const inBounds = Object.values(boxes).every((b) => b.x >= 0 && b.y >= 0 && b.x + b.w <= layout.width && b.y + b.h <= layout.height);

      const m = t.createTreeModel();
      const ev = (type, sessionId, more) => t.applyTreeEvent(m, { type, sessionId, createdAt: '1', ...more });
      const sup = (value, restarts) => ({ value, context: { kind: 'supervisor', strategy: 'one_for_one', restarts } });
      const child = (value) => ({ value, context: { kind: 'actor', childId: 'c' } });
      ev('@xstate.actor', 'hub:h1:p1', { name: 'root', snapshot: sup('running', 0) });
      ev('@xstate.actor', 'hub:h1:p2', { name: 'work-slot', parentId: 'hub:h1:p1', snapshot: { value: 'running', context: { kind: 'dynamic_supervisor' } } });
      ev('@xstate.actor', 'hub:h1:p3', { name: 'c', parentId: 'hub:h1:p1', snapshot: child('running') });
      const node = () => m.hubs.get('h1').nodes.get('root/c');
      const seen = [t.statusOf(node())];
      ev('@xstate.snapshot', 'hub:h1:p3', { snapshot: child('terminated'), event: { type: 'exit' } });
      seen.push(t.statusOf(node()));
      ev('@xstate.event', 'hub:h1:p1', { event: { type: 'restart_scheduled', childId: 'c' }, sourceId: 'hub:h1:p3' });
      seen.push(t.statusOf(node()));
      const before = t.leaseHolders(m);
      ev('@xstate.actor', 'hub:h1:p4', { name: 'c', parentId: 'hub:h1:p1', snapshot: child('running') });
      seen.push(t.statusOf(node()));
      // A late snapshot of the old incarnation changes nothing; announcing the same one again neither.
      ev('@xstate.snapshot', 'hub:h1:p3', { snapshot: child('terminated') });
      ev('@xstate.actor', 'hub:h1:p4', { name: 'c', parentId: 'hub:h1:p1', snapshot: child('running') });
      seen.push(t.statusOf(node()));
      ev('@xstate.actor', 'hub:h1:p5', { name: 'work', parentId: 'hub:h1:p2', snapshot: sup('running', 0) });
      ev('@xstate.actor', 'hub:h2:p1', { name: 'root', snapshot: sup('running', 0) });
      const after = t.leaseHolders(m);
      // Another hub starts work (h1 was killed and kept its last picture): the later one holds it.
      ev('@xstate.actor', 'hub:h2:p2', { name: 'work-slot', parentId: 'hub:h2:p1', snapshot: { value: 'running', context: { kind: 'dynamic_supervisor' } } });
      ev('@xstate.actor', 'hub:h2:p9', { name: 'work', parentId: 'hub:h2:p2', snapshot: sup('running', 0) });
      const takenOver = t.leaseHolders(m);
      ev('@xstate.snapshot', 'hub:h2:p9', { snapshot: sup('dead', 0) });
      ev('@xstate.snapshot', 'hub:h1:p5', { snapshot: sup('dead', 0) });
      return {
        top: model.top,
        edges: model.edges.map((e) => e.from + '>' + e.to + ':' + e.events.join('+')).sort(),
        fromB2: model.transitions.get('b.b2').map((x) => x.event + '>' + x.to),
        any: model.transitions.get('').map((x) => x.event + '>' + x.to),
        nested, overlaps, siblings, inBounds,
        columns: { a: boxes.a.x, b: boxes.b.x, p: boxes.p.x },
        parallel: boxes['p.r1'].y === boxes['p.r2'].y && boxes['p.r1'].x < boxes['p.r2'].x,
        stacked: boxes['b.b1'].x === boxes['b.b2'].x && boxes['b.b1'].y < boxes['b.b2'].y,
        active: d.activePaths({ p: { r1: 'x', r2: 'v' } }),
        seen, restarts: node().restarts, before, after, takenOver, finally: t.leaseHolders(m),
        notHub: t.applyTreeEvent(m, { type: '@xstate.actor', sessionId: 'agent:a1:x:1', createdAt: '1' }),
      };
    })()`)) as Record<string, unknown>;
    expect(result).toEqual({
      top: ['a', 'b', 'p', 'z'],
      // b1 -> b2 is inside b: not an arrow; the machine's own STOP is listed, not drawn.
      edges: ['a>b:GO+JUMP', 'b>a:RESET+BACK'],
      fromB2: ['BACK>a', 'LOOP>b.b3'],
      any: ['STOP>z'],
      nested: [
        ['b.b1', true],
        ['b.b2', true],
        ['b.b3', true],
        ['p.r1', true],
        ['p.r1.x', true],
        ['p.r1.y', true],
        ['p.r2', true],
        ['p.r2.u', true],
        ['p.r2.v', true],
      ],
      overlaps: [],
      siblings: [],
      inBounds: true,
      // a first, b reached from it, p and z reached from nowhere: a last column (checked below).
      columns: { a: expect.any(Number), b: expect.any(Number), p: expect.any(Number) },
      parallel: true,
      stacked: true,
      active: ['p', 'p.r1', 'p.r1.x', 'p.r2', 'p.r2.v'],
      seen: ['running', 'stopped', 'restarting', 'running', 'running'],
      restarts: 1,
      before: [],
      after: ['h1'],
      takenOver: ['h2'],
      finally: [],
      notHub: null,
    });
    const { a, b, p } = result.columns as { a: number; b: number; p: number };
    expect(a).toBeLessThan(b);
    expect(b).toBeLessThan(p);
    expect(errors).toEqual([]);
    await page.close();
  });
});
