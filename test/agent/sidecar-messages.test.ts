/**
 * The sidecar's messaging relay (`messages` in sidecar.json), as a real process against a real
 * hub: incoming messages land as files in the work directory (the backlog first, then live ones),
 * each acked once on disk; a direct message runs the wake command with the message's file named;
 * a SIGKILLed sidecar catches up from its cursor without writing again what the agent moved to
 * read/; and files in outbox/ are sent as the agent (refused ones moved aside with the reason).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { messageFileName, messagePaths } from '../../src/agent/sidecar/files.js';
import type { SidecarConfigInput } from '../../src/agent/sidecar-config.js';
import { MessagingClient } from '../../src/bus/messaging-client.js';
import type { HubHandle } from '../../src/hub/main.js';
import { type Message, MessageSchema } from '../../src/protocol/message.js';
import { eventually, waitUntil } from '../support/eventually.js';
import { startTestHub, type TestClient, testClient } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';
import { type SidecarProcess, sidecarProcess } from '../support/sidecar-process.js';

/** Appends one JSON line per run to $OUT: why it was woken and which message file it was told. */
const WAKE_SCRIPT = [
  "const fs = require('node:fs');",
  'fs.appendFileSync(process.env.OUT, JSON.stringify({',
  '  reason: process.env.AGENTCOM_WAKE_REASON,',
  '  file: process.env.AGENTCOM_MESSAGE_FILE,',
  '  dir: process.env.AGENTCOM_MESSAGES_DIR,',
  '  task: process.env.AGENTCOM_TASK_ID ?? null,',
  "}) + '\\n');",
].join('\n');

