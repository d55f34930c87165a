/**
 * Runtime benchmark: restart latency (crash -> new child running) and the time and heap per child
 * to start 10k and 100k children under a dynamic supervisor, beside the baseline of the same
 * machine started 100k times as bare XState actors (createActor + error observer + start), so the
 * runtime's own share is visible. Prints one JSON object.
 * Run: npm run bench:runtime   (node --expose-gc --import tsx bench/runtime.ts)
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { type AnyActor, assign, createActor, setup } from 'xstate';
import type { Pid } from '../src/runtime/index.js';
import { actorChild, startDynamicSupervisor, startSupervisor } from '../src/runtime/index.js';

const gc = (globalThis as { gc?: () => void }).gc;

/** A small agent-like machine: a few states, a context, guards-free transitions. */
const agent = setup({
  types: {
    context: {} as { id: number; jobs: number },
    input: {} as { id: number } | undefined,
    events: {} as { type: string },
  },
}).createMachine({
  context: ({ input }) => ({ id: input?.id ?? 0, jobs: 0 }),
  initial: 'idle',
  states: {
    idle: {
      on: { assign: { target: 'working', actions: assign({ jobs: ({ context }) => context.jobs + 1 }) } },
    },
    working: { on: { done: 'idle' } },
  },
  on: {
    crash: {
      actions: () => {
        throw new Error('crash');
      },
    },
  },
});

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

async function restartLatency(crashes: number) {
  const r = await startSupervisor([actorChild('a', agent)], { intensity: 1_000_000, period: 1 });
  if (!r.ok) throw new Error('start');
  const sup = r.value;
  let resolveNext: ((v: { pid: Pid; at: number }) => void) | undefined;
  sup.subscribe((rep) => {
    if (rep.type === 'restarted') resolveNext?.({ pid: rep.pid, at: performance.now() });
  });
  const first = (await sup.whichChildren()) as { ok: true; value: { pid: Pid }[] };
  let pid = first.value[0]!.pid;
  const samples: number[] = [];
  for (let i = 0; i < crashes; i++) {
    const next = new Promise<{ pid: Pid; at: number }>((res) => {
      resolveNext = res;
    });
    const t0 = performance.now();
    pid.send({ type: 'crash' });
    const { pid: p2, at } = await next;
    samples.push(at - t0);
    pid = p2;
  }
  await sup.stop();
  // The first few hundred iterations include JIT warm-up; report both.
  const warm = samples.slice(Math.min(500, Math.floor(crashes / 5))).sort((a, b) => a - b);
  const all = [...samples].sort((a, b) => a - b);
  return {
    crashes,
    p50_ms: round(percentile(warm, 50), 4),
    p99_ms: round(percentile(warm, 99), 4),
    max_ms: round(warm[warm.length - 1]!, 4),
    p99_ms_including_warmup: round(percentile(all, 99), 4),
  };
}

/** Lets what the previous phase left behind (a stopped tree's pending callbacks) be collected. */
async function settledHeap(): Promise<number> {
  await new Promise<void>((r) => setImmediate(r));
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

async function dynamicChildren(n: number) {
  const heap0 = await settledHeap();
  const r = await startDynamicSupervisor();
  if (!r.ok) throw new Error('start');
  const sup = r.value;
  const spec = actorChild('agent', agent, { inputFrom: (...a) => a[0], restart: 'transient' });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = await sup.startChild(spec);
    if (!s.ok) throw new Error(`startChild failed: ${s.error.kind}`);
  }
  const elapsed = performance.now() - t0;
  gc?.();
  const heap1 = process.memoryUsage().heapUsed;
  const counts = await sup.countChildren();
  const t1 = performance.now();
  await sup.stop();
  const stopMs = performance.now() - t1;
  return {
    children: n,
    active: counts.ok ? counts.value.active : -1,
    start_total_ms: round(elapsed, 1),
    start_per_child_us: round((elapsed * 1000) / n, 2),
    heap_per_child_kb: round((heap1 - heap0) / n / 1024, 2),
    shutdown_total_ms: round(stopMs, 1),
    gc_forced: gc !== undefined,
  };
}

/** The floor under `dynamicChildren`: the same actors with no supervisor at all. */
function bareXState(n: number) {
  gc?.();
  const actors: AnyActor[] = new Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const a = createActor(agent, { input: { id: i } });
    a.subscribe({ error() {} });
    actors[i] = a.start();
  }
  const elapsed = performance.now() - t0;
  for (const a of actors) a.stop();
  return { actors: n, start_total_ms: round(elapsed, 1), start_per_actor_us: round((elapsed * 1000) / n, 2) };
}

const restart = await restartLatency(3000);
const bare100k = bareXState(100_000);
const d10k = await dynamicChildren(10_000);
const d100k = await dynamicChildren(100_000);
console.log(
  JSON.stringify(
    {
      node: process.version,
      nproc: availableParallelism(),
      restart_latency: restart,
      dynamic_10k: d10k,
      dynamic_100k: d100k,
      bare_xstate_100k: bare100k,
      runtime_overhead_ratio: round(d100k.start_total_ms / bare100k.start_total_ms, 2),
      targets: { restart_p99_ms: 1, children_100k_total_ms: 3000, heap_per_child_kb: 8 },
    },
    null,
    2,
  ),
);
