/**
 * forEachYielding gives the event loop back once a slice of time has run, whatever the number of
 * items in it, and calls every item once, in order.
 */
import { describe, expect, it } from 'vitest';
import { forEachYielding } from '../../src/runtime/yielding.js';

/** Runs the pass on a clock that advances `costs[i]` for item i; returns the items of each slice. */
async function slices(costs: number[], sliceMs: number): Promise<number[][]> {
  let clock = 0;
  const seen: number[][] = [[]];
  // Each turn of the loop the pass gives back starts a new slice.
  let turns = 0;
  const watch = () => {
    turns++;
    seen.push([]);
  };
  let watching = true;
  const loop = () => {
    if (!watching) return;
    setImmediate(() => {
      watch();
      loop();
    });
  };
  loop();
  await forEachYielding(
    costs.map((cost, i) => ({ cost, i })),
    ({ cost, i }) => {
      clock += cost;
      seen[turns]!.push(i);
    },
    { sliceMs, now: () => clock },
  );
  watching = false;
  return seen.filter((s) => s.length > 0);
}

describe('forEachYielding', () => {
  it('yields once a slice of time has run, so cheap items go many to a slice and dear ones few', async () => {
    // 10 cheap items (1 ms), then 4 dear ones (30 ms), with 25 ms slices.
    const costs = [...Array(10).fill(1), 30, 30, 30, 30];
    expect(await slices(costs, 25)).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [11], [12], [13]]);
  });

  it('calls every item once, in order, awaiting each', async () => {
    const order: number[] = [];
    await forEachYielding(
      [1, 2, 3, 4, 5],
      async (n) => {
        await Promise.resolve();
        order.push(n);
      },
      { sliceMs: 0 },
    );
    expect(order).toEqual([1, 2, 3, 4, 5]);
  });

  it('calls afterSlice each time a slice ends', async () => {
    let clock = 0;
    const seen: string[] = [];
    await forEachYielding(
      [10, 10, 30, 10],
      (cost) => {
        clock += cost;
        seen.push(`item ${cost}`);
      },
      { sliceMs: 25, now: () => clock, afterSlice: () => seen.push('slice') },
    );
    expect(seen).toEqual(['item 10', 'item 10', 'item 30', 'slice', 'item 10']);
  });
});
