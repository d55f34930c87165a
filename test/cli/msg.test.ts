/**
 * `agentcom msg|channel|thread ...` as people and agents run them: the real command in child
 * processes against a real hub on a test nats-server, agents registered by SDK clients in this
 * process. Then the same commands with an agent's own credentials against a server that enforces
 * the generated permissions. CLI processes are few per test (each costs about a second).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { MessagingClient } from '../../src/bus/messaging-client.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import type { HubHandle } from '../../src/hub/main.js';
import type { Message } from '../../src/protocol/message.js';
import { type AuthFixture, connectAgentClient, startAuthFixture } from '../security/fixture.js';
import { CLI_ENTRY, type CliOptions, runCli, TSX_LOADER } from '../support/cli.js';
import { useCliHub } from '../support/cli-hub.js';
import { eventually } from '../support/eventually.js';
import { startTestHub } from '../support/hub.js';

const h = useCliHub('climsg');
const silent = pino({ level: 'silent' });
const agents: AgentClient[] = [];

/** The real command against this file's hub, with stdin and env when given. */
const cli = (args: string[], opts: CliOptions = {}) =>
  runCli([...args, '--nats-url', h.url, '--prefix', h.prefix], opts);
const errorOf = (stderr: string) => JSON.parse(stderr).error as { code: string; path?: string[] };
/** `#12 2026-12-05T10:00:00Z`: how a human line starts. */
const HEAD = '#\\d+ \\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z';

beforeAll(async () => {
  // The hub knows an agent once it has said hello: direct messages to others are not_found.
  for (const id of ['a1', 'a2', 'a3', 'a4'])
    agents.push(
      await AgentClient.connect({
        agentId: id,
        connection: { servers: h.url, prefix: h.prefix },
        hello: {},
        logger: silent,
        helloTimeoutMs: 15_000,
      }),
    );
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop({ goodbye: false })));
});

