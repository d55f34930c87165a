/**
 * Schedules through `agentcom schedule ...` and the hub's API, against a real hub on a test
 * nats-server. Each test has its own schedule name and queue (nobody serves it unless the test
 * starts an agent), so its tasks are its own.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { FieldClient } from '../../src/agent/field.js';
import { specInput } from '../../src/cli/schedule.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import type { TaskRecord } from '../../src/protocol/task.js';
import { useCliHub } from '../support/cli-hub.js';
import { eventually, waitUntil } from '../support/eventually.js';

const h = useCliHub('clisched');

async function tasksOf(queue: string): Promise<TaskRecord[]> {
  const page = await h.api.list({ queue: queue as never, limit: 1000 });
  return [...page.tasks].sort((a, b) => String(a.metadata?.slot).localeCompare(String(b.metadata?.slot)));
}

const slotOf = (t: TaskRecord) => Date.parse(String(t.metadata?.slot));

describe('schedule add / list / show', () => {
  it('stores a cron schedule with its time zone and prints its next slots', async () => {
    const r = await h.cli(
      'schedule',
      'add',
      'nightly-diary',
      '--cron',
      '0 22 * * *',
      '--tz',
      'Europe/Berlin',
      '--title',
      'run_agentic_diary',
      '--queue',
      'cognition',
      '--complete-within',
      '1h',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const { schedule } = JSON.parse(r.stdout);
    expect(schedule.spec).toMatchObject({
      name: 'nightly-diary',
      cron: '0 22 * * *',
      timezone: 'Europe/Berlin',
      catchup: 'once',
      overlap: 'skip',
      action: {
        type: 'task',
        task: { title: 'run_agentic_diary', queue: 'cognition', completeWithin: 3_600_000 },
      },
    });
    expect(schedule.nextRuns).toHaveLength(3);
    // 22:00 in Berlin is 20:00 or 21:00 UTC depending on the season.
    for (const at of schedule.nextRuns) expect([20, 21]).toContain(new Date(at).getUTCHours());

    const list = await h.cli('schedule', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      /nightly-diary\s+cron 0 22 \* \* \* Europe\/Berlin\s+cognition\s+active\s+0\s+0/,
    );
    const show = await h.cli('schedule', 'show', 'nightly-diary');
    expect(show.stdout).toContain('catch-up: once within 1d; overlap: skip');

    const again = await h.cli('schedule', 'add', 'nightly-diary', '--every', '1h', '--title', 'x', '--json');
    expect(again.code).not.toBe(0);
    expect(JSON.parse(again.stderr).error.code).toBe(ERROR_CODES.CONFLICT);
    const replaced = await h.cli(
      'schedule',
      'add',
      'nightly-diary',
      '--every',
      '1h',
      '--title',
      'x',
      '--replace',
    );
    expect(replaced.code, replaced.stderr).toBe(0);
    expect((await h.api.schedule('get', 'nightly-diary')).spec.every).toBe(3_600_000);
  });

  it('refuses bad flags and specs with a structured error naming what is wrong, storing nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['--title', 't'], /exactly one of --cron/],
      [['--cron', '* * * * *', '--every', '1m', '--title', 't'], /exactly one of --cron/],
      [['--cron', '* * * * *', '--tz', 'Mars/Olympus', '--title', 't'], /--tz: .*IANA/],
      [['--every', '10', '--title', 't'], /--every must be a duration/],
      [['--every', '1m', '--title', 't', '--catchup', 'sometimes'], /--catchup/],
      [['--every', '1m', '--title', 't', '--overlap', 'queue'], /--overlap/],
      [['--every', '1m', '--title', 't', '--queue', 'a.b'], /--queue/],
      [['--every', '1m', '--title', 't', '--start-at', 'soon'], /--start-at must be an ISO 8601/],
    ];
    for (const [flags, message] of cases) {
      const f = Object.fromEntries(
        flags.flatMap((x, i) =>
          x.startsWith('--')
            ? [[x.slice(2).replace(/-(.)/g, (_, c: string) => c.toUpperCase()), flags[i + 1]]]
            : [],
        ),
      );
      let thrown: unknown;
      try {
        specInput('bad-one', f);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, flags.join(' ')).toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD, message });
    }
    // Through the real command: a flag error, and cron expressions only croner (on the hub) reads.
    const noKind = await h.cli('schedule', 'add', 'bad-one', '--title', 't', '--json');
    expect(noKind.code).not.toBe(0);
    expect(JSON.parse(noKind.stderr).error).toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD });
    for (const [cron, message] of [
      ['every tuesday', /cron: .*five, six, or seven/],
      ['0 0 30 2 *', /no future slot/],
    ] as const) {
      const r = await h.cli('schedule', 'add', 'bad-one', '--cron', cron, '--title', 't', '--json');
      expect(r.code, cron).not.toBe(0);
      expect(JSON.parse(r.stderr).error, cron).toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD, message });
    }
    await expect(
      h.api.scheduleCreate({
        name: 'api-bad',
        cron: '99 * * * *',
        action: { type: 'task', task: { title: 't' } },
      }),
    ).rejects.toMatchObject({ code: ERROR_CODES.INVALID_PAYLOAD });
    expect((await h.api.schedules()).map((s) => s.spec.name)).not.toContain('bad-one');
    const missing = await h.cli('schedule', 'show', 'never-made', '--json');
    expect(JSON.parse(missing.stderr).error.code).toBe(ERROR_CODES.NOT_FOUND);
    for (const op of ['pause', 'resume'] as const)
      await expect(h.api.schedule(op, 'never-made')).rejects.toMatchObject({ code: ERROR_CODES.NOT_FOUND });
    await expect(h.api.scheduleRemove('never-made')).rejects.toMatchObject({ code: ERROR_CODES.NOT_FOUND });
    await expect(h.api.scheduleTrigger('never-made')).rejects.toMatchObject({ code: ERROR_CODES.NOT_FOUND });
  });
});

describe('firing', () => {
  it('an interval fires one task per slot, in order; pause stops it, resume skips what the pause missed', async () => {
    await h.api.scheduleCreate({
      name: 'beat',
      every: '1s',
      overlap: 'allow',
      action: { type: 'task', task: { title: 'beat', queue: 'beatq' as never, metadata: { from: 'test' } } },
    });
    await eventually(
      async () => {
        if ((await tasksOf('beatq')).length < 3) throw new Error('fewer than 3 fired');
      },
      { timeout: 15_000 },
    );
    const paused = await h.api.schedule('pause', 'beat');
    expect(paused.nextRuns).toEqual([]);
    // The pause is stored; the hub may be firing one slot as it lands. After that, nothing moves.
    const settled = await eventually(async () => {
      const a = (await h.api.schedule('get', 'beat')).state!;
      const n = (await tasksOf('beatq')).length;
      if (a.fired !== n) throw new Error('a fire in flight');
      return a;
    });
    const pausedAt = Date.now();
    // The observation window for "nothing fires while paused": two slots long.
    await new Promise((r) => setTimeout(r, 2_100));
    const during = (await h.api.schedule('get', 'beat')).state!;
    expect(during.fired).toBe(settled.fired);

    const resumed = await h.api.schedule('resume', 'beat');
    expect(resumed.since).toBeGreaterThanOrEqual(pausedAt);
    await eventually(
      async () => {
        if ((await h.api.schedule('get', 'beat')).state!.fired < settled.fired + 2)
          throw new Error('not yet');
      },
      { timeout: 10_000 },
    );
    await h.api.schedule('pause', 'beat');
    const tasks = await tasksOf('beatq');
    const slots = tasks.map(slotOf);
    expect(new Set(slots).size).toBe(slots.length);
    expect(new Set(tasks.map((t) => t.id)).size).toBe(tasks.length);
    // Slots are whole seconds after the first; none falls in the pause (no catch-up on resume).
    for (const s of slots) expect((s - slots[0]!) % 1000).toBe(0);
    expect(slots.filter((s) => s > settled.lastSlot! && s <= resumed.since)).toEqual([]);
    for (const t of tasks)
      expect(t).toMatchObject({
        title: 'beat',
        submittedBy: 'schedule:beat',
        metadata: { from: 'test', schedule: 'beat' },
      });
    expect((await h.api.schedule('get', 'beat')).state!.fired).toBe(tasks.length);
  });

  it('overlap skip: while the last task is open, slots are skipped; once it is done, the next slot fires', async () => {
    await h.api.scheduleCreate({
      name: 'slow',
      every: '1s',
      action: { type: 'task', task: { title: 'slow', queue: 'slowq' as never } },
    });
    const skipped = await eventually(
      async () => {
        const s = (await h.api.schedule('get', 'slow')).state;
        if (!s || s.skipped < 2) throw new Error('not skipped twice yet');
        return s;
      },
      { timeout: 15_000 },
    );
    expect(skipped.lastSkip?.reason).toBe('overlap');
    expect(await tasksOf('slowq')).toHaveLength(1);
    const agent = await AgentClient.connect({
      connection: { servers: h.url, prefix: h.prefix },
      agentId: 'slow-worker',
      hello: { queues: ['slowq'] },
      logger: pino({ level: 'silent' }),
      helloTimeoutMs: 10_000,
    });
    try {
      await agent.start(async () => ({ type: 'completed', result: null }));
      await eventually(
        async () => {
          if ((await tasksOf('slowq')).length < 2) throw new Error('no second task');
        },
        { timeout: 15_000 },
      );
    } finally {
      await agent.stop();
      await h.api.schedule('pause', 'slow');
    }
  });

  it('a pheromone schedule emits into the field; overlap skip waits while its last pheromone is live', async () => {
    const r = await h.cli(
      'schedule',
      'add',
      'heart',
      '--every',
      '1s',
      '--emit',
      'heartbeat.clock',
      '--payload',
      '{"beat":1}',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('each slot: pheromone heartbeat.clock');
    const field = new FieldClient(h.client.bus);
    const beats = () => h.api.fieldList({ pattern: 'heartbeat.clock' });
    const first = await eventually(
      async () => {
        const s = (await h.api.schedule('get', 'heart')).state;
        if (!s || s.skipped < 1) throw new Error('no overlap skip yet');
        return s;
      },
      { timeout: 15_000 },
    );
    expect(first.lastSkip?.reason).toBe('overlap');
    const live = await beats();
    expect(live.pheromones).toHaveLength(1);
    expect(live.pheromones[0]).toMatchObject({
      id: first.lastPheromoneId,
      source: 'schedule:heart',
      payload: { beat: 1, schedule: 'heart' },
    });
    // Once it leaves the field, the next slot emits again.
    await h.api.pheromone('remove', first.lastPheromoneId!);
    const next = await eventually(
      async () => {
        const l = await beats();
        if (!l.pheromones.length) throw new Error('not emitted again yet');
        return l.pheromones[0]!;
      },
      { timeout: 15_000 },
    );
    expect(next.id).not.toBe(first.lastPheromoneId);
    await h.api.schedule('pause', 'heart');
    const trig = await h.cli('schedule', 'trigger', 'heart');
    expect(
      (await field.claim({ id: trig.stdout.trim(), type: 'heartbeat.clock' })).pheromone.payload,
    ).toMatchObject({
      triggered: true,
    });
  });

  it('trigger submits one task now; remove deletes the schedule and keeps its tasks', async () => {
    await h.cli('schedule', 'add', 'manual', '--every', '1d', '--title', 'by hand', '--queue', 'manualq');
    const r = await h.cli('schedule', 'trigger', 'manual');
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    const task = await h.api.get(id);
    expect(task.metadata).toMatchObject({ schedule: 'manual', triggered: true });
    const rm = await h.cli('schedule', 'remove', 'manual', '--json');
    expect(JSON.parse(rm.stdout)).toEqual({ v: 1, name: 'manual', removed: true });
    expect((await h.api.schedules()).map((s) => s.spec.name)).not.toContain('manual');
    expect((await h.api.get(id)).id).toBe(id);
    await waitUntil(async () => (await h.cli('schedule', 'show', 'manual')).code !== 0, 'removed');
  });
});
