/**
 * Reading who observes the field from its consumers (actors/field/observers.ts), without NATS: a
 * consumer's name gives the agent and slot (or a trusted client), its filter subject the pattern;
 * other consumers on the bucket's stream (the Field actor's watch, a gateway's tail) are not
 * observers; the list is filtered by agent and by a type the pattern matches, agents first.
 * test/gateway/field-map.test.ts lists real consumers through the API.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  agentObserverName,
  observerOf,
  parseObserverName,
  patternOfFilter,
  selectObservers,
  trustedObserverName,
} from '../../../actors/field/observers.js';
import { type FieldObserver, patternKeyFilter } from '../../../src/protocol/field.js';
import { kvSubject } from '../../../src/protocol/subjects.js';

const BUCKET = 'pre_field';
const AGENT_ID = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);

describe('observer names', () => {
  it('an agent’s consumer name gives back its id and slot, whatever dashes and digits the id holds', () => {
    fc.assert(
      fc.property(AGENT_ID, fc.integer({ min: 0, max: 15 }), (id, slot) => {
        expect(parseObserverName(agentObserverName(id, slot))).toEqual({ agentId: id, slot });
      }),
    );
    expect(parseObserverName('fobs-a-1-2')).toEqual({ agentId: 'a-1', slot: 2 });
    expect(parseObserverName('fobs-t-3')).toEqual({ agentId: 't', slot: 3 });
  });

  it('a trusted client’s consumer is nobody’s agent; other names are not observers', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (deliver) => {
        expect(parseObserverName(trustedObserverName(deliver))).toEqual({ agentId: null, slot: null });
      }),
    );
    for (const name of ['fobs-x-16', 'fobs-', 'fobs-x', 'inbox-a1', 'OC_abc', 'fobs-t-123', 'xfobs-a-1'])
      expect(parseObserverName(name), name).toBeUndefined();
  });

  it('the pattern is read back from the filter field.observe sets, `*` for every type', () => {
    for (const pattern of ['*', 'error.*', '*.completion', 'request.>', 'a.b.c'])
      expect(patternOfFilter(BUCKET, kvSubject(BUCKET, patternKeyFilter(pattern)))).toBe(pattern);
    expect(patternOfFilter(BUCKET, '$KV.other_field.*.a')).toBeUndefined();
    expect(patternOfFilter(BUCKET, kvSubject(BUCKET, '>'))).toBeUndefined();
    expect(patternOfFilter(BUCKET, undefined)).toBeUndefined();
  });

  it('a consumer is an observer only with both an observer name and an observation filter', () => {
    const ci = (name: string, filter?: string, bound?: boolean) => ({
      name,
      config: { filter_subject: filter },
      push_bound: bound,
      num_pending: 4,
    });
    expect(observerOf(BUCKET, ci('fobs-a1-0', kvSubject(BUCKET, '*.error.*'), true))).toEqual({
      consumer: 'fobs-a1-0',
      agentId: 'a1',
      slot: 0,
      pattern: 'error.*',
      active: true,
      pending: 4,
    });
    expect(observerOf(BUCKET, ci('fobs-a1-0', kvSubject(BUCKET, '*.>')))?.active).toBe(false);
    expect(observerOf(BUCKET, ci('OC_x', kvSubject(BUCKET, '>')))).toBeUndefined();
    expect(observerOf(BUCKET, ci('fobs-a1-0'))).toBeUndefined();
  });
});

describe('selectObservers', () => {
  const o = (
    consumer: string,
    agentId: string | null,
    slot: number | null,
    pattern: string,
  ): FieldObserver => ({
    consumer,
    agentId,
    slot,
    pattern,
    active: true,
    pending: 0,
  });
  const all = [
    o('fobs-t-00000000000000ff', null, null, 'request.>'),
    o('fobs-b-1', 'b', 1, '*'),
    o('fobs-a-2', 'a', 2, 'error.*'),
    o('fobs-a-0', 'a', 0, 'request.code.*'),
  ];

  it('sorts agents by id and slot, trusted clients last, and counts beyond the limit', () => {
    const r = selectObservers(all, { limit: 3 });
    expect(r.observers.map((x) => x.consumer)).toEqual(['fobs-a-0', 'fobs-a-2', 'fobs-b-1']);
    expect(r.total).toBe(4);
  });

  it('filters by agent, and by a type the pattern matches', () => {
    expect(selectObservers(all, { agent: 'a', limit: 10 }).observers.map((x) => x.slot)).toEqual([0, 2]);
    expect(
      selectObservers(all, { type: 'request.code.review', limit: 10 }).observers.map((x) => x.consumer),
    ).toEqual(['fobs-a-0', 'fobs-b-1', 'fobs-t-00000000000000ff']);
    expect(
      selectObservers(all, { type: 'error.db.timeout', limit: 10 }).observers.map((x) => x.consumer),
    ).toEqual(['fobs-b-1']);
    expect(selectObservers(all, { agent: 'nobody', limit: 10 })).toEqual({ observers: [], total: 0 });
  });
});
