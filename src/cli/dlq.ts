/**
 * @module cli/dlq
 * `agentcom dlq list|show|replay|purge`: the dead-letter queue through the hub's API. Sequences are
 * DLQ stream sequences (as `list` prints them). Replay republishes the original payload to its
 * original subject (and deletes the dead letter unless `--keep`); it does not check that the
 * payload will be accepted this time, so a poison message comes back as a new dead letter.
 * Purging more than one dead letter needs `--yes`: nothing in the DLQ can be recovered afterwards.
 */
import type { Command } from 'commander';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { type ConnectionFlags, withConnectionFlags, withHub } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { deadTaskRows, describeDeadLetter, dlqRows, flagError, parseIntFlag } from './format.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';
import { parseTaskId } from './task.js';

/** A `<seq>` argument: a positive integer. */
function parseSeq(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `<seq> must be a dead-letter sequence (a positive integer, as \`agentcom dlq list\` prints it), got ${JSON.stringify(text)}`,
      { path: ['seq'] },
    );
  return n;
}

interface ListFlags extends ConnectionFlags {
  stream?: string;
  limit?: string;
  after?: string;
}

async function listCommand(f: ListFlags, out: Output): Promise<ExitCode> {
  const req = {
    ...(f.stream !== undefined ? { stream: f.stream } : {}),
    limit: f.limit === undefined ? 100 : parseIntFlag(f.limit, 'limit', { min: 1, max: 1000 }),
    ...(f.after !== undefined
      ? { after_seq: parseIntFlag(f.after, 'after', { min: 0, max: 2 ** 53 - 1 }) }
      : {}),
  };
  return withHub(f, async (hub) => {
    const page = await hub.dlqList(req);
    // Tasks that ran out of retries are the other half of "what failed for good": on the first
    // page (not when a stream or a later page is asked for), beside the dead letters.
    const first = f.stream === undefined && f.after === undefined;
    const dead = first ? (await hub.list({ status: ['dead'], limit: req.limit })).tasks : [];
    out.result(first ? { ...page, dead_tasks: dead } : page, [
      ...(page.items.length ? dlqRows(page.items) : []),
      ...(dead.length
        ? ['', `dead tasks (out of retries, newest first): ${dead.length}`, ...deadTaskRows(dead)]
        : []),
    ]);
    if (!page.items.length) out.note(f.stream ? `no dead letters from ${f.stream}` : 'the DLQ is empty');
    else if (page.next_after_seq !== null) out.note(`more: --after ${page.next_after_seq}`);
    if (dead.length)
      out.note('retry a dead task with `agentcom dlq replay <task id>` (the same as `agentcom task retry`)');
    return EXIT.OK;
  });
}

async function showCommand(seqArg: string, f: ConnectionFlags, out: Output): Promise<ExitCode> {
  const seq = parseSeq(seqArg);
  return withHub(f, async (hub) => {
    const rec = await hub.dlqGet(seq);
    out.result(rec, describeDeadLetter(rec));
    return EXIT.OK;
  });
}

async function replayCommand(
  seqArg: string,
  f: ConnectionFlags & { keep?: boolean },
  out: Output,
): Promise<ExitCode> {
  // A dead task (its id, as `dlq list` shows it) is retried: one place to recover either kind.
  if (!/^\d+$/.test(seqArg.trim())) {
    const id = parseTaskId(seqArg);
    return withHub(f, async (hub) => {
      const t = await hub.retry(id);
      out.result({ v: 1, task: t }, `retried task ${t.id}: ${t.status} again, retries reset`);
      return EXIT.OK;
    });
  }
  const seq = parseSeq(seqArg);
  return withHub(f, async (hub) => {
    const r = await hub.dlqReplay(seq, { keep: f.keep === true });
    const dup = r.duplicate ? ' (already replayed: the stream kept the first copy)' : '';
    out.result(r, `replayed dead letter ${r.seq} to ${r.subject} (${r.stream} seq ${r.stream_seq})${dup}`);
    out.note(f.keep ? 'the dead letter was kept (--keep)' : 'the dead letter was removed');
    return EXIT.OK;
  });
}

async function purgeCommand(
  seqArg: string | undefined,
  f: ConnectionFlags & { stream?: string; yes?: boolean },
  out: Output,
): Promise<ExitCode> {
  const seq = seqArg === undefined ? undefined : parseSeq(seqArg);
  if (seq !== undefined && f.stream !== undefined)
    throw flagError('stream', '--stream selects what to purge when no <seq> is given; pass one or the other');
  if (seq === undefined && !f.yes) {
    const what = f.stream ? `every dead letter from ${f.stream}` : 'every dead letter';
    throw flagError('yes', `this would delete ${what} for good; add --yes to confirm, or name one <seq>`);
  }
  return withHub(f, async (hub) => {
    const r = await hub.dlqPurge({
      ...(seq !== undefined ? { seq } : {}),
      ...(f.stream !== undefined ? { stream: f.stream } : {}),
    });
    if (seq !== undefined && r.purged === 0)
      throw new AgentComError(ERROR_CODES.NOT_FOUND, `no dead letter ${seq}`);
    out.result(r, `purged ${r.purged} dead letter${r.purged === 1 ? '' : 's'}`);
    return EXIT.OK;
  });
}

export function registerDlqCommands(program: Command): void {
  const dlq = program.command('dlq').description('inspect, replay and purge dead letters');

  withConnectionFlags(dlq.command('list'))
    .description('list dead letters, oldest first, and the tasks that ran out of retries')
    .option('--stream <stream>', 'only dead letters consumed from this stream (e.g. AGENTCOM_SUBMIT)')
    .option('--limit <n>', 'page size, 1-1000 (default 100)')
    .option('--after <seq>', 'start after this sequence (the next page, as printed)')
    .action((f: ListFlags) => runCommand('dlq list', f, (out) => listCommand(f, out)));

  withConnectionFlags(dlq.command('show'))
    .description('show one dead letter: why, where from, headers and payload')
    .argument('<seq>', 'dead-letter sequence')
    .action((seq: string, f: ConnectionFlags) =>
      runCommand('dlq show', f, (out) => showCommand(seq, f, out)),
    );

  withConnectionFlags(dlq.command('replay'))
    .description('republish a dead letter to its original subject, then delete it; or retry a dead task')
    .argument('<seq>', 'dead-letter sequence, or the id of a dead task (as `dlq list` shows them)')
    .option('--keep', 'keep the dead letter after replaying it')
    .action((seq: string, f: ConnectionFlags & { keep?: boolean }) =>
      runCommand('dlq replay', f, (out) => replayCommand(seq, f, out)),
    );

  withConnectionFlags(dlq.command('purge'))
    .description('delete one dead letter, or all of them (of one stream) with --yes')
    .argument('[seq]', 'dead-letter sequence; omit to purge all')
    .option('--stream <stream>', 'without <seq>: purge only dead letters from this stream')
    .option('--yes', 'confirm purging more than one dead letter')
    .action((seq: string | undefined, f: ConnectionFlags & { stream?: string; yes?: boolean }) =>
      runCommand('dlq purge', f, (out) => purgeCommand(seq, f, out)),
    );
}
