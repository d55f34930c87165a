import { defineConfig } from 'vitest/config';

// Tests that spawn nats-server and OS processes share two cores; keep parallelism modest and
// timeouts generous. Timing floors live in bench/, never in assertions here.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globals: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
