/**
 * `agentcom inspect`: against a real hub, `inspect agent <id> --json --count N` prints the agent
 * FSM's inspection events, one JSON document per line, while a task runs; bad targets are usage
 * errors.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { inspectLine, inspectTargets } from '../../src/cli/inspect.js';
import { useCliHub } from '../support/cli-hub.js';

describe('agentcom inspect', () => {
  const h = useCliHub('inspectcli');
  let agent: AgentClient | undefined;
  beforeAll(async () => {
    agent = await AgentClient.connect({
      connection: { servers: h.url, prefix: h.prefix },
      agentId: 'c1',
      hello: { slots: 1 },
      logger: pino({ level: 'silent' }),
    });
    await agent.start(async () => ({ type: 'completed', result: { ok: true } }));
  });
  afterAll(async () => {
    await agent?.stop({ goodbye: true });
  });

  it('prints the FSM events of an agent while tasks run (--json, --count)', async () => {
    const N = 8;
    let finished = false;
    const run = h.cli('inspect', 'agent', 'c1', '--json', '--count', String(N), '--timeout-after', '60s');
    void run.finally(() => {
      finished = true;
    });
    // Tasks until the command has seen its N events: it attaches a moment after it starts.
    const deadline = Date.now() + 60_000;
    while (!finished && Date.now() < deadline) {
      const id = await h.client.submit({ title: 'inspect me' });
      await h.client.settle([id]);
    }
    const r = await run;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(N);
    const events = lines.map((l) => JSON.parse(l));
    // The FSM as it was when inspection attached, then what happened to it.
    expect(events[0]).toMatchObject({ type: '@xstate.actor', name: 'agent' });
    for (const e of events) {
      expect(e.sessionId).toMatch(/^agent:c1:x:\d+$/);
      expect(['@xstate.actor', '@xstate.event', '@xstate.snapshot']).toContain(e.type);
    }
    expect(events.some((e) => e.type === '@xstate.snapshot')).toBe(true);
    expect(events.some((e) => e.type === '@xstate.event' && e.event.type === 'ASSIGN')).toBe(true);
  }, 90_000);

  it('says what it inspects in text mode, and stops after --timeout-after', async () => {
    const r = await h.cli('inspect', 'sidecar', 'nobody', '--timeout-after', '1s');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('inspecting sidecar.nobody');
  });

  it('refuses an unknown source or a bad id', async () => {
    const bad = await h.cli('inspect', 'robot', 'x', '--timeout-after', '1s');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('agent, hub, sidecar');
    const badId = await h.cli('inspect', 'agent', 'a.b', '--timeout-after', '1s');
    expect(badId.code).not.toBe(0);
  });

  it('names targets and formats lines', () => {
    expect(inspectTargets(undefined, undefined)).toEqual(['agent.*', 'hub.*']);
    expect(inspectTargets('agent', 'a1')).toEqual(['agent.a1']);
    expect(inspectTargets('hub', 'host.local-1')).toEqual(['hub.host_local-1']);
    expect(inspectTargets('sidecar', undefined)).toEqual(['sidecar.*']);
    const at = String(Date.UTC(2026, 0, 2, 3, 4, 5, 6));
    expect(
      inspectLine({
        type: '@xstate.snapshot',
        sessionId: 'agent:a1:x:3',
        createdAt: at,
        snapshot: { value: 'working' },
        event: { type: 'ACCEPTED' },
      } as never),
    ).toBe('03:04:05.006  agent:a1:x:3  snapshot  working  after ACCEPTED');
    expect(
      inspectLine({
        type: '@xstate.event',
        sessionId: 'hub:h:p2',
        createdAt: at,
        event: { type: 'restarted' },
        sourceId: 'hub:h:p9',
      } as never),
    ).toBe('03:04:05.006  hub:h:p2  event     restarted  from hub:h:p9');
  });
});
