/**
 * @module cli/doctor
 * `agentcom doctor`: checks a deployment the way an operator would before trusting it, and says
 * what to do about each problem: the nats-server version and JetStream, every stream, consumer and
 * bucket the hub provisions, the lease holder and whether it answers, every hub that answers and the
 * clock skew to each, whether intake or assignment is paused, the auth directory's file permissions,
 * and free disk space. Read-only: it changes nothing. Exit 0
 * when no check failed (warnings allowed), 1 otherwise, 69 when NATS cannot be reached at all.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { LEASE_KEY } from '../../actors/leader/index.js';
import type { Bus } from '../bus/connection.js';
import { openKv } from '../bus/kv.js';
import { openControlKv } from '../bus/live-config.js';
import { defaultTopology } from '../bus/provision.js';
import { requestAllTyped, requestTyped } from '../bus/subscribe.js';
import { authDirPaths } from '../hub/auth/auth-dir.js';
import { DEFAULT_DATA_DIR } from '../hub/hub-file.js';
import { CONTROL_KEY, describeControl } from '../protocol/control.js';
import { HubAliveSchema, LeaseSchema } from '../protocol/registration.js';
import { kvStream } from '../protocol/subjects.js';
import { type ConnectionFlags, connectCli, resolveConnection, withConnectionFlags } from './connection.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { Output } from './output.js';
import { runCommand } from './run.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it (warn and fail). */
  fix?: string;
}

/** The oldest nats-server the project supports (DESIGN.md: Debian's 2.9.10 is the floor). */
const MIN_NATS = [2, 9, 0] as const;
/** Clock skew to the lease holder worth a warning, and one that breaks leases (a third of a TTL). */
const SKEW_WARN_MS = 500;
const SKEW_FAIL_MS = 1_500;
const GiB = 1024 ** 3;

export function registerDoctorCommand(program: Command): void {
  withConnectionFlags(
    program
      .command('doctor')
      .description(
        'check the deployment (NATS, JetStream, provisioning, lease, clocks, auth files, disk) and say what to fix',
      ),
  ).action((flags: ConnectionFlags) => runCommand('doctor', flags, (out) => doctor(flags, out)));
}

async function doctor(flags: ConnectionFlags, out: Output): Promise<ExitCode | undefined> {
  const conn = resolveConnection(flags);
  const checks: Check[] = [];
  const bus = await connectCli(conn, 'agentcom-doctor'); // unreachable: exit 69 with the usual hint
  try {
    checks.push(serverCheck(bus));
    checks.push(await jetStreamCheck(bus));
    checks.push(await topologyCheck(bus));
    const hubs = await askHubs(bus, Math.min(conn.timeoutMs, 1_500));
    checks.push(...(await leaseChecks(bus, hubs, conn.timeoutMs)));
    checks.push(hubsCheck(hubs));
    checks.push(await controlCheck(bus));
  } finally {
    await bus.drain().catch(() => undefined);
  }
  if (conn.authDir) checks.push(authFilesCheck(conn.authDir));
  checks.push(await diskCheck(resolve(process.env.AGENTCOM_DATA_DIR || DEFAULT_DATA_DIR)));
  const ok = !checks.some((c) => c.status === 'fail');
  out.result({ v: 1, ok, servers: conn.servers, prefix: conn.prefix, checks }, [
    `agentcom doctor: ${conn.servers}, prefix ${conn.prefix}`,
    ...checks.flatMap(renderCheck),
    ok
      ? checks.some((c) => c.status === 'warn')
        ? 'no failures; see the warnings above'
        : 'all good'
      : 'some checks failed: see "fix" under each',
  ]);
  return ok ? undefined : EXIT.FAILURE;
}

export function renderCheck(c: Check): string[] {
  const mark = c.status === 'ok' ? 'ok  ' : c.status === 'warn' ? 'WARN' : 'FAIL';
  return [
    `  ${mark}  ${c.name}: ${c.detail}`,
    ...(c.fix && c.status !== 'ok' ? [`        fix: ${c.fix}`] : []),
  ];
}

