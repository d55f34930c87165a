/**
 * `agentcom hub` as a user runs it: configuration errors exit 2 with the offending option named,
 * before anything starts (no nats-server spawned, nothing written). Its happy path and graceful
 * shutdown run in the e2e tests (test/support/hub-process.ts).
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

describe('agentcom hub (configuration errors)', () => {
  it.each([
    [['--nats-port', 'seventy'], /natsPort/],
    [['--nats-url', 'http://localhost:4222'], /natsUrl.*nats:\/\//],
    [['--prefix', 'Has Spaces'], /prefix/],
    [['--log-level', 'loud'], /logLevel/],
  ])('%j exits 2 naming the option', async (args, message) => {
    const r = await runCli(['hub', ...args], { env: { NATS_URL: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^agentcom hub: /);
    expect(r.stderr).toMatch(message);
  });

  it('an unknown flag is a usage error (exit 2) with a pointer to --help', async () => {
    const r = await runCli(['hub', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
    expect(r.stderr).toContain('--help');
  });
});
