/**
 * `npm run fuzz:gateway`: 100,000 requests (gateway-run.ts) against the gateway of a hub process, printed
 * as JSON; exit 1 on any violation. `--replay 17,4242` sends only those requests of the seed and
 * prints each with its answer (a finding's reproduction).
 *   npm run fuzz:gateway -- [--requests 100000] [--seed 1] [--concurrency 32] [--only /api/tasks]
 *     [--replay 17,4242]
 */
import { runGatewayFuzz } from './gateway-run.js';

const args = process.argv.slice(2);
const value = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (name: string, def: number) => {
  const v = value(name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, got ${v}`);
  return n;
};
const only = value('only');
const replay = value('replay');
const result = await runGatewayFuzz({
  requests: num('requests', 100_000),
  seed: num('seed', 1),
  concurrency: num('concurrency', 32),
  ...(only ? { only } : {}),
  ...(replay ? { replay: replay.split(',').map(Number) } : {}),
  log: (l) => process.stderr.write(`${l}\n`),
});
console.log(JSON.stringify(result, null, 2));
process.exit(result.ok || replay ? 0 : 1);
