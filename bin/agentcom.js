#!/usr/bin/env node
// The `agentcom` command. In a checkout (src/ present) it runs the TypeScript sources through tsx,
// so `npx agentcom` works right after `npm ci` with no build step and never runs a stale dist/;
// an installed package (no src/), or a checkout installed without dev dependencies (no tsx),
// runs the compiled dist/ that `npm run build` produces.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/src/cli/main.js', import.meta.url);

async function tsx() {
  try {
    return await import('tsx/esm/api');
  } catch {
    return undefined;
  }
}

const loader = existsSync(source) ? await tsx() : undefined;
if (loader) {
  loader.register();
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write(
    'agentcom: neither tsx (run `npm ci`, which installs it) nor a build (`npm run build`) is here\n',
  );
  process.exitCode = 1;
}
