/**
 * @module hub/auth/suspensions
 * Makes the server refuse a suspended agent (docs/security.md, "Suspension"): the leading hub of a deployment
 * with an auth directory follows the suspensions in the config bucket and writes them into the
 * auth registry (`suspendedUntil`), re-renders the server config without those users and reloads
 * the server, which closes their connections and refuses new ones. When a suspension ends (by
 * itself, timed here, or by `agentcom agent restore`) the user is written back the same way.
 * Every other writer of the auth directory (agent add, remove) renders from the same registry, so
 * none of them lets a suspended agent back in early.
 *
 * Without an auth directory (or when the server's pid file is not there, e.g. a remote server)
 * only the hub refuses the agent (its hellos, so its work stops); the log says so once.
 */
import type { Logger } from 'pino';
import { openSuspensions } from '../../../actors/presence/index.js';
import type { Bus } from '../../bus/connection.js';
import { SUSPENSION_KEYS } from '../../protocol/limits.js';
import { exponentialDelay } from '../../runtime/backoff.js';
import {
  type AuthDirPaths,
  readRegistry,
  withAuthDirLock,
  writeNatsConfig,
  writeRegistry,
} from './auth-dir.js';
import { withSuspensions } from './registry.js';
import { reloadNatsServer } from './reload.js';

/** Timers beyond 2^31 ms fire at once; an hour is plenty between checks. */
const MAX_TIMER_MS = 3_600_000;

export interface SuspensionSync {
  handle(): void;
  terminate(): Promise<void>;
}

export async function startSuspensionSync(input: {
  bus: Bus;
  log: Logger;
  paths: AuthDirPaths;
}): Promise<SuspensionSync> {
  const log = input.log.child({ actor: 'auth-suspensions' });
  const kv = await openSuspensions(input.bus);
  /** agent -> until, for every suspension key (ended ones are dropped by withSuspensions). */
  const active = new Map<string, number>();
  for (const key of await kv.keys(SUSPENSION_KEYS)) {
    const got = await kv.get(key);
    if (got) active.set(got.value.agentId, got.value.until);
  }
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let warned = false;
  let failures = 0;

  /** Wakes up for the next end of a suspension (at most an hour ahead: timers overflow), or `ms`. */
  const arm = (ms?: number) => {
    clearTimeout(timer);
    const now = Date.now();
    const next = Math.min(...[...active.values()].filter((u) => u > now));
    const wait = ms ?? (Number.isFinite(next) ? next - now + 5 : undefined);
    if (wait === undefined) return;
    timer = setTimeout(() => schedule(), Math.min(wait, MAX_TIMER_MS));
    timer.unref();
  };

  const sync = async () => {
    const now = Date.now();
    const changed = await withAuthDirLock(input.paths, async () => {
      const reg = await readRegistry(input.paths);
      const next = reg && withSuspensions(reg, active, now);
      if (!next) return false;
      await writeRegistry(input.paths, next);
      return writeNatsConfig(input.paths, next);
    });
    if (changed) {
      const r = await reloadNatsServer(input.paths.pidFile);
      if (r.ok)
        log.info({ phase: 'reload', suspended: [...active.keys()] }, 'server users updated for suspensions');
      else if (!warned) {
        warned = true;
        log.warn({ reason: r.reason }, `suspensions not enforced by the server: ${r.message}`);
      }
    }
  };
  const schedule = () => {
    running = running.then(sync).then(
      () => {
        failures = 0;
        // The next end of a suspension rewrites the config again.
        arm();
      },
      (err) => {
        // A busy auth directory (another agentcom holds its lock), a full disk: try again soon.
        const retryMs = exponentialDelay(failures++, { min: 1_000, max: 60_000 });
        log.warn({ err, retry_ms: retryMs }, 'suspensions not written to the server config; retrying');
        arm(retryMs);
      },
    );
    return running;
  };

  const watch = await kv.watch({ key: SUSPENSION_KEYS, updatesOnly: true });
  void (async () => {
    for await (const c of watch) {
      const id = c.key.slice(c.key.indexOf('.') + 1);
      if (c.value) active.set(c.value.agentId, c.value.until);
      else active.delete(id);
      void schedule();
    }
  })().catch(() => {});
  await schedule();
  return {
    handle() {},
    async terminate() {
      clearTimeout(timer);
      watch.stop();
      await running;
    },
  };
}
