#!/usr/bin/env node
// The `agentcom` command. In a checkout (src/ present) it runs the TypeScript sources through tsx,
// so `npx agentcom` works right after `npm ci` with no build step and never runs a stale dist/;
// an installed package (no src/) runs the compiled dist/ that `npm run build` produces.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/src/cli/main.js');
}
