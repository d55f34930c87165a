/**
 * @module cli/inspect
 * `agentcom inspect [agent|hub|sidecar] [id]`: live XState inspection in the terminal
 * (docs/protocol.md §11e). It subscribes to the targets' `<p>.inspect.<source>.<id>` subjects, then
 * says on `<p>.inspecting` what it listens to, again every third of the listen's ttl while it runs,
 * and prints each event as it arrives: time, session, kind, and the event's type or the state
 * reached (`--json`: each event as published, one per line). It stops when interrupted, after
 * `--count` events or after `--timeout-after`; its listens then run out on their own, and the
 * publishers detach. Without a source it watches every agent and every hub.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { publishCore } from '../bus/subscribe.js';
import {
  INSPECT_LISTEN_TTL_MS,
  INSPECT_SOURCES,
  type InspectionEvent,
  InspectionEventSchema,
  InspectListenSchema,
  type InspectSource,
  InspectTargetSchema,
  inspectId,
} from '../protocol/inspect.js';
import { type ConnectionFlags, resolveConnection, withBus, withConnectionFlags } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { compactJson, flagError, formatClock, parseDuration, parseIntFlag } from './format.js';
import { interruption } from './interruption.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

interface InspectFlags extends ConnectionFlags {
  count?: string;
  timeoutAfter?: string;
}

/** The targets a command line names: `agent a1` → `agent.a1`; `hub` → `hub.*`; nothing → agents and hubs. */
export function inspectTargets(source: string | undefined, id: string | undefined): string[] {
  if (source === undefined) return ['agent.*', 'hub.*'];
  if (!(INSPECT_SOURCES as readonly string[]).includes(source))
    throw flagError(
      'source',
      `the source is one of ${INSPECT_SOURCES.join(', ')}, got ${JSON.stringify(source)}`,
    );
  const token = id === undefined || id === '*' ? '*' : source === 'hub' ? inspectId(id) : id;
  const target = `${source}.${token}`;
  const r = InspectTargetSchema.safeParse(target);
  if (!r.success) throw flagError('id', `${r.error.issues[0]?.message ?? 'invalid target'}: ${target}`);
  return [target];
}

/** A state value in one word or a short JSON (`working`, `{"online":"connected"}`). */
function valueText(v: unknown): string {
  return typeof v === 'string' ? v : compactJson(v, 80);
}

/** One event as a line: time, session, kind, and what it says. */
export function inspectLine(e: InspectionEvent): string {
  const at = Number(e.createdAt);
  const clock = Number.isFinite(at) ? formatClock(at) : '--:--:--.---';
  const x = e as InspectionEvent & {
    name?: string;
    snapshot?: { value?: unknown; status?: string };
    event?: { type?: string };
    sourceId?: string;
    parentId?: string;
  };
  const head = `${clock}  ${e.sessionId}`;
  switch (e.type) {
    case '@xstate.actor':
      return `${head}  actor     ${x.name ?? '?'}  ${valueText(x.snapshot?.value ?? x.snapshot?.status)}${x.parentId ? `  (child of ${x.parentId})` : ''}`;
    case '@xstate.event':
      return `${head}  event     ${x.event?.type ?? '?'}${x.sourceId ? `  from ${x.sourceId}` : ''}`;
    case '@xstate.snapshot':
      return `${head}  snapshot  ${valueText(x.snapshot?.value ?? x.snapshot?.status)}${x.event?.type ? `  after ${x.event.type}` : ''}`;
  }
}

async function inspectCommand(
  source: string | undefined,
  id: string | undefined,
  f: InspectFlags,
  out: Output,
): Promise<ExitCode> {
  const targets = inspectTargets(source, id);
  const count =
    f.count === undefined ? undefined : parseIntFlag(f.count, 'count', { min: 1, max: 1_000_000 });
  const timeoutMs = f.timeoutAfter === undefined ? undefined : parseDuration(f.timeoutAfter, 'timeoutAfter');
  const conn = resolveConnection(f);
  return withBus(
    conn,
    async (bus) => {
      const decoder = new TextDecoder();
      let n = 0;
      let reached: () => void = () => {};
      const enough = new Promise<void>((resolve) => {
        reached = resolve;
      });
      const subs = targets.map((t) => {
        const [src, tok] = t.split('.') as [InspectSource, string];
        return bus.nc.subscribe(bus.names.subjects.inspect(src, tok), {
          callback: (err, m) => {
            if (err || (count !== undefined && n >= count)) return;
            let parsed: unknown;
            try {
              parsed = JSON.parse(decoder.decode(m.data));
            } catch {
              return;
            }
            const r = InspectionEventSchema.safeParse(parsed);
            if (!r.success) return;
            out.result(r.data, inspectLine(r.data));
            if (count !== undefined && ++n >= count) reached();
          },
        });
      });
      // Subscribed before anyone is asked to publish: the first events (the actors) are not missed.
      await bus.nc.flush();
      const listen = InspectListenSchema.parse({
        v: 1,
        listener: `cli-${randomBytes(6).toString('hex')}`,
        targets,
        ttlMs: INSPECT_LISTEN_TTL_MS,
      });
      const say = () => publishCore(bus, bus.names.subjects.inspecting, InspectListenSchema, listen);
      say();
      const again = setInterval(say, Math.floor(listen.ttlMs / 3));
      out.note(`inspecting ${targets.join(', ')} (Ctrl-C to stop)`);
      const stop = interruption(timeoutMs);
      await Promise.race([enough, stop.done]);
      stop.dispose();
      clearInterval(again);
      for (const s of subs) s.unsubscribe();
      return EXIT.OK;
    },
    'agentcom-cli-inspect',
  );
}

export function registerInspectCommand(program: Command): void {
  withConnectionFlags(program.command('inspect'))
    .description(
      'stream live XState inspection events: an agent FSM, a hub supervision tree or a sidecar (default: every agent and hub)',
    )
    .argument('[source]', 'agent, hub or sidecar')
    .argument('[id]', 'the agent id, the hub id, or * (default: all of that source)')
    .option('--count <n>', 'stop after this many events')
    .option('--timeout-after <duration>', 'stop after this long (e.g. 30s)')
    .action((source: string | undefined, id: string | undefined, f: InspectFlags) =>
      runCommand('inspect', f, (out) => inspectCommand(source, id, f, out)),
    );
}
