import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { completionType } from '../../actors/field/process.js';
import { renderFieldMap } from '../../src/cli/field-map.js';
import {
  FieldEmitRequestSchema,
  type Pheromone,
  PheromonePatternSchema,
  PheromoneTypeSchema,
  patternKeyFilter,
  ttlMs,
  typeMatches,
} from '../../src/protocol/field.js';
import type { TaskRecord } from '../../src/protocol/task.js';

/** NATS subject matching, written independently: `*` one token, `>` one or more, at the end. */
function natsMatches(subject: string, filter: string): boolean {
  const re = filter
    .split('.')
    .map((t) => (t === '*' ? '[^.]+' : t === '>' ? '.+' : t.replace(/[-]/g, '\\-')))
    .join('\\.');
  return new RegExp(`^${re}$`).test(subject);
}

const token = fc.constantFrom('error', 'request', 'code', 'review', 'timeout', 'completion', 'a', 'b');
const type = fc.array(token, { minLength: 1, maxLength: 5 }).map((t) => t.join('.'));
const pattern = fc.oneof(
  fc.constant('*'),
  fc
    .tuple(fc.array(fc.oneof(token, fc.constant('*')), { minLength: 1, maxLength: 4 }), fc.boolean())
    .map(([t, tail]) => [...t, ...(tail ? ['>'] : [])].join('.')),
);

describe('pheromone patterns', () => {
  it('typeMatches is what the server does with the key filter of the pattern over <id>.<type>', () => {
    fc.assert(
      fc.property(type, pattern, (t, p) => {
        expect(PheromonePatternSchema.safeParse(p).success).toBe(true);
        expect(typeMatches(t, p)).toBe(natsMatches(`p123.${t}`, patternKeyFilter(p)));
      }),
      { numRuns: 2000 },
    );
  });

  it("follows the seed's examples, and says where they differ from a glob", () => {
    expect(typeMatches('error.timeout', 'error.*')).toBe(true);
    expect(typeMatches('error.db.timeout', 'error.*')).toBe(false);
    expect(typeMatches('error.db.timeout', 'error.>')).toBe(true);
    expect(typeMatches('error', 'error.>')).toBe(false);
    expect(typeMatches('task.completion', '*.completion')).toBe(true);
    expect(typeMatches('anything.at.all', '*')).toBe(true);
    expect(patternKeyFilter('*')).toBe('*.>');
    expect(patternKeyFilter('error.*')).toBe('*.error.*');
  });

  it('refuses malformed types and patterns', () => {
    for (const t of ['', 'a..b', '.a', 'a.', 'a b', 'a.*', 'a.>', 'x'.repeat(33), 'a.b.c.d.e.f.g.h.i'])
      expect(PheromoneTypeSchema.safeParse(t).success, t).toBe(false);
    for (const p of ['', 'a..b', '>.a', 'a.>.b', 'a b', 'a.**'])
      expect(PheromonePatternSchema.safeParse(p).success, p).toBe(false);
  });
});

describe('ttl', () => {
  it('is seconds (as in seed 001) or a duration', () => {
    expect(ttlMs(300)).toBe(300_000);
    expect(ttlMs(0.25)).toBe(250);
    expect(ttlMs('4h')).toBe(4 * 3_600_000);
    for (const ttl of [0, -1, '0s', 'soon', 400 * 86_400])
      expect(FieldEmitRequestSchema.safeParse({ v: 1, type: 'a', ttl }).success, String(ttl)).toBe(false);
    expect(FieldEmitRequestSchema.parse({ v: 1, type: 'a', ttl: null }).ttl).toBeNull();
  });
});

describe('completion pheromones', () => {
  const task = (metadata: Record<string, unknown>) => ({ metadata }) as unknown as TaskRecord;
  it('come from a promoted pheromone or metadata.completionPheromone, within the token limit', () => {
    expect(completionType(task({ pheromoneType: 'request.code.review' }))).toBe(
      'completion.request.code.review',
    );
    expect(completionType(task({ completionPheromone: 'diary' }))).toBe('completion.diary');
    expect(completionType(task({}))).toBeNull();
    expect(completionType(task({ pheromoneType: 'a.b.c.d.e.f.g.h' }))).toBe('completion.a.b.c.d.e.f.g');
  });
});

describe('the pheromone map', () => {
  it("draws the seed's view: agents and their patterns, pheromones with age and claimant, counts", () => {
    const now = 1_000_000;
    const p = (over: Partial<Pheromone>): Pheromone => ({
      v: 1,
      id: 'p1',
      type: 'request.code.review',
      selector: 'file[name=main.py]',
      payload: {},
      timestamp: now - 2_000,
      source: 'linter',
      ttl: null,
      expiresAt: null,
      claimedBy: 'reviewer',
      claimedAt: now - 1_000,
      taskId: null,
      event: 'claimed',
      eventAt: now - 1_000,
      eventBy: 'reviewer',
      ...over,
    });
    const lines = renderFieldMap(
      {
        agents: [
          { id: 'reviewer', online: true, observes: ['request.code.>'] },
          { id: 'tester', online: false, observes: ['*.completion'] },
        ],
        pheromones: [p({}), p({ id: 'p2', type: 'error.timeout', claimedBy: null, expiresAt: now + 30_000 })],
        counts: { active: 1, claimed: 1, expired: 5 },
      },
      now,
    );
    const text = lines.join('\n');
    expect(lines[0]).toMatch(/^┌─ Pheromone Map/);
    expect(text).toContain('● reviewer');
    expect(text).toContain('└──[request.code.>]── 1 live');
    expect(text).toContain('○ tester');
    expect(text).toContain('└──[*.completion]── 0 live');
    expect(text).toContain('by linter, 2.0s ago, permanent, claimed: reviewer');
    expect(text).toContain('expires in 30s, unclaimed');
    expect(text).toContain('Environment: 1 active | 1 claimed | 5 expired');
    expect(new Set(lines.slice(0, -1).map((l) => [...l].length)).size).toBe(1);
  });
});
