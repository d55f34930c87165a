/**
 * @module hub/auth/reload
 * Makes a running nats-server re-read its config (users and permissions) by sending SIGHUP to the
 * pid in its pid file, as `nats-server --signal reload` does. On reload the server applies new
 * permissions to live connections and closes those whose user is gone. The outcome is a value:
 * no pid file, a pid that is not running, or a pid that is not a nats-server (checked on Linux
 * through /proc, so a recycled pid never gets a SIGHUP, which would kill most programs).
 *
 * It does not wait for the reload to finish (the server applies it asynchronously): callers verify
 * the effect (connect as the user) with a deadline.
 */
import { readFile } from 'node:fs/promises';
import { processExists } from './auth-dir.js';

export type ReloadResult =
  | { ok: true; pid: number }
  | { ok: false; reason: 'no_pid_file' | 'not_running' | 'not_nats_server'; message: string };

export async function reloadNatsServer(pidFile: string): Promise<ReloadResult> {
  const text = await readFile(pidFile, 'utf8').catch(() => null);
  const pid = text === null ? Number.NaN : Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0)
    return {
      ok: false,
      reason: 'no_pid_file',
      message: `no nats-server pid in ${pidFile}: is the server running with this config (nats-server -c, or agentcom hub --auth-dir)?`,
    };
  if (!processExists(pid))
    return {
      ok: false,
      reason: 'not_running',
      message: `nats-server pid ${pid} (from ${pidFile}) is not running`,
    };
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (cmdline !== null && !cmdline.includes('nats-server'))
    return {
      ok: false,
      reason: 'not_nats_server',
      message: `pid ${pid} (from ${pidFile}) is not a nats-server; not signalling it`,
    };
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    return {
      ok: false,
      reason: 'not_running',
      message: `cannot signal nats-server pid ${pid}: ${(err as Error).message}`,
    };
  }
  return { ok: true, pid };
}
