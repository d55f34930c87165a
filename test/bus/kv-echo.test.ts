/**
 * The writes a process keeps for its own readers of a bucket's tail (src/bus/kv-echo.ts): only
 * while a reader listens, only the last per key, handed over once and only for identical bytes,
 * at most 10,000 per bucket.
 */
import { describe, expect, it } from 'vitest';
import { dropWrite, listenForEchoes, noteWrite, takeEcho } from '../../src/bus/kv-echo.js';
import { uniqueName } from '../support/names.js';

const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('kv echoes', () => {
  it('keeps nothing for a bucket nobody in the process listens to', () => {
    const bucket = uniqueName('echo');
    noteWrite(bucket, 'k', bytes({ a: 1 }), { a: 1 });
    const unlisten = listenForEchoes(bucket);
    expect(takeEcho(bucket, 'k', bytes({ a: 1 }))).toBeUndefined();
    unlisten();
  });

  it('hands over the last write of a key once, for exactly its bytes', () => {
    const bucket = uniqueName('echo');
    const unlisten = listenForEchoes(bucket);
    const a = { n: 1 };
    const b = { n: 2 };
    noteWrite(bucket, 'k', bytes(a), a);
    noteWrite(bucket, 'k', bytes(b), b);
    // An earlier revision of the key (the tail lags behind the writer): not kept, decoded instead.
    expect(takeEcho(bucket, 'k', bytes(a))).toBeUndefined();
    expect(takeEcho(bucket, 'other', bytes(b))).toBeUndefined();
    expect(takeEcho(bucket, 'k', bytes({ n: 3 }))).toBeUndefined(); // someone else's bytes
    const data = bytes(b);
    expect(takeEcho(bucket, 'k', data.subarray(0, data.length - 1))).toBeUndefined();
    expect(takeEcho(bucket, 'k', bytes(b))).toBe(b); // equal bytes, not the same array
    expect(takeEcho(bucket, 'k', bytes(b))).toBeUndefined(); // once
    unlisten();
  });

  it('keeps writes while any reader listens, and at most 10,000 per bucket (the oldest go)', () => {
    const bucket = uniqueName('echo');
    const one = listenForEchoes(bucket);
    const two = listenForEchoes(bucket);
    for (let i = 0; i <= 10_000; i++) noteWrite(bucket, `k${i}`, bytes(i), i);
    expect(takeEcho(bucket, 'k0', bytes(0))).toBeUndefined();
    expect(takeEcho(bucket, 'k1', bytes(1))).toBe(1);
    expect(takeEcho(bucket, 'k10000', bytes(10_000))).toBe(10_000);
    one();
    one(); // a second call changes nothing
    noteWrite(bucket, 'x', bytes('x'), 'x');
    expect(takeEcho(bucket, 'x', bytes('x'))).toBe('x');
    two();
    noteWrite(bucket, 'y', bytes('y'), 'y');
    const three = listenForEchoes(bucket);
    expect(takeEcho(bucket, 'y', bytes('y'))).toBeUndefined();
    expect(takeEcho(bucket, 'k2', bytes(2))).toBeUndefined(); // dropped with the last reader
    three();
  });

  it('drops a write that will not be stored, unless a later one replaced it', () => {
    const bucket = uniqueName('echo');
    const unlisten = listenForEchoes(bucket);
    const a = bytes('a');
    noteWrite(bucket, 'k', a, 'a');
    dropWrite(bucket, 'k', bytes('a')); // equal bytes, another array: not that write
    expect(takeEcho(bucket, 'k', a)).toBe('a');
    noteWrite(bucket, 'k', a, 'a');
    dropWrite(bucket, 'k', a);
    expect(takeEcho(bucket, 'k', a)).toBeUndefined();
    const b = bytes('b');
    noteWrite(bucket, 'k', a, 'a');
    noteWrite(bucket, 'k', b, 'b');
    dropWrite(bucket, 'k', a); // replaced already
    expect(takeEcho(bucket, 'k', b)).toBe('b');
    unlisten();
  });

  it('holds at most 32 MiB per bucket, counting the whole buffer each write keeps alive', () => {
    const bucket = uniqueName('echo');
    const unlisten = listenForEchoes(bucket);
    const big = () => new Uint8Array(12 * 1024 * 1024);
    const [x, y, z] = [big(), big(), big()];
    noteWrite(bucket, 'x', x, 'x');
    noteWrite(bucket, 'y', y, 'y');
    noteWrite(bucket, 'z', z, 'z'); // 36 MiB: the oldest goes
    expect(takeEcho(bucket, 'x', x)).toBeUndefined();
    expect(takeEcho(bucket, 'y', y)).toBe('y');
    // A small slice of a large buffer counts as the buffer it keeps.
    const slice = new Uint8Array(40 * 1024 * 1024).subarray(0, 10);
    noteWrite(bucket, 's', slice, 's');
    expect(takeEcho(bucket, 'z', z)).toBeUndefined();
    expect(takeEcho(bucket, 's', slice)).toBe('s'); // the last write is kept, whatever its size
    unlisten();
  });
});
