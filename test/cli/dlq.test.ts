/**
 * `agentcom dlq list|show|replay|purge` as a user runs it, against a real hub on a test
 * nats-server. Dead letters are made the two ways they happen: a malformed submission the hub's
 * intake dead-letters itself, and a valid one written with `deadLetter()` as if the intake had
 * given up on it (so replaying it creates a task).
 */
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { deadLetter } from '../../src/bus/dlq.js';
import { publishRaw } from '../../src/bus/publish.js';
import type { DlqListResponse, DlqRecord } from '../../src/protocol/dlq.js';
import { taskIdForSubmit } from '../../src/protocol/task-id.js';
import { runCli } from '../support/cli.js';
import { useCliHub } from '../support/cli-hub.js';
import { eventually } from '../support/eventually.js';

const h = useCliHub('clidlq');

const cli = h.cli;
const encode = (s: string) => new TextEncoder().encode(s);
let seeded = 0;

/** A malformed submission, dead-lettered by the hub's intake (`invalid_payload`). */
async function malformed(): Promise<DlqRecord> {
  const msgId = `bad-${++seeded}`;
  await publishRaw(h.client.bus, h.client.bus.names.subjects.taskSubmit, encode('{"v":1,"title":'), {
    msgId,
  });
  return eventually(async () => {
    const found = (await h.api.dlqList({ limit: 1000 })).items.find((d) => d.msg_id === msgId);
    if (!found) throw new Error(`${msgId} not dead-lettered yet`);
    return found;
  });
}

/** A valid submission the intake "gave up on"; replaying it creates the task `key` names. */
async function gaveUpOn(key: string): Promise<DlqRecord> {
  const n = h.client.bus.names;
  const res = await deadLetter(h.client.bus, {
    subject: n.subjects.taskSubmit,
    headers: undefined,
    data: encode(JSON.stringify({ v: 1, title: `replayed ${key}`, queue: 'nobody', idempotencyKey: key })),
    stream: n.streams.submit,
    consumer: n.consumers.hubIntake,
    streamSeq: 1_000_000 + ++seeded,
    deliveries: 5,
    reason: { code: 'max_deliveries', message: 'handler failed 5 times' },
  });
  return h.api.dlqGet(res.seq);
}

