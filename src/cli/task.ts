/**
 * @module cli/task
 * `agentcom task submit|list|get|cancel|retry|watch`: tasks through the hub's request/reply API.
 * Every flag is checked before connecting (bad flags exit 2 and nothing is sent). `watch` (and
 * `submit --wait`) follow the task's record in the tasks KV bucket, so each change arrives as it is
 * written, and print every transition from the record's history; a task already finished is
 * reported at once. `watch` is read-only: giving up (`--timeout-after`) leaves the task running.
 * Watching needs read access to the tasks bucket besides the API; it never falls back to polling.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { z } from 'zod';
import type { HubClient } from '../bus/hub-client.js';
import { openKv } from '../bus/kv.js';
import { TaskListRequestSchema } from '../protocol/api.js';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';
import { TaskIdSchema } from '../protocol/ids.js';
import {
  isActive,
  isTerminal,
  PRIORITIES,
  TASK_STATUSES,
  type TaskRecord,
  TaskRecordSchema,
  type TaskSubmitInput,
  TaskSubmitSchema,
} from '../protocol/task.js';
import { type ConnectionFlags, withConnectionFlags, withHub } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import {
  describeTask,
  flagError,
  flagName,
  formatClock,
  formatDuration,
  historyLine,
  outcomeLine,
  parseDuration,
  parseIntFlag,
  parseJsonObject,
  parseList,
  parseTime,
  progressText,
  taskRows,
} from './format.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

/** A task id argument, checked before connecting. */
export function parseTaskId(text: string): string {
  const r = TaskIdSchema.safeParse(text);
  if (!r.success)
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `<id> is not a task id (1-64 characters of A-Z a-z 0-9 _ -): ${JSON.stringify(text)}`,
      { path: ['id'] },
    );
  return r.data;
}

/** Checks `value` with `schema`; the first issue names the flag (its top-level key). */
function checkFlags<T>(schema: z.ZodType<T>, value: unknown, argNames: Record<string, string> = {}): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const key = String(issue?.path[0] ?? 'input');
  const name = argNames[key] ?? flagName(key);
  throw flagError(key, `${name}: ${issue?.message ?? 'invalid'}`);
}

// --- submit ---

export interface SubmitFlags extends ConnectionFlags {
  description?: string;
  priority?: string;
  queue?: string;
  capabilities?: string;
  maxRetries?: string;
  completeBy?: string;
  notBefore?: string;
  delay?: string;
  idempotencyKey?: string;
  metadata?: string;
  wait?: boolean;
  timeoutAfter?: string;
}

function submitterLabel(): string {
  try {
    return `cli:${userInfo().username}`.slice(0, 64);
  } catch {
    return 'cli';
  }
}

/** The submit payload from the flags. @throws AgentComError `invalid_payload` naming the flag. */
export function submitInput(title: string, f: SubmitFlags, now = Date.now()): Omit<TaskSubmitInput, 'v'> {
  if (f.priority !== undefined && !(PRIORITIES as readonly string[]).includes(f.priority))
    throw flagError('priority', `--priority must be one of ${PRIORITIES.join(', ')}, got ${f.priority}`);
  const input: Omit<TaskSubmitInput, 'v'> = { title, submittedBy: submitterLabel() };
  if (f.description !== undefined) input.description = f.description;
  if (f.priority !== undefined) input.priority = f.priority as TaskSubmitInput['priority'];
  if (f.queue !== undefined) input.queue = f.queue as TaskSubmitInput['queue'];
  if (f.capabilities !== undefined) input.capabilities = parseList(f.capabilities);
  if (f.maxRetries !== undefined) {
    // The bounds of MaxRetriesSchema, checked here too for a message that names the flag.
    input.maxRetries = parseIntFlag(f.maxRetries, 'maxRetries', { min: 0, max: 100 });
  }
  if (f.completeBy !== undefined) {
    input.completeBy = parseTime(f.completeBy, 'completeBy', now);
    if (input.completeBy <= now)
      throw flagError(
        'completeBy',
        `--complete-by is in the past (${new Date(input.completeBy).toISOString()})`,
      );
  }
  if (f.notBefore !== undefined) input.notBefore = parseTime(f.notBefore, 'notBefore', now);
  if (f.delay !== undefined) input.delay = parseDuration(f.delay, 'delay');
  if (f.idempotencyKey !== undefined) input.idempotencyKey = f.idempotencyKey;
  if (f.metadata !== undefined) input.metadata = parseJsonObject(f.metadata, 'metadata');
  checkFlags(TaskSubmitSchema, { v: 1, ...input }, { title: '<title>' });
  return input;
}

