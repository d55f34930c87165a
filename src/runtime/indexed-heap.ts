/**
 * @module indexed-heap
 * A binary min-heap of keyed entries with O(log n) insert, update, delete-by-key and pop, and O(1)
 * peek. Keys are unique; `set` inserts or re-positions. No I/O; mutable by design (the scheduler index
 * is derived in-memory state, and copying on each change would cost O(n)).
 */

export class IndexedHeap<K, V> {
  readonly #less: (a: V, b: V) => boolean;
  readonly #keys: K[] = [];
  readonly #values: V[] = [];
  readonly #pos = new Map<K, number>();

  /** `less(a, b)` must be a strict total order for deterministic results. */
  constructor(less: (a: V, b: V) => boolean) {
    this.#less = less;
  }

  get size(): number {
    return this.#keys.length;
  }

  has(key: K): boolean {
    return this.#pos.has(key);
  }

  get(key: K): V | undefined {
    const i = this.#pos.get(key);
    return i === undefined ? undefined : this.#values[i];
  }

  /** The minimum entry, or undefined when empty. */
  peek(): { key: K; value: V } | undefined {
    if (this.#keys.length === 0) return undefined;
    return { key: this.#keys[0]!, value: this.#values[0]! };
  }

  /** Insert `key` or move it to its new position for `value`. */
  set(key: K, value: V): void {
    const i = this.#pos.get(key);
    if (i === undefined) {
      this.#keys.push(key);
      this.#values.push(value);
      this.#pos.set(key, this.#keys.length - 1);
      this.#up(this.#keys.length - 1);
      return;
    }
    this.#values[i] = value;
    this.#down(this.#up(i));
  }

  delete(key: K): boolean {
    const i = this.#pos.get(key);
    if (i === undefined) return false;
    const last = this.#keys.length - 1;
    if (i !== last) this.#swap(i, last);
    this.#keys.pop();
    this.#values.pop();
    this.#pos.delete(key);
    if (i !== last) this.#down(this.#up(i));
    return true;
  }

  pop(): { key: K; value: V } | undefined {
    const top = this.peek();
    if (top) this.delete(top.key);
    return top;
  }

  *keys(): IterableIterator<K> {
    yield* this.#keys;
  }

  #up(i: number): number {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(this.#values[i]!, this.#values[p]!)) break;
      this.#swap(i, p);
      i = p;
    }
    return i;
  }

  #down(i: number): number {
    const n = this.#keys.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.#less(this.#values[l]!, this.#values[m]!)) m = l;
      if (r < n && this.#less(this.#values[r]!, this.#values[m]!)) m = r;
      if (m === i) return i;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(i: number, j: number): void {
    const k = this.#keys[i]!;
    const v = this.#values[i]!;
    this.#keys[i] = this.#keys[j]!;
    this.#values[i] = this.#values[j]!;
    this.#keys[j] = k;
    this.#values[j] = v;
    this.#pos.set(this.#keys[i]!, i);
    this.#pos.set(k, j);
  }
}
