/**
 * The field with agents as separate OS processes against a real hub: fifty processes racing to
 * claim the same pheromones (exactly one winner each), and seed 001's request -> claim ->
 * completion flow, with the claimant SIGKILLed mid-work so that its claim is released and another
 * agent finishes the job, once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FieldClient } from '../../src/agent/field.js';
import { request } from '../../src/bus/service.js';
import { type Pheromone, PheromoneReplySchema } from '../../src/protocol/field.js';
import { waitUntil } from '../support/eventually.js';
import { useHubHarness } from '../support/hub.js';
import { captureJsonLines } from '../support/json-lines.js';

type Line = {
  at?: number;
  event: string;
  agentId?: string;
  id?: string;
  claimed?: boolean;
  winner?: string;
  error?: string;
};

const racer = fileURLToPath(new URL('./fixtures/claim-racer.mjs', import.meta.url));
const fieldAgent = fileURLToPath(new URL('../support/field-agent.ts', import.meta.url));

const h = useHubHarness('fagents');
let procs: { proc: ChildProcess; events: Line[] }[] = [];
afterEach(async () => {
  await Promise.all(
    procs.map(
      ({ proc }) =>
        new Promise<void>((resolve) => {
          if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
          proc.once('exit', () => resolve());
          proc.kill('SIGKILL');
        }),
    ),
  );
  procs = [];
});

function spawnLines(args: string[]) {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const { events, stderr } = captureJsonLines<Line>(proc);
  const p = { proc, events, stderr };
  procs.push(p);
  return p;
}

/** Every process's lines that match, in the order they happened. */
const all = (pred: (e: Line) => boolean) =>
  procs.flatMap((p) => p.events.filter(pred)).sort((a, b) => (a.at ?? 0) - (b.at ?? 0));

describe('the field with agent processes', { timeout: 120_000 }, () => {
  it('fifty processes race to claim each of five pheromones: exactly one winner each, and all agree', async () => {
    const client = await h.setup([]);
    const racers = Array.from({ length: 50 }, (_, i) =>
      spawnLines([racer, h.nats.url, h.prefix, `racer-${i}`]),
    );
    await waitUntil(() => racers.every((r) => r.events.some((e) => e.event === 'ready')), 'racers ready', {
      timeout: 60_000,
    });
    const field = new FieldClient(client.bus);
    const targets: Pheromone[] = [];
    for (let round = 0; round < 5; round++) {
      const p = await field.emit('request.race', { payload: { round } });
      targets.push(p);
      client.bus.nc.publish(`${h.prefix}.test.go`, JSON.stringify({ id: p.id, type: p.type }));
    }
    await waitUntil(() => all((e) => e.event === 'claim').length === 250, 'every claim answered', {
      timeout: 60_000,
    });
    for (const p of targets) {
      const claims = all((e) => e.event === 'claim' && e.id === p.id);
      expect(claims.filter((c) => c.error)).toEqual([]);
      const winners = claims.filter((c) => c.claimed);
      expect(winners).toHaveLength(1);
      for (const c of claims) expect(c.winner).toBe(winners[0]!.agentId);
      const stored = await request(client.bus, 'field.get', { v: 1, id: p.id }, PheromoneReplySchema);
      expect(stored.pheromone.claimedBy).toBe(winners[0]!.agentId);
    }
  });

  it('request -> claim -> completion: the claimant is SIGKILLed mid-work, its claim is released, another finishes once', async () => {
    const client = await h.setup([]);
    const agents = ['reviewer-a', 'reviewer-b', 'reviewer-c'].map((agentId) =>
      spawnLines([
        '--import',
        'tsx',
        fieldAgent,
        JSON.stringify({ url: h.nats.url, prefix: h.prefix, agentId, workMs: 3_000 }),
      ]),
    );
    await waitUntil(() => agents.every((a) => a.events.some((e) => e.event === 'ready')), 'agents ready', {
      timeout: 60_000,
    });
    const field = new FieldClient(client.bus, { by: 'requester' });
    const completions = await field.observe(['completion.code.review']);
    const request0 = await field.emit('request.code.review', {
      selector: 'file[name=main.py]',
      payload: { file: 'main.py' },
    });

    await waitUntil(() => all((e) => e.event === 'claim' && e.claimed === true).length === 1, 'first claim');
    const first = all((e) => e.event === 'claim' && e.claimed === true)[0]!.agentId!;
    const victim = agents.find((a) => a.events.some((e) => e.event === 'ready' && e.agentId === first))!;
    victim.proc.kill('SIGKILL');

    const seen: Pheromone[] = [];
    for await (const o of completions) {
      seen.push(o.pheromone);
      break;
    }
    completions.stop();
    const second = all((e) => e.event === 'claim' && e.claimed === true).map((e) => e.agentId);
    expect(second).toHaveLength(2);
    expect(second[1]).not.toBe(first);
    expect(seen[0]).toMatchObject({
      type: 'completion.code.review',
      source: second[1],
      payload: { request: request0.id, by: second[1] },
    });
    // The agent prints after its emit returns, which may be after we saw the pheromone.
    await waitUntil(() => all((e) => e.event === 'completed').length > 0, 'completed line');
    expect(all((e) => e.event === 'completed').map((e) => e.agentId)).toEqual([second[1]]);
    // The trail shows the hub releasing the dead agent's claim before the second claim.
    const trail = await client.bus.nc.request(
      `${h.prefix}.api.field.history`,
      JSON.stringify({ v: 1, pattern: 'request.code.review' }),
    );
    const events = (JSON.parse(new TextDecoder().decode(trail.data)) as { events: Pheromone[] }).events;
    expect(events.map((e) => `${e.event}:${e.eventBy}`)).toEqual([
      'emitted:requester',
      `claimed:${first}`,
      'released:hub',
      `claimed:${second[1]}`,
    ]);
  });
});
