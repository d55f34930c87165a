import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderJsonSchemas, SCHEMAS } from '../../src/protocol/schemas.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'schemas');

describe('docs/schemas', () => {
  it('matches the zod schema registry (run npm run gen:schemas when this fails)', async () => {
    const wanted = renderJsonSchemas();
    expect(wanted.size).toBe(SCHEMAS.length);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual([...wanted.keys()].sort());
    for (const [file, content] of wanted) {
      expect(await readFile(join(dir, file), 'utf8'), file).toBe(content);
    }
  });

  it('names every schema uniquely, as a dotted lowercase name', () => {
    const names = SCHEMAS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[a-z0-9]+(\.[a-z0-9_]+)*$/);
  });
});
