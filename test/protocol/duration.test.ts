/** Durations in human units: the parser the CLI and a submission's `delay` share. */
import { describe, expect, it } from 'vitest';
import { resolveDelay } from '../../actors/task-queue/state.js';
import { parseDurationMs } from '../../src/protocol/duration.js';
import { TaskSubmitSchema } from '../../src/protocol/task.js';

describe('parseDurationMs', () => {
  it('reads one or more <number><unit> parts', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('30s')).toBe(30_000);
    expect(parseDurationMs('4h')).toBe(14_400_000);
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('1.5s')).toBe(1_500);
    expect(parseDurationMs('2d')).toBe(172_800_000);
    expect(parseDurationMs('1w')).toBe(604_800_000);
    expect(parseDurationMs(' 10m ')).toBe(600_000);
  });

  it('refuses what is not one: no unit, an unknown unit, spaces inside, signs, junk', () => {
    for (const s of ['', '30', 'h', '4 hours', '1h 30m', '-5s', '5y', '1h30', 'ms', '1e3s', '4h;rm'])
      expect(parseDurationMs(s), s).toBeNull();
  });
});

describe('delay on a submission', () => {
  const parse = (delay: unknown) => TaskSubmitSchema.safeParse({ v: 1, title: 't', delay });

  it('takes ms or a duration, up to 365 days', () => {
    expect(parse(0).success).toBe(true);
    expect(parse('4h').success).toBe(true);
    expect(parse('365d').success).toBe(true);
    expect(parse('366d').success).toBe(false);
    expect(parse(-1).success).toBe(false);
    expect(parse(1.5).success).toBe(false);
    expect(parse('soon').error?.issues[0]?.path).toEqual(['delay']);
  });

  it('becomes notBefore counted from when the hub took the submission in; with notBefore, the later', () => {
    const s = (over: object) => TaskSubmitSchema.parse({ v: 1, title: 't', ...over });
    expect(resolveDelay(s({ delay: '1m' }), 1_000).notBefore).toBe(61_000);
    expect(resolveDelay(s({ delay: 500 }), 1_000)).not.toHaveProperty('delay');
    expect(resolveDelay(s({ delay: '1s', notBefore: 9_000 }), 1_000).notBefore).toBe(9_000);
    expect(resolveDelay(s({ delay: '10s', notBefore: 9_000 }), 1_000).notBefore).toBe(11_000);
    const plain = s({});
    expect(resolveDelay(plain, 1_000)).toBe(plain);
  });
});
