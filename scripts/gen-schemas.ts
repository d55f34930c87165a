/**
 * Writes docs/schemas/*.json from the zod schema registry (src/protocol/schemas.ts) and removes
 * schema files no longer in it. `--check` writes nothing and exits 1 when the files are stale.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderJsonSchemas } from '../src/protocol/schemas.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'schemas');
const check = process.argv.includes('--check');
const wanted = renderJsonSchemas();
await mkdir(dir, { recursive: true });
const existing = (await readdir(dir)).filter((f) => f.endsWith('.json'));
const stale: string[] = [];
for (const [file, content] of wanted) {
  const current = await readFile(join(dir, file), 'utf8').catch(() => null);
  if (current === content) continue;
  stale.push(file);
  if (!check) await writeFile(join(dir, file), content);
}
for (const file of existing) {
  if (wanted.has(file)) continue;
  stale.push(file);
  if (!check) await rm(join(dir, file));
}
if (check && stale.length) {
  console.error(`docs/schemas is stale (${stale.join(', ')}): run npm run gen:schemas`);
  process.exit(1);
}
console.log(
  check ? 'docs/schemas is up to date' : `docs/schemas: ${wanted.size} schemas, ${stale.length} changed`,
);
