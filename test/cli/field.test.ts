/**
 * `agentcom field ...` as a user runs it: the real command in a child process against a real hub on
 * a test nats-server. Each test uses its own type prefix.
 */
import { describe, expect, it } from 'vitest';
import { FieldClient } from '../../src/agent/field.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { useCliHub } from '../support/cli-hub.js';

const h = useCliHub('clifield');

describe('agentcom field', () => {
  // Eight or more CLI processes one after another: on two busy cores each takes a few seconds.
  it('emit prints the id; show, list, claim (exit 4 for the second claimant), release, history and stats agree', {
    timeout: 90_000,
  }, async () => {
    const emitted = await h.cli(
      'field',
      'emit',
      'cli.request.review',
      '--selector',
      'file[name=main.py]',
      '--payload',
      '{"file":"main.py"}',
      '--ttl',
      '1h',
      '--as',
      'ops',
    );
    expect(emitted.code, emitted.stderr).toBe(0);
    const id = emitted.stdout.trim();
    const show = await h.cli('field', 'show', id);
    expect(show.stdout).toContain('source ops');
    expect(show.stdout).toContain('selector: file[name=main.py]');
    const list = await h.cli('field', 'list', '--pattern', 'cli.request.>', '--json');
    expect(JSON.parse(list.stdout).pheromones.map((p: { id: string }) => p.id)).toEqual([id]);

    const first = await h.cli('field', 'claim', id, '--as', 'alice');
    expect(first.code, first.stderr).toBe(0);
    const second = await h.cli('field', 'claim', id, '--as', 'bob', '--json');
    expect(second.code).toBe(4);
    expect(JSON.parse(second.stdout)).toMatchObject({ claimed: false, pheromone: { claimedBy: 'alice' } });
    expect((await h.cli('field', 'release', id)).code).toBe(0);

    const history = await h.cli('field', 'history', '--pattern', 'cli.request.*', '--since', '10m');
    expect(
      history.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/)[1]),
    ).toEqual(['emitted', 'claimed', 'released']);
    const stats = await h.cli('field', 'stats', '--json');
    expect(JSON.parse(stats.stdout).byType['cli.request.review']).toBe(1);
  });

  it('watch prints what is live, then what changes; map draws agents, pheromones and counts', async () => {
    const f = new FieldClient(h.client.bus);
    const live = await f.emit('cli.watch.a', { ttl: 600 });
    const watching = h.cli(
      'field',
      'watch',
      'cli.watch.>',
      '--count',
      '2',
      '--json',
      '--timeout-after',
      '30s',
    );
    // The second observation is an emit made after the watch started (or was live before it: both count).
    const later = await f.emit('cli.watch.b');
    const r = await watching;
    expect(r.code, r.stderr).toBe(0);
    const seen = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(seen.map((o) => o.pheromone.id).sort()).toEqual([live.id, later.id].sort());
    expect(seen.find((o) => o.pheromone.id === live.id).initial).toBe(true);

    const map = await h.cli('field', 'map', '--once');
    expect(map.code, map.stderr).toBe(0);
    expect(map.stdout).toContain('Pheromone Map');
    expect(map.stdout).toContain('cli.watch.a');
    expect(map.stdout).toMatch(/Environment: \d+ active \| \d+ claimed \| \d+ expired/);
  });

  it('bad input exits 2 with a structured error; an unknown pheromone exits 3', async () => {
    const bad = await h.cli('field', 'emit', 'not..a.type', '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr).error.code).toBe(ERROR_CODES.INVALID_PAYLOAD);
    const ttl = await h.cli('field', 'emit', 'cli.ok', '--ttl', 'soon');
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toMatch(/--ttl/);
    const missing = await h.cli('field', 'claim', 'p-nope', '--json');
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stderr).error.code).toBe(ERROR_CODES.NOT_FOUND);
  });
});
