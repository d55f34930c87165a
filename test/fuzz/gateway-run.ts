/**
 * The gateway fuzzer: `requests` malformed (and some valid) HTTP requests (gateway-inputs.ts) against
 * the gateway of a hub running as its own process on a real nats-server, while an agent process
 * completes tasks submitted over HTTP at the same time. What it checks, for every request:
 *   - an answer: a status below 500 (503/504, the hub unreachable, are counted apart), never a
 *     redirect or a 1xx; an error body that parses as JSON with a `code` of ERROR_CODES, a string
 *     `message`, the status of that code, and Retry-After with every 429; a success with the status
 *     the OpenAPI document names and a JSON body (an event stream for /api/events);
 *   - the outcome the pipeline owes it (gateway-inputs.ts `predict`): a request that must stop at the
 *     token, the role, a parameter or the body never gets a success;
 * and for the run: the hub process never exits and answers afterwards (`/healthz`, `/readyz`, a task
 * submitted and done), every real task is done exactly once, and nothing the fuzz traffic could name
 * changed (sentinel tasks, a pheromone, a schedule, a dead letter, the tokens, the real agent).
 * Operations that change others' state (deletes, admin operations, hello) get only requests the
 * gateway must refuse before acting, or path ids that name nothing. A few bursts with a token of a
 * tight rate, and without a token, check 429 with Retry-After.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { openKv } from '../../src/bus/kv.js';
import { freePort } from '../../src/bus/nats-server.js';
import { publishRaw } from '../../src/bus/publish.js';
import { createToken, openTokensKv, revokeToken } from '../../src/gateway/tokens.js';
import { ERROR_CODES, ERROR_STATUS, type ErrorCode } from '../../src/protocol/errors.js';
import { TaskRecordSchema } from '../../src/protocol/task.js';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.js';
import { type SimAgent, spawnSimAgent } from '../support/sim-agents.js';
import {
  BODY_LIMIT,
  EXTRA_OPERATIONS,
  type FuzzContext,
  type FuzzRequest,
  type FuzzTokens,
  makeRequest,
  type Operation,
  operationsFrom,
} from './gateway-inputs.js';

const KNOWN_CODES = new Set<string>(Object.values(ERROR_CODES));

export interface GatewayFuzzOptions {
  requests: number;
  seed: number;
  /** Requests in flight (default 32). */
  concurrency?: number;
  /** Only operations whose id (`GET /api/tasks/{id}`) contains this. */
  only?: string;
  /** Send only these request indexes (replaying a finding), printing each request and answer. */
  replay?: number[];
  log?: (line: string) => void;
}

interface Sample {
  index: number;
  op: string;
  families: string[];
  method: string;
  target: string;
  token: string;
  headers: Record<string, string>;
  body: string | null;
  expected: { stage: string; statuses: number[] | null; matched: string | null };
  status: number | null;
  reply: string;
  problem: string;
}

