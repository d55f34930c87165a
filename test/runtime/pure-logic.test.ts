import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NormalizedBackoff } from '../../src/runtime/index.js';
import {
  backoffDelay,
  checkChildSpecs,
  nextAttempt,
  planRestart,
  validateChildSpec,
  validateFlags,
} from '../../src/runtime/index.js';
import { W, worker } from './support.js';

const start = W.ok();

describe('validateChildSpec (OTP check_childspec order, docs/runtime.md §2.3)', () => {
  const cases: [string, unknown, unknown][] = [
    ['a non-object spec', 42, { kind: 'invalid_child_spec', value: 42 }],
    ['no id', { start }, { kind: 'missing_id' }],
    ['no start', { id: 'c' }, { kind: 'missing_start' }],
    [
      'a malformed start',
      { id: 'c', start: { kind: 'mfa' } },
      { kind: 'invalid_start', value: { kind: 'mfa' } },
    ],
    [
      'a bad restart type',
      { id: 'c', start, restart: 'prmanent' },
      { kind: 'invalid_restart_type', value: 'prmanent' },
    ],
    [
      'a bad significant',
      { id: 'c', start, significant: 'maybe' },
      { kind: 'invalid_significant', value: 'maybe' },
    ],
    [
      'a permanent significant child',
      { id: 'c', start, significant: true },
      { kind: 'bad_combination', value: { restart: 'permanent', significant: true } },
    ],
    ['a bad type', { id: 'c', start, type: 'wrker' }, { kind: 'invalid_child_type', value: 'wrker' }],
    ['a negative shutdown', { id: 'c', start, shutdown: -10 }, { kind: 'invalid_shutdown', value: -10 }],
    ['a fractional shutdown', { id: 'c', start, shutdown: 1.5 }, { kind: 'invalid_shutdown', value: 1.5 }],
    ['an empty name', { id: 'c', start, name: '' }, { kind: 'invalid_name', value: '' }],
  ];
  for (const [what, spec, error] of cases) {
    it(`rejects ${what}`, () => {
      expect(validateChildSpec(spec)).toEqual({ ok: false, error });
    });
  }

  it('reports the first failure in OTP order (restart before shutdown)', () => {
    const r = validateChildSpec({ id: 'c', start, restart: 'x', shutdown: -1, type: 'y' });
    expect(r.ok || r.error.kind).toBe('invalid_restart_type');
  });

  it('rejects significant children when autoShutdown is never', () => {
    const r = validateChildSpec({ id: 'c', start, restart: 'transient', significant: true }, 'never');
    expect(r).toEqual({
      ok: false,
      error: { kind: 'bad_combination', value: { autoShutdown: 'never', significant: true } },
    });
  });

  it('rejects invalid backoff options', () => {
    const r = validateChildSpec({ id: 'c', start, backoff: { min: 10, max: 5 } });
    expect(r.ok || r.error.kind).toBe('invalid_backoff');
  });

  it('ignores unknown keys and fills every default', () => {
    const spec = { id: 'child1', start, silly_flag: true };
    expect(validateChildSpec(spec)).toEqual({
      ok: true,
      value: {
        id: 'child1',
        start,
        restart: 'permanent',
        shutdown: 5000,
        type: 'worker',
        significant: false,
        name: undefined,
        backoff: undefined,
      },
    });
    const sup = validateChildSpec({ id: 's', start: { kind: 'supervisor', children: [] } });
    expect(sup.ok && [sup.value.type, sup.value.shutdown]).toEqual(['supervisor', 'infinity']);
    const bk = validateChildSpec({ id: 'b', start, backoff: { min: 10, max: 100 } });
    expect(bk.ok && bk.value.backoff).toEqual({ min: 10, max: 100, factor: 2, jitter: 0.2, resetAfter: 10 });
  });

  it('accepts every combination of valid restart x shutdown x type', () => {
    for (const restart of ['permanent', 'transient', 'temporary'])
      for (const shutdown of [0, 1000, 'infinity', 'brutal_kill'])
        for (const type of ['worker', 'supervisor'])
          expect(
            validateChildSpec({ id: 'c', start: { kind: 'actor', logic: worker }, restart, shutdown, type })
              .ok,
          ).toBe(true);
  });
});

