/**
 * Dashboard benchmark: does the page stay responsive with `--agents` agents (default 1,000) and
 * `--tasks` queued tasks (default 100,000)? Processes: a private nats-server (free port, never 4222;
 * its store removed at the end), one hub with its gateway (`agentcom hub`, its own process, as
 * bench/gateway.ts starts it), Debian's Chromium (headless, driven by playwright-core) and this
 * process, which runs the agents and the producer.
 *   agents   simulated over `--connections` NATS connections (default 4; bench/mux-agents.ts): each
 *            agent its own id, session, hello and heartbeats at the interval the hub asks for; none
 *            reads its inbox.
 *            Assignment is paused first (POST /api/hub/pause), so every task stays queued.
 *   state    GET /api/dashboard/state, `--samples` times: bytes and ms, and the agents' share.
 *   page     the dashboard opened in a fresh context (token put in sessionStorage, so it opens at
 *            load), then, each trigger timed from this process with Date.now() around it:
 *            - load: navigation start -> `live`, and -> the first agent's row;
 *            - agent: an agent in view says goodbye -> its row says offline; hello -> idle;
 *            - task: a submitted task -> its row says queued;
 *            - burst: `--burst` tasks submitted at once (one event each) -> the newest one's row;
 *            - churn: `--churn` agents say goodbye then hello (three events each) -> the last row;
 *            - scroll to the last agent, filter to one agent, filter to a task the page never held;
 *            with, for each trigger, the floor: when this process saw the same KV revision the
 *            gateway turns into the event (a tail of the bucket). Long tasks (PerformanceObserver
 *            'longtask') are counted over load, burst and churn; JS heap (after a GC) and DOM size
 *            after load and at the end; renders of the tasks list over the burst (data-renders).
 *   baseline the same page with agents.js, tasks.js and dead.js as they were at `--baseline` (a git
 *            revision, default b624a9f: the lists before virtualisation; the rest of the page as now),
 *            measured the same way after it (ratios: now over baseline). `--no-baseline` skips it.
 *   npx tsx bench/dashboard.ts [--agents 1000] [--tasks 100000] [--connections 4] [--samples 5]
 *     [--burst 1000] [--churn 100] [--baseline b624a9f | --no-baseline] [--timeout 300]
 * Prints one JSON document on stdout (times in ms, sizes in bytes); progress on stderr.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { submitTask } from '../src/agent/submit.js';
import { type Bus, connectBus } from '../src/bus/connection.js';
import { type KvRevision, type KvTail, kvLastSeq, tailKv } from '../src/bus/kv-tail.js';
import { freePort } from '../src/bus/nats-server.js';
import { request } from '../src/bus/service.js';
import { createToken, openTokensKv } from '../src/gateway/tokens.js';
import { TaskStatsReplySchema } from '../src/protocol/api.js';
import { taskIdForSubmit } from '../src/protocol/task-id.js';
import { launchBrowser } from '../test/support/browser.js';
import { MuxAgents } from './mux-agents.js';
import {
  addConcurrently,
  benchFlags,
  cpuSeconds,
  nowMs,
  runBench,
  sleep,
  withTimeout,
} from './peers/common.js';
import { type NatsServer, startNatsServer } from './peers/nats.js';
import { commandLine, dist, errText, loadAverage, machineInfo, ratio, sourceState, until } from './report.js';

// ---------------------------------------------------------------------------------------------
// Flags

const args = process.argv.slice(2);
const flags = benchFlags(args);
const AGENTS = flags.number('agents', 1000);
const TASKS = flags.number('tasks', 100_000);
const CONNECTIONS = flags.number('connections', 4);
const SAMPLES = flags.number('samples', 5);
const BURST = flags.number('burst', 1000);
const CHURN = Math.min(flags.number('churn', 100), AGENTS);
const TIMEOUT_S = flags.number('timeout', 300);
/** The commit whose lists were plain tables (one row per agent or task, a sort per event). */
const PRE_VIRTUAL_LISTS = 'b624a9f';
const BASELINE = args.includes('--no-baseline')
  ? null
  : (() => {
      const i = args.indexOf('--baseline');
      return i < 0 ? PRE_VIRTUAL_LISTS : (args[i + 1] ?? PRE_VIRTUAL_LISTS);
    })();
