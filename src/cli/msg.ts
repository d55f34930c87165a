/**
 * @module cli/msg
 * `agentcom msg send|inbox|ack|history|tail|status` and `agentcom thread show`: agent messaging
 * (protocol/message.ts, docs/protocol.md) from the command line, for operators and for agents.
 * `agentcom channel ...` (channel.ts) shares the identity, connection and printing defined here.
 *
 * Who the command acts as. With an agent identity, `--agent <id>`, else AGENTCOM_AGENT_ID (the
 * sidecar sets it for its wake command), else the agent whose seed `--nkey` names (found by its
 * public key in the auth directory's registry), the connection is that agent's own: every call
 * goes to the endpoint's `<op>.<id>` subject, the only one an agent's credentials may publish,
 * replies arrive under `_INBOX.<id>`, and the hub reads the caller from the subject; `--as` and
 * `--sender` are refused. Otherwise the connection is trusted (the admin's): `--as <agent>` acts
 * as that agent (its mailbox, its channels, its name as sender) and `--sender <name>` sends as a
 * human (the hub's default: `operator`).
 *
 * Guarantees: every flag is checked, against the request schemas too, before connecting (exit 2,
 * nothing sent); hub errors keep their code and exit status (not_found 3, forbidden 5...); with
 * `--json` each result is one JSON document (`tail`: one `{v, message}` per line). Not guaranteed:
 * `tail` shows only what is stored after it started, and as an agent only what the hub pushes
 * while it is connected (its mailbox, read with `msg inbox` from the acknowledged cursor, is the
 * record); nothing here acknowledges on its own (`msg ack` does).
 */

import { dirname, resolve } from 'node:path';
import { DeliverPolicy } from '@nats-io/jetstream';
import { fromSeed } from '@nats-io/nkeys';
import type { Command } from 'commander';
import type { z } from 'zod';
import { SIDECAR_ENV } from '../agent/sidecar/files.js';
import type { Bus } from '../bus/connection.js';
import { MessagingClient } from '../bus/messaging-client.js';
import { readSeedFile } from '../bus/nkeys.js';
import { authDirPaths, readRegistry } from '../hub/auth/auth-dir.js';
import { parseDurationMs } from '../protocol/duration.js';
import { decodePayload } from '../protocol/envelope.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { type AgentId, AgentIdSchema } from '../protocol/ids.js';
import {
  ChannelNameSchema,
  INBOX_WAIT_MAX_MS,
  MESSAGE_KINDS,
  type Message,
  type MessageKind,
  MessagePushSchema,
  MsgAckRequestSchema,
  type MsgHistoryRequest,
  MsgHistoryRequestSchema,
  MsgInboxRequestSchema,
  MsgSendRequestSchema,
  MsgStatusRequestSchema,
  type MsgThreadReply,
  PAGE_MAX,
  StoredMessageSchema,
} from '../protocol/message.js';
import { agentInboxPrefix, messagePushSubject } from '../protocol/permissions.js';
import {
  type ConnectionFlags,
  connectCli,
  explainUnreachable,
  type ResolvedConnection,
  resolveConnection,
  withConnectionFlags,
} from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import {
  compactJson,
  flagError,
  flagName,
  parseDuration,
  parseIntFlag,
  parseJsonObject,
  parseTime,
} from './format.js';
import { interruption } from './interruption.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

// --- Identity and connection ---

export interface MsgFlags extends ConnectionFlags {
  as?: string;
  agent?: string;
}

/** Who a command acts as, settled (and checked) before connecting. */
export interface Identity {
  conn: ResolvedConnection;
  /** The agent whose own connection this is (its subjects), if any. */
  agentId: string | undefined;
  /** On a trusted connection: the agent acted for (`--as`), if any. */
  as: AgentId | undefined;
}

/** Adds `--as` and `--agent` (and the connection flags) to a messaging command. */
export function withIdentityFlags(cmd: Command): Command {
  return withConnectionFlags(cmd)
    .option('--as <agent>', 'trusted connection: act as this agent (its mailbox, channels, name)')
    .option(
      '--agent <id>',
      `run as this agent, on its own subjects (env ${SIDECAR_ENV.agentId}; found from an agent's --nkey seed)`,
    );
}

