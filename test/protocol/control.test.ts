/**
 * The control value (pause and resume) and the runtime timeouts, pure: which parts a request
 * names, what a pause or resume changes (and that a repeated one changes nothing), the bounds of
 * the timeouts and how a config.set patch lands on the stored overrides.
 */
import { describe, expect, it } from 'vitest';
import {
  type Control,
  ControlSchema,
  changeControl,
  DEFAULT_CONTROL,
  HubControlRequestSchema,
  requestedParts,
} from '../../src/protocol/control.js';
import {
  ConfigSetRequestSchema,
  describeTimeouts,
  effectiveTimeouts,
  patchTimeouts,
  type TimeoutValues,
} from '../../src/protocol/runtime-config.js';

const req = (r: object) => HubControlRequestSchema.parse({ v: 1, ...r });
const HUB: TimeoutValues = { acceptTimeoutMs: 30_000, progressTimeoutMs: 300_000, blockedTimeoutMs: 600_000 };

describe('requestedParts', () => {
  it('names both parts when the request names neither, else only those set true', () => {
    expect(requestedParts(req({}))).toEqual(['intake', 'assignment']);
    expect(requestedParts(req({ intake: true }))).toEqual(['intake']);
    expect(requestedParts(req({ assignment: true, intake: false }))).toEqual(['assignment']);
    expect(requestedParts(req({ intake: true, assignment: true }))).toEqual(['intake', 'assignment']);
  });

  it('refuses a request that names no part at all', () => {
    const r = HubControlRequestSchema.safeParse({ v: 1, intake: false, assignment: false });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['intake']);
  });
});

describe('changeControl', () => {
  it('pauses only the parts named, recording who, when and why', () => {
    const next = changeControl(
      DEFAULT_CONTROL,
      'pause',
      req({ intake: true, reason: 'deploy', by: 'ops' }),
      5,
    );
    expect(next).toEqual({
      v: 1,
      intake: 'paused',
      assignment: 'running',
      at: 5,
      reason: 'deploy',
      by: 'ops',
    });
    expect(ControlSchema.parse(next)).toEqual(next);
  });

  it('changes nothing when every named part is already in the asked state', () => {
    const paused: Control = { v: 1, intake: 'paused', assignment: 'paused', at: 1, reason: 'first' };
    expect(changeControl(paused, 'pause', req({ reason: 'second' }), 9)).toBeNull();
    expect(changeControl(DEFAULT_CONTROL, 'resume', req({}), 9)).toBeNull();
  });

  it('resumes one part and leaves the other paused', () => {
    const paused: Control = { v: 1, intake: 'paused', assignment: 'paused', at: 1 };
    expect(changeControl(paused, 'resume', req({ assignment: true }), 7)).toEqual({
      v: 1,
      intake: 'paused',
      assignment: 'running',
      at: 7,
    });
  });
});

describe('runtime timeouts', () => {
  it('takes the stored overrides over the hub values, and says where each comes from', () => {
    const stored = { v: 1 as const, at: 1, acceptTimeoutMs: 500 };
    expect(effectiveTimeouts(HUB, stored)).toEqual({ ...HUB, acceptTimeoutMs: 500 });
    expect(effectiveTimeouts(HUB, null)).toEqual(HUB);
    const d = describeTimeouts(HUB, stored);
    expect(d.acceptTimeoutMs).toEqual({ ms: 500, source: 'runtime', hubMs: 30_000 });
    expect(d.progressTimeoutMs).toEqual({ ms: 300_000, source: 'hub', hubMs: 300_000 });
  });

  it('patches: a duration becomes ms, null removes an override, a no-op is null', () => {
    const set = ConfigSetRequestSchema.parse({
      v: 1,
      timeouts: { acceptTimeoutMs: '1m30s', progressTimeoutMs: 60_000 },
    });
    const stored = patchTimeouts(null, set.timeouts!, 'ops', 10);
    expect(stored).toEqual({ v: 1, at: 10, by: 'ops', acceptTimeoutMs: 90_000, progressTimeoutMs: 60_000 });
    expect(patchTimeouts(stored, { acceptTimeoutMs: 90_000 }, undefined, 11)).toBeNull();
    expect(patchTimeouts(stored, { acceptTimeoutMs: null }, undefined, 12)).toEqual({
      v: 1,
      at: 12,
      progressTimeoutMs: 60_000,
    });
  });

  it('refuses values out of bounds, unknown timeouts and bare numbers in strings, naming the field', () => {
    const cases: [unknown, (string | number)[]][] = [
      [{ acceptTimeoutMs: 0 }, ['timeouts', 'acceptTimeoutMs']],
      [{ acceptTimeoutMs: -5 }, ['timeouts', 'acceptTimeoutMs']],
      [{ acceptTimeoutMs: '2d' }, ['timeouts', 'acceptTimeoutMs']],
      [{ blockedTimeoutMs: '31d' }, ['timeouts', 'blockedTimeoutMs']],
      [{ progressTimeoutMs: '30' }, ['timeouts', 'progressTimeoutMs']],
      [{ acceptTimeout: '30s' }, ['timeouts']],
    ];
    for (const [timeouts, path] of cases) {
      const r = ConfigSetRequestSchema.safeParse({ v: 1, timeouts });
      expect(r.success, JSON.stringify(timeouts)).toBe(false);
      expect(r.error?.issues[0]?.path.slice(0, path.length), JSON.stringify(timeouts)).toEqual(path);
    }
  });
});
