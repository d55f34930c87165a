/**
 * `npm run fuzz`: 100,000 inputs per inbound subject (run.ts) against a hub process, printed as
 * JSON; exit 1 on any violation.
 *   npm run fuzz -- [--per-target 100000] [--seed 1]
 */
import { runFuzz } from './run.js';

const args = process.argv.slice(2);
const flag = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const result = await runFuzz({
  perTarget: flag('per-target', 100_000),
  seed: flag('seed', 1),
  log: (l) => process.stderr.write(`${l}\n`),
});
console.log(JSON.stringify(result, null, 2));
process.exit(result.ok ? 0 : 1);