/** How each request field is spelled on the command line, for error messages. */
const FLAG_NAMES: Record<string, string> = {
  body: '<body>',
  upTo: '<up-to>',
  id: '<seq>',
  name: '<name>',
  agent: '<agent>',
  status: '<status>',
};

/** Checks a request against its schema before anything is sent; the first issue names the flag. */
export function checkRequest<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = String(issue?.path[0] ?? 'input');
  throw flagError(key, `${FLAG_NAMES[key] ?? flagName(key)}: ${issue?.message ?? 'invalid'}`);
}

export function agentIdFlag(text: string, key: string, name = flagName(key)): AgentId {
  const r = AgentIdSchema.safeParse(text);
  if (!r.success) throw flagError(key, `${name}: ${r.error.issues[0]?.message ?? 'not an agent id'}`);
  return r.data;
}

/** A channel as people type it: `#reviews` or `reviews`. */
export function channelName(text: string, key = 'channel', name = flagName(key)): string {
  const bare = text.startsWith('#') ? text.slice(1) : text;
  const r = ChannelNameSchema.safeParse(bare);
  if (!r.success) throw flagError(key, `${name}: ${r.error.issues[0]?.message ?? 'not a channel name'}`);
  return r.data;
}

/**
 * The agent this connection is, if any: `--agent`, else AGENTCOM_AGENT_ID, else the agent whose
 * seed `--nkey` (or AGENTCOM_NKEY_FILE) names, when an auth directory's registry lists its public
 * key (the directory in use, or the one the seed sits in: `<dir>/agents/<id>/agent.nk`).
 */
export async function agentIdentity(
  f: { agent?: string },
  conn: ResolvedConnection,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const named = f.agent ?? (env[SIDECAR_ENV.agentId] || undefined);
  if (named !== undefined)
    return agentIdFlag(named, 'agent', f.agent !== undefined ? '--agent' : SIDECAR_ENV.agentId);
  if (!conn.nkeyFile) return undefined;
  const seedFile = resolve(conn.nkeyFile);
  if (conn.authDir && seedFile === authDirPaths(conn.authDir).adminSeed) return undefined;
  let publicKey: string;
  try {
    const kp = fromSeed(new TextEncoder().encode(await readSeedFile(seedFile)));
    publicKey = kp.getPublicKey();
    kp.clear();
  } catch {
    // Not a readable user seed: connecting reports it, with the file's name.
    return undefined;
  }
  const dirs = new Set([
    ...(conn.authDir ? [resolve(conn.authDir)] : []),
    dirname(dirname(dirname(seedFile))),
  ]);
  for (const dir of dirs) {
    try {
      const agent = (await readRegistry(authDirPaths(dir)))?.agents.find((a) => a.publicKey === publicKey);
      if (agent) return agent.id;
    } catch {
      // An unreadable or foreign registry names no one.
    }
  }
  return undefined;
}

/**
 * Resolves the connection and who acts; `needsAgent` (the command's name) when the operation is
 * an agent's (its mailbox, its memberships). @throws AgentComError `invalid_payload` (exit 2).
 */
export async function identify(f: MsgFlags, needsAgent?: string): Promise<Identity> {
  const conn = resolveConnection(f);
  const as = f.as === undefined ? undefined : agentIdFlag(f.as, 'as');
  const agentId = await agentIdentity(f, conn);
  if (agentId !== undefined && as !== undefined && as !== agentId)
    throw flagError(
      'as',
      `--as is for trusted connections; this one is agent ${agentId}'s own (it acts as itself only)`,
    );
  if (needsAgent && agentId === undefined && as === undefined)
    throw flagError(
      'as',
      `${needsAgent} acts for an agent: pass --as <agent> (or run as the agent: --agent <id>, ${SIDECAR_ENV.agentId}, or its --nkey)`,
    );
  return { conn, agentId, as: agentId === undefined ? as : undefined };
}