/** The modules the baseline page takes from the baseline revision. */
const LIST_MODULES = ['agents.js', 'tasks.js', 'dead.js'];

const log = (line: string) => process.stderr.write(`[dashboard] ${line}\n`);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const prefix = `db${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const WAIT = { timeout: 60_000 };

// ---------------------------------------------------------------------------------------------
// Processes and connections, stopped whatever happens

let nats: NatsServer | undefined;
let hub: ChildProcess | undefined;
let browser: Browser | undefined;
const buses: Bus[] = [];
const tails: KvTail[] = [];
const muxes: MuxAgents[] = [];
const hubLog = { lines: 0, warn: 0, error: 0, samples: [] as string[] };
const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    sse.abort();
    for (const m of muxes) m.stop();
    for (const t of tails) t.stop();
    await browser?.close().catch(() => {});
    await Promise.allSettled(
      buses.map((b) => withTimeout(b.drain(), 3000, 'drain').catch(() => b.nc.close())),
    );
    if (hub && !exited(hub)) {
      const h = hub;
      const gone = new Promise<void>((r) => h.once('exit', () => r()));
      h.kill('SIGTERM');
      await withTimeout(gone, 8000, 'hub SIGTERM').catch(async () => {
        if (!exited(h)) h.kill('SIGKILL');
        await withTimeout(gone, 3000, 'hub SIGKILL').catch(() => {});
      });
    }
    await nats?.stop();
  })();
  return cleaning;
}

function startHubProcess(natsUrl: string, httpPort: number): ChildProcess {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', here('../src/cli/main.ts'), 'hub', '--nats-url', natsUrl, '--prefix', prefix],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        AGENTCOM_HTTP: 'on',
        AGENTCOM_HTTP_PORT: String(httpPort),
        AGENTCOM_LOG_LEVEL: 'warn',
        AGENTCOM_LOG_FORMAT: 'json',
        // Every task of the run stays (none finishes: assignment is paused).
        AGENTCOM_RETENTION_COUNT: String(Math.max(TASKS * 2, 1_000_000)),
      },
    },
  );
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    hubLog.lines++;
    const level = /"level":(\d+)/.exec(l)?.[1];
    if (level && Number(level) >= 40) {
      if (Number(level) >= 50) hubLog.error++;
      else hubLog.warn++;
      if (hubLog.samples.length < 3) hubLog.samples.push(l.slice(0, 400));
    }
  });
  hub = child;
  return child;
}

async function bus(name: string): Promise<Bus> {
  const b = await connectBus({
    servers: nats!.url,
    prefix,
    name,
    logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  buses.push(b);
  return b;
}

async function http(base: string, method: string, path: string, token: string | null, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, text: await res.text() };
}

// ---------------------------------------------------------------------------------------------
// Floors: when this process sees the KV revision the gateway turns into the event, and when it
// gets the gateway's event (a client of the stream that renders nothing)

/** `<agent>:<state>` and `<task>:<status>` -> the first time (ms) this process saw that revision. */
const seen = new Map<string, number>();
/** Task ids in the order their revisions came. */
let taskOrder: string[] = [];

function onAgentRevision(r: KvRevision): void {
  if (r.operation !== 'put' || !r.key.endsWith('.fsm')) return;
  try {
    const v = JSON.parse(Buffer.from(r.data).toString('utf8')) as { snapshot?: { value?: unknown } };
    const k = `${r.key.slice(0, -'.fsm'.length)}:${String(v.snapshot?.value)}`;
    if (!seen.has(k)) seen.set(k, nowMs());
  } catch {
    // Not a snapshot.
  }
}

function onTaskRevision(r: KvRevision): void {
  if (r.operation !== 'put') return;
  try {
    const v = JSON.parse(Buffer.from(r.data).toString('utf8')) as { id?: string; status?: string };
    if (!v.id) return;
    const k = `${v.id}:${v.status}`;
    if (!seen.has(k)) seen.set(k, nowMs());
    taskOrder.push(v.id);
  } catch {
    // Not a record.
  }
}

/** `<agent>:<state>` and `<task>:<status>` -> when this process got the gateway's event for it. */
const delivered = new Map<string, number>();
const sse = new AbortController();

/** Follows the gateway's event stream (task and agent events, live) as the page does. */
async function followEvents(base: string, token: string): Promise<void> {
  const res = await fetch(`${base}/api/events?types=task,agent`, {
    headers: { authorization: `Bearer ${token}` },
    signal: sse.signal,
  });
  if (!res.ok || !res.body) throw new Error(`GET /api/events: ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = '';
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data = line.slice(6);
      }
      if (!data) continue;
      const d = JSON.parse(data) as { id?: string; state?: unknown; status?: string };
      const k =
        event === 'agent' && typeof d.state === 'string'
          ? `${d.id}:${d.state}`
          : event === 'task' && d.status
            ? `${d.id}:${d.status}`
            : null;
      if (k && !delivered.has(k)) delivered.set(k, nowMs());
    }
  }
}

