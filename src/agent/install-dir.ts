/**
 * @module agent/install-dir
 * Where this installation's `agentcom` command lives: `bin/` beside `src/` in a checkout, beside
 * `dist/` in an installed package. Wake commands get it first on their PATH; service units run it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `bin/` directory holding `agentcom` and `agentcom.js`, or undefined if it cannot be found. */
export const AGENTCOM_BIN_DIR: string | undefined = [
  new URL('../../bin/', import.meta.url),
  new URL('../../../bin/', import.meta.url),
]
  .map((u) => fileURLToPath(u))
  .find((dir) => existsSync(join(dir, 'agentcom.js')));
