/**
 * When the slow samples of a latency run happened: reads a `LATENCY_DUMP` file of the hub
 * benchmark ([submitted at, ms to handler start] per sample) and prints JSON with, per window of
 * the measured period, the sample count, the p50 and the worst sample, and the number of samples
 * over `--slow` ms. A backlog shows as a falling p50 at the start; stalls as isolated bad windows.
 *   npx tsx bench/latency-windows.ts /tmp/lat.1.json [--window 250] [--slow 5]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { window: { type: 'string', default: '250' }, slow: { type: 'string', default: '5' } },
});
const file = positionals[0];
if (!file) throw new Error('usage: latency-windows <dump.json> [--window ms] [--slow ms]');
const windowMs = Number(values.window);
const slowMs = Number(values.slow);

const samples = JSON.parse(readFileSync(file, 'utf8')) as [number, number][];
const t0 = samples[0]?.[0] ?? 0;
const windows = new Map<number, number[]>();
for (const [at, ms] of samples) {
  const w = Math.floor((at - t0) / windowMs) * windowMs;
  const list = windows.get(w) ?? [];
  list.push(ms);
  windows.set(w, list);
}
const round = (x: number) => Number(x.toFixed(2));
console.log(
  JSON.stringify(
    {
      samples: samples.length,
      windowMs,
      slowMs,
      slow: samples.filter(([, ms]) => ms > slowMs).length,
      windows: [...windows].map(([fromMs, list]) => {
        list.sort((a, b) => a - b);
        return {
          fromMs,
          n: list.length,
          p50: round(list[list.length >> 1]!),
          max: round(list[list.length - 1]!),
        };
      }),
    },
    null,
    1,
  ),
);