describe('dlq list and show', () => {
  beforeEach(async () => {
    await h.api.dlqPurge();
  });

  it('lists dead letters as a table, or the API page with --json', async () => {
    const bad = await malformed();
    const gave = await gaveUpOn('list-1');
    const [text, json, limited] = await Promise.all([
      cli('dlq', 'list'),
      cli('dlq', 'list', '--json'),
      cli('dlq', 'list', '--limit', '1'),
    ]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SEQ\s+AGE\s+STREAM\s+SUBJECT\s+DELIVERIES\s+REASON$/);
    expect(lines[1]).toMatch(
      new RegExp(`^${bad.seq}\\s+\\d+s\\s+\\S+_SUBMIT\\s+\\S+\\.task\\.submit\\s+1\\s+invalid_payload: `),
    );
    expect(lines[2]).toMatch(new RegExp(`^${gave.seq}\\s.*\\s5\\s+max_deliveries: handler failed 5 times$`));
    expect(json.json<DlqListResponse>().items.map((d) => d.seq)).toEqual([bad.seq, gave.seq]);
    expect(limited.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(limited.stderr).toBe(`more: --after ${bad.seq}\n`);
  });

  it('shows one dead letter with its reason and payload; an unknown seq exits 3, a bad one 2', async () => {
    const gave = await gaveUpOn('show-1');
    const [text, json, unknown, bad] = await Promise.all([
      cli('dlq', 'show', String(gave.seq)),
      cli('dlq', 'show', String(gave.seq), '--json'),
      cli('dlq', 'show', '999999'),
      cli('dlq', 'show', 'first'),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^reason\s+max_deliveries: handler failed 5 times$/m);
    expect(text.stdout).toMatch(/^deliveries\s+5$/m);
    expect(text.stdout).toContain('payload:\n  {\n    "v": 1,\n    "title": "replayed show-1",');
    expect(json.json()).toMatchObject({ seq: gave.seq, reason: { code: 'max_deliveries' } });
    expect(unknown.stderr).toBe('agentcom dlq show: no dead letter 999999\n');
    expect(unknown.code).toBe(3);
    expect(bad.stderr).toContain('<seq> must be a dead-letter sequence');
    expect(bad.code).toBe(2);
  });
});

describe('dlq replay', () => {
  it('republishes to the original subject (the task is created) and removes the dead letter', async () => {
    const kept = await gaveUpOn('replay-kept');
    const gone = await gaveUpOn('replay-gone');
    const [keep, remove] = await Promise.all([
      cli('dlq', 'replay', String(kept.seq), '--keep'),
      cli('dlq', 'replay', String(gone.seq)),
    ]);
    expect(keep.stdout).toMatch(new RegExp(`^replayed dead letter ${kept.seq} to \\S+\\.task\\.submit`));
    expect(keep.stderr).toContain('kept');
    expect(keep.code).toBe(0);
    expect(remove.code).toBe(0);
    for (const key of ['replay-kept', 'replay-gone']) {
      const id = taskIdForSubmit({ idempotencyKey: key, now: 0 });
      const [t] = await h.client.settle([id], ['queued']);
      expect(t!.title).toBe(`replayed ${key}`);
    }
    expect((await h.api.dlqGet(kept.seq)).seq).toBe(kept.seq);
    await expect(h.api.dlqGet(gone.seq)).rejects.toMatchObject({ code: 'not_found' });

    const again = await cli('dlq', 'replay', String(gone.seq));
    expect(again.stderr).toBe(`agentcom dlq replay: no dead letter ${gone.seq}\n`);
    expect(again.code).toBe(3);
  });
});

describe('dlq purge', () => {
  it('deletes one by seq, refuses to delete all without --yes, then deletes all with it', async () => {
    const a = await gaveUpOn('purge-a');
    const b = await malformed();
    const one = await cli('dlq', 'purge', String(a.seq));
    expect(one.stdout).toBe('purged 1 dead letter\n');
    expect(one.code).toBe(0);
    const [unconfirmed, missing] = await Promise.all([
      cli('dlq', 'purge'),
      cli('dlq', 'purge', String(a.seq)),
    ]);
    expect(unconfirmed.stderr).toContain('add --yes to confirm');
    expect(unconfirmed.code).toBe(2);
    expect(missing.stderr).toBe(`agentcom dlq purge: no dead letter ${a.seq}\n`);
    expect(missing.code).toBe(3);
    expect((await h.api.dlqGet(b.seq)).seq).toBe(b.seq);

    const all = await cli('dlq', 'purge', '--yes', '--json');
    expect(all.code).toBe(0);
    expect(all.json<{ purged: number }>().purged).toBeGreaterThanOrEqual(1);
    expect((await h.api.dlqList()).items).toEqual([]);
  });

  it('exits 69 with a hint when the hub is unreachable', async () => {
    const r = await runCli(['dlq', 'list', '--nats-url', 'nats://127.0.0.1:1']);
    expect(r.stderr).toMatch(
      /^agentcom dlq list: cannot reach NATS at nats:\/\/127\.0\.0\.1:1 .*is the hub running\?/,
    );
    expect(r.code).toBe(69);
  });
});

describe('dead tasks beside the dead letters', () => {
  it('lists the tasks out of retries in dlq list, and dlq replay <task id> retries one', async () => {
    // An agent that fails every task, and a task with no retries: it ends dead.
    const agent = await AgentClient.connect({
      agentId: 'failer',
      connection: { servers: h.url, prefix: h.prefix },
      hello: { capabilities: ['fails'] },
      logger: pino({ level: 'silent' }),
    });
    try {
      await agent.start(async () => ({ type: 'failed', error: { message: 'always' } }));
      const task = await h.api.submit({ title: 'doomed', capabilities: ['fails'], maxRetries: 0 });
      await eventually(async () => expect((await h.api.get(task.id)).status).toBe('dead'));
      await agent.stop();

      const [text, json] = await Promise.all([cli('dlq', 'list'), cli('dlq', 'list', '--json')]);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/dead tasks \(out of retries, newest first\): \d+/);
      expect(text.stdout).toMatch(new RegExp(`${task.id}\\s+\\S+\\s+0\\s+failer\\s+agent_error: always`));
      expect(text.stderr).toContain('agentcom dlq replay <task id>');
      const page = json.json<{ dead_tasks: { id: string; status: string }[] }>();
      expect(page.dead_tasks.find((t) => t.id === task.id)).toMatchObject({ status: 'dead' });

      const retried = await cli('dlq', 'replay', task.id);
      expect(retried.code, retried.stderr).toBe(0);
      expect(retried.stdout).toContain(`retried task ${task.id}: queued again`);
      expect((await h.api.get(task.id)).status).toBe('queued');
      const bad = await cli('dlq', 'replay', 'not/an-id');
      expect(bad.code).toBe(2);
    } finally {
      await agent.stop({ goodbye: false }).catch(() => undefined);
    }
  });
});