describe('checkChildSpecs', () => {
  it('rejects duplicate ids and non-lists', () => {
    expect(
      checkChildSpecs([
        { id: 'child', start },
        { id: 'child', start },
      ]),
    ).toEqual({
      ok: false,
      error: { kind: 'duplicate_child_name', id: 'child' },
    });
    expect(checkChildSpecs('nope')).toEqual({ ok: false, error: { kind: 'badarg', value: 'nope' } });
  });
});

describe('validateFlags (docs/runtime.md §2.3)', () => {
  it('fills Elixir defaults and ignores unknown keys', () => {
    expect(validateFlags({ silly: 1 })).toEqual({
      ok: true,
      value: { strategy: 'one_for_one', intensity: 3, period: 5000, autoShutdown: 'never' },
    });
  });
  const bad: [unknown, string][] = [
    [{ strategy: 'none_for_one' }, 'invalid_strategy'],
    [{ intensity: Infinity }, 'invalid_intensity'],
    [{ intensity: -1 }, 'invalid_intensity'],
    [{ period: 0 }, 'invalid_period'],
    [{ period: Infinity }, 'invalid_period'],
    [{ autoShutdown: 'sometimes' }, 'invalid_auto_shutdown'],
    [['one_for_one', 1], 'invalid_type'],
    [7, 'invalid_type'],
  ];
  for (const [flags, kind] of bad) {
    it(`rejects ${JSON.stringify(flags)} with ${kind}`, () => {
      const r = validateFlags(flags);
      expect(r.ok || r.error.kind).toBe(kind);
    });
  }
});

describe('planRestart (docs/runtime.md §2.5)', () => {
  const ids = ['ch7', 'ch3', 'ch10', 'ch2', 'ch5'];
  it('one_for_one restarts only the failed child', () => {
    expect(planRestart('one_for_one', ids, 2)).toEqual({ terminate: [], start: ['ch10'] });
  });
  it('one_for_all stops the others newest first and starts everyone in start order', () => {
    expect(planRestart('one_for_all', ids, 2)).toEqual({
      terminate: ['ch5', 'ch2', 'ch3', 'ch7'],
      start: ids,
    });
  });
  it('rest_for_one stops the later children newest first and starts the failed one and the rest', () => {
    expect(planRestart('rest_for_one', ids, 2)).toEqual({
      terminate: ['ch5', 'ch2'],
      start: ['ch10', 'ch2', 'ch5'],
    });
  });
  it('never terminates the failed child and always starts it (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('one_for_one' as const, 'one_for_all' as const, 'rest_for_one' as const),
        fc.integer({ min: 1, max: 20 }),
        fc.nat(),
        (strategy, n, k) => {
          const children = Array.from({ length: n }, (_, i) => i);
          const failed = k % n;
          const plan = planRestart(strategy, children, failed);
          expect(plan.terminate).not.toContain(failed);
          expect(plan.start).toContain(failed);
          // terminate is in reverse start order, start in start order
          expect([...plan.terminate]).toEqual([...plan.terminate].sort((a, b) => b - a));
          expect([...plan.start]).toEqual([...plan.start].sort((a, b) => a - b));
        },
      ),
    );
  });
});

describe('backoff (Akka semantics but jitter downwards, docs/runtime.md §2.8)', () => {
  const b: NormalizedBackoff = { min: 100, max: 1000, factor: 2, jitter: 0.5, resetAfter: 2000 };
  it('doubles from min and caps at max before jitter', () => {
    const noJitter = () => 0;
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, b, noJitter))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });
  it('applies jitter after the cap, downwards: a delay never exceeds max', () => {
    expect(backoffDelay(10, b, () => 0.999)).toBeCloseTo(1000 * (1 - 0.999 * 0.5));
  });
  it('resets the attempt counter after a stable period', () => {
    expect(nextAttempt(5, 1999, b)).toBe(5);
    expect(nextAttempt(5, 2000, b)).toBe(0);
  });
  it('stays within [base * (1 - jitter), base] (property)', () => {
    fc.assert(
      fc.property(fc.nat({ max: 40 }), fc.double({ min: 0, max: 0.9999, noNaN: true }), (n, u) => {
        const base = Math.min(b.max, b.min * 2 ** n);
        const d = backoffDelay(n, b, () => u);
        expect(d).toBeGreaterThanOrEqual(base * (1 - b.jitter));
        expect(d).toBeLessThanOrEqual(base);
      }),
    );
  });
});