/** `a.b.c` at least `min`, numerically. */
export function versionAtLeast(version: string, min: readonly number[]): boolean {
  const parts = version.split(/[.-]/).map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < min.length; i++) {
    const v = parts[i] ?? 0;
    if (Number.isNaN(v)) return false;
    if (v !== min[i]) return v > min[i]!;
  }
  return true;
}

function serverCheck(bus: Bus): Check {
  const info = bus.nc.info;
  const version = info?.version ?? 'unknown';
  if (!versionAtLeast(version, MIN_NATS))
    return {
      name: 'nats-server',
      status: 'fail',
      detail: `version ${version}, older than ${MIN_NATS.join('.')}`,
      fix: 'upgrade nats-server (Debian: apt-get install nats-server; or a release from nats.io)',
    };
  if (!info?.jetstream)
    return {
      name: 'nats-server',
      status: 'fail',
      detail: `version ${version} without JetStream`,
      fix: 'start nats-server with JetStream (-js, or jetstream {} in its config); `agentcom hub` without NATS_URL runs one for you',
    };
  return {
    name: 'nats-server',
    status: 'ok',
    detail: `version ${version}, JetStream on, server ${info.server_name}`,
  };
}

async function jetStreamCheck(bus: Bus): Promise<Check> {
  try {
    const a = await bus.jsm.getAccountInfo();
    const max = a.limits.max_storage;
    const usedText = `${(a.storage / 1024 ** 2).toFixed(1)} MiB stored in ${a.streams} streams`;
    if (max > 0 && a.storage > 0.9 * max)
      return {
        name: 'jetstream',
        status: 'warn',
        detail: `${usedText}, over 90% of the account's ${(max / GiB).toFixed(1)} GiB limit`,
        fix: 'raise max_storage (jetstream { max_file_store } or the account limit), or lower retention (AGENTCOM_RETENTION_*, AGENTCOM_DLQ_*)',
      };
    return { name: 'jetstream', status: 'ok', detail: usedText };
  } catch (err) {
    return {
      name: 'jetstream',
      status: 'fail',
      detail: `the account has no JetStream: ${(err as Error).message}`,
      fix: 'enable JetStream for this account (accounts { X { jetstream: enabled } }) or connect as a user of an account that has it',
    };
  }
}

async function topologyCheck(bus: Bus): Promise<Check> {
  const t = defaultTopology(bus.names);
  const missing: string[] = [];
  for (const s of t.streams)
    if (!(await exists(() => bus.jsm.streams.info(s.name)))) missing.push(`stream ${s.name}`);
  for (const c of t.consumers)
    if (!(await exists(() => bus.jsm.consumers.info(c.stream, c.durable))))
      missing.push(`consumer ${c.stream}/${c.durable}`);
  for (const b of t.buckets)
    if (!(await exists(() => bus.jsm.streams.info(kvStream(b.bucket))))) missing.push(`bucket ${b.bucket}`);
  const total = t.streams.length + t.consumers.length + t.buckets.length;
  if (missing.length === 0)
    return {
      name: 'provisioning',
      status: 'ok',
      detail: `${t.streams.length} streams, ${t.consumers.length} consumers, ${t.buckets.length} buckets as the hub provisions them`,
    };
  return {
    name: 'provisioning',
    status: 'fail',
    detail: `${missing.length} of ${total} missing: ${missing.join(', ')}`,
    fix: `start a hub with this prefix (${bus.names.prefix}); it provisions everything on start. A wrong --prefix also looks like this`,
  };
}

/** Intake or assignment paused (`agentcom pause`) is a warning: work waits until someone resumes. */
export async function controlCheck(bus: Bus): Promise<Check> {
  try {
    const c = (await (await openControlKv(bus)).get(CONTROL_KEY))?.value;
    if (!c || (c.intake === 'running' && c.assignment === 'running'))
      return { name: 'control', status: 'ok', detail: 'intake and assignment running' };
    const parts = [c.intake === 'paused' ? '--intake' : '', c.assignment === 'paused' ? '--assignment' : '']
      .filter(Boolean)
      .join(' ');
    return {
      name: 'control',
      status: 'warn',
      detail: describeControl(c),
      fix: `work waits until it is resumed: agentcom resume ${parts}`,
    };
  } catch (err) {
    return {
      name: 'control',
      status: 'warn',
      detail: `the control value cannot be read: ${(err as Error).message}`,
      fix: 'agentcom resume writes a valid one (both running)',
    };
  }
}