export interface Session {
  client: MessagingClient;
  bus: Bus;
  /** What every call adds: `{ as }` on a trusted connection acting for an agent. */
  actAs: { as?: AgentId };
  /** The agent acted as (own identity or `--as`), undefined for the trusted connection itself. */
  acting: string | undefined;
  /** True when the connection is the agent's own. */
  own: boolean;
}

/** Connects as `who`, runs `fn` with a messaging client, and drains (also when `fn` fails). */
export async function withMessaging<T>(who: Identity, fn: (s: Session) => Promise<T>): Promise<T> {
  const { conn, agentId, as } = who;
  const bus =
    agentId === undefined
      ? await connectCli(conn)
      : await connectCli(conn, `agentcom-cli-${agentId}`, { inboxPrefix: agentInboxPrefix(agentId) });
  try {
    const client = new MessagingClient(bus, {
      ...(agentId !== undefined ? { agentId } : {}),
      timeoutMs: conn.timeoutMs,
    });
    return await fn({
      client,
      bus,
      actAs: as !== undefined ? { as } : {},
      acting: agentId ?? as,
      own: agentId !== undefined,
    });
  } catch (err) {
    throw explain(err, who);
  } finally {
    await bus.drain().catch(() => undefined);
  }
}

/** Connection-level failures with what to do about them. */
function explain(err: unknown, who: Identity): unknown {
  if (
    err instanceof AgentComError &&
    err.code === ERROR_CODES.FORBIDDEN &&
    who.agentId === undefined &&
    /not permitted/.test(err.message)
  )
    return new AgentComError(
      ERROR_CODES.FORBIDDEN,
      `${err.message}; with an agent's credentials, name the agent: --agent <id>`,
      { cause: err },
    );
  return explainUnreachable(err, who.conn);
}

// --- Printing ---