describe('sidecar messages', { timeout: 90_000 }, () => {
  const nats = useNatsServer();
  let prefix: string;
  let dir: string;
  let hub: HubHandle | undefined;
  let client: TestClient | undefined;
  let sender: AgentClient | undefined;
  let sidecar: SidecarProcess | undefined;
  let agentId: string;

  beforeEach(async () => {
    prefix = uniqueName('scm').replace(/_/g, '-').toLowerCase();
    agentId = `mailee-${prefix.slice(-6)}`;
    dir = await mkdtemp(join(tmpdir(), 'agentcom-sidecar-msg-'));
    hub = await startTestHub(nats.url, prefix);
    client = await testClient(nats.url, prefix);
    // The API answers once this hub holds the lease, a moment after it started.
    await eventually(() => new MessagingClient(client!.bus).channelList(), { timeout: 20_000, interval: 50 });
    sender = await AgentClient.connect({
      connection: { servers: nats.url, prefix },
      agentId: `sender-${prefix.slice(-6)}`,
      logger: pino({ level: 'silent' }),
      helloTimeoutMs: 20_000,
    });
  });
  afterEach(async () => {
    await sidecar?.kill();
    await sender?.stop({ goodbye: false }).catch(() => {});
    await client?.close().catch(() => {});
    await hub?.stop();
    sidecar = undefined;
    sender = undefined;
    client = undefined;
    hub = undefined;
    // A wake command the killed sidecar started may still be writing in `dir` (ENOTEMPTY once
    // on CI): rm tries again.
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  });

  const wakeLog = () => join(dir, 'wakes.jsonl');
  const wakes = async (): Promise<{ reason: string; file: string; dir: string; task: string | null }[]> => {
    if (!existsSync(wakeLog())) return [];
    return (await readFile(wakeLog(), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  };

  const startSidecar = async () => {
    const config: SidecarConfigInput = {
      v: 1,
      agentId,
      nats: { servers: nats.url, prefix },
      hello: { capabilities: ['mail'], slots: 1 },
      workDir: 'work',
      wake: { command: [process.execPath, '-e', WAKE_SCRIPT], env: { OUT: wakeLog() } },
      messages: { wakeOnDirect: true },
    };
    const file = join(dir, 'sidecar.json');
    await writeFile(file, JSON.stringify(config));
    sidecar = sidecarProcess(file);
    await sidecar.start();
    return messagePaths(join(dir, 'work', 'messages'));
  };

  /** The messages written in `dir` (not read/), by seq, validated. */
  const written = async (d: string): Promise<Message[]> => {
    const names = (await readdir(d)).filter((n) => /^\d{12}\.json$/.test(n)).sort();
    return Promise.all(
      names.map(async (n) => MessageSchema.parse(JSON.parse(await readFile(join(d, n), 'utf8')))),
    );
  };

  /** The agent's acknowledged cursor, read as a trusted client acting as it. */
  const cursor = async () => (await new MessagingClient(client!.bus).inbox({ as: agentId, limit: 1 })).cursor;

  it('writes the backlog and then live messages as files, acks each once on disk, and wakes for direct ones', async () => {
    // The agent has to be known to the hub before anything can be sent to it: its first hello.
    const paths = await startSidecar();
    const trusted = new MessagingClient(client!.bus, { timeoutMs: 10_000 });
    await trusted.channelCreate({ name: 'ops' });
    await trusted.channelJoin('ops', { as: agentId });
    await sidecar!.kill();

    // While it is down: a backlog.
    const s = sender!.messages;
    const backlog = [
      (await s.send(agentId, 'first, while you were away')).message,
      (await trusted.send({ broadcast: true, body: 'to everyone', sender: 'alice' })).message,
      (await trusted.send({ channel: 'ops', body: 'an ops post', sender: 'alice' })).message,
    ];
    await startSidecar();
    await waitUntil(async () => (await written(paths.dir)).length === 3, 'the backlog on disk');
    expect((await written(paths.dir)).map((m) => m.seq)).toEqual(backlog.map((m) => m.seq));
    expect(existsSync(paths.messageFile(backlog[0]!.seq))).toBe(true);
    expect(paths.messageFile(backlog[0]!.seq).endsWith(messageFileName(backlog[0]!.seq))).toBe(true);
    await waitUntil(async () => (await cursor()) === backlog[2]!.seq, 'the backlog acked');

    // Live: a broadcast, then a direct message; the wake names the direct one's file.
    const live = [
      (await trusted.send({ broadcast: true, body: 'live broadcast', sender: 'alice' })).message,
      (await s.send(agentId, 'are you there?', { title: 'ping', data: { n: 1 } })).message,
    ];
    await waitUntil(async () => (await written(paths.dir)).length === 5, 'the live messages on disk');
    const all = await written(paths.dir);
    expect(all.map((m) => m.seq)).toEqual([...backlog, ...live].map((m) => m.seq));
    expect(all[4]).toEqual(live[1]); // the file is the message as stored
    await waitUntil(async () => (await cursor()) === live[1]!.seq, 'the live ones acked');

    await waitUntil(
      async () => (await wakes()).some((w) => w.file === paths.messageFile(live[1]!.seq)),
      'a wake for the live direct message',
    );
    const ws = await wakes();
    const directFiles = new Set([backlog[0]!, live[1]!].map((m) => paths.messageFile(m.seq)));
    for (const w of ws) {
      expect(w).toMatchObject({ reason: 'message', dir: paths.dir, task: null });
      expect(directFiles.has(w.file)).toBe(true); // never for a broadcast or a channel post
    }
  });

  it('after a SIGKILL it catches up from its cursor, and never writes again what the agent moved to read/', async () => {
    const paths = await startSidecar();
    const s = sender!.messages;
    const first: Message[] = [];
    for (let i = 0; i < 3; i++) first.push((await s.send(agentId, `m${i}`)).message);
    await waitUntil(async () => (await cursor()) === first[2]!.seq, 'three acked');
    // The agent reads the first one.
    await rename(paths.messageFile(first[0]!.seq), paths.readFile(first[0]!.seq));
    await sidecar!.kill();

    const whileDown: Message[] = [];
    for (let i = 0; i < 3; i++) whileDown.push((await s.send(agentId, `down ${i}`)).message);
    // As if an earlier run had written `down 0` and the agent had read it, but the ack was lost:
    // the mailbox gives it again, and the sidecar must not put it back among the unread.
    await writeFile(paths.readFile(whileDown[0]!.seq), JSON.stringify(whileDown[0]));
    await sidecar!.start();
    await waitUntil(async () => (await cursor()) === whileDown[2]!.seq, 'the ones sent while down acked');
    const unread = await written(paths.dir);
    expect(unread.map((m) => m.body)).toEqual(['m1', 'm2', 'down 1', 'down 2']);
    expect((await readdir(paths.readDir)).sort()).toEqual(
      [messageFileName(first[0]!.seq), messageFileName(whileDown[0]!.seq)].sort(),
    );
  });

  it('sends what the agent puts in outbox/ as the agent, and moves a refused file aside with the reason', async () => {
    const paths = await startSidecar();
    const question = (await sender!.messages.send(agentId, 'what is 6 x 7?')).message;
    await waitUntil(() => existsSync(paths.messageFile(question.seq)), 'the question on disk');

    // The agent answers (a temp file renamed into place: atomic), and writes one to nobody.
    const put = async (name: string, body: unknown) => {
      const tmp = join(paths.outboxDir, `.${name}.tmp`);
      await writeFile(tmp, JSON.stringify(body));
      await rename(tmp, join(paths.outboxDir, name));
    };
    await put('answer.json', { replyTo: question.seq, body: '42' });
    await put('lost.json', { to: 'nobody-at-all', body: 'hello?' });
    await put('bad.json', { to: agentId, channel: 'ops', body: 'both?', extra: true });

    const reply = await eventually(
      async () => {
        const r = await sender!.messages.inbox();
        const m = r.messages.find((x) => x.replyTo === question.seq);
        if (!m) throw new Error('no reply yet');
        return m;
      },
      { timeout: 30_000, interval: 100 },
    );
    expect(reply).toMatchObject({
      kind: 'direct',
      from: agentId,
      fromKind: 'agent',
      to: sender!.agentId,
      body: '42',
    });
    await waitUntil(() => existsSync(join(paths.sentDir, 'answer.json')), 'the sent record');
    const sentRecord = MessageSchema.parse(
      JSON.parse(await readFile(join(paths.sentDir, 'answer.json'), 'utf8')),
    );
    expect(sentRecord.seq).toBe(reply.seq);
    // The outbox file is removed once its sent record is written.
    await waitUntil(() => !existsSync(join(paths.outboxDir, 'answer.json')), 'the outbox file removed');

    const reasons = async () =>
      Object.fromEntries(
        await Promise.all(
          (await readdir(paths.rejectedDir))
            .filter((f) => f.endsWith('.reason.txt'))
            .map(async (f) => [f.split('.json.')[0], await readFile(join(paths.rejectedDir, f), 'utf8')]),
        ),
      ) as Record<string, string>;
    await waitUntil(async () => Object.keys(await reasons()).length === 2, 'two refused files moved aside');
    const r = await reasons();
    expect(r.lost).toMatch(/^not_found: /);
    expect(r.bad).toMatch(/^invalid: /);
    // The reason is written first, then the file moved: wait for the move.
    await waitUntil(() => !existsSync(join(paths.outboxDir, 'lost.json')), 'lost.json moved aside');
    // The reply was sent once.
    const replies = (await sender!.messages.inbox()).messages.filter((x) => x.replyTo === question.seq);
    expect(replies).toHaveLength(1);
  });
});
