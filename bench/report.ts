/**
 * @module bench/report
 * What the benches that print JSON share to describe a run: latency distributions and ratios, the
 * command that reproduces the run, and the code it measured (the commit and any edited files).
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { nowMs, percentile, sleep } from './peers/common.js';
import { natsServerVersion } from './peers/nats.js';

export interface Dist {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function dist(xs: ArrayLike<number>): Dist {
  const a = Array.from(Float64Array.from(xs).sort());
  return {
    count: a.length,
    p50: percentile(a, 50),
    p90: percentile(a, 90),
    p99: percentile(a, 99),
    max: a.length ? a[a.length - 1]! : Number.NaN,
    mean: a.length ? a.reduce((x, y) => x + y, 0) / a.length : Number.NaN,
  };
}

/** a / b, or null when either is not a finite number (or b is not positive). */
export const ratio = (a: number, b: number) =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null;

export const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Waits until `cond` holds (true) or `ms` pass (false). */
export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = nowMs() + ms;
  while (!cond()) {
    if (nowMs() > end) return false;
    await sleep(10);
  }
  return true;
}

/** The command that runs this bench again with these arguments (`script`: its path from the root). */
export function commandLine(script: string, args: readonly string[]): string {
  const ev = process.env.npm_lifecycle_event;
  const rest = args.join(' ');
  if (ev) return `npm run ${ev}${rest ? ` -- ${rest}` : ''}`;
  return `npx tsx ${script}${rest ? ` ${rest}` : ''}`;
}

/** The code measured: the commit, and the files that differ from it (a work tree being edited). */
export function sourceState(): { commit: string; dirty: string[] } | null {
  try {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const git = (...a: string[]) => execFileSync('git', a, { cwd: root, encoding: 'utf8' });
    return {
      commit: git('rev-parse', 'HEAD').trim(),
      dirty: git('status', '--porcelain', '--untracked-files=all', '--', 'src', 'actors', 'bench')
        .split('\n')
        .filter(Boolean),
    };
  } catch {
    return null;
  }
}

/** The load average now (1, 5, 15 minutes), two decimals. */
export const loadAverage = (): number[] => loadavg().map((x) => Number(x.toFixed(2)));

/** The machine a bench ran on, for its JSON (`loadavgEnd` is added by the bench at its end). */
export async function machineInfo() {
  return {
    cpus: cpus().length,
    model: cpus()[0]?.model,
    node: process.version,
    natsServer: await natsServerVersion(),
    loadavgStart: loadAverage(),
  };
}