async function exists(info: () => Promise<unknown>): Promise<boolean> {
  try {
    await info();
    return true;
  } catch {
    return false;
  }
}

const NTP_FIX =
  'run NTP (chrony or systemd-timesyncd) on every hub machine: leases, deadlines and retention use wall-clock time';

/** A hub's answer, with its clock against the midpoint of the round trip that brought it. */
interface HubAnswer {
  hubId: string;
  leader: boolean;
  /** The hub's clock minus this machine's, ms; undefined for a hub that does not report its clock. */
  skew: number | undefined;
}

const answerOf = (reply: z.infer<typeof HubAliveSchema>, sentAt: number, at: number): HubAnswer => ({
  hubId: reply.hubId,
  leader: reply.leader,
  skew: reply.now === undefined ? undefined : reply.now - (sentAt + at) / 2,
});

const skewStatus = (skew: number): CheckStatus =>
  Math.abs(skew) >= SKEW_FAIL_MS ? 'fail' : Math.abs(skew) >= SKEW_WARN_MS ? 'warn' : 'ok';

/** Every hub, asked at once on the all-hubs subject. */
async function askHubs(bus: Bus, waitMs: number): Promise<HubAnswer[]> {
  const sentAt = Date.now();
  const replies = await requestAllTyped(
    bus,
    bus.names.subjects.hubsAlive,
    z.unknown(),
    {},
    HubAliveSchema,
    waitMs,
  );
  return replies.map((r) => answerOf(r.reply, sentAt, r.at));
}

/**
 * The lease, and whether its holder answers and how far its clock is: from the hubs' answers, or,
 * for a holder that does not answer the all-hubs subject (a hub older than it), by asking it alone.
 */
async function leaseChecks(bus: Bus, hubs: HubAnswer[], timeoutMs: number): Promise<Check[]> {
  let lease: z.infer<typeof LeaseSchema> | null;
  try {
    const kv = await openKv(bus, bus.names.buckets.leases, LeaseSchema);
    lease = (await kv.get(LEASE_KEY))?.value ?? null;
  } catch (err) {
    return [
      {
        name: 'lease',
        status: 'fail',
        detail: `cannot read the lease bucket: ${(err as Error).message}`,
        fix: 'start a hub (it provisions the bucket)',
      },
    ];
  }
  const now = Date.now();
  if (!lease || lease.expiresAt < now)
    return [
      {
        name: 'lease',
        status: 'fail',
        detail: lease
          ? `expired ${Math.round((now - lease.expiresAt) / 1000)} s ago (last holder ${lease.holder})`
          : 'no hub has ever held it',
        fix: 'no hub is assigning work: start `agentcom hub` (a standby takes over by itself within a second)',
      },
    ];
  const leaseCheck: Check = {
    name: 'lease',
    status: 'ok',
    detail: `held by ${lease.holder}, expires in ${Math.round((lease.expiresAt - now) / 1000)} s unless renewed`,
  };
  let holder = hubs.find((h) => h.hubId === lease.holder);
  if (!holder) {
    const sentAt = Date.now();
    try {
      const reply = await requestTyped(
        bus,
        bus.names.subjects.hubAlive(lease.holder),
        z.unknown(),
        {},
        HubAliveSchema,
        timeoutMs,
      );
      holder = answerOf(reply, sentAt, Date.now());
    } catch (err) {
      return [
        leaseCheck,
        {
          name: 'leader',
          status: 'fail',
          detail: `${lease.holder} holds the lease but does not answer: ${(err as Error).message}`,
          fix: 'a standby takes the lease once the holder is confirmed gone; if there is no standby, restart `agentcom hub`',
        },
      ];
    }
  }
  if (holder.skew === undefined)
    return [
      leaseCheck,
      { name: 'clock', status: 'warn', detail: `${lease.holder} does not report its clock (an older hub)` },
    ];
  const status = skewStatus(holder.skew);
  const detail = `${lease.holder} is ${Math.abs(Math.round(holder.skew))} ms ${holder.skew >= 0 ? 'ahead of' : 'behind'} this machine`;
  return [leaseCheck, { name: 'clock', status, detail, ...(status === 'ok' ? {} : { fix: NTP_FIX }) }];
}

