/**
 * @module cli/field
 * `agentcom field emit|watch|claim|release|remove|promote|list|stats|history|map`: the stigmergy
 * field (docs/protocol.md §11b) as an operator sees it. The CLI is a trusted client: it emits and
 * claims as `--as <label>` (default `cli:<user>`). `watch` and `map` follow the field live (pushed
 * by a bucket watch, never polled) until interrupted, `--count` observations, or `--timeout-after`.
 */

import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { FieldClient, type Observed } from '../agent/field.js';
import type { HubClient } from '../bus/hub-client.js';
import { parseDurationMs } from '../protocol/duration.js';
import { type Pheromone, PheromonePatternSchema, TtlSchema } from '../protocol/field.js';
import { type ConnectionFlags, withConnectionFlags, withHub } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { type FieldMapData, renderFieldMap } from './field-map.js';
import {
  compactJson,
  flagError,
  formatClock,
  formatDuration,
  parseDuration,
  parseIntFlag,
  parseJsonObject,
  parseTime,
  table,
} from './format.js';
import { interruption } from './interruption.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

interface AsFlags extends ConnectionFlags {
  as?: string;
}

type IdCommand = (hub: HubClient, id: string, by: string, out: Output) => Promise<ExitCode>;

function label(f: AsFlags): string {
  if (f.as !== undefined) return f.as;
  try {
    return `cli:${userInfo().username}`.slice(0, 64);
  } catch {
    return 'cli';
  }
}