/** Trigger -> row times of one kind of change, beside the floors of the same change. */
class Samples {
  readonly page: number[] = [];
  readonly kv: number[] = [];
  readonly sse: number[] = [];

  /** Forget earlier sightings of `key` (an agent goes offline and idle again and again). */
  static reset(key: string): void {
    seen.delete(key);
    delivered.delete(key);
  }

  /** `from` (nowMs) is the trigger; `pageMs` the time to the row. */
  async add(key: string, from: number, pageMs: number): Promise<void> {
    await until(() => seen.has(key) && delivered.has(key), 30_000);
    this.page.push(pageMs);
    this.kv.push((seen.get(key) ?? Number.NaN) - from);
    this.sse.push((delivered.get(key) ?? Number.NaN) - from);
  }

  summary() {
    return {
      pageMs: dist(this.page),
      kvFloorMs: dist(this.kv),
      sseFloorMs: dist(this.sse),
      pageOverSseMs: dist(this.page.map((x, i) => x - this.sse[i]!)),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The page

type LongTasks = { count: number; totalMs: number; maxMs: number };

async function longTasks(page: Page): Promise<LongTasks> {
  const xs = await page.evaluate(`(() => { const x = window.__longtasks.splice(0); return x; })()`);
  const ds = (xs as number[]).map(Number);
  return {
    count: ds.length,
    totalMs: ds.reduce((a, b) => a + b, 0),
    maxMs: ds.length ? Math.max(...ds) : 0,
  };
}

async function pageSize(page: Page, cdp: CDPSession) {
  await cdp.send('HeapProfiler.collectGarbage');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const byName = new Map(metrics.map((x) => [x.name, x.value]));
  const m = (name: string) => byName.get(name) ?? Number.NaN;
  const dom = (await page.evaluate(`(() => ({
    elements: document.getElementsByTagName('*').length,
    agentRows: document.querySelectorAll('#agents tr[data-agent-id]').length,
    taskRows: document.querySelectorAll('#tasks tr[data-task-id]').length,
  }))()`)) as { elements: number; agentRows: number; taskRows: number };
  return {
    jsHeapUsedBytes: m('JSHeapUsedSize'),
    jsHeapTotalBytes: m('JSHeapTotalSize'),
    domNodes: m('Nodes'),
    ...dom,
    layoutCount: m('LayoutCount'),
    recalcStyleCount: m('RecalcStyleCount'),
    scriptDurationS: m('ScriptDuration'),
    layoutDurationS: m('LayoutDuration'),
  };
}

/**
 * The page's Date.now() (the same clock as this process's) when `selector` first matched, as a
 * MutationObserver in the page saw it (installed by the init script; page.waitForSelector backs
 * off to 500 ms between checks, which a slow change would measure). Call {@link watch} first.
 */
async function shownAt(page: Page, selector: string): Promise<number> {
  // A function, not a string: the page's policy forbids evaluating strings.
  const handle = await page
    .waitForFunction(
      (sel) => (globalThis as unknown as { __stamps: Record<string, number> }).__stamps[sel],
      selector,
      { polling: 'raf', timeout: WAIT.timeout },
    )
    .catch(async (err: unknown) => {
      // What the page showed instead, for whoever reads the failure.
      const seen = await page
        .evaluate(`(() => ({
          status: document.getElementById('status')?.textContent,
          log: document.getElementById('log')?.textContent,
          tasks: document.getElementById('tasks-count')?.textContent,
          agents: document.getElementById('agents-count')?.textContent,
          firstTasks: [...document.querySelectorAll('#tasks tr[data-task-id]')].slice(0, 5).map((r) => r.dataset.taskId + ' ' + r.dataset.status),
        }))()`)
        .catch(() => null);
      throw new Error(`${selector} never shown (${errText(err)}); the page: ${JSON.stringify(seen)}`);
    });
  return Number(await handle.jsonValue());
}

/** Starts watching for `selector` (before the trigger that should make it match). */
async function watch(page: Page, selector: string): Promise<void> {
  await page.evaluate(`window.__watch(${JSON.stringify(selector)})`);
}

/** The page side of {@link watch} and {@link shownAt}, and the long-task log. */
const pageProbe = (token: string, watchAtLoad: string[]) => `
  sessionStorage.setItem('agentcom.token', ${JSON.stringify(token)});
  window.__longtasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longtasks.push(e.duration);
  }).observe({ type: 'longtask', buffered: true });
  window.__stamps = {};
  const watching = new Set(${JSON.stringify(watchAtLoad)});
  const check = () => {
    for (const sel of watching)
      if (document.querySelector(sel)) {
        window.__stamps[sel] = Date.now();
        watching.delete(sel);
      }
  };
  window.__watch = (sel) => {
    delete window.__stamps[sel];
    watching.add(sel);
    check();
  };
  new MutationObserver(() => {
    if (watching.size) check();
  }).observe(document, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ['data-status', 'data-state'],
  });
`;

const rendersOf = async (page: Page, table: string) =>
  Number((await page.getAttribute(`#${table}`, 'data-renders')) ?? Number.NaN);

interface PageContext {
  base: string;
  token: string;
  admin: Bus;
  ids: string[];
  muxOf: (id: string) => MuxAgents;
  /** A task submitted before the page opened, that the page never held. */
  oldTask: string;
}

type PageSize = Awaited<ReturnType<typeof pageSize>>;
interface PageResult {
  variant: 'now' | 'baseline';
  load: { toLiveMs: number; toFirstAgentRowMs: number; longTasks: LongTasks };
  afterLoad: PageSize;
  agentChange: { note: string } & ReturnType<Samples['summary']>;
  taskEvent: ReturnType<Samples['summary']>;
  burst: {
    events: number;
    submitMs: number;
    floorLastRevisionMs: number;
    pageNewestRowMs: number;
    tasksListRenders: number;
    longTasks: LongTasks;
  };
  churn: {
    agents: number;
    floorLastRevisionMs: number;
    pageLastRowMs: number;
    agentsListRenders: number;
    longTasks: LongTasks;
  };
  navigate?: { scrollToLastAgentMs: number; filterAgentByIdMs: number; filterTaskFromHubMs: number };
  atEnd: PageSize;
  pageErrors: string[];
}

async function measurePage(variant: 'now' | 'baseline', c: PageContext): Promise<PageResult> {
  const ctx = await browser!.newContext();
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const first = c.ids[0]!;
  const liveSel = '#status[data-status="live"]';
  const firstSel = `#agents tr[data-agent-id="${first}"]`;
  await page.addInitScript(pageProbe(c.token, [liveSel, firstSel]));
  if (variant === 'baseline') {
    const files = new Map(
      LIST_MODULES.map((f) => [
        f,
        execFileSync('git', ['show', `${BASELINE}:src/gateway/dashboard/${f}`], {
          cwd: here('..'),
          encoding: 'utf8',
        }),
      ]),
    );
    await page.route('**/dashboard/assets/*.js', async (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop()!;
      const body = files.get(name);
      if (body === undefined) return route.continue();
      return route.fulfill({ status: 200, contentType: 'text/javascript; charset=utf-8', body });
    });
  }
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Performance.enable');
  // Filled in below, field by field.
  const out = { variant } as PageResult;

  // Load.
  const t0 = Date.now();
  await page.goto(`${c.base}/dashboard`);
  const live = (await shownAt(page, liveSel)) - t0;
  const firstRow = (await shownAt(page, firstSel)) - t0;
  out.load = { toLiveMs: live, toFirstAgentRowMs: firstRow, longTasks: await longTasks(page) };
  out.afterLoad = await pageSize(page, cdp);
  log(`${variant}: live in ${live} ms`);

  // An agent in view changes state (not the first: the churn ends with it).
  const agentSamples = new Samples();
  for (let i = 1; i <= SAMPLES; i++) {
    const id = c.ids[i]!;
    await page.waitForSelector(`#agents tr[data-agent-id="${id}"][data-state="idle"]`, WAIT);
    Samples.reset(`${id}:offline`);
    Samples.reset(`${id}:idle`);
    const offSel = `#agents tr[data-agent-id="${id}"][data-state="offline"]`;
    const idleSel = `#agents tr[data-agent-id="${id}"][data-state="idle"]`;
    await watch(page, offSel);
    let t = Date.now();
    let from = nowMs();
    c.muxOf(id).goodbye(id);
    const offAt = await shownAt(page, offSel);
    await agentSamples.add(`${id}:offline`, from, offAt - t);
    await watch(page, idleSel);
    t = Date.now();
    from = nowMs();
    await c.muxOf(id).hello(id);
    const idleAt = await shownAt(page, idleSel);
    await agentSamples.add(`${id}:idle`, from, idleAt - t);
  }
  out.agentChange = {
    note: 'goodbye -> offline and hello -> idle; the agents actor writes FSM snapshots at most once a second (kvFloorMs)',
    ...agentSamples.summary(),
  };

  // A task event.
  const taskSamples = new Samples();
  for (let i = 0; i < SAMPLES; i++) {
    // With a key, the task's id is known before it is submitted (src/protocol/task-id.ts).
    const idempotencyKey = `probe-${prefix}-${variant}-${i}`;
    const taskId = taskIdForSubmit({ idempotencyKey, now: Date.now() });
    const sel = `#tasks tr[data-task-id="${taskId}"][data-status="queued"]`;
    await watch(page, sel);
    const t = Date.now();
    const from = nowMs();
    const r = await submitTask(c.admin, {
      title: `probe ${variant} ${i}`,
      queue: 'bench-probe',
      idempotencyKey,
    });
    if (r.taskId !== taskId) throw new Error(`task id ${r.taskId}, expected ${taskId}`);
    const at = await shownAt(page, sel);
    await taskSamples.add(`${taskId}:queued`, from, at - t);
  }
  out.taskEvent = taskSamples.summary();

  // A burst of task events.
  await longTasks(page);
  const rendersBefore = await rendersOf(page, 'tasks');
  taskOrder = [];
  const burstIds: string[] = [];
  const tb = Date.now();
  await addConcurrently(BURST, async (i) => {
    burstIds.push(
      (await submitTask(c.admin, { title: `burst ${variant} ${i}`, queue: 'bench-burst' })).taskId,
    );
  });
  const submitted = Date.now() - tb;
  const mine = new Set(burstIds);
  await until(() => taskOrder.filter((id) => mine.has(id)).length >= BURST, 60_000);
  const floorDone = Date.now() - tb;
  const newest = taskOrder.filter((id) => mine.has(id)).at(-1)!;
  // Watched once known: a row already there is stamped now (an upper bound).
  const newestSel = `#tasks tr[data-task-id="${newest}"][data-status="queued"]`;
  await watch(page, newestSel);
  const newestAt = await shownAt(page, newestSel);
  out.burst = {
    events: BURST,
    submitMs: submitted,
    floorLastRevisionMs: floorDone,
    pageNewestRowMs: newestAt - tb,
    tasksListRenders: (await rendersOf(page, 'tasks')) - rendersBefore,
    longTasks: await longTasks(page),
  };
  log(`${variant}: burst of ${BURST} shown in ${out.burst.pageNewestRowMs} ms`);

  // Agents churn: goodbye then hello; the first agent (in view) last.
  const churn = c.ids.slice(0, CHURN).reverse();
  for (const id of churn) {
    Samples.reset(`${id}:offline`);
    Samples.reset(`${id}:idle`);
  }
  const agentRendersBefore = await rendersOf(page, 'agents');
  const tc = Date.now();
  for (const id of churn) c.muxOf(id).goodbye(id);
  await until(() => churn.every((id) => seen.has(`${id}:offline`)), 60_000);
  await page.waitForSelector(`#agents tr[data-agent-id="${first}"][data-state="offline"]`, WAIT);
  const backSel = `#agents tr[data-agent-id="${first}"][data-state="idle"]`;
  await watch(page, backSel);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < churn.length - 1) {
        const id = churn[next++]!;
        await c.muxOf(id).hello(id);
      }
    }),
  );
  await c.muxOf(first).hello(first);
  await until(() => churn.every((id) => seen.has(`${id}:idle`)), 60_000);
  const churnFloor = Date.now() - tc;
  const lastAt = await shownAt(page, backSel);
  out.churn = {
    agents: CHURN,
    floorLastRevisionMs: churnFloor,
    pageLastRowMs: lastAt - tc,
    agentsListRenders: (await rendersOf(page, 'agents')) - agentRendersBefore,
    longTasks: await longTasks(page),
  };

  // Scroll and filter (the lists of now only).
  if (variant === 'now') {
    const last = c.ids.at(-1)!;
    const lastSel = `#agents tr[data-agent-id="${last}"]`;
    await watch(page, lastSel);
    let t = Date.now();
    await page.$eval('#agents-scroll', (e) => {
      e.scrollTop = e.scrollHeight;
    });
    const scrollMs = (await shownAt(page, lastSel)) - t;
    const middle = c.ids[Math.floor(c.ids.length / 2)]!;
    const middleSel = `#agents tr[data-agent-id="${middle}"]`;
    await watch(page, middleSel);
    t = Date.now();
    await page.fill('#agents-filter', middle);
    const filterAgentMs = (await shownAt(page, middleSel)) - t;
    const taskSel = `#tasks tr[data-task-id="${c.oldTask}"]`;
    await watch(page, taskSel);
    t = Date.now();
    await page.fill('#tasks-filter', c.oldTask);
    const taskAt = await shownAt(page, taskSel);
    out.navigate = {
      scrollToLastAgentMs: scrollMs,
      filterAgentByIdMs: filterAgentMs,
      filterTaskFromHubMs: taskAt - t,
    };
  }
  out.atEnd = await pageSize(page, cdp);
  out.pageErrors = errors.slice(0, 5);
  await ctx.close();
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<Record<string, unknown>> {
  const tRun = nowMs();
  const out: Record<string, unknown> = {
    bench: 'dashboard',
    command: commandLine('bench/dashboard.ts', args),
    source: sourceState(),
    machine: await machineInfo(),
    params: {
      agents: AGENTS,
      tasks: TASKS,
      connections: CONNECTIONS,
      samples: SAMPLES,
      burst: BURST,
      churn: CHURN,
      baseline: BASELINE,
      prefix,
    },
  };
  nats = await startNatsServer();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  log(`nats-server on ${nats.url}; starting the hub (prefix ${prefix}, gateway ${base})`);
  const h = startHubProcess(nats.url, port);
  const admin = await bus('bench-admin');
  for (let i = 0; ; i++) {
    const r = await http(base, 'GET', '/readyz', null).catch(() => null);
    if (r?.status === 200) break;
    if (exited(h)) throw new Error('the hub exited while starting');
    if (i > 300) throw new Error('the gateway never became ready');
    await sleep(200);
  }
  const token = (await createToken(await openTokensKv(admin), { name: 'bench-admin', role: 'admin' })).token;
  for (let i = 0; ; i++) {
    const r = await http(base, 'POST', '/api/hub/pause', token, { assignment: true, reason: 'bench' });
    if (r.status === 200) break;
    if (i > 100) throw new Error(`POST /api/hub/pause never answered 200: ${r.status} ${r.text}`);
    await sleep(200);
  }
  out.startupS = (nowMs() - tRun) / 1000;

  // Agents.
  const width = String(AGENTS - 1).length;
  const ids = Array.from({ length: AGENTS }, (_, i) => `a${String(i).padStart(width, '0')}`);
  for (let i = 0; i < CONNECTIONS; i++) muxes.push(new MuxAgents(await bus(`bench-agents-${i}`)));
  const index = new Map(ids.map((id, i) => [id, i]));
  const muxOf = (id: string) => muxes[index.get(id)! % CONNECTIONS]!;
  let t = nowMs();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        await muxOf(id).hello(id);
      }
    }),
  );
  const helloS = (nowMs() - t) / 1000;
  log(`${AGENTS} agents said hello in ${helloS.toFixed(1)} s`);

  // Tasks, queued.
  t = nowMs();
  let oldTask = '';
  await addConcurrently(TASKS, async (i) => {
    const { taskId } = await submitTask(admin, { title: `bench ${i}`, queue: `q${i % 4}` });
    if (i === 0) oldTask = taskId;
  });
  const sentS = (nowMs() - t) / 1000;
  const stats = () => request(admin, 'task.stats', { v: 1 }, TaskStatsReplySchema, { timeoutMs: 30_000 });
  for (;;) {
    const s = await stats();
    if (s.total >= TASKS) break;
    if (nowMs() - t > 180_000) throw new Error(`the hub holds ${s.total} of ${TASKS} tasks after 180 s`);
    await sleep(250);
  }
  const submitS = (nowMs() - t) / 1000;
  const s = await stats();
  log(`${TASKS} tasks queued in ${submitS.toFixed(1)} s`);
  // The gateway's event stream reads the same flood from the tasks bucket: the page opens once it
  // has (its cursor at the bucket's last revision), or it would measure the gateway's backlog.
  const lastTaskSeq = await kvLastSeq(admin, admin.names.buckets.tasks);
  for (;;) {
    const r = await http(base, 'GET', '/api/dashboard/state', token);
    const cursor = r.status === 200 ? (JSON.parse(r.text) as { cursor: string }).cursor : '';
    if (Number(cursor.split('.')[0]) >= lastTaskSeq) break;
    if (nowMs() - t > 240_000)
      throw new Error(`the gateway's event stream is at ${cursor}, the bucket at ${lastTaskSeq}`);
    await sleep(500);
  }
  out.setup = {
    helloS,
    agentsPerS: AGENTS / helloS,
    tasksSentS: sentS,
    tasksHeldS: submitS,
    tasksPerS: TASKS / submitS,
    gatewayCaughtUpS: (nowMs() - t) / 1000,
    byStatus: s.byStatus,
  };

  // Floors: the buckets the gateway follows, from now on.
  tails.push(
    await tailKv(
      admin,
      admin.names.buckets.agents,
      (await kvLastSeq(admin, admin.names.buckets.agents)) + 1,
      onAgentRevision,
    ),
    await tailKv(
      admin,
      admin.names.buckets.tasks,
      (await kvLastSeq(admin, admin.names.buckets.tasks)) + 1,
      onTaskRevision,
    ),
  );

  // What the gateway sends, as a client that does nothing with it gets it.
  void followEvents(base, token).catch((err) => {
    if (!sse.signal.aborted) log(`event stream: ${errText(err)}`);
  });

  // The state the page opens on.
  const stateMs: number[] = [];
  let bytes = 0;
  let body = '';
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = nowMs();
    const r = await http(base, 'GET', '/api/dashboard/state', token);
    stateMs.push(nowMs() - t0);
    if (r.status !== 200) throw new Error(`GET /api/dashboard/state: ${r.status} ${r.text.slice(0, 200)}`);
    bytes = Buffer.byteLength(r.text);
    body = r.text;
  }
  const state = JSON.parse(body) as { agents: { agents: unknown[] } | null; recent: unknown[] | null };
  const agentsBytes = Buffer.byteLength(JSON.stringify(state.agents));
  out.state = {
    bytes,
    ms: dist(stateMs),
    agents: state.agents?.agents.length ?? null,
    agentsBytes,
    bytesPerAgent: state.agents ? agentsBytes / Math.max(1, state.agents.agents.length) : null,
    recentTasks: state.recent?.length ?? null,
  };
  log(`state: ${bytes} bytes, p50 ${(out.state as { ms: { p50: number } }).ms.p50.toFixed(0)} ms`);

  browser = await launchBrowser();
  (out.machine as Record<string, unknown>).chromium = browser.version();
  const pc: PageContext = { base, token, admin, ids, muxOf, oldTask };
  const now = await measurePage('now', pc);
  out.now = now;
  if (BASELINE) {
    const before = await measurePage('baseline', pc).catch((err: unknown) => {
      log(`baseline failed: ${errText(err)}`);
      return null;
    });
    out.baseline = before;
    if (before) {
      const lt = (x: PageResult, k: 'load' | 'burst' | 'churn') => x[k].longTasks.totalMs;
      out.nowOverBaseline = {
        loadToLive: ratio(now.load.toLiveMs, before.load.toLiveMs),
        loadLongTaskMs: ratio(lt(now, 'load'), lt(before, 'load')),
        agentChangeP50: ratio(now.agentChange.pageMs.p50, before.agentChange.pageMs.p50),
        agentChangeOverSseP50: ratio(now.agentChange.pageOverSseMs.p50, before.agentChange.pageOverSseMs.p50),
        taskEventP50: ratio(now.taskEvent.pageMs.p50, before.taskEvent.pageMs.p50),
        taskEventOverSseP50: ratio(now.taskEvent.pageOverSseMs.p50, before.taskEvent.pageOverSseMs.p50),
        burstNewestRow: ratio(now.burst.pageNewestRowMs, before.burst.pageNewestRowMs),
        burstLongTaskMs: ratio(lt(now, 'burst'), lt(before, 'burst')),
        churnLastRow: ratio(now.churn.pageLastRowMs, before.churn.pageLastRowMs),
        churnLongTaskMs: ratio(lt(now, 'churn'), lt(before, 'churn')),
        jsHeapAtEnd: ratio(now.atEnd.jsHeapUsedBytes, before.atEnd.jsHeapUsedBytes),
        domNodesAtEnd: ratio(now.atEnd.domNodes, before.atEnd.domNodes),
      };
    }
  }
  out.cpuS = { hub: cpuSeconds(hub?.pid), nats: cpuSeconds(nats?.pid) };
  out.hub = { alive: !exited(h), log: hubLog };
  out.runS = (nowMs() - tRun) / 1000;
  (out.machine as Record<string, unknown>).loadavgEnd = loadAverage();
  return out;
}

await runBench({ main, cleanup, timeoutS: TIMEOUT_S, log });
