/**
 * `agentcom pause|resume` and `agentcom config get|set` through the real command against a real
 * hub on a test nats-server: what they print, what they store, the refusals while intake is paused
 * (`task submit` exits 69 saying so; `doctor` warns), and bad flags refused with exit 2 before the
 * hub is asked, storing nothing.
 */
import { describe, expect, it } from 'vitest';
import { configSetRequest, controlRequest } from '../../src/cli/control.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import type { Control } from '../../src/protocol/control.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import type { ConfigReply } from '../../src/protocol/runtime-config.js';
import { useCliHub } from '../support/cli-hub.js';

const h = useCliHub('clictl');

describe('agentcom pause / resume', () => {
  it('pauses intake with a reason, refuses submits meanwhile, shows it in doctor, and resumes', async () => {
    const paused = await h.cli('pause', '--intake', '--reason', 'nightly maintenance', '--json');
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.json<Control>()).toMatchObject({
      intake: 'paused',
      assignment: 'running',
      reason: 'nightly maintenance',
      by: expect.stringMatching(/^cli/),
    });
    expect(await h.api.control()).toMatchObject({ intake: 'paused', assignment: 'running' });

    const submit = await h.cli('task', 'submit', 'refused while paused', '--json');
    expect(submit.code).toBe(EXIT.UNAVAILABLE);
    expect(JSON.parse(submit.stderr).error).toMatchObject({
      code: ERROR_CODES.UNAVAILABLE,
      message: expect.stringMatching(/intake is paused .*nightly maintenance/),
    });

    const doctor = await h.cli('doctor', '--json');
    const control = doctor
      .json<{ checks: { name: string; status: string; detail: string; fix?: string }[] }>()
      .checks.find((c) => c.name === 'control');
    expect(control).toMatchObject({ status: 'warn', fix: expect.stringMatching(/agentcom resume --intake/) });

    const human = await h.cli('resume');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^intake running, assignment running \(changed .*by cli/);
    expect(await h.api.control()).toMatchObject({ intake: 'running', assignment: 'running' });
    const again = await h.cli('task', 'submit', 'taken again', '--json');
    expect(again.code, again.stderr).toBe(0);
  });

  it('builds requests from flags: both parts by default, a reason within bounds', () => {
    expect(controlRequest({})).toEqual({ by: expect.any(String) });
    expect(controlRequest({ assignment: true, reason: 'x' })).toMatchObject({
      assignment: true,
      reason: 'x',
    });
    expect(() => controlRequest({ reason: 'r'.repeat(501) })).toThrow(/--reason/);
  });
});

describe('agentcom config get / set', () => {
  it('shows where each timeout comes from, changes one at runtime, and puts it back', async () => {
    const before = await h.cli('config', 'get', '--json');
    expect(before.code, before.stderr).toBe(0);
    const b = before.json<ConfigReply>();
    expect(b.timeouts.acceptTimeoutMs).toMatchObject({ source: 'hub' });
    expect(b.control).toMatchObject({ intake: 'running', assignment: 'running' });

    const set = await h.cli('config', 'set', '--accept-timeout', '45s', '--blocked-timeout', '2h', '--json');
    expect(set.code, set.stderr).toBe(0);
    const s = set.json<ConfigReply>();
    expect(s.timeouts.acceptTimeoutMs).toEqual({
      ms: 45_000,
      source: 'runtime',
      hubMs: b.timeouts.acceptTimeoutMs.ms,
    });
    expect(s.timeouts.blockedTimeoutMs).toMatchObject({ ms: 7_200_000, source: 'runtime' });
    expect(s.timeouts.progressTimeoutMs).toEqual(b.timeouts.progressTimeoutMs);

    const human = await h.cli('config', 'get');
    expect(human.stdout).toMatch(/accept\s+45s\s+runtime \(hub: /);
    expect(human.stdout).toMatch(/progress\s+\S+\s+hub\n/);
    expect(human.stdout).toMatch(/control: intake running, assignment running/);

    const reset = await h.cli(
      'config',
      'set',
      '--accept-timeout',
      'default',
      '--blocked-timeout',
      'default',
      '--json',
    );
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.json<ConfigReply>().timeouts).toEqual(b.timeouts);
  });

  it('refuses bad flags with exit 2 naming the flag, and stores nothing', async () => {
    const stored = (await h.api.config()).stored;
    for (const [f, message] of [
      [{ acceptTimeout: '0s' }, /--accept-timeout must be longer than 0/],
      [{ acceptTimeout: '50ms' }, /--accept-timeout must be between 100ms and 1d/],
      [{ progressTimeout: '8d' }, /--progress-timeout must be between 100ms and 7d/],
      [{ blockedTimeout: '30' }, /--blocked-timeout must be a duration/],
      [{}, /give at least one of --accept-timeout/],
    ] as const) {
      expect(() => configSetRequest(f), JSON.stringify(f)).toThrow(message);
    }
    // Through the real command: exit 2, a structured error, before the hub is asked.
    for (const args of [['--accept-timeout', '50ms'], []]) {
      const r = await h.cli('config', 'set', ...args, '--json');
      expect(r.code, args.join(' ')).toBe(EXIT.USAGE);
      expect(JSON.parse(r.stderr).error, args.join(' ')).toMatchObject({
        code: ERROR_CODES.INVALID_PAYLOAD,
        path: ['acceptTimeout'],
      });
    }
    expect((await h.api.config()).stored).toEqual(stored);
    // The same bounds hold at the hub, for clients that skip the CLI's checks.
    await expect(h.api.setConfig({ timeouts: { progressTimeoutMs: 8 * 86_400_000 } })).rejects.toMatchObject({
      code: ERROR_CODES.INVALID_PAYLOAD,
      path: ['timeouts', 'progressTimeoutMs'],
    });
    expect(configSetRequest({ acceptTimeout: '1m30s' }).timeouts).toEqual({ acceptTimeoutMs: 90_000 });
  });
});