export interface GatewayFuzzResult {
  ok: boolean;
  seed: number;
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  concurrency: number;
  operations: number;
  byStatus: Record<string, number>;
  byCode: Record<string, number>;
  byStage: Record<string, number>;
  byFamily: Record<string, number>;
  byToken: Record<string, number>;
  byRoute: Record<string, { requests: number; byStatus: Record<string, number> }>;
  /** Successes (2xx) by operation: inputs that happened to be valid. */
  successes: Record<string, number>;
  /** 503/504 answers (the hub unreachable or slow): allowed, should be 0 here. */
  unavailable: number;
  transport: Record<string, number>;
  /** Requests sent again because a reused keep-alive socket was already closed by the server. */
  staleSocketRetries: number;
  violations: { count: number; samples: Sample[] };
  rateLimit: {
    tightBursts: number;
    tightSent: number;
    tightLimited: number;
    anonymousLimited: number;
    retryAfterOk: boolean;
    recoveredAfterRetryAfter: boolean;
  };
  realTasks: { submitted: number; done: number; doneOnce: number; submitErrors: number };
  sentinels: { unchanged: boolean; changed: string[] };
  gateway: { healthz: number; readyz: number; validRequestAfter: number; taskDoneAfter: boolean };
  hub: {
    alive: boolean;
    rssMbStart: number | null;
    /** The hub process's resident memory after each tenth of the requests. */
    rssMbEachTenth: (number | null)[];
    rssMbEnd: number | null;
    logs: Record<string, number>;
  };
  replayed?: unknown[];
  /** Why the run stopped early (the hub gone, a harness step failing). */
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Reply {
  status: number | null;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  error?: string;
}

const ANON_ADDRESSES = Array.from({ length: 128 }, (_, i) => `127.0.${1 + (i >> 8)}.${(i & 255) + 1}`);

interface Client {
  base: URL;
  keepAlive: http.Agent;
  anon: http.Agent;
  /** Requests sent again after a reused keep-alive socket turned out closed. */
  staleRetries: number;
}

const isStream = (r: FuzzRequest) => r.expect.matched?.kind === 'sse' || r.target.startsWith('/api/events');

/**
 * Sends a request; a keep-alive socket the server closed just before it was reused ("socket hang
 * up" before any answer) is retried once on a fresh connection, as HTTP clients do.
 */
async function send(c: Client, r: FuzzRequest, timeoutMs = 35_000, localAddress?: string): Promise<Reply> {
  const first = await sendOnce(c, r, timeoutMs, localAddress, false);
  if (first.status !== null || !first.staleSocket) return first;
  c.staleRetries++;
  return sendOnce(c, r, timeoutMs, localAddress, true);
}

function sendOnce(
  c: Client,
  r: FuzzRequest,
  timeoutMs: number,
  localAddress: string | undefined,
  fresh: boolean,
): Promise<Reply & { staleSocket?: boolean }> {
  const stream = isStream(r);
  // A large body the gateway may refuse before reading it all leaves its connection unusable.
  const own = fresh || stream || (r.body !== undefined && r.body.length >= 64 * 1024);
  const headers: Record<string, string | number> = { ...r.headers };
  if (r.body) headers['content-length'] = r.body.length;
  return new Promise((resolve) => {
    let settled = false;
    const done = (rep: Reply & { staleSocket?: boolean }) => {
      if (settled) return;
      settled = true;
      resolve(rep);
    };
    let req: http.ClientRequest;
    try {
      req = http.request(
        {
          host: c.base.hostname,
          port: c.base.port,
          method: r.method,
          path: r.target,
          headers,
          // An event stream holds its connection: its own, closed once the first bytes are in.
          agent: own ? false : r.anonymous ? c.anon : c.keepAlive,
          ...(r.anonymous
            ? { localAddress: localAddress ?? ANON_ADDRESSES[r.index % ANON_ADDRESSES.length] }
            : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const finish = () =>
            done({ status: res.statusCode ?? null, headers: res.headers, body: Buffer.concat(chunks) });
          // An event stream never ends: its first frame is read, then the connection closed.
          if (String(res.headers['content-type']).startsWith('text/event-stream')) {
            const t = setTimeout(() => {
              finish();
              req.destroy();
            }, 1_500);
            res.on('data', (d: Buffer) => {
              chunks.push(d);
              if (Buffer.concat(chunks).includes('\n\n')) {
                clearTimeout(t);
                finish();
                req.destroy();
              }
            });
            res.on('close', () => {
              clearTimeout(t);
              finish();
            });
            return;
          }
          res.on('data', (d: Buffer) => {
            size += d.length;
            if (size <= 4 * 1024 * 1024) chunks.push(d);
          });
          res.on('end', finish);
          res.on('error', (err) =>
            done({
              status: res.statusCode ?? null,
              headers: res.headers,
              body: Buffer.concat(chunks),
              error: err.message,
            }),
          );
        },
      );
    } catch (err) {
      done({
        status: null,
        headers: {},
        body: Buffer.alloc(0),
        error: `client refused: ${(err as Error).message}`,
      });
      return;
    }
    // From the send, whether or not a socket is free yet (an idle timeout would not cover the wait).
    const timer = setTimeout(() => {
      done({ status: null, headers: {}, body: Buffer.alloc(0), error: `no answer in ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', (err) =>
      done({
        status: null,
        headers: {},
        body: Buffer.alloc(0),
        error: err.message,
        ...(req.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET'
          ? { staleSocket: true }
          : {}),
      }),
    );
    req.end(r.body);
  });
}

/** Raw bytes on a socket: the status line of the answer (if any) and its body. */
function sendRaw(c: Client, r: FuzzRequest): Promise<Reply> {
  return new Promise((resolve) => {
    const s = net.connect({
      host: c.base.hostname,
      port: Number(c.base.port),
      localAddress: ANON_ADDRESSES[r.index % ANON_ADDRESSES.length],
    });
    const chunks: Buffer[] = [];
    const t = setTimeout(() => s.destroy(), 3_000);
    s.on('connect', () => s.end(r.raw ?? Buffer.alloc(0)));
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      const all = Buffer.concat(chunks);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(all.subarray(0, 20).toString('latin1'));
      const cut = all.indexOf('\r\n\r\n');
      resolve({
        status: m ? Number(m[1]) : null,
        headers: {},
        body: cut >= 0 ? all.subarray(cut + 4) : Buffer.alloc(0),
        ...(all.length === 0 ? { error: 'closed without an answer' } : {}),
      });
    });
  });
}

/** A small JSON request for the harness's own steps (setup, probes, final checks). */
async function call(
  c: Client,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
  localAddress?: string,
  // biome-ignore lint/suspicious/noExplicitAny: replies of every route, read field by field by the harness
): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  const bytes = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  if (bytes) headers['content-type'] = 'application/json';
  const r = await send(
    c,
    {
      index: 0,
      op: 'harness',
      families: [],
      method,
      target: path,
      headers,
      ...(bytes ? { body: bytes } : {}),
      tokenKind: 'admin',
      anonymous: localAddress !== undefined,
      depth: 0,
      expect: { stage: 'handler', statuses: null },
    },
    15_000,
    localAddress,
  );
  if (r.status === null) throw new Error(`${method} ${path}: ${r.error}`);
  let json: unknown;
  try {
    json = JSON.parse(r.body.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, json };
}

// ---------------------------------------------------------------------------------------------
// Checking one answer

type Verdict = { problem?: string; code?: string };

// biome-ignore lint/suspicious/noExplicitAny: any answer, checked field by field
function json(b: Buffer): any {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}

function judge(r: FuzzRequest, rep: Reply): Verdict {
  if (r.raw) {
    if (rep.status === null) return {};
    if (rep.status >= 500) return { problem: `raw request answered ${rep.status}` };
    const b = json(rep.body);
    if (b && KNOWN_CODES.has(b.code) && typeof b.message === 'string') return { code: b.code };
    return { problem: `raw request answered ${rep.status} without the structured error` };
  }
  if (rep.status === null) {
    // A body over the limit may be cut off by the 413 before it is all sent.
    if (r.body && r.body.length > BODY_LIMIT) return {};
    return { problem: `no answer: ${rep.error}` };
  }
  const s = rep.status;
  const head = r.method === 'HEAD';
  const b = head ? undefined : json(rep.body);
  const code: string | undefined = typeof b?.code === 'string' ? b.code : undefined;
  if (s >= 400 && !head) {
    if (!b || typeof b !== 'object') return { problem: `error ${s} without a JSON body` };
    if (!KNOWN_CODES.has(code ?? '') || typeof b.message !== 'string')
      return { problem: `error ${s} not structured`, code };
    if (
      b.path !== undefined &&
      !(Array.isArray(b.path) && b.path.every((p: unknown) => typeof p === 'string' || typeof p === 'number'))
    )
      return { problem: 'error path is not a list of names', code };
    if (ERROR_STATUS[code as ErrorCode] !== s && !(s === 415 && code === ERROR_CODES.INVALID_PAYLOAD))
      return { problem: `status ${s} does not go with code ${code}`, code };
  }
  if (s === 429) {
    const ra = Number(rep.headers['retry-after']);
    if (!Number.isInteger(ra) || ra < 1)
      return { problem: '429 without a Retry-After of whole seconds', code };
  }
  if (s >= 500 && s !== 503 && s !== 504) return { problem: `server error ${s}`, code };
  if (s < 200 || (s >= 300 && s < 400)) return { problem: `status ${s}`, code };
  const e = r.expect;
  if (e.statuses && !e.statuses.includes(s))
    return { problem: `expected ${e.statuses.join('|')} (${e.stage}), got ${s}`, code };
  if (s >= 200 && s < 300) {
    const op = e.matched;
    // Routing this module could not decide (an encoded static segment): any documented route's success.
    if (!op) return e.stage === 'unsure' ? {} : { problem: `success ${s} for a request no route takes` };
    if (!op.success.includes(s)) return { problem: `success ${s}, documented ${op.success.join('|')}` };
    if (head) return {};
    if (op.kind === 'sse') {
      if (!String(rep.headers['content-type']).startsWith('text/event-stream'))
        return { problem: 'event stream without text/event-stream' };
      if (!rep.body.toString('utf8').startsWith('retry:'))
        return { problem: 'event stream does not start with retry:' };
      return {};
    }
    if (op.kind === 'json' && b === undefined) return { problem: `success ${s} without a JSON body` };
  }
  return { ...(code ? { code } : {}) };
}

const HARNESS_SAMPLE: Sample = {
  index: -1,
  op: 'harness',
  families: [],
  method: '',
  target: '',
  token: '',
  headers: {},
  body: null,
  expected: { stage: '', statuses: null, matched: null },
  status: null,
  reply: '',
  problem: '',
};

function sampleOf(r: FuzzRequest, rep: Reply, problem: string): Sample {
  const clip = (s: string, n = 240) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
  const headers = { ...r.headers };
  if (headers.authorization)
    headers.authorization = clip(
      headers.authorization.replace(/agc_[a-z0-9]{12}_[\w-]{43}/g, 'agc_<token>'),
      80,
    );
  return {
    index: r.index,
    op: r.op,
    families: r.families,
    method: r.method,
    target: clip(r.target),
    token: r.tokenKind,
    headers,
    body: r.raw ? clip(r.raw.toString('latin1')) : r.body ? clip(r.body.toString('utf8')) : null,
    expected: { stage: r.expect.stage, statuses: r.expect.statuses, matched: r.expect.matched?.id ?? null },
    status: rep.status,
    reply: rep.error ?? clip(rep.body.toString('utf8')),
    problem,
  };
}

// ---------------------------------------------------------------------------------------------
// Processes

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function rssMb(pid: number | undefined): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

interface HubProcess {
  child: ChildProcess;
  exited: () => boolean;
  logs: Record<string, number>;
  stderr: () => string;
  stop(): Promise<void>;
}

function startHub(natsUrl: string, prefix: string, httpPort: number): HubProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', here('../../src/cli/main.ts'), 'hub'], {
    env: {
      ...process.env,
      NATS_URL: natsUrl,
      AGENTCOM_PREFIX: prefix,
      AGENTCOM_HTTP: 'on',
      AGENTCOM_HTTP_PORT: String(httpPort),
      AGENTCOM_LOG_LEVEL: 'warn',
      AGENTCOM_LOG_FORMAT: 'json',
      AGENTCOM_HEARTBEAT_INTERVAL_MS: '1000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exitCode: number | null | undefined;
  child.once('exit', (code, signal) => {
    exitCode = code ?? (signal ? -1 : null);
  });
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const logs: Record<string, number> = {};
  // GATEWAY_FUZZ_HUB_LOG=<file> keeps the hub's log (warnings and errors).
  const keep = process.env.GATEWAY_FUZZ_HUB_LOG
    ? createWriteStream(process.env.GATEWAY_FUZZ_HUB_LOG)
    : undefined;
  createInterface({ input: child.stdout! }).on('line', (l) => {
    keep?.write(`${l}\n`);
    try {
      const j = JSON.parse(l) as { level?: number; msg?: string; err?: { message?: string } };
      const key = `${j.level ?? '?'} ${j.msg ?? '?'}${j.err?.message ? `: ${j.err.message.slice(0, 80)}` : ''}`;
      logs[key] = (logs[key] ?? 0) + 1;
    } catch {
      logs['(not JSON)'] = (logs['(not JSON)'] ?? 0) + 1;
    }
  });
  return {
    child,
    exited: () => exitCode !== undefined,
    logs,
    stderr: () => stderr,
    async stop() {
      if (exitCode !== undefined) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await gone;
      clearTimeout(t);
      keep?.end();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`${what}: not within ${ms} ms${last ? ` (${(last as Error).message})` : ''}`);
    await sleep(200);
  }
}

const count = (m: Record<string, number>, k: string, n = 1) => {
  m[k] = (m[k] ?? 0) + n;
};

// ---------------------------------------------------------------------------------------------
// The run

export async function runGatewayFuzz(opts: GatewayFuzzOptions): Promise<GatewayFuzzResult> {
  const log = opts.log ?? (() => {});
  const concurrency = opts.concurrency ?? 32;
  const started = Date.now();
  let nats: TestNatsServer | undefined;
  let hub: HubProcess | undefined;
  let bus: Bus | undefined;
  let agent: SimAgent | undefined;
  const client: Client = {
    base: new URL('http://127.0.0.1'),
    keepAlive: new http.Agent({ keepAlive: true, maxSockets: concurrency + 8 }),
    anon: new http.Agent({ keepAlive: true, maxSockets: 2 }),
    staleRetries: 0,
  };
  try {
    nats = await startNatsServer();
    const prefix = `gwfuzz${opts.seed}`.slice(0, 32);
    const port = await freePort();
    client.base = new URL(`http://127.0.0.1:${port}`);
    hub = startHub(nats.url, prefix, port);
    bus = await connectBus({ servers: nats.url, prefix, logger: pino({ level: 'silent' }) });
    const h = hub;
    await until('the gateway ready', async () => {
      if (h.exited()) throw new Error(`hub exited: ${h.stderr()}`);
      return (await call(client, 'GET', '/readyz', null)).status === 200 ? true : undefined;
    });

    // --- Tokens of every role, and the ones that must be refused
    const kv = await openTokensKv(bus);
    const fast = { perSecond: 1_000_000, burst: 1_000_000 };
    const make = async (name: string, role: 'admin' | 'submitter' | 'read' | 'agent', extra: object = {}) =>
      createToken(kv, { name, role, rate: fast, ...extra });
    const agentId = 'fuzz-agent';
    const admin = await make('fuzz-admin', 'admin');
    const revoked = await make('fuzz-revoked', 'read');
    await revokeToken(kv, revoked.record.id);
    const tokens: FuzzTokens = {
      admin: admin.token,
      submitter: (await make('fuzz-submitter', 'submitter')).token,
      read: (await make('fuzz-read', 'read')).token,
      agent: (await make('fuzz-agent', 'agent', { agentId })).token,
      expired: (await make('fuzz-expired', 'read', { ttlMs: 1 })).token,
      revoked: revoked.token,
      forged: `agc_${admin.record.id}_${'A'.repeat(43)}`,
      agentId,
    };
    const tight = await createToken(kv, {
      name: 'fuzz-tight',
      role: 'read',
      rate: { perSecond: 2, burst: 4 },
    });
    const producer = await make('real-producer', 'submitter');
    await until('the hub answering through the gateway', async () =>
      (await call(client, 'GET', '/api/tasks/stats', tokens.admin)).status === 200 ? true : undefined,
    );

    // --- The operations: the OpenAPI document's, and the routes it leaves out
    const doc = (await call(client, 'GET', '/api/openapi.json', null)).json;
    // The document describes the stream, /metrics and the probes too; their hand-made operations
    // (which know their content types and what they owe) are used instead.
    const extraIds = new Set(EXTRA_OPERATIONS.map((o) => o.id));
    const ops: Operation[] = [
      ...operationsFrom(doc).filter((o) => !extraIds.has(o.id)),
      ...EXTRA_OPERATIONS,
    ].filter((o) => !opts.only || o.id.includes(opts.only));
    if (ops.length === 0) throw new Error(`no operation matches ${opts.only}`);

    // --- Real work and sentinels: what the fuzz traffic must not touch
    const realQueue = `real${opts.seed}`;
    const realAgentId = `real-agent-${opts.seed}`;
    const sentinelQueue = `sentinel${opts.seed}`;
    const scheduleName = `sentinel-${opts.seed}`;
    agent = await spawnSimAgent({
      url: nats.url,
      prefix,
      agentId: realAgentId,
      queues: [realQueue],
      slots: 4,
    });
    const sentinelTasks: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(client, 'POST', '/api/tasks', tokens.admin, {
        title: `sentinel ${i}`,
        queue: sentinelQueue,
      });
      if (r.status !== 201) throw new Error(`sentinel task: ${r.status} ${JSON.stringify(r.json)}`);
      sentinelTasks.push(r.json.task.id);
    }
    const ph = await call(client, 'POST', '/api/pheromones', tokens.admin, { type: 'sentinel.mark' });
    if (ph.status !== 201) throw new Error(`sentinel pheromone: ${ph.status} ${JSON.stringify(ph.json)}`);
    const pheromoneId: string = ph.json.pheromone.id;
    const sc = await call(client, 'POST', '/api/schedules', tokens.admin, {
      spec: {
        name: scheduleName,
        every: '1d',
        action: { type: 'task', task: { title: 'sentinel', queue: sentinelQueue } },
      },
    });
    if (sc.status !== 201) throw new Error(`sentinel schedule: ${sc.status} ${JSON.stringify(sc.json)}`);
    await call(client, 'POST', `/api/schedules/${scheduleName}/pause`, tokens.admin);
    await publishRaw(bus, bus.names.subjects.taskSubmit, new TextEncoder().encode('sentinel: not json'), {
      msgId: `sentinel-${opts.seed}`,
    });
    const dlqSeq: number = await until('the sentinel dead letter', async () => {
      const r = await call(client, 'GET', '/api/dlq', tokens.admin);
      return r.json?.items?.[0]?.seq as number | undefined;
    });
    const snapshot = async () => {
      const s: Record<string, unknown> = {};
      for (const id of sentinelTasks)
        s[`task ${id}`] = (await call(client, 'GET', `/api/tasks/${id}`, tokens.admin)).json;
      s[`pheromone ${pheromoneId}`] = (
        await call(client, 'GET', `/api/pheromones/${pheromoneId}`, tokens.admin)
      ).json;
      s[`schedule ${scheduleName}`] = (
        await call(client, 'GET', `/api/schedules/${scheduleName}`, tokens.admin)
      ).json?.schedule?.spec;
      s[`dead letter ${dlqSeq}`] = (await call(client, 'GET', `/api/dlq/${dlqSeq}`, tokens.admin)).json;
      s.tokens = ((await call(client, 'GET', '/api/tokens', tokens.admin)).json?.tokens ?? [])
        .map((t: { id: string }) => t.id)
        .sort();
      const ag = (await call(client, 'GET', `/api/agents/${realAgentId}`, tokens.admin)).json?.agent;
      s[`agent ${realAgentId}`] = ag
        ? { id: ag.id, removed: ag.removed ?? null, suspended: ag.suspended ?? null }
        : null;
      return s;
    };
    const before = await snapshot();
    const forbidden = new Set<string>([
      realQueue,
      realAgentId,
      sentinelQueue,
      scheduleName,
      pheromoneId,
      ...sentinelTasks,
      String(dlqSeq),
      admin.record.id,
    ]);
    const ctx: FuzzContext = { seed: opts.seed, ops, tokens, forbidden };
    const rssMbStart = rssMb(hub.child.pid);
    const rssEachTenth: (number | null)[] = [];

    // --- A replay: the requests asked for, printed with their answers
    if (opts.replay) {
      const replayed: unknown[] = [];
      for (const i of opts.replay) {
        const r = makeRequest(ctx, i);
        const rep = r.raw ? await sendRaw(client, r) : await send(client, r);
        const v = judge(r, rep);
        replayed.push({
          ...sampleOf(r, rep, v.problem ?? 'ok'),
          hubAlive: !hub.exited(),
        });
      }
      return {
        ...emptyResult(opts, concurrency, ops.length),
        replayed,
        seconds: (Date.now() - started) / 1000,
      };
    }

    // --- Real work submitted over HTTP while the fuzz runs
    const real: string[] = [];
    let submitErrors = 0;
    let producing = true;
    const producerLoop = (async () => {
      while (producing) {
        const r = await call(client, 'POST', '/api/tasks', producer.token, {
          title: `real ${real.length}`,
          queue: realQueue,
        }).catch(() => undefined);
        if (r?.status === 201) real.push(r.json.task.id);
        else submitErrors++;
        await sleep(40);
      }
    })();

    // --- The fuzz
    const result = emptyResult(opts, concurrency, ops.length);
    const samples: Sample[] = [];
    let violations = 0;
    const rateLimit = result.rateLimit;
    let retryAfterOk = true;
    const tightBurst = async () => {
      rateLimit.tightBursts++;
      for (let i = 0; i < 8; i++) {
        const r = await call(client, 'GET', '/api/tasks/stats', tight.token);
        rateLimit.tightSent++;
        if (r.status === 429) {
          rateLimit.tightLimited++;
          const ra = Number(r.headers['retry-after']);
          if (
            !Number.isInteger(ra) ||
            ra < 1 ||
            r.json?.code !== 'rate_limited' ||
            !(r.json?.retryAfterMs >= 0)
          )
            retryAfterOk = false;
        } else if (r.status !== 200) retryAfterOk = false;
      }
    };
    const burstEvery = Math.max(200, Math.floor(opts.requests / 10));
    let next = 0;
    let finished = 0;
    const t0 = Date.now();
    const worker = async () => {
      while (next < opts.requests) {
        const index = next++;
        if (index % burstEvery === 0) await tightBurst();
        let r: FuzzRequest;
        try {
          r = makeRequest(ctx, index);
        } catch (err) {
          // The fuzzer's own failure: reported as a violation with the index to replay.
          finished++;
          violations++;
          if (samples.length < 25)
            samples.push({
              ...HARNESS_SAMPLE,
              index,
              problem: `could not draw request: ${(err as Error).stack}`,
            });
          continue;
        }
        const rep = r.raw ? await sendRaw(client, r) : await send(client, r);
        const v = judge(r, rep);
        finished++;
        const status =
          rep.status === null
            ? rep.error?.startsWith('no answer')
              ? 'no-answer'
              : 'none'
            : String(rep.status);
        count(result.byStatus, status);
        if (v.code) count(result.byCode, v.code);
        count(result.byStage, r.expect.stage);
        count(result.byToken, r.tokenKind);
        for (const f of r.families.length ? r.families : ['plain']) count(result.byFamily, f.split(':')[0]!);
        result.byRoute[r.op] ??= { requests: 0, byStatus: {} };
        const route = result.byRoute[r.op]!;
        route.requests++;
        count(route.byStatus, status);
        if (rep.status !== null && rep.status >= 200 && rep.status < 300)
          count(result.successes, r.expect.matched?.id ?? r.op);
        if (rep.status === 503 || rep.status === 504) result.unavailable++;
        if (r.raw)
          count(
            result.transport,
            rep.status === null
              ? 'closed'
              : v.problem
                ? `${rep.status} unstructured`
                : `${rep.status} structured`,
          );
        if (v.problem) {
          violations++;
          if (samples.length < 25) samples.push(sampleOf(r, rep, v.problem));
        }
        if (finished % Math.max(1, Math.floor(opts.requests / 10)) === 0) {
          rssEachTenth.push(rssMb(hub!.child.pid));
          log(
            `[gateway-fuzz] ${finished}/${opts.requests} in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${violations} violations, hub ${hub!.exited() ? 'EXITED' : 'up'}`,
          );
        }
        if (hub!.exited()) break;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const fuzzSeconds = (Date.now() - t0) / 1000;
    producing = false;
    await producerLoop;
    result.violations = { count: violations, samples };
    result.staleSocketRetries = client.staleRetries;
    result.requestsPerSecond = Math.round(finished / fuzzSeconds);
    result.hub = {
      alive: !hub.exited(),
      rssMbStart,
      rssMbEachTenth: rssEachTenth,
      rssMbEnd: rssMb(hub.child.pid),
      logs: hub.logs,
    };
    if (hub.exited()) {
      result.error = `the hub exited during the fuzz: ${hub.stderr()}`;
      result.seconds = Math.round((Date.now() - started) / 100) / 10;
      return result;
    }

    // --- Rate limits: a tight token, and no token at all from one address
    await tightBurst();
    const lastAnon = ANON_ADDRESSES[ANON_ADDRESSES.length - 1];
    let anonRetryAfter = 0;
    for (let i = 0; i < 40; i++) {
      const r = await call(client, 'GET', '/api/tasks', null, undefined, lastAnon);
      if (r.status === 429) {
        rateLimit.anonymousLimited++;
        anonRetryAfter = Number(r.headers['retry-after']);
        if (!Number.isInteger(anonRetryAfter) || anonRetryAfter < 1) retryAfterOk = false;
      } else if (r.status !== 401) retryAfterOk = false;
    }
    const lim = await call(client, 'GET', '/api/tasks/stats', tight.token);
    if (lim.status === 429) {
      await sleep(Number(lim.headers['retry-after']) * 1000);
      rateLimit.recoveredAfterRetryAfter =
        (await call(client, 'GET', '/api/tasks/stats', tight.token)).status === 200;
    } else rateLimit.recoveredAfterRetryAfter = lim.status === 200;
    rateLimit.retryAfterOk = retryAfterOk && rateLimit.tightLimited > 0 && rateLimit.anonymousLimited > 0;

    // --- Afterwards: the gateway and the hub answer, real work is done, sentinels unchanged
    result.gateway.healthz = (await call(client, 'GET', '/healthz', null)).status;
    result.gateway.readyz = await until('/readyz answering', async () => {
      const r = await call(client, 'GET', '/readyz', null);
      return r.status === 429 ? undefined : r.status;
    });
    result.gateway.validRequestAfter = (await call(client, 'GET', '/api/tasks/stats', tokens.read)).status;
    const last = await call(client, 'POST', '/api/tasks', producer.token, {
      title: 'after the fuzz',
      queue: realQueue,
    });
    if (last.status === 201) real.push(last.json.task.id);
    const tasks = await openKv(bus, bus.names.buckets.tasks, TaskRecordSchema);
    let done = 0;
    let doneOnce = 0;
    const deadline = Date.now() + 60_000;
    for (;;) {
      done = 0;
      doneOnce = 0;
      for (const id of real) {
        const t = (await tasks.get(id))?.value;
        if (t?.status !== 'done') continue;
        done++;
        if (
          t.history.filter((x) => x.to === 'done').length === 1 &&
          !t.history.some((x) => x.to === 'cancelled')
        )
          doneOnce++;
      }
      if (done === real.length || Date.now() > deadline) break;
      await sleep(500);
    }
    result.gateway.taskDoneAfter =
      last.status === 201 && (await tasks.get(last.json.task.id))?.value.status === 'done';
    result.realTasks = { submitted: real.length, done, doneOnce, submitErrors };
    const after = await snapshot();
    const changed = Object.keys(before).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    result.sentinels = { unchanged: changed.length === 0, changed };
    result.hub = {
      alive: !hub.exited(),
      rssMbStart,
      rssMbEachTenth: rssEachTenth,
      rssMbEnd: rssMb(hub.child.pid),
      logs: hub.logs,
    };
    result.seconds = Math.round((Date.now() - started) / 100) / 10;
    result.ok =
      violations === 0 &&
      result.hub.alive &&
      result.sentinels.unchanged &&
      done === real.length &&
      doneOnce === real.length &&
      real.length > 0 &&
      result.gateway.healthz === 200 &&
      result.gateway.readyz === 200 &&
      result.gateway.validRequestAfter === 200 &&
      result.gateway.taskDoneAfter &&
      rateLimit.retryAfterOk &&
      rateLimit.recoveredAfterRetryAfter;
    return result;
  } finally {
    await agent?.kill();
    await bus?.drain().catch(() => {});
    await hub?.stop();
    client.keepAlive.destroy();
    client.anon.destroy();
    await nats?.dispose();
  }
}

function emptyResult(opts: GatewayFuzzOptions, concurrency: number, operations: number): GatewayFuzzResult {
  return {
    ok: false,
    seed: opts.seed,
    requests: opts.requests,
    seconds: 0,
    requestsPerSecond: 0,
    concurrency,
    operations,
    byStatus: {},
    byCode: {},
    byStage: {},
    byFamily: {},
    byToken: {},
    byRoute: {},
    successes: {},
    unavailable: 0,
    transport: {},
    staleSocketRetries: 0,
    violations: { count: 0, samples: [] },
    rateLimit: {
      tightBursts: 0,
      tightSent: 0,
      tightLimited: 0,
      anonymousLimited: 0,
      retryAfterOk: false,
      recoveredAfterRetryAfter: false,
    },
    realTasks: { submitted: 0, done: 0, doneOnce: 0, submitErrors: 0 },
    sentinels: { unchanged: false, changed: [] },
    gateway: { healthz: 0, readyz: 0, validRequestAfter: 0, taskDoneAfter: false },
    hub: { alive: false, rssMbStart: null, rssMbEachTenth: [], rssMbEnd: null, logs: {} },
  };
}
