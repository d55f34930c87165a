/**
 * `npm run chaos`: one chaos run (run.ts) with the defaults of CHAOS_DEFAULTS or the flags given
 * (`--seed 7 --tasks 2000 --agent-kills 10 ...`, each option's name in kebab case), printing the
 * result as JSON on stdout (progress on stderr) and exiting 1 when the checker found a violation.
 * `--out <dir>` keeps history.jsonl and report.json there.
 *   npm run chaos -- --seed 3
 */
import { CHAOS_DEFAULTS, type ChaosOptions, runChaos } from './run.js';

const args = process.argv.slice(2);
const options: Partial<ChaosOptions> = {};
for (const key of Object.keys(CHAOS_DEFAULTS) as (keyof ChaosOptions)[]) {
  const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  const i = args.indexOf(flag);
  if (i < 0) continue;
  const value = Number(args[i + 1]);
  if (!Number.isFinite(value)) {
    console.error(`${flag} needs a number`);
    process.exit(2);
  }
  (options as Record<string, number>)[key] = value;
}
const out = args.indexOf('--out');
if (out >= 0) options.outDir = args[out + 1];
const result = await runChaos({ ...options, log: (l) => process.stderr.write(`${l}\n`) });
console.log(JSON.stringify(result, null, 2));
process.exit(result.report.ok ? 0 : 1);