function pattern(text: string, key = 'pattern'): string {
  const r = PheromonePatternSchema.safeParse(text);
  if (!r.success) throw flagError(key, `--${key}: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return text;
}

/** `--ttl`: seconds (as in seed 001) or a duration. */
function ttl(text: string): number | string {
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text.trim();
  const r = TtlSchema.safeParse(value);
  if (!r.success) throw flagError('ttl', `--ttl: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return value;
}

function describe(p: Pheromone, now = Date.now()): string[] {
  return [
    `${p.id}  ${p.type}  ${p.event} by ${p.eventBy}`,
    `  source ${p.source}, emitted ${formatDuration(now - p.timestamp)} ago, ${p.expiresAt === null ? 'permanent' : `expires in ${formatDuration(Math.max(0, p.expiresAt - now))}`}`,
    `  claimed: ${p.claimedBy ?? 'no'}${p.taskId ? `, task ${p.taskId}` : ''}`,
    ...(p.selector ? [`  selector: ${p.selector}`] : []),
    `  payload: ${compactJson(p.payload)}`,
  ];
}

function rows(list: Pheromone[], now = Date.now()): string[] {
  return table(
    ['ID', 'TYPE', 'SOURCE', 'AGE', 'TTL LEFT', 'CLAIMED BY'],
    list.map((p) => [
      p.id,
      p.type,
      p.source,
      formatDuration(now - p.timestamp),
      p.expiresAt === null ? '-' : formatDuration(Math.max(0, p.expiresAt - now)),
      p.claimedBy ?? '-',
    ]),
  );
}

const observedLine = (o: Observed) =>
  `${formatClock(o.pheromone.eventAt)}  ${o.pheromone.event.padEnd(8)}  ${o.pheromone.type}  ${o.pheromone.id}  by ${o.pheromone.eventBy}${o.initial ? '  (live before watch)' : ''}`;

interface WatchFlags extends ConnectionFlags {
  count?: string;
  timeoutAfter?: string;
}

async function watchCommand(patterns: string[], f: WatchFlags, out: Output): Promise<ExitCode> {
  const list = (patterns.length ? patterns : ['*']).map((p) => pattern(p, 'pattern'));
  const count =
    f.count === undefined ? undefined : parseIntFlag(f.count, 'count', { min: 1, max: 1_000_000 });
  const timeoutMs = f.timeoutAfter === undefined ? undefined : parseDuration(f.timeoutAfter, 'timeoutAfter');
  return withHub(f, async (hub) => {
    const observation = await new FieldClient(hub.bus).observe(list);
    const stop = interruption(timeoutMs);
    let n = 0;
    const consumed = (async () => {
      for await (const o of observation) {
        out.result(o, observedLine(o));
        if (count !== undefined && ++n >= count) return;
      }
    })();
    await Promise.race([consumed, stop.done]);
    stop.dispose();
    observation.stop();
    return EXIT.OK;
  });
}

async function mapData(hub: HubClient): Promise<FieldMapData> {
  const [agents, live, stats] = await Promise.all([
    hub.agents(),
    hub.fieldList({ limit: 1000 }),
    hub.fieldStats(),
  ]);
  return {
    agents: agents.agents.map((a) => ({ id: a.id, online: a.online, observes: a.hello.observes ?? [] })),
    pheromones: live.pheromones,
    counts: { active: stats.active, claimed: stats.claimed, expired: stats.expired },
  };
}

async function mapCommand(f: ConnectionFlags & { once?: boolean }, out: Output): Promise<ExitCode> {
  return withHub(f, async (hub) => {
    const data = await mapData(hub);
    const width = process.stdout.columns ?? 80;
    if (f.once || out.json || !process.stdout.isTTY) {
      out.result({ v: 1, ...data, at: Date.now() }, renderFieldMap(data, Date.now(), width));
      return EXIT.OK;
    }
    // Live: the field's changes are pushed; the clock only moves the ages.
    const live = new Map(data.pheromones.map((p) => [p.id, p]));
    let expired = data.counts.expired;
    const draw = () => {
      const pheromones = [...live.values()];
      const claimed = pheromones.filter((p) => p.claimedBy !== null).length;
      const lines = renderFieldMap(
        { ...data, pheromones, counts: { active: pheromones.length - claimed, claimed, expired } },
        Date.now(),
        process.stdout.columns ?? width,
      );
      process.stdout.write(`\x1b[H\x1b[2J${lines.join('\n')}\n(live; Ctrl-C to stop)\n`);
    };
    const observation = await new FieldClient(hub.bus).observe(['*']);
    const stop = interruption(undefined);
    const tick = setInterval(draw, 1_000);
    draw();
    const consumed = (async () => {
      for await (const o of observation) {
        // The catch-up too: what was emitted between the list and the watch is drawn as well.
        const p = o.pheromone;
        if (o.gone) {
          live.delete(p.id);
          if (p.event === 'expired' || (p.expiresAt !== null && p.expiresAt <= Date.now())) expired++;
        } else live.set(p.id, p);
        draw();
      }
    })();
    await Promise.race([consumed, stop.done]);
    clearInterval(tick);
    stop.dispose();
    observation.stop();
    return EXIT.OK;
  });
}

export function registerFieldCommands(program: Command): void {
  const field = program
    .command('field')
    .description('the stigmergy field: pheromones agents emit, observe and claim');

  withConnectionFlags(field.command('emit'))
    .description('deposit a pheromone; prints its id')
    .argument('<type>', 'dotted type, e.g. request.code.review')
    .option('--selector <text>', 'which targets it is for (free text)')
    .option('--payload <json>', 'JSON object carried with it')
    .option(
      '--ttl <ttl>',
      'time to live: seconds (as in seed 001) or a duration such as 30s, 4h (default: permanent)',
    )
    .option('--idempotency-key <key>', 'a second emit with the same key returns the first pheromone')
    .option('--as <label>', 'the source recorded (default cli:<user>)')
    .action(
      (
        type: string,
        f: AsFlags & { selector?: string; payload?: string; ttl?: string; idempotencyKey?: string },
      ) =>
        runCommand('field emit', f, (out) =>
          withHub(f, async (hub) => {
            const p = await new FieldClient(hub.bus, { by: label(f) }).emit(type, {
              ...(f.selector !== undefined ? { selector: f.selector } : {}),
              ...(f.payload !== undefined ? { payload: parseJsonObject(f.payload, 'payload') } : {}),
              ...(f.ttl !== undefined ? { ttl: ttl(f.ttl) } : {}),
              ...(f.idempotencyKey !== undefined ? { idempotencyKey: f.idempotencyKey } : {}),
            });
            out.result({ v: 1, pheromone: p }, p.id);
            return EXIT.OK;
          }),
        ),
    );

  withConnectionFlags(field.command('watch'))
    .description('print the live pheromones matching the patterns, then every change, until interrupted')
    .argument('[patterns...]', "patterns: '*' (default), error.*, *.completion, request.>")
    .option('--count <n>', 'stop after this many observations')
    .option('--timeout-after <duration>', 'stop after this long (e.g. 30s)')
    .action((patterns: string[], f: WatchFlags) =>
      runCommand('field watch', f, (out) => watchCommand(patterns, f, out)),
    );

  // One pheromone, by id, as `--as`: claim (exit 4 when another holds it), release, remove.
  const byId: Record<'claim' | 'release' | 'remove', { description: string; run: IdCommand }> = {
    claim: {
      description:
        'claim a pheromone (first responder wins): exit 0 when claimed, 4 when someone else holds it',
      run: async (hub, id, by, out) => {
        const r = await new FieldClient(hub.bus, { by }).claim({ id, type: '' });
        out.result(
          { v: 1, ...r },
          r.claimed ? `claimed ${id}` : `${id} is claimed by ${r.pheromone.claimedBy}`,
        );
        return r.claimed ? EXIT.OK : EXIT.REFUSED;
      },
    },
    release: {
      description: 'release the claim on a pheromone',
      run: async (hub, id, by, out) => {
        const p = await new FieldClient(hub.bus, { by }).release({ id });
        out.result({ v: 1, pheromone: p }, `released ${id}`);
        return EXIT.OK;
      },
    },
    remove: {
      description: 'withdraw a pheromone now (audited as removed)',
      run: async (hub, id, by, out) => {
        const p = await hub.pheromone('remove', id, by);
        out.result({ v: 1, pheromone: p }, `removed ${id}`);
        return EXIT.OK;
      },
    },
  };
  for (const [op, { description, run }] of Object.entries(byId))
    withConnectionFlags(field.command(op))
      .description(description)
      .argument('<id>', 'pheromone id')
      .option('--as <label>', 'who does it (recorded; default cli:<user>)')
      .action((id: string, f: AsFlags) =>
        runCommand(`field ${op}`, f, (out) => withHub(f, (hub) => run(hub, id, label(f), out))),
      );

  withConnectionFlags(field.command('promote'))
    .description('turn a pheromone into a task; when the task is done, completion.<type> is emitted')
    .argument('<id>', 'pheromone id')
    .option('--queue <name>', 'the task’s queue (default "default")')
    .option('--priority <priority>', 'urgent|high|normal|low')
    .option('--title <title>', 'the task’s title (default: the pheromone’s type)')
    .action((id: string, f: ConnectionFlags & { queue?: string; priority?: string; title?: string }) =>
      runCommand('field promote', f, (out) =>
        withHub(f, async (hub) => {
          const p = await hub.fieldPromote({
            id,
            ...(f.queue ? { queue: f.queue } : {}),
            ...(f.priority ? { priority: f.priority } : {}),
            ...(f.title ? { title: f.title } : {}),
          });
          out.result({ v: 1, pheromone: p }, p.taskId ?? '');
          out.note(`follow it with: agentcom task watch ${p.taskId}`);
          return EXIT.OK;
        }),
      ),
    );

  withConnectionFlags(field.command('list'))
    .description('live pheromones, newest first')
    .option('--pattern <pattern>', "which types (default '*')")
    .option('--claimed', 'only claimed ones')
    .option('--unclaimed', 'only unclaimed ones')
    .option('--limit <n>', '1-1000 (default 100)')
    .action(
      (f: ConnectionFlags & { pattern?: string; claimed?: boolean; unclaimed?: boolean; limit?: string }) =>
        runCommand('field list', f, (out) =>
          withHub(f, async (hub) => {
            if (f.claimed && f.unclaimed)
              throw flagError('claimed', 'pass --claimed or --unclaimed, not both');
            const r = await hub.fieldList({
              ...(f.pattern !== undefined ? { pattern: pattern(f.pattern) } : {}),
              ...(f.claimed ? { claimed: true } : f.unclaimed ? { claimed: false } : {}),
              ...(f.limit !== undefined
                ? { limit: parseIntFlag(f.limit, 'limit', { min: 1, max: 1000 }) }
                : {}),
            });
            out.result(r, r.pheromones.length ? rows(r.pheromones) : []);
            if (!r.pheromones.length) out.note('no live pheromones match');
            else if (r.total > r.pheromones.length)
              out.note(`${r.total - r.pheromones.length} more (--limit)`);
            return EXIT.OK;
          }),
        ),
    );

  withConnectionFlags(field.command('show'))
    .description('one live pheromone')
    .argument('<id>', 'pheromone id')
    .action((id: string, f: ConnectionFlags) =>
      runCommand('field show', f, (out) =>
        withHub(f, async (hub) => {
          const p = await hub.pheromone('get', id);
          out.result({ v: 1, pheromone: p }, describe(p));
          return EXIT.OK;
        }),
      ),
    );

  withConnectionFlags(field.command('stats'))
    .description('counts: active, claimed, expired, live per type')
    .action((f: ConnectionFlags) =>
      runCommand('field stats', f, (out) =>
        withHub(f, async (hub) => {
          const s = await hub.fieldStats();
          out.result(s, [
            `${s.active} active | ${s.claimed} claimed | ${s.expired} expired`,
            ...Object.entries(s.byType).map(([t, n]) => `  ${t}: ${n}`),
          ]);
          return EXIT.OK;
        }),
      ),
    );

  withConnectionFlags(field.command('history'))
    .description('the audit trail: every emit, claim, release, expiry, oldest first')
    .option('--pattern <pattern>', "which types (default '*')")
    .option('--since <time>', 'from: an ISO 8601 time, or a duration meaning that long ago (1h)')
    .option('--until <time>', 'to: an ISO 8601 time, or a duration ago')
    .option('--limit <n>', '1-1000 (default 100)')
    .action((f: ConnectionFlags & { pattern?: string; since?: string; until?: string; limit?: string }) =>
      runCommand('field history', f, (out) =>
        withHub(f, async (hub) => {
          // A bare duration means that long ago (`--since 1h`); else an ISO 8601 time.
          const at = (t: string, key: string) =>
            parseDurationMs(t) !== null ? Date.now() - parseDuration(t, key) : parseTime(t, key);
          const r = await hub.fieldHistory({
            ...(f.pattern !== undefined ? { pattern: pattern(f.pattern) } : {}),
            ...(f.since !== undefined ? { since: at(f.since, 'since') } : {}),
            ...(f.until !== undefined ? { until: at(f.until, 'until') } : {}),
            ...(f.limit !== undefined
              ? { limit: parseIntFlag(f.limit, 'limit', { min: 1, max: 1000 }) }
              : {}),
          });
          out.result(
            r,
            r.events.map(
              (e) =>
                `${new Date(e.eventAt).toISOString()}  ${e.event.padEnd(8)}  ${e.type}  ${e.id}  by ${e.eventBy}`,
            ),
          );
          if (r.more) out.note('more events: pass --since after the last one');
          return EXIT.OK;
        }),
      ),
    );

  withConnectionFlags(field.command('map'))
    .description(
      "seed 001's pheromone map: agents, what they observe, live pheromones, counts; live on a terminal",
    )
    .option('--once', 'draw it once and exit (also when stdout is not a terminal, and with --json)')
    .action((f: ConnectionFlags & { once?: boolean }) =>
      runCommand('field map', f, (out) => mapCommand(f, out)),
    );
}