describe('agentcom msg', () => {
  it('send, inbox and ack round trip (--json, stdin, idempotent resend); the agent itself replies and sets its status', {
    timeout: 90_000,
  }, async () => {
    const sent = await cli([
      'msg',
      'send',
      '--to',
      'a2',
      '--as',
      'a1',
      '--title',
      'hi',
      '--data',
      '{"k":1}',
      '--client-id',
      'c1',
      '--json',
      'hello',
      'world',
    ]);
    expect(sent.code, sent.stderr).toBe(0);
    const first = sent.json<{ message: Message; duplicate: boolean }>();
    expect(first).toMatchObject({
      v: 1,
      duplicate: false,
      message: { kind: 'direct', from: 'a1', fromKind: 'agent', to: 'a2', title: 'hi', body: 'hello world' },
    });
    expect(first.message.data).toEqual({ k: 1 });
    const seq = first.message.seq;

    // The same client id again, the body from stdin: the first message comes back, not a copy.
    const again = await cli(['msg', 'send', '--to', 'a2', '--as', 'a1', '--client-id', 'c1', '-'], {
      input: 'hello world\n',
    });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(String(seq));
    expect(again.stderr).toContain('not sent again');

    const inbox = await cli(['msg', 'inbox', '--as', 'a2']);
    expect(inbox.code, inbox.stderr).toBe(0);
    expect(inbox.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^${HEAD} a1 -> a2: \\[hi\\] hello world  data \\{"k":1\\}$`)),
    ]);
    expect(inbox.stdout).toMatch(new RegExp(`^#${seq} `));
    expect(inbox.stderr).toContain(`agentcom msg ack ${seq}`);

    const acked = await cli(['msg', 'ack', String(seq), '--as', 'a2', '--json']);
    expect(acked.code, acked.stderr).toBe(0);
    expect(acked.json()).toEqual({ v: 1, cursor: seq });

    // As the agent itself (AGENTCOM_AGENT_ID, as the sidecar sets it): its own subjects, its cursor.
    const own = await cli(['msg', 'inbox', '--json'], { env: { AGENTCOM_AGENT_ID: 'a2' } });
    expect(own.code, own.stderr).toBe(0);
    expect(own.json()).toEqual({ v: 1, messages: [], cursor: seq, more: false });
    const reply = await cli(['msg', 'send', '--reply-to', String(seq), '--agent', 'a2', '--json', 'thanks']);
    expect(reply.code, reply.stderr).toBe(0);
    expect(reply.json<{ message: Message }>().message).toMatchObject({
      from: 'a2',
      fromKind: 'agent',
      to: 'a1',
      replyTo: seq,
      threadId: seq,
    });
    const status = await cli(['msg', 'status', '--agent', 'a2', '--json', 'reviewing', 'PR', '7']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.json<{ message: Message }>().message).toMatchObject({
      kind: 'presence',
      from: 'a2',
      presence: { event: 'status', status: 'reviewing PR 7' },
    });
  });

  it('history pages with --all; thread show draws the thread as a tree', { timeout: 90_000 }, async () => {
    const m = new MessagingClient(h.client.bus);
    await m.channelCreate({ name: 'hist' });
    const posts: Message[] = [];
    for (let i = 1; i <= 7; i++)
      posts.push((await m.send({ channel: 'hist', body: `post ${i}`, sender: 'ops' })).message);
    const root = posts[0]!;
    // An escape sequence in a body is shown, not obeyed.
    const r1 = (await m.send({ replyTo: root.seq, body: 'answer\u001b[2J' })).message;
    const r2 = (await m.send({ replyTo: r1.seq, body: 'thanks', sender: 'ops' })).message;
    const all = [...posts, r1, r2];

    const paged = await cli(['channel', 'history', '#hist', '--limit', '3', '--all', '--json']);
    expect(paged.code, paged.stderr).toBe(0);
    const doc = paged.json<{ messages: Message[]; next: number | null }>();
    expect(doc.messages.map((x) => x.seq)).toEqual(all.map((x) => x.seq));
    expect(doc.next).toBeNull();

    const page = await cli(['msg', 'history', '--channel', 'hist', '--limit', '3', '--from', 'ops']);
    expect(page.code, page.stderr).toBe(0);
    expect(page.stdout.trim().split('\n')).toEqual(
      posts
        .slice(0, 3)
        .map((p) => expect.stringMatching(new RegExp(`^#${p.seq} .* ops -> #hist: ${p.body}$`))),
    );
    expect(page.stderr).toContain(`more: --after ${posts[2]!.seq}`);

    const tree = await cli(['thread', 'show', String(r2.seq)]);
    expect(tree.code, tree.stderr).toBe(0);
    expect(tree.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^#${root.seq} .* ops -> #hist: post 1$`)),
      expect.stringMatching(
        new RegExp(`^  #${r1.seq} .* operator -> #hist \\(re #${root.seq}\\): answer\\\\x1b\\[2J$`),
      ),
      expect.stringMatching(
        new RegExp(`^    #${r2.seq} .* ops -> #hist \\(re #${r1.seq}, thread #${root.seq}\\): thanks$`),
      ),
    ]);
    const json = await cli(['thread', 'show', String(root.seq), '--json']);
    expect(json.json<{ root: Message; replies: Message[] }>()).toMatchObject({
      root: { seq: root.seq },
      replies: [{ seq: r1.seq }, { seq: r2.seq }],
    });
  });

  it('tail follows new messages: the stream (JSON lines), and an agent’s own pushes', {
    timeout: 90_000,
  }, async () => {
    const m = new MessagingClient(h.client.bus);
    await m.channelCreate({ name: 'tailed' });
    await m.channelCreate({ name: 'other' });
    const stream = follow(['msg', 'tail', '--channel', '#tailed', '--json']);
    const agent = follow(['msg', 'tail', '--agent', 'a4']);
    try {
      // What is stored before the tail has its consumer is not shown: send until one line arrives.
      const sent: number[] = [];
      await eventually(
        async () => {
          sent.push((await m.send({ channel: 'tailed', body: `tick ${sent.length}` })).message.seq);
          if (!stream.lines().length) throw new Error(`no line yet; stderr: ${stream.stderr()}`);
        },
        { timeout: 30_000, interval: 200 },
      );
      await m.send({ channel: 'other', body: 'not followed' });
      const last = (await m.send({ channel: 'tailed', body: 'last' })).message.seq;
      const lines = await eventually(() => {
        const l = stream.lines().map((x) => JSON.parse(x) as { v: number; message: Message });
        if (l.at(-1)?.message.seq !== last) throw new Error(`not yet: ${stream.lines().join('\n')}`);
        return l;
      });
      const seqs = lines.map((l) => l.message.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(seqs.every((s) => sent.includes(s) || s === last)).toBe(true);
      expect(lines.every((l) => l.v === 1 && l.message.channel === 'tailed')).toBe(true);

      // An agent's tail: what the hub pushes to it, announced on stderr once subscribed.
      await eventually(() => expect(agent.stderr()).toContain('following new messages for a4'), {
        timeout: 30_000,
      });
      const b = await cli(['msg', 'send', '--broadcast', '--as', 'a1', 'all', 'hands']);
      expect(b.code, b.stderr).toBe(0);
      const seq = b.stdout.trim();
      await eventually(() =>
        expect(agent.lines()).toEqual([
          expect.stringMatching(new RegExp(`^#${seq} .* a1 -> \\*: all hands$`)),
        ]),
      );
    } finally {
      stream.proc.kill('SIGINT');
      agent.proc.kill('SIGTERM');
    }
    expect(await stream.exited).toBe(0);
    expect(await agent.exited).toBe(0);
  });
});

describe('agentcom channel', () => {
  it('create, invite, join, post, list, members, leave, remove; a non-member may not post', {
    timeout: 90_000,
  }, async () => {
    const created = await cli([
      'channel',
      'create',
      '#ops',
      '--invite-only',
      '--description',
      'on call',
      '--as',
      'a1',
      '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.json()).toMatchObject({
      channel: { name: 'ops', visibility: 'invite', description: 'on call', createdBy: 'a1', members: 1 },
    });
    const invited = await cli(['channel', 'invite', 'ops', 'a3', '--as', 'a1']);
    expect(invited.stdout.trim()).toBe('invited a3 to #ops');

    const refused = await cli(['channel', 'post', '#ops', '--as', 'a3', '--json', 'let me in']);
    expect(refused.code).toBe(EXIT.FORBIDDEN);
    expect(refused.stdout).toBe('');
    expect(errorOf(refused.stderr)).toMatchObject({ code: 'forbidden', path: ['channel'] });

    expect((await cli(['channel', 'join', '#ops', '--as', 'a3'])).stdout.trim()).toBe('joined #ops');
    const post = await cli(['channel', 'post', 'ops', '--as', 'a3', 'first', 'post']);
    expect(post.code, post.stderr).toBe(0);

    const list = await cli(['channel', 'list', '--as', 'a3', '--json']);
    const channels = list.json<{ channels: { name: string; members: number; joined: boolean }[] }>().channels;
    expect(channels.find((c) => c.name === 'ops')).toMatchObject({ members: 2, joined: true });
    expect(channels.map((c) => c.name)).toContain('room');
    const members = await cli(['channel', 'members', '#ops']);
    expect(members.stdout.split('\n').map((l) => l.split(/\s+/)[0])).toEqual(['AGENT', 'a1', 'a3', '']);

    const left = await cli(['channel', 'leave', 'ops', '--as', 'a3', '--json']);
    expect(left.json()).toEqual({ v: 1, left: true });
    const removed = await cli(['channel', 'remove', 'ops', '--as', 'a1', '--json']);
    expect(removed.code, removed.stderr).toBe(0);
    const now = await new MessagingClient(h.client.bus).channelList();
    expect(now.map((c) => c.name)).not.toContain('ops');
    const history = await new MessagingClient(h.client.bus).history({ kind: 'channel', from: 'a3' });
    expect(history.messages.map((x) => x.body)).toEqual(['first post']);
  });
});

describe('errors', () => {
  it('an unknown agent is not_found (exit 3) with a structured error', { timeout: 90_000 }, async () => {
    const r = await cli(['msg', 'send', '--to', 'ghost', '--as', 'a1', '--json', 'anyone?']);
    expect(r.code).toBe(EXIT.NOT_FOUND);
    expect(r.stdout).toBe('');
    expect(errorOf(r.stderr)).toMatchObject({ code: 'not_found', path: ['to'] });
  });

  it('bad flags exit 2 before connecting (nothing listens where they point)', {
    timeout: 90_000,
  }, async () => {
    const nowhere = ['--nats-url', 'nats://127.0.0.1:1', '--json'];
    const cases: [string[], string][] = [
      [['msg', 'send', '--to', 'a2', '--channel', 'x', 'hi'], 'to'],
      [['msg', 'inbox'], 'as'],
      [['msg', 'send', '--agent', 'a2', '--as', 'a1', '--to', 'a3', 'hi'], 'as'],
      [['channel', 'create', 'Bad Name'], 'name'],
    ];
    for (const [args, path] of cases) {
      const r = await runCli([...args, ...nowhere]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(EXIT.USAGE);
      expect(errorOf(r.stderr).path, args.join(' ')).toEqual([path]);
    }
  });
});

describe('with an agent’s own credentials (generated permissions)', () => {
  let fx: AuthFixture | undefined;
  let hub: HubHandle | undefined;
  const clients: AgentClient[] = [];
  beforeAll(async () => {
    fx = await startAuthFixture([{ id: 'm1' }, { id: 'm2' }], 'climsgauth');
    hub = await startTestHub(fx.url, fx.prefix, { authDir: fx.dir });
    for (const id of ['m1', 'm2']) clients.push(await connectAgentClient(fx, id, {}));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop({ goodbye: false })));
    await hub?.stop();
    await fx?.dispose();
  });

  it('an agent seed is recognised: it sends and reads as itself, and may not act as another', {
    timeout: 90_000,
  }, async () => {
    const f = fx!;
    const as = (id: string) => [
      '--nats-url',
      f.url,
      '--prefix',
      f.prefix,
      '--nkey',
      join(f.paths.agentDir(id), 'agent.nk'),
    ];
    const sent = await runCli(['msg', 'send', '--to', 'm2', '--json', 'from', 'm1', ...as('m1')]);
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.json<{ message: Message }>().message).toMatchObject({ from: 'm1', fromKind: 'agent' });
    const inbox = await runCli(['msg', 'inbox', '--json', ...as('m2')]);
    expect(inbox.code, inbox.stderr).toBe(0);
    expect(inbox.json<{ messages: Message[] }>().messages.map((x) => x.body)).toEqual(['from m1']);
    const other = await runCli(['msg', 'inbox', '--as', 'm2', '--json', ...as('m1')]);
    expect(other.code).toBe(EXIT.USAGE);
    expect(errorOf(other.stderr)).toMatchObject({ code: 'invalid_payload', path: ['as'] });
  });
});

/** Where no hub.json is (as runCli does): a developer's own hub never answers a test. */
const NO_HUB_FILE = join(tmpdir(), 'agentcom-tests-no-hub-file');

/** A long-running command: its stdout lines and stderr as they come, and how it ended. */
function follow(args: string[]) {
  const proc: ChildProcess = spawn(
    process.execPath,
    ['--import', TSX_LOADER, CLI_ENTRY, ...args, '--nats-url', h.url, '--prefix', h.prefix],
    { env: { ...process.env, AGENTCOM_DATA_DIR: NO_HUB_FILE }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return {
    proc,
    exited,
    lines: () => out.split('\n').filter(Boolean),
    stderr: () => err,
  };
}
