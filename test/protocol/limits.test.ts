/**
 * The pure parts of rate limiting and suspension (docs/security.md, "Rate limits" and "Suspension"): the token buckets,
 * which rate applies to whom, the violation window, suspension lengths, the submitter read from a
 * subject, idempotency keys scoped per submitter, and suspended agents left out of the server
 * config.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { suspensionMs, ViolationTracker } from '../../actors/presence/violations.js';
import { natsConfigInput, withSuspensions } from '../../src/hub/auth/registry.js';
import {
  DEFAULT_LIMITS,
  DEFAULT_RATES,
  DEFAULT_VIOLATION_POLICY,
  LimitsSchema,
  rateFor,
} from '../../src/protocol/limits.js';
import { names, parseSubmitSubject } from '../../src/protocol/subjects.js';
import { taskIdForSubmit } from '../../src/protocol/task-id.js';
import { KeyedRateLimiter } from '../../src/runtime/rate-limit.js';

describe('KeyedRateLimiter', () => {
  const rate = { perSecond: 10, burst: 3 };

  it('admits a burst, then one per 1/perSecond, and says how long to wait', () => {
    const l = new KeyedRateLimiter(() => rate);
    expect([0, 0, 0].map(() => l.take('a', 1_000))).toEqual([0, 0, 0]);
    expect(l.take('a', 1_000)).toBe(100);
    expect(l.take('a', 1_050)).toBe(50);
    expect(l.has('a', 1_100)).toBe(true);
    expect(l.take('a', 1_100)).toBe(0);
    expect(l.has('a', 1_100)).toBe(false);
    // Another key has its own bucket.
    expect(l.has('b', 1_100)).toBe(true);
    expect(l.take('b', 1_100)).toBe(0);
  });

  it('never admits more than burst + elapsed * rate (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 200 }), (gaps) => {
        const l = new KeyedRateLimiter(() => rate);
        let now = 0;
        let admitted = 0;
        for (const g of gaps) {
          now += g;
          if (l.take('k', now) === 0) admitted++;
        }
        expect(admitted).toBeLessThanOrEqual(rate.burst + Math.floor((now * rate.perSecond) / 1000));
      }),
    );
  });

  it('reserve admits what is over the rate up to a horizon, spaced at the rate; take sees the debt', () => {
    const l = new KeyedRateLimiter(() => rate);
    const waits = Array.from({ length: 7 }, () => l.reserve('a', 0, 300));
    expect(waits).toEqual([0, 0, 0, 100, 200, 300, null]);
    expect(l.take('a', 0)).toBe(400);
    expect(l.take('a', 400)).toBe(0);
  });

  it('treats null as unlimited and forgets idle buckets', () => {
    const unlimited = new KeyedRateLimiter(() => null);
    for (let i = 0; i < 1_000; i++) expect(unlimited.take('a', 0)).toBe(0);
    const l = new KeyedRateLimiter(() => rate);
    for (let i = 0; i < 5_000; i++) l.take(`agent-${i}`, i);
    // Full buckets are swept as new keys arrive: only the recent senders are held.
    expect(l.size).toBeLessThan(2_100);
  });

  it('does not drain a bucket when the clock steps back', () => {
    const l = new KeyedRateLimiter(() => rate);
    l.take('a', 10_000);
    expect(l.take('a', 5_000)).toBe(0);
  });
});

describe('limits', () => {
  it('applies overrides, the whitelist and the defaults', () => {
    const limits = LimitsSchema.parse({
      v: 1,
      rates: { reports: { perSecond: 5, burst: 5 } },
      overrides: { bulk: 'unlimited', chatty: { reports: { perSecond: 100, burst: 100 } } },
    });
    expect(rateFor(limits, 'x', 'reports')).toEqual({ perSecond: 5, burst: 5 });
    expect(rateFor(limits, 'x', 'hellos')).toEqual(DEFAULT_RATES.hellos);
    expect(rateFor(limits, 'chatty', 'reports')).toEqual({ perSecond: 100, burst: 100 });
    expect(rateFor(limits, 'chatty', 'submits')).toEqual(DEFAULT_RATES.submits);
    expect(rateFor(limits, 'bulk', 'reports')).toBeNull();
    expect(rateFor(DEFAULT_LIMITS, 'x', 'refusals')).toEqual(DEFAULT_RATES.refusals);
  });

  it('refuses a malformed document with the offending path', () => {
    const r = LimitsSchema.safeParse({ v: 1, rates: { reports: { perSecond: -1, burst: 1 } } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['rates', 'reports', 'perSecond']);
    expect(LimitsSchema.safeParse({ v: 1, overrides: { 'not an id!': 'unlimited' } }).success).toBe(false);
    // A typo is refused, not stored as a setting that does nothing.
    expect(LimitsSchema.safeParse({ v: 1, rates: { report: { perSecond: 1, burst: 1 } } }).success).toBe(
      false,
    );
    expect(
      LimitsSchema.safeParse({ v: 1, overrides: { a: { hello: { perSecond: 1, burst: 1 } } } }).success,
    ).toBe(false);
    expect(LimitsSchema.safeParse({ v: 1, violation: {} }).success).toBe(false);
  });
});

describe('ViolationTracker', () => {
  const policy = { ...DEFAULT_VIOLATION_POLICY, threshold: 3, windowMs: 1_000 };

  it('suspends at the threshold within the window, and only then', () => {
    const t = new ViolationTracker();
    expect(t.record('a', 0, policy)).toBe(false);
    expect(t.record('a', 100, policy)).toBe(false);
    // The first one has left the window by now: two in the window, not three.
    expect(t.record('a', 1_050, policy)).toBe(false);
    expect(t.record('a', 1_060, policy)).toBe(true);
    // The count starts again after a suspension.
    expect(t.count('a', 1_060, policy)).toBe(0);
    expect(t.record('b', 1_060, policy)).toBe(false);
  });

  it('doubles each suspension up to the maximum', () => {
    const p = { ...DEFAULT_VIOLATION_POLICY, suspendMs: 1_000, maxSuspendMs: 5_000 };
    expect([1, 2, 3, 4, 100].map((n) => suspensionMs(p, n))).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });
});

describe('submitters', () => {
  const n = names('acme');

  it('reads the submitter from the subject, never the payload', () => {
    expect(parseSubmitSubject(n, 'acme.task.submit')).toEqual({ submitter: null });
    expect(parseSubmitSubject(n, 'acme.task.submit.a1')).toEqual({ submitter: 'a1' });
    expect(parseSubmitSubject(n, 'acme.api.task.submit')).toEqual({ submitter: null });
    expect(parseSubmitSubject(n, 'acme.api.task.submit.a1')).toEqual({ submitter: 'a1' });
    expect(parseSubmitSubject(n, 'acme.task.submit.a1.action')).toEqual({ submitter: 'a1', queue: 'action' });
    expect(parseSubmitSubject(n, 'acme.api.task.submit.a1.action')).toEqual({
      submitter: 'a1',
      queue: 'action',
    });
    expect(parseSubmitSubject(n, 'acme.task.submit.a1.x.y')).toBeUndefined();
    expect(parseSubmitSubject(n, 'acme.agent.a1.report')).toBeUndefined();
  });

  it('scopes an idempotency key to its submitter; trusted clients keep one namespace', () => {
    const id = (submitter: string | null) => taskIdForSubmit({ idempotencyKey: 'k', submitter, now: 0 });
    expect(id('a')).not.toBe(id('b'));
    expect(id('a')).not.toBe(id(null));
    expect(id('a')).toBe(id('a'));
    // Unchanged for trusted clients: the ids of keys submitted before submitters existed.
    expect(id(null)).toBe(taskIdForSubmit({ idempotencyKey: 'k', now: 1 }));
    // Without a key, an agent's message id is hashed with its id too (prefix a): it cannot name a
    // keyed task, a trusted client's task, or another agent's.
    const byMsg = (submitter: string | null, msgId: string) => taskIdForSubmit({ msgId, submitter, now: 0 });
    expect(byMsg(null, 'order-42')).toBe('order-42');
    expect(byMsg('a', 'order-42')).toMatch(/^a[0-9a-f]{32}$/);
    expect(byMsg('a', id('b'))).not.toBe(id('b'));
    expect(byMsg('a', 'm')).not.toBe(byMsg('b', 'm'));
  });
});

describe('suspensions in the auth registry', () => {
  const key = (c: string) => `U${c.repeat(55)}`;
  const agent = (id: string, c: string) => ({
    id,
    name: id,
    capabilities: [],
    queues: ['default'],
    slots: 1,
    canSubmit: false,
    publicKey: key(c),
    dir: `/x/${id}`,
    createdAt: 0,
  });
  const reg = {
    v: 1 as const,
    prefix: 'acme',
    listen: '127.0.0.1:4222',
    storeDir: '/x/store',
    hub: { publicKey: key('H') },
    admin: { publicKey: key('A') },
    agents: [agent('a', 'B'), agent('b', 'C')],
  } as never;

  it('leaves a suspended agent out of the server config until its suspension ends', () => {
    const suspended = withSuspensions(reg, new Map([['a', 5_000]]), 1_000);
    expect(suspended).not.toBeNull();
    const users = (now: number) => natsConfigInput(suspended!, '/x/pid', now).users.map((u) => u.label);
    expect(users(1_000)).toEqual(['hub', 'admin', 'agent b']);
    expect(users(5_000)).toEqual(['hub', 'admin', 'agent a', 'agent b']);
    // Unchanged: null; ended: cleared.
    expect(withSuspensions(suspended!, new Map([['a', 5_000]]), 2_000)).toBeNull();
    const ended = withSuspensions(suspended!, new Map([['a', 5_000]]), 6_000);
    expect(ended?.agents.every((a: { suspendedUntil?: number }) => a.suspendedUntil === undefined)).toBe(
      true,
    );
  });
});
