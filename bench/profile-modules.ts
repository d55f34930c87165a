/**
 * Where a process's CPU went, by module: the self time of a V8 CPU profile (`node --cpu-prof`,
 * e.g. the hub's under `HUB_PROF=1 npx tsx bench/hub.ts ...`) summed per npm package, per file of
 * this project, per Node internal and for native code, as a share of the busy (non-idle) samples.
 * Prints JSON, largest first. With `--under`, also the share of busy samples spent in or below
 * the given modules (comma-separated prefixes of the names above, e.g. `src/gateway/`): what a
 * part costs with everything it calls, where self time spreads it over nats.js, zod and JSON.
 *   npx tsx bench/profile-modules.ts <file.cpuprofile | directory (its largest profile)> [--top 25]
 *     [--under src/gateway/,src/bus/kv-tail.ts]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, under: { type: 'string' } },
});
const target = positionals[0];
if (!target) throw new Error('usage: profile-modules <file.cpuprofile | directory> [--top N]');
const file = statSync(target).isDirectory() ? largestProfile(target) : target;
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[] };

const moduleOf = new Map(profile.nodes.map((n) => [n.id, moduleName(n.callFrame)]));
const samples = new Map<string, number>();
for (const id of profile.samples) {
  const m = moduleOf.get(id) ?? '(unknown)';
  samples.set(m, (samples.get(m) ?? 0) + 1);
}
const busy = profile.samples.length - (samples.get('(idle)') ?? 0);
samples.delete('(idle)');
const shares = [...samples]
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(values.top))
  .map(([module, n]) => ({ module, percent: Math.round((1000 * n) / busy) / 10 }));
const under = values.under ? inclusiveShare(values.under.split(',')) : undefined;
process.stdout.write(`${JSON.stringify({ file, busySamples: busy, shares, under }, null, 2)}\n`);

/** Percent of busy samples with a frame of a module starting with one of `prefixes` on the stack. */
function inclusiveShare(prefixes: string[]): { prefixes: string[]; percent: number } {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inside = (id: number) => prefixes.some((p) => moduleOf.get(id)?.startsWith(p));
  let n = 0;
  for (const id of profile.samples) {
    if (moduleOf.get(id) === '(idle)') continue;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at))
      if (inside(at)) {
        n++;
        break;
      }
  }
  return { prefixes, percent: Math.round((1000 * n) / busy) / 10 };
}

function moduleName(f: ProfileNode['callFrame']): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(f.url);
  if (pkg) return pkg[1]!;
  if (f.url.startsWith('node:')) return `node:${f.url.slice(5).split('/')[0]}`;
  const own =
    f.url.indexOf('/bench/') >= 0
      ? /\/(bench\/.*)$/.exec(f.url)
      : /\/((src|actors|machines)\/.*)$/.exec(f.url);
  return own ? own[1]! : f.url;
}

function largestProfile(dir: string): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f));
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
}