async function submitCommand(title: string, f: SubmitFlags, out: Output): Promise<ExitCode> {
  const input = submitInput(title, f);
  const timeoutMs = f.timeoutAfter === undefined ? undefined : parseDuration(f.timeoutAfter, 'timeoutAfter');
  return withHub(f, async (hub) => {
    const task = await hub.submit(input);
    // The id alone on stdout, so `id=$(agentcom task submit ...)` works; the rest is a note.
    out.result({ v: 1, task }, task.id);
    out.note(`submitted: ${task.priority} priority, queue ${task.queue}, ${task.status}`);
    if (!f.wait) {
      out.note(`follow it with: agentcom task watch ${task.id}`);
      return EXIT.OK;
    }
    return followTask(hub, task, out, { timeoutMs, linesTo: 'stderr', emitInitial: false });
  });
}

// --- list / get / cancel / retry ---

interface ListFlags extends ConnectionFlags {
  status?: string;
  assignee?: string;
  priority?: string;
  queue?: string;
  limit?: string;
  cursor?: string;
  all?: boolean;
}

/** The list request from the flags (without `v`). */
export function listRequest(f: ListFlags) {
  const statuses = f.status === undefined ? undefined : parseList(f.status);
  for (const s of statuses ?? [])
    if (!(TASK_STATUSES as readonly string[]).includes(s))
      throw flagError(
        'status',
        `--status: unknown status ${JSON.stringify(s)} (one of ${TASK_STATUSES.join(', ')})`,
      );
  if (f.priority !== undefined && !(PRIORITIES as readonly string[]).includes(f.priority))
    throw flagError('priority', `--priority must be one of ${PRIORITIES.join(', ')}, got ${f.priority}`);
  if (f.all && f.cursor !== undefined) throw flagError('cursor', '--cursor and --all do not go together');
  const req = {
    ...(statuses?.length ? { status: statuses } : {}),
    ...(f.assignee !== undefined ? { assignee: f.assignee } : {}),
    ...(f.priority !== undefined ? { priority: f.priority } : {}),
    ...(f.queue !== undefined ? { queue: f.queue } : {}),
    limit:
      f.limit === undefined ? (f.all ? 1000 : 50) : parseIntFlag(f.limit, 'limit', { min: 1, max: 1000 }),
    ...(f.cursor !== undefined ? { cursor: f.cursor } : {}),
  };
  const { v: _v, ...checked } = checkFlags(TaskListRequestSchema, { v: 1, ...req });
  return checked;
}

async function listCommand(f: ListFlags, out: Output): Promise<ExitCode> {
  const req = listRequest(f);
  return withHub(f, async (hub) => {
    let page = await hub.list(req);
    const tasks = [...page.tasks];
    while (f.all && page.nextCursor) {
      out.progress(`listing tasks: ${tasks.length} of ${page.total}`);
      page = await hub.list({ ...req, cursor: page.nextCursor });
      tasks.push(...page.tasks);
    }
    const reply = { ...page, tasks, nextCursor: f.all ? null : page.nextCursor };
    out.result(reply, tasks.length ? taskRows(tasks) : []);
    if (!tasks.length) out.note('no tasks match');
    else if (reply.nextCursor)
      out.note(`${tasks.length} of ${reply.total}; next page: --cursor ${reply.nextCursor} (or --all)`);
    else if (reply.total > tasks.length) out.note(`${tasks.length} of ${reply.total}`);
    return EXIT.OK;
  });
}

async function getCommand(idArg: string, f: ConnectionFlags, out: Output): Promise<ExitCode> {
  const id = parseTaskId(idArg);
  return withHub(f, async (hub) => {
    const task = await hub.get(id);
    out.result({ v: 1, task }, describeTask(task));
    return EXIT.OK;
  });
}

async function cancelCommand(
  idArg: string,
  f: ConnectionFlags & { reason?: string },
  out: Output,
): Promise<ExitCode> {
  const id = parseTaskId(idArg);
  if (f.reason !== undefined && f.reason.length > 500)
    throw flagError('reason', `--reason is at most 500 characters, got ${f.reason.length}`);
  return withHub(f, async (hub) => {
    const task = await hub.cancel(id, f.reason);
    out.result({ v: 1, task }, `cancelled ${task.id}`);
    if (task.assignee) out.note(`${task.assignee} has been told to stop`);
    return EXIT.OK;
  });
}

