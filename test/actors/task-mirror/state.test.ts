/**
 * The task mirror's pure part: revisions applied in stream order over a first read, where the
 * tail may repeat what the read saw.
 */
import { describe, expect, it } from 'vitest';
import { MirrorState } from '../../../actors/task-mirror/index.js';
import { A, assignedTo, submitted } from '../task-queue/helpers.js';

describe('MirrorState', () => {
  const queued = submitted();
  const assigned = assignedTo(A);

  it('keeps the newest revision of each key and forgets deleted keys', () => {
    const m = new MirrorState();
    m.apply('t1', 1, queued);
    m.apply('t2', 2, queued);
    m.apply('t1', 3, assigned);
    m.apply('t2', 4, null);
    expect([...m.tasks]).toEqual([['t1', { value: assigned, revision: 3 }]]);
    expect(m.through).toBe(4);
  });

  it('a repeated revision, no newer than the one held, changes nothing', () => {
    const m = new MirrorState([['t1', { value: assigned, revision: 5 }]], 5);
    m.apply('t1', 3, queued);
    m.apply('t1', 5, queued);
    expect(m.tasks.get('t1')).toEqual({ value: assigned, revision: 5 });
  });

  it('a key the first read did not have comes back with a replayed put and goes with its replayed delete', () => {
    const m = new MirrorState([], 2);
    m.apply('t1', 3, queued);
    expect(m.tasks.has('t1')).toBe(true);
    m.apply('t1', 4, null);
    expect(m.tasks.has('t1')).toBe(false);
  });

  it('holds a sequence once every revision up to it is applied', () => {
    const m = new MirrorState([], 7);
    expect(m.holds(7)).toBe(true);
    expect(m.holds(8)).toBe(false);
    m.apply('t1', 9, queued);
    expect(m.holds(8)).toBe(true);
  });
});
