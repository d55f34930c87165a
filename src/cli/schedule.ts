/**
 * @module cli/schedule
 * `agentcom schedule add|list|show|pause|resume|remove|trigger`: cron and interval schedules that
 * submit a task to a named queue at each slot (seed 000's heartbeat), through the hub's API. The
 * task's fields are the flags of `task submit`; the slot sets its deadline (`--complete-within`),
 * idempotency key and submitter. Times print in UTC; a cron expression is read in `--tz`.
 */
import type { Command } from 'commander';
import { type ScheduleSpecInput, ScheduleSpecSchema, type ScheduleView } from '../protocol/schedule.js';
import { type ConnectionFlags, withConnectionFlags, withHub } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { flagError, formatTime, parseDuration, parseJsonObject, parseTime, table } from './format.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';
import { type SubmitFlags, submitInput } from './task.js';

interface AddFlags extends SubmitFlags {
  cron?: string;
  tz?: string;
  every?: string;
  startAt?: string;
  title?: string;
  emit?: string;
  selector?: string;
  payload?: string;
  ttl?: string;
  completeWithin?: string;
  catchup?: string;
  catchupWindow?: string;
  overlap?: string;
  paused?: boolean;
  note?: string;
  replace?: boolean;
}

/** The spec from the flags. @throws AgentComError `invalid_payload` naming the flag. */
export function specInput(name: string, f: AddFlags, now = Date.now()): Omit<ScheduleSpecInput, 'v'> {
  if ((f.cron === undefined) === (f.every === undefined))
    throw flagError('cron', 'give exactly one of --cron <expression> and --every <duration>');
  if ((f.title === undefined) === (f.emit === undefined))
    throw flagError('title', 'give exactly one of --title <title> (a task) and --emit <type> (a pheromone)');
  const spec: Omit<ScheduleSpecInput, 'v'> = {
    name,
    action: f.emit !== undefined ? pheromoneAction(f.emit, f) : taskAction(f.title!, f, now),
    ...(f.cron !== undefined ? { cron: f.cron } : {}),
    ...(f.tz !== undefined ? { timezone: f.tz } : {}),
    ...(f.every !== undefined ? { every: parseDuration(f.every, 'every') } : {}),
    ...(f.startAt !== undefined ? { startAt: parseTime(f.startAt, 'startAt', now) } : {}),
    ...(f.catchup !== undefined ? { catchup: f.catchup as 'skip' } : {}),
    ...(f.catchupWindow !== undefined
      ? { catchupWindow: parseDuration(f.catchupWindow, 'catchupWindow') }
      : {}),
    ...(f.overlap !== undefined ? { overlap: f.overlap as 'skip' } : {}),
    ...(f.paused ? { paused: true } : {}),
    ...(f.note !== undefined ? { note: f.note } : {}),
  };
  const r = ScheduleSpecSchema.safeParse({ v: 1, ...spec });
  if (!r.success) {
    const issue = r.error.issues[0];
    const key = String(issue?.path[0] === 'timezone' ? 'tz' : (issue?.path[0] ?? 'spec'));
    throw flagError(
      key,
      `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return spec;
}

function taskAction(title: string, f: AddFlags, now: number): ScheduleSpecInput['action'] {
  const { submittedBy: _by, ...task } = submitInput(title, f, now);
  const within =
    f.completeWithin !== undefined ? parseDuration(f.completeWithin, 'completeWithin') : undefined;
  return { type: 'task', task: { ...task, ...(within !== undefined ? { completeWithin: within } : {}) } };
}

function pheromoneAction(type: string, f: AddFlags): ScheduleSpecInput['action'] {
  return {
    type: 'pheromone',
    pheromone: {
      type,
      ...(f.selector !== undefined ? { selector: f.selector } : {}),
      ...(f.payload !== undefined ? { payload: parseJsonObject(f.payload, 'payload') } : {}),
      ...(f.ttl !== undefined ? { ttl: parseDuration(f.ttl, 'ttl') / 1000 } : {}),
    },
  };
}

/** What each slot does, in a few words. */
function does(s: ScheduleView): string {
  const a = s.spec.action;
  return a.type === 'task'
    ? `task "${a.task.title}" to queue ${a.task.queue ?? 'default'}, priority ${a.task.priority ?? 'normal'}`
    : `pheromone ${a.pheromone.type}${a.pheromone.ttl ? ` (ttl ${a.pheromone.ttl}s)` : ''}`;
}

function when(s: ScheduleView): string {
  return s.spec.cron !== undefined
    ? `cron ${s.spec.cron} ${s.spec.timezone ?? 'UTC'}`
    : `every ${s.spec.every}`;
}

function rows(list: ScheduleView[]): string[] {
  return table(
    ['NAME', 'WHEN', 'TARGET', 'STATE', 'FIRED', 'SKIPPED', 'NEXT'],
    list.map((s) => [
      s.spec.name,
      when(s),
      s.spec.action.type === 'task'
        ? String(s.spec.action.task.queue ?? 'default')
        : `field ${s.spec.action.pheromone.type}`,
      s.spec.paused ? 'paused' : 'active',
      String(s.state?.fired ?? 0),
      String(s.state?.skipped ?? 0),
      s.nextRuns[0] !== undefined ? formatTime(s.nextRuns[0]) : '-',
    ]),
  );
}

function describe(s: ScheduleView): string[] {
  const st = s.state;
  return [
    `schedule ${s.spec.name}: ${when(s)}${s.spec.paused ? ' (paused)' : ''}`,
    `  each slot: ${does(s)}`,
    `  catch-up: ${s.spec.catchup} within ${s.spec.catchupWindow}; overlap: ${s.spec.overlap}`,
    `  created ${formatTime(s.createdAt)}, active since ${formatTime(s.since)}`,
    `  fired ${st?.fired ?? 0}, skipped ${st?.skipped ?? 0}${st?.lastSlot ? `, last slot ${formatTime(st.lastSlot)}` : ''}${st?.lastTaskId ? ` (task ${st.lastTaskId})` : ''}${st?.lastPheromoneId ? ` (pheromone ${st.lastPheromoneId})` : ''}`,
    ...(st?.lastSkip ? [`  last skipped: ${formatTime(st.lastSkip.slot)} (${st.lastSkip.reason})`] : []),
    `  next: ${s.nextRuns.length ? s.nextRuns.map(formatTime).join(', ') : '-'}`,
    ...(s.spec.note ? [`  note: ${s.spec.note}`] : []),
  ];
}

async function addCommand(name: string, f: AddFlags, out: Output): Promise<ExitCode> {
  const spec = specInput(name, f);
  return withHub(f, async (hub) => {
    const s = await hub.scheduleCreate(spec, { replace: f.replace === true });
    out.result({ v: 1, schedule: s }, describe(s));
    return EXIT.OK;
  });
}

export function registerScheduleCommands(program: Command): void {
  const schedule = program
    .command('schedule')
    .description('cron and interval schedules that submit a task at each slot');

  withConnectionFlags(schedule.command('add'))
    .description('create a schedule (or change one with --replace)')
    .argument('<name>', 'schedule name, 1-64 characters of A-Z a-z 0-9 _ -')
    .option('--cron <expression>', "cron expression, e.g. '0 22 * * *' (5 fields, or 6 with seconds)")
    .option('--tz <zone>', 'IANA time zone the cron expression is read in (default UTC)')
    .option('--every <duration>', 'interval instead of cron, e.g. 15m')
    .option('--start-at <time>', 'with --every: the first slot (ISO 8601 or +duration)')
    .option('--title <title>', 'each slot submits a task with this title (or use --emit)')
    .option('--emit <type>', 'each slot emits a pheromone of this type into the field instead of a task')
    .option('--selector <text>', 'with --emit: the pheromone’s selector')
    .option('--payload <json>', 'with --emit: the pheromone’s payload (JSON object)')
    .option('--ttl <duration>', 'with --emit: the pheromone’s time to live (e.g. 10m; default permanent)')
    .option('--description <text>', 'what to do (up to 64 KiB)')
    .option('--priority <priority>', 'urgent|high|normal|low (default normal)')
    .option('--queue <name>', 'named queue (default "default")')
    .option('--capabilities <list>', 'capabilities the agent needs, comma separated')
    .option('--max-retries <n>', 'automatic retries before the task is dead (0-100, default 3)')
    .option('--metadata <json>', 'JSON object passed through to the agent')
    .option('--complete-within <duration>', 'deadline after the slot, e.g. 1h')
    .option('--catchup <policy>', 'slots missed while no hub ran: skip|once|all (default once)')
    .option('--catchup-window <duration>', 'how far back missed slots are caught up (default 1d)')
    .option('--overlap <policy>', 'a slot while the previous task is open: skip|allow (default skip)')
    .option('--paused', 'create it paused')
    .option('--note <text>', 'free text for operators')
    .option('--replace', 'replace a schedule of that name (its progress is kept)')
    .action((name: string, f: AddFlags) => runCommand('schedule add', f, (out) => addCommand(name, f, out)));

  withConnectionFlags(schedule.command('list'))
    .description('list schedules with their progress and next slot')
    .action((f: ConnectionFlags) =>
      runCommand('schedule list', f, (out) =>
        withHub(f, async (hub) => {
          const list = await hub.schedules();
          out.result({ v: 1, schedules: list }, list.length ? rows(list) : []);
          if (!list.length) out.note('no schedules; add one with `agentcom schedule add`');
          return EXIT.OK;
        }),
      ),
    );

  for (const op of ['show', 'pause', 'resume'] as const)
    withConnectionFlags(schedule.command(op))
      .description(
        {
          show: 'show one schedule: its spec, progress and next slots',
          pause: 'stop firing (idempotent)',
          resume: 'fire again from the next slot; slots missed while paused are skipped',
        }[op],
      )
      .argument('<name>', 'schedule name')
      .action((name: string, f: ConnectionFlags) =>
        runCommand(`schedule ${op}`, f, (out) =>
          withHub(f, async (hub) => {
            const s = await hub.schedule(op === 'show' ? 'get' : op, name);
            out.result({ v: 1, schedule: s }, describe(s));
            return EXIT.OK;
          }),
        ),
      );

  withConnectionFlags(schedule.command('remove'))
    .description('delete a schedule and its progress (the tasks it submitted stay)')
    .argument('<name>', 'schedule name')
    .action((name: string, f: ConnectionFlags) =>
      runCommand('schedule remove', f, (out) =>
        withHub(f, async (hub) => {
          await hub.scheduleRemove(name);
          out.result({ v: 1, name, removed: true }, `removed schedule ${name}`);
          return EXIT.OK;
        }),
      ),
    );

  withConnectionFlags(schedule.command('trigger'))
    .description('fire the schedule’s action now, once (prints the task or pheromone id)')
    .argument('<name>', 'schedule name')
    .action((name: string, f: ConnectionFlags) =>
      runCommand('schedule trigger', f, (out) =>
        withHub(f, async (hub) => {
          const id = await hub.scheduleTrigger(name);
          out.result({ v: 1, name, id }, id);
          return EXIT.OK;
        }),
      ),
    );
}