async function retryCommand(idArg: string, f: ConnectionFlags, out: Output): Promise<ExitCode> {
  const id = parseTaskId(idArg);
  return withHub(f, async (hub) => {
    const task = await hub.retry(id);
    out.result({ v: 1, task }, `requeued ${task.id} (${task.status}, ${task.maxRetries} retries available)`);
    return EXIT.OK;
  });
}

// --- watch ---

/** Exit status for a finished task: done 0, failed/dead 1, cancelled 4. */
export function exitForStatus(status: TaskRecord['status']): ExitCode {
  if (status === 'done') return EXIT.OK;
  if (status === 'cancelled') return EXIT.REFUSED;
  return EXIT.FAILURE;
}

interface FollowOptions {
  /** Give up after this long (the task keeps running). */
  timeoutMs: number | undefined;
  /** `watch` prints transitions as its result (stdout); `submit --wait` keeps stdout for the id. */
  linesTo: 'stdout' | 'stderr';
  /** Print the initial record too (`watch`); `submit` already printed it. */
  emitInitial: boolean;
}

/**
 * Follows one task until it finishes: prints every new history entry and progress change, one
 * JSON document per record change with `--json`, and a progress line on a terminal.
 */
export async function followTask(
  hub: HubClient,
  initial: TaskRecord,
  out: Output,
  opts: FollowOptions,
): Promise<ExitCode> {
  const started = Date.now();
  const seen = new Set<string>();
  let lastJson = opts.emitInitial ? '' : JSON.stringify(initial);
  let lastProgress = '';
  let current = initial;
  const print = (line: string) => (opts.linesTo === 'stderr' ? out.note(line) : out.result(null, line));

  const show = (t: TaskRecord) => {
    current = t;
    if (out.json) {
      const doc = JSON.stringify(t);
      if (doc !== lastJson) out.result({ v: 1, task: t }, '');
      lastJson = doc;
      return;
    }
    const fresh = t.history.filter((h) => {
      const key = `${h.at}:${h.from}:${h.to}:${h.generation}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    fresh.forEach((h, i) => {
      // The record names only the current assignee: attach it to the newest transition.
      const newest = i === fresh.length - 1;
      const holder =
        newest && isActive(t.status) && t.assignee && t.assignee !== h.by ? `  agent ${t.assignee}` : '';
      print(`${historyLine(h)}${holder}`);
    });
    const p = progressText(t);
    if (p && p !== lastProgress && !isTerminal(t.status))
      print(`${formatClock(t.lastProgressAt ?? Date.now())}  progress ${p}`);
    lastProgress = p;
    if (isTerminal(t.status)) print(outcomeLine(t));
  };
  const tick = () => {
    const who = current.assignee ? ` · ${current.assignee}` : '';
    const p = progressText(current);
    out.progress(
      `${current.id}: ${current.status}${who}${p ? ` · ${p}` : ''} · ${formatDuration(Date.now() - started)}`,
    );
  };

  if (opts.linesTo === 'stdout') out.note(`watching ${initial.id}: ${initial.title}`);
  if (opts.emitInitial || !out.json) show(initial);
  if (isTerminal(initial.status)) return exitForStatus(initial.status);

  const kv = await openKv(hub.bus, hub.bus.names.buckets.tasks, TaskRecordSchema);
  const watch = await kv.watch({ key: initial.id });
  let timedOut = false;
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          watch.stop();
        }, opts.timeoutMs);
  const ticker = setInterval(tick, 1_000);
  tick();
  try {
    for await (const change of watch) {
      if (change.operation !== 'put')
        throw new AgentComError(ERROR_CODES.NOT_FOUND, `task ${initial.id} was deleted while watching`);
      if (!change.value)
        throw new AgentComError(
          ERROR_CODES.INTERNAL,
          `task ${initial.id}: unreadable record (${change.error?.message ?? 'no value'})`,
        );
      show(change.value);
      tick();
      if (isTerminal(change.value.status)) return exitForStatus(change.value.status);
    }
  } finally {
    clearTimeout(timer);
    clearInterval(ticker);
    watch.stop();
  }
  if (timedOut) {
    out.error(
      new AgentComError(
        ERROR_CODES.TIMEOUT,
        `gave up after ${formatDuration(opts.timeoutMs ?? 0)}: task ${initial.id} is still ${current.status} (it keeps going; watch again with \`agentcom task watch ${initial.id}\`)`,
      ),
    );
    return EXIT.FAILURE;
  }
  throw new AgentComError(ERROR_CODES.UNAVAILABLE, `lost the connection while watching task ${initial.id}`);
}

async function watchCommand(
  idArg: string,
  f: ConnectionFlags & { timeoutAfter?: string },
  out: Output,
): Promise<ExitCode> {
  const id = parseTaskId(idArg);
  const timeoutMs = f.timeoutAfter === undefined ? undefined : parseDuration(f.timeoutAfter, 'timeoutAfter');
  return withHub(f, async (hub) =>
    followTask(hub, await hub.get(id), out, { timeoutMs, linesTo: 'stdout', emitInitial: true }),
  );
}

// --- Registration ---

/** Registers the `task` group and returns it (the sidecar-relay subcommands are added to it too). */
export function registerTaskCommands(program: Command): Command {
  const task = program.command('task').description('submit, inspect, cancel and retry tasks');

  withConnectionFlags(task.command('submit'))
    .description('submit a task; prints its id (on stdout, alone) and waits for it with --wait')
    .argument('<title>', 'short title, 1-200 characters')
    .option('--description <text>', 'what to do (up to 64 KiB)')
    .option('--priority <priority>', `${PRIORITIES.join('|')} (default normal)`)
    .option('--queue <name>', 'named queue (default "default")')
    .option('--capabilities <list>', 'capabilities the agent needs, comma separated (e.g. typescript,git)')
    .option('--max-retries <n>', 'automatic retries before the task is dead (0-100, default 3)')
    .option('--complete-by <time>', 'deadline: ISO 8601 time or +duration (+2h)')
    .option('--not-before <time>', 'do not assign before: ISO 8601 time or +duration (+10m)')
    .option('--delay <duration>', 'do not assign before this long after the hub takes it in (e.g. 4h, 1h30m)')
    .option('--idempotency-key <key>', 'a second submit with the same key returns the first task')
    .option('--metadata <json>', 'JSON object passed through to the agent')
    .option('--wait', 'follow the task until it finishes (exit 0 done, 1 failed/dead, 4 cancelled)')
    .option('--timeout-after <duration>', 'with --wait: give up waiting after this long (e.g. 10m)')
    .action((title: string, f: SubmitFlags) =>
      runCommand('task submit', f, (out) => submitCommand(title, f, out)),
    );

  withConnectionFlags(task.command('list'))
    .description('list tasks, newest first')
    .option('--status <list>', `only these statuses, comma separated (${TASK_STATUSES.join(', ')})`)
    .option('--assignee <agent>', 'only tasks held (or last held) by this agent')
    .option('--priority <priority>', `only this priority (${PRIORITIES.join('|')})`)
    .option('--queue <name>', 'only this queue')
    .option('--limit <n>', 'page size, 1-1000 (default 50; 1000 with --all)')
    .option('--cursor <cursor>', 'the next page, as printed after the previous one')
    .option('--all', 'fetch every page')
    .action((f: ListFlags) => runCommand('task list', f, (out) => listCommand(f, out)));

  withConnectionFlags(task.command('get'))
    .description('show one task with its history')
    .argument('<id>', 'task id')
    .action((id: string, f: ConnectionFlags) => runCommand('task get', f, (out) => getCommand(id, f, out)));

  withConnectionFlags(task.command('cancel'))
    .description('cancel a task that has not finished (its agent is told to stop)')
    .argument('<id>', 'task id')
    .option('--reason <text>', 'why (told to the agent holding the task)')
    .action((id: string, f: ConnectionFlags & { reason?: string }) =>
      runCommand('task cancel', f, (out) => cancelCommand(id, f, out)),
    );

  withConnectionFlags(task.command('retry'))
    .description('requeue a failed, dead or cancelled task with a fresh retry budget')
    .argument('<id>', 'task id')
    .action((id: string, f: ConnectionFlags) =>
      runCommand('task retry', f, (out) => retryCommand(id, f, out)),
    );

  withConnectionFlags(task.command('watch'))
    .description('follow a task until it finishes (exit 0 done, 1 failed/dead, 4 cancelled)')
    .argument('<id>', 'task id')
    .option('--timeout-after <duration>', 'give up watching after this long (e.g. 30s, 10m); exit 1')
    .action((id: string, f: ConnectionFlags & { timeoutAfter?: string }) =>
      runCommand('task watch', f, (out) => watchCommand(id, f, out)),
    );

  return task;
}