/** An instant as ISO 8601 to the second (UTC): `2026-12-05T10:00:00Z`. */
function instant(at: number): string {
  return new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function destination(m: Message): string {
  switch (m.kind) {
    case 'direct':
      return m.to ?? '?';
    case 'channel':
      return `#${m.channel ?? '?'}`;
    case 'broadcast':
      return '*';
    case 'presence':
      return 'presence';
  }
}

/** Its place in a thread: `(re #12)`, or `(re #13, thread #12)` deeper down. */
function threadMarker(m: Message): string {
  if (m.replyTo === undefined) return '';
  return m.threadId === undefined || m.threadId === m.replyTo
    ? ` (re #${m.replyTo})`
    : ` (re #${m.replyTo}, thread #${m.threadId})`;
}

/**
 * Text another party wrote, safe for a terminal: control characters (an escape sequence could
 * rewrite the screen or the title bar) are shown as `\xNN` instead of acting.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * A message for people: `#12 2026-12-05T10:00:00Z a1 -> a2: body` on one line, the title in
 * brackets before the body, data after it; further lines of the body indented below.
 */
export function messageLines(m: Message, indent = ''): string[] {
  const [first = '', ...rest] = printable(m.body.replace(/\r\n/g, '\n')).split('\n');
  const title = m.title !== undefined ? `[${printable(m.title.replace(/\n/g, ' '))}] ` : '';
  const head =
    m.kind === 'presence'
      ? `#${m.seq} ${instant(m.at)} [presence] ${first}`
      : `#${m.seq} ${instant(m.at)} ${m.from} -> ${destination(m)}${threadMarker(m)}: ${title}${first}`;
  const data = m.data !== undefined ? `  data ${compactJson(m.data)}` : '';
  return [`${indent}${head}${data}`, ...rest.map((l) => `${indent}    ${l}`)];
}

/** A thread as a tree: each reply indented under the message it answers. */
export function threadLines(t: MsgThreadReply): string[] {
  const depth = new Map<number, number>([[t.root.seq, 0]]);
  const lines = messageLines(t.root);
  for (const r of t.replies) {
    const d = (r.replyTo !== undefined ? (depth.get(r.replyTo) ?? 0) : 0) + 1;
    depth.set(r.seq, d);
    lines.push(...messageLines(r, '  '.repeat(d)));
  }
  return lines;
}

function described(m: Message): string {
  if (m.kind === 'broadcast') return 'every agent';
  if (m.kind === 'channel') return `#${m.channel}`;
  return m.to ?? m.kind;
}

// --- Commands ---

/** A body from the arguments (joined by spaces), or from stdin when it is `-`. */
async function readBody(args: string[]): Promise<string> {
  if (args.length !== 1 || args[0] !== '-') return args.join(' ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  // The newline that ends what `echo` or a file gives is not part of the message.
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export interface SendFlags extends MsgFlags {
  to?: string;
  channel?: string;
  broadcast?: boolean;
  replyTo?: string;
  title?: string;
  data?: string;
  clientId?: string;
  sender?: string;
}

const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** Sends what the flags say: `msg send` and `channel post`. */
export async function sendCommand(bodyArgs: string[], f: SendFlags, out: Output): Promise<ExitCode> {
  const targets = [
    f.to !== undefined && '--to',
    f.channel !== undefined && '--channel',
    f.broadcast === true && '--broadcast',
  ].filter(Boolean);
  if (targets.length > 1) throw flagError('to', `name one of ${targets.join(', ')}, not several`);
  if (targets.length === 0 && f.replyTo === undefined)
    throw flagError(
      'to',
      'say where it goes: --to <agent>, --channel <name>, --broadcast, or --reply-to <seq>',
    );
  const req = {
    ...(f.to !== undefined ? { to: agentIdFlag(f.to, 'to') } : {}),
    ...(f.channel !== undefined ? { channel: channelName(f.channel) } : {}),
    ...(f.broadcast ? { broadcast: true as const } : {}),
    ...(f.replyTo !== undefined
      ? { replyTo: parseIntFlag(f.replyTo, 'replyTo', { min: 1, max: MAX_SEQ }) }
      : {}),
    ...(f.title !== undefined ? { title: f.title } : {}),
    ...(f.data !== undefined ? { data: parseJsonObject(f.data, 'data') } : {}),
    ...(f.clientId !== undefined ? { clientId: f.clientId } : {}),
  };
  const who = await identify(f);
  if (f.sender !== undefined && (who.agentId !== undefined || who.as !== undefined))
    throw flagError(
      'sender',
      who.agentId !== undefined
        ? `--sender is for trusted connections; agent ${who.agentId} sends as itself`
        : '--sender and --as do not go together: --as sends as the agent',
    );
  const body = await readBody(bodyArgs);
  if (body === '' && req.data === undefined)
    throw flagError('body', '<body>: a message needs a body (or --data); `-` reads it from stdin');
  const input = { ...req, body, ...(f.sender !== undefined ? { sender: f.sender } : {}) };
  checkRequest(MsgSendRequestSchema, { v: 1, ...input, ...(who.as !== undefined ? { as: who.as } : {}) });
  return withMessaging(who, async (s) => {
    const r = await s.client.send({ ...input, ...s.actAs });
    // The seq alone on stdout, so `seq=$(agentcom msg send ...)` works; the rest is a note.
    out.result(r, String(r.message.seq));
    out.note(
      r.duplicate
        ? `#${r.message.seq} was sent before with client id ${f.clientId}: not sent again`
        : `sent #${r.message.seq} to ${described(r.message)} as ${r.message.from}`,
    );
    return EXIT.OK;
  });
}

interface InboxFlags extends MsgFlags {
  after?: string;
  limit?: string;
  wait?: string;
}

async function inboxCommand(f: InboxFlags, out: Output): Promise<ExitCode> {
  const req = {
    ...(f.after !== undefined ? { after: parseIntFlag(f.after, 'after', { min: 0, max: MAX_SEQ }) } : {}),
    ...(f.limit !== undefined ? { limit: parseIntFlag(f.limit, 'limit', { min: 1, max: PAGE_MAX }) } : {}),
    ...(f.wait !== undefined ? { waitMs: parseDuration(f.wait, 'wait') } : {}),
  };
  if (req.waitMs !== undefined && req.waitMs > INBOX_WAIT_MAX_MS)
    throw flagError('wait', `--wait is at most ${INBOX_WAIT_MAX_MS / 1000}s, got ${f.wait}`);
  const who = await identify(f, 'msg inbox');
  checkRequest(MsgInboxRequestSchema, { v: 1, ...req });
  return withMessaging(who, async (s) => {
    const r = await s.client.inbox({ ...req, ...s.actAs });
    out.result(
      r,
      r.messages.flatMap((m) => messageLines(m)),
    );
    const last = r.messages.at(-1)?.seq;
    const as = s.own ? '' : ` --as ${s.acting}`;
    if (last === undefined) out.note(`no new messages for ${s.acting} (cursor ${r.cursor})`);
    else {
      out.note(`${r.messages.length} message(s); mark them read: agentcom msg ack ${last}${as}`);
      if (r.more) out.note(`more: agentcom msg inbox --after ${last}${as}`);
    }
    return EXIT.OK;
  });
}

async function ackCommand(upTo: string, f: MsgFlags, out: Output): Promise<ExitCode> {
  const n = parseIntFlag(upTo, 'upTo', { min: 0, max: MAX_SEQ });
  const who = await identify(f, 'msg ack');
  checkRequest(MsgAckRequestSchema, { v: 1, upTo: n });
  return withMessaging(who, async (s) => {
    const cursor = await s.client.ack(n, s.actAs);
    out.result({ v: 1, cursor }, `cursor ${cursor}`);
    if (cursor < n) out.note(`the cursor stays at ${cursor}: nothing is stored after it yet`);
    return EXIT.OK;
  });
}

async function statusCommand(words: string[], f: MsgFlags, out: Output): Promise<ExitCode> {
  const status = words.join(' ');
  const who = await identify(f, 'msg status');
  checkRequest(MsgStatusRequestSchema, { v: 1, status });
  return withMessaging(who, async (s) => {
    const message = await s.client.status(status, s.actAs);
    out.result({ v: 1, message }, String(message.seq));
    out.note(`status of ${s.acting} set (presence message #${message.seq})`);
    return EXIT.OK;
  });
}

export interface HistoryFlags extends MsgFlags {
  channel?: string;
  to?: string;
  from?: string;
  kind?: string;
  thread?: string;
  since?: string;
  until?: string;
  after?: string;
  limit?: string;
  all?: boolean;
}

function messageKind(text: string): MessageKind {
  if (!(MESSAGE_KINDS as readonly string[]).includes(text))
    throw flagError('kind', `--kind must be one of ${MESSAGE_KINDS.join(', ')}, got ${JSON.stringify(text)}`);
  return text as MessageKind;
}

/** A bare duration means that long ago (`--since 1h`); else an ISO 8601 time (or +duration). */
function pointInTime(text: string, key: string): number {
  return parseDurationMs(text) !== null ? Date.now() - parseDuration(text, key) : parseTime(text, key);
}

type HistoryInput = Omit<MsgHistoryRequest, 'v' | 'as'>;

/** The history request from the flags. @throws AgentComError `invalid_payload` naming the flag. */
export function historyRequest(f: HistoryFlags): HistoryInput {
  const req = {
    ...(f.kind !== undefined ? { kind: messageKind(f.kind) } : {}),
    ...(f.channel !== undefined ? { channel: channelName(f.channel) } : {}),
    ...(f.to !== undefined ? { to: agentIdFlag(f.to, 'to') } : {}),
    ...(f.from !== undefined ? { from: f.from } : {}),
    ...(f.thread !== undefined ? { thread: parseIntFlag(f.thread, 'thread', { min: 1, max: MAX_SEQ }) } : {}),
    ...(f.since !== undefined ? { since: pointInTime(f.since, 'since') } : {}),
    ...(f.until !== undefined ? { until: pointInTime(f.until, 'until') } : {}),
    ...(f.after !== undefined ? { after: parseIntFlag(f.after, 'after', { min: 0, max: MAX_SEQ }) } : {}),
    limit:
      f.limit === undefined
        ? f.all
          ? PAGE_MAX
          : 100
        : parseIntFlag(f.limit, 'limit', { min: 1, max: PAGE_MAX }),
  };
  const { v: _v, as: _as, ...checked } = checkRequest(MsgHistoryRequestSchema, { v: 1, ...req });
  return checked;
}

/** A history read: one page, or every page with `--all`, printed oldest first. */
export async function historyCommand(req: HistoryInput, f: HistoryFlags, out: Output): Promise<ExitCode> {
  const who = await identify(f);
  return withMessaging(who, async (s) => {
    let page = await s.client.history({ ...req, ...s.actAs });
    const messages = [...page.messages];
    let after = req.after ?? 0;
    while (f.all && page.next !== null) {
      // Each page starts after the last it looked at: a `next` that does not move would loop forever.
      if (page.next <= after)
        throw new AgentComError(ERROR_CODES.INTERNAL, `history paging stalled at #${page.next}`);
      after = page.next;
      out.progress(`reading history: ${messages.length} messages, up to #${after}`);
      page = await s.client.history({ ...req, after, ...s.actAs });
      messages.push(...page.messages);
    }
    out.result(
      { v: 1, messages, next: page.next },
      messages.flatMap((m) => messageLines(m)),
    );
    if (!messages.length && page.next === null) out.note('no messages match');
    if (page.next !== null) out.note(`more: --after ${page.next} (or --all)`);
    return EXIT.OK;
  });
}

async function threadCommand(seq: string, f: MsgFlags, out: Output): Promise<ExitCode> {
  const id = parseIntFlag(seq, 'id', { min: 1, max: MAX_SEQ });
  const who = await identify(f);
  return withMessaging(who, async (s) => {
    const t = await s.client.thread(id, s.actAs);
    out.result(t, threadLines(t));
    out.note(
      `thread #${t.root.seq}: ${t.replies.length} ${t.replies.length === 1 ? 'reply' : 'replies'}${t.more ? ' (more than shown)' : ''}`,
    );
    return EXIT.OK;
  });
}

// --- tail ---

interface TailFlags extends MsgFlags {
  channel?: string;
  to?: string;
  from?: string;
  kind?: string;
  count?: string;
  timeoutAfter?: string;
}

interface TailFilter {
  kind?: MessageKind;
  channel?: string;
  to?: string;
  from?: string;
}

function tailFilter(f: TailFlags): TailFilter {
  const filter: TailFilter = {
    ...(f.kind !== undefined ? { kind: messageKind(f.kind) } : {}),
    ...(f.channel !== undefined ? { channel: channelName(f.channel) } : {}),
    ...(f.to !== undefined ? { to: agentIdFlag(f.to, 'to') } : {}),
    ...(f.from !== undefined ? { from: f.from } : {}),
  };
  if (filter.channel !== undefined && filter.to !== undefined)
    throw flagError('to', '--to (direct messages) and --channel do not go together');
  if (filter.channel !== undefined && filter.kind !== undefined && filter.kind !== 'channel')
    throw flagError('kind', `--channel follows channel messages, not --kind ${filter.kind}`);
  if (filter.to !== undefined && filter.kind !== undefined && filter.kind !== 'direct')
    throw flagError('kind', `--to follows direct messages, not --kind ${filter.kind}`);
  return filter;
}

function matches(m: Message, t: TailFilter): boolean {
  if (t.kind !== undefined && m.kind !== t.kind) return false;
  if (t.channel !== undefined && (m.kind !== 'channel' || m.channel !== t.channel)) return false;
  if (t.to !== undefined && (m.kind !== 'direct' || m.to !== t.to)) return false;
  return t.from === undefined || m.from === t.from;
}

/** The narrowest stored subject holding what the filter keeps. */
function tailSubject(bus: Bus, t: TailFilter): string {
  const s = bus.names.subjects;
  if (t.channel !== undefined) return s.msgChannel(t.channel);
  if (t.to !== undefined) return s.msgDirect(t.to);
  if (t.kind !== undefined) return s.msgKind(t.kind);
  return s.msgAll;
}

/** A source of live messages: started, iterated, stopped. */
interface LiveMessages {
  messages: AsyncIterable<Message | null>;
  stop(): void;
}

/**
 * Everything stored from now on, with its seq: an ordered consumer on the MESSAGES stream from the
 * sequence after the last one stored (nats.js recreates it after a gap, from where it was, so
 * nothing is skipped or shown twice).
 */
async function storedFromNow(bus: Bus, filter: TailFilter): Promise<LiveMessages> {
  const stream = bus.names.streams.messages;
  const last = (await bus.jsm.streams.info(stream)).state.last_seq;
  const consumer = await bus.js.consumers.get(stream, {
    filter_subjects: tailSubject(bus, filter),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: last + 1,
  });
  const iter = await consumer.consume();
  return {
    messages: (async function* () {
      for await (const m of iter) {
        const r = decodePayload(StoredMessageSchema, m.data, Number.MAX_SAFE_INTEGER);
        // Only the hub writes the stream; anything else on it is not a message.
        yield r.ok ? { ...r.value, seq: m.seq } : null;
      }
    })(),
    stop: () => void iter.stop(),
  };
}

/**
 * What the hub pushes to an agent's connection as each message for it is stored. A push may come
 * twice (a send repeated with its clientId is pushed again), so each seq is shown once; only
 * pushes pass (the schema is strict: an API reply someone addressed here does not).
 */
async function pushedTo(bus: Bus, agentId: string): Promise<LiveMessages> {
  const sub = bus.nc.subscribe(messagePushSubject(agentId));
  // Registered with the server before the note says so.
  await bus.nc.flush();
  const shown = new Set<number>();
  return {
    messages: (async function* () {
      for await (const m of sub) {
        const r = decodePayload(MessagePushSchema, m.data, Number.MAX_SAFE_INTEGER);
        if (!r.ok || shown.has(r.value.message.seq)) {
          yield null;
          continue;
        }
        // Bounded: a tail that runs for days keeps the last 10,000.
        if (shown.size >= 10_000) shown.delete(shown.values().next().value!);
        shown.add(r.value.message.seq);
        yield r.value.message;
      }
    })(),
    stop: () => sub.unsubscribe(),
  };
}

async function tailCommand(f: TailFlags, out: Output): Promise<ExitCode> {
  const filter = tailFilter(f);
  const count =
    f.count === undefined ? undefined : parseIntFlag(f.count, 'count', { min: 1, max: 1_000_000 });
  const timeoutMs = f.timeoutAfter === undefined ? undefined : parseDuration(f.timeoutAfter, 'timeoutAfter');
  const who = await identify(f);
  return withMessaging(who, async (s) => {
    // An agent (or a trusted client acting as one) follows what reaches that agent; a trusted
    // connection follows the stream itself.
    const live =
      s.acting !== undefined ? await pushedTo(s.bus, s.acting) : await storedFromNow(s.bus, filter);
    const stop = interruption(timeoutMs);
    out.note(`following new messages${s.acting !== undefined ? ` for ${s.acting}` : ''} (Ctrl-C to stop)`);
    let n = 0;
    const consumed = (async () => {
      for await (const m of live.messages) {
        if (m === null || !matches(m, filter)) continue;
        out.result({ v: 1, message: m }, messageLines(m));
        if (count !== undefined && ++n >= count) return 'done' as const;
      }
      return 'ended' as const;
    })();
    const closed = s.bus.closed().then(() => 'closed' as const);
    const how = await Promise.race([consumed, stop.done.then(() => 'stopped' as const), closed]);
    stop.dispose();
    live.stop();
    if (how === 'closed' || how === 'ended')
      throw new AgentComError(ERROR_CODES.UNAVAILABLE, `lost the connection to NATS at ${who.conn.servers}`);
    return EXIT.OK;
  });
}

// --- Registration ---

export function registerMsgCommands(program: Command): void {
  const msg = program
    .command('msg')
    .description('agent messaging: direct messages, broadcasts, mailboxes, history, live tail');

  withIdentityFlags(msg.command('send'))
    .description('send a message; prints its seq (its id)')
    .argument('[body...]', 'the text (words are joined by spaces); - reads it from stdin')
    .option('--to <agent>', 'a direct message to this agent')
    .option('--channel <name>', 'a post to this channel (#name or name)')
    .option('--broadcast', 'a message to every agent')
    .option('--reply-to <seq>', 'answer this message, in its thread and conversation')
    .option('--title <text>', 'a title, at most 200 characters')
    .option('--data <json>', 'a JSON object carried beside the text')
    .option('--client-id <key>', 'idempotency key: a repeat returns the first message, not a copy')
    .option('--sender <name>', 'trusted connection: send as this human (default operator)')
    .action((body: string[], f: SendFlags) => runCommand('msg send', f, (out) => sendCommand(body, f, out)));

  withIdentityFlags(msg.command('inbox'))
    .description("read an agent's mailbox in order, from its acknowledged cursor (or --after)")
    .option('--after <seq>', 'read after this seq instead of the cursor')
    .option('--limit <n>', `1-${PAGE_MAX} (default 100)`)
    .option('--wait <duration>', `when nothing is there, wait this long for a first message (up to 30s)`)
    .action((f: InboxFlags) => runCommand('msg inbox', f, (out) => inboxCommand(f, out)));

  withIdentityFlags(msg.command('ack'))
    .description("move an agent's mailbox cursor: everything up to <up-to> is read (idempotent)")
    .argument('<up-to>', 'a seq, as msg inbox prints it')
    .action((upTo: string, f: MsgFlags) => runCommand('msg ack', f, (out) => ackCommand(upTo, f, out)));

  withIdentityFlags(msg.command('history'))
    .description('stored messages matching every filter given, oldest first')
    .option('--channel <name>', 'posts in this channel')
    .option('--to <agent>', 'direct messages to this agent')
    .option('--from <sender>', 'messages from this sender (an agent id or a human name)')
    .option('--kind <kind>', MESSAGE_KINDS.join('|'))
    .option('--thread <seq>', 'the messages of this thread')
    .option('--since <time>', 'from: an ISO 8601 time, or a duration meaning that long ago (1h)')
    .option('--until <time>', 'to: an ISO 8601 time, or a duration ago')
    .option('--after <seq>', 'start after this seq (the `next` a page printed)')
    .option('--limit <n>', `page size, 1-${PAGE_MAX} (default 100; ${PAGE_MAX} with --all)`)
    .option('--all', 'follow every page to the end')
    .action((f: HistoryFlags) =>
      runCommand('msg history', f, (out) => historyCommand(historyRequest(f), f, out)),
    );

  withIdentityFlags(msg.command('tail'))
    .description('print new messages as they are stored, until Ctrl-C')
    .option('--channel <name>', 'only posts in this channel')
    .option('--to <agent>', 'only direct messages to this agent')
    .option('--from <sender>', 'only messages from this sender')
    .option('--kind <kind>', `only this kind (${MESSAGE_KINDS.join('|')})`)
    .option('--count <n>', 'stop after this many messages')
    .option('--timeout-after <duration>', 'stop after this long (e.g. 30s)')
    .action((f: TailFlags) => runCommand('msg tail', f, (out) => tailCommand(f, out)));

  withIdentityFlags(msg.command('status'))
    .description("set an agent's status: a presence message everyone can read")
    .argument('<status...>', 'the status text, at most 200 characters')
    .action((status: string[], f: MsgFlags) =>
      runCommand('msg status', f, (out) => statusCommand(status, f, out)),
    );
}

export function registerThreadCommands(program: Command): void {
  const thread = program.command('thread').description('message threads');
  withIdentityFlags(thread.command('show'))
    .description('a whole thread, its root and every reply in order, as a tree')
    .argument('<seq>', 'any message of the thread')
    .action((seq: string, f: MsgFlags) => runCommand('thread show', f, (out) => threadCommand(seq, f, out)));
}
