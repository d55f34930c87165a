/**
 * @module kv-echo
 * The values this process has just written to a KV bucket, for its own readers of that bucket's
 * tail (kv-tail.ts): a revision whose bytes are exactly the bytes this process encoded for that
 * key is handed over as the value it encoded them from, so the reader need not parse and validate
 * what its own process wrote. The hub's gateway tails the tasks bucket its TaskQueue writes:
 * decoding every revision of it was the largest share of the gateway's cost inside the hub.
 *
 * Guaranteed: a value is handed over only for identical bytes, and JSON bytes that are equal
 * decode to equal values, so whoever wrote the revision (this process, another hub, a retry) the
 * value is the one it holds. Not guaranteed: a hit. Only the last write per key is kept, only
 * while some reader in this process listens to the bucket, at most `MAX_PER_BUCKET` of them and
 * `MAX_BYTES_PER_BUCKET` of memory (the oldest go first); a write that is refused or fails is
 * dropped, and each is handed over once; a miss is decoded as before. Values must not be mutated
 * after they are written (the writers here build new records for every change).
 */

/** Writes kept per listened bucket for a reader that lags (the oldest are dropped first). */
const MAX_PER_BUCKET = 10_000;
/**
 * Memory they may hold per bucket, counted as the whole ArrayBuffer each one keeps alive: a small
 * payload is a slice of Node's shared 8 KB Buffer pool, which stays allocated while it is held.
 */
const MAX_BYTES_PER_BUCKET = 32 * 1024 * 1024;

interface Written {
  data: Uint8Array;
  value: unknown;
}

interface Kept {
  readers: number;
  byKey: Map<string, Written>;
  bytes: number;
}

const buckets = new Map<string, Kept>();

/** Keeps this process's writes to `bucket` until the returned function is called (one per reader). */
export function listenForEchoes(bucket: string): () => void {
  let b = buckets.get(bucket);
  if (!b) {
    b = { readers: 0, byKey: new Map(), bytes: 0 };
    buckets.set(bucket, b);
  }
  b.readers++;
  let listening = true;
  return () => {
    if (!listening) return;
    listening = false;
    const now = buckets.get(bucket);
    if (now && --now.readers === 0) buckets.delete(bucket);
  };
}

const held = (w: Written) => w.data.buffer.byteLength;

function remove(b: Kept, key: string): void {
  const w = b.byKey.get(key);
  if (!w) return;
  b.byKey.delete(key);
  b.bytes -= held(w);
}

/** A write about to be published: `data` is what `value` was encoded to. Kept only while listened. */
export function noteWrite(bucket: string, key: string, data: Uint8Array, value: unknown): void {
  const b = buckets.get(bucket);
  if (!b) return;
  // Re-inserted, so the map's order is the order of the last writes: the first entry is the oldest.
  remove(b, key);
  const w = { data, value };
  b.byKey.set(key, w);
  b.bytes += held(w);
  while (b.byKey.size > MAX_PER_BUCKET || (b.bytes > MAX_BYTES_PER_BUCKET && b.byKey.size > 1))
    remove(b, b.byKey.keys().next().value as string);
}

/**
 * A write noted with `data` will not be stored (refused by compare-and-set, or failed): dropped,
 * unless a later write of the key replaced it. No revision will ever take it.
 */
export function dropWrite(bucket: string, key: string, data: Uint8Array): void {
  const b = buckets.get(bucket);
  if (b?.byKey.get(key)?.data === data) remove(b, key);
}

/** The value this process wrote as exactly `data` to `key` (handed over once), or undefined. */
export function takeEcho(bucket: string, key: string, data: Uint8Array): unknown {
  const b = buckets.get(bucket);
  const w = b?.byKey.get(key);
  if (!b || !w || w.data.length !== data.length || Buffer.compare(w.data, data) !== 0) return undefined;
  remove(b, key);
  return w.value;
}