/** How many hubs answer, which leads (more than one is a failure), and the largest clock skew among them. */
function hubsCheck(hubs: HubAnswer[]): Check {
  if (hubs.length === 0)
    return {
      name: 'hubs',
      status: 'fail',
      detail: 'no hub answers',
      fix: 'start `agentcom hub` (with this prefix); a second one on another machine is a standby that takes over',
    };
  const worst = hubs.reduce<HubAnswer | undefined>(
    (a, b) =>
      b.skew !== undefined && (a?.skew === undefined || Math.abs(b.skew) > Math.abs(a.skew)) ? b : a,
    undefined,
  );
  const skew = worst?.skew ?? 0;
  const list = hubs.map((h) => `${h.hubId}${h.leader ? ' (leader)' : ''}`).join(', ');
  const detail = `${hubs.length} answer: ${list}; largest clock difference to this machine ${Math.abs(Math.round(skew))} ms${worst ? ` (${worst.hubId})` : ''}`;
  if (hubs.filter((h) => h.leader).length > 1)
    return {
      name: 'hubs',
      status: 'fail',
      detail: `${detail}; more than one says it leads`,
      fix: 'check the clocks (NTP) and the network between the hubs; the lease decides, and the extra leader stops at its next renewal',
    };
  const status = skewStatus(skew);
  return { name: 'hubs', status, detail, ...(status === 'ok' ? {} : { fix: NTP_FIX }) };
}

/** Seeds must be readable by their owner only. */
export function authFilesCheck(authDir: string): Check {
  const paths = authDirPaths(authDir);
  if (!existsSync(paths.root))
    return {
      name: 'auth files',
      status: 'fail',
      detail: `${paths.root} does not exist`,
      fix: 'start the hub with --auth-dir <dir> (it creates the directory), or point --auth-dir at the right one',
    };
  const seeds = [paths.hubSeed, paths.adminSeed];
  const agents = join(paths.root, 'agents');
  if (existsSync(agents))
    for (const id of readdirSync(agents)) {
      const f = join(agents, id, 'agent.nk');
      if (existsSync(f)) seeds.push(f);
    }
  const open = seeds.filter((f) => existsSync(f) && (statSync(f).mode & 0o077) !== 0);
  if (open.length > 0)
    return {
      name: 'auth files',
      status: 'fail',
      detail: `readable by others: ${open.join(', ')} (whoever reads a seed is that user)`,
      fix: `chmod 600 ${open.join(' ')}`,
    };
  return {
    name: 'auth files',
    status: 'ok',
    detail: `${seeds.filter((f) => existsSync(f)).length} seeds in ${paths.root}, each 0600`,
  };
}

async function diskCheck(dataDir: string): Promise<Check> {
  const where = existsSync(dataDir) ? dataDir : process.cwd();
  const s = await statfs(where);
  const free = s.bavail * s.bsize;
  const total = s.blocks * s.bsize;
  const detail = `${(free / GiB).toFixed(1)} GiB free of ${(total / GiB).toFixed(1)} GiB at ${where}`;
  const fix =
    'free space, or move the data directory (--data-dir) to a larger disk: JetStream stops accepting writes when the disk is full';
  if (free < 0.1 * GiB) return { name: 'disk', status: 'fail', detail, fix };
  if (free < GiB || free < 0.1 * total) return { name: 'disk', status: 'warn', detail, fix };
  return { name: 'disk', status: 'ok', detail };
}
