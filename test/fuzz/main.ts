/**
 * `npm run fuzz`: 100,000 inputs per inbound subject (run.ts) against a hub process, printed as
 * JSON; exit 1 on any violation.
 *   npm run fuzz -- [--per-target 100000] [--seed 1] [--only api.task.submit,agent.hello]
 */
import { runFuzz } from './run.js';

const args = process.argv.slice(2);
const flag = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const only = args.indexOf('--only');
const result = await runFuzz({
  perTarget: flag('per-target', 100_000),
  seed: flag('seed', 1),
  ...(only >= 0 ? { only: (args[only + 1] ?? '').split(',').filter(Boolean) } : {}),
  log: (l) => process.stderr.write(`${l}\n`),
});
console.log(JSON.stringify(result, null, 2));
process.exit(result.ok ? 0 : 1);
