/**
 * The sidecar's lifecycle machine under inspection (docs/protocol.md §11e): nothing is published
 * until a listen names `sidecar.<id>`; then its machine is announced with its state (online), and
 * its events follow (a task received and reported) on `<p>.inspect.sidecar.<id>`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type SidecarHandle, startSidecar } from '../../src/agent/sidecar/main.js';
import { loadSidecarConfig, type SidecarConfigInput } from '../../src/agent/sidecar-config.js';
import { connectBus } from '../../src/bus/connection.js';
import { eventually } from '../support/eventually.js';
import { startTestHub, testClient } from '../support/hub.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

interface Ev {
  type: string;
  sessionId: string;
  name?: string;
  snapshot?: { value?: unknown; context?: Record<string, unknown> };
  event?: { type: string };
}

describe('sidecar inspection', { timeout: 60_000 }, () => {
  const nats = useNatsServer();
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('publishes the lifecycle machine only while a listen names it', async () => {
    const prefix = uniqueName('scinsp').replace(/_/g, '-').toLowerCase();
    const agentId = 'sc-insp';
    const hub = await startTestHub(nats.url, prefix);
    cleanup.push(() => hub.stop());
    const client = await testClient(nats.url, prefix);
    cleanup.push(() => client.close());
    const dir = await mkdtemp(join(tmpdir(), 'agentcom-sidecar-inspect-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const input: SidecarConfigInput = {
      v: 1,
      agentId,
      nats: { servers: nats.url, prefix },
      hello: { slots: 1 },
      workDir: 'work',
    };
    await writeFile(join(dir, 'sidecar.json'), JSON.stringify(input));
    const sidecar: SidecarHandle = await startSidecar(await loadSidecarConfig(join(dir, 'sidecar.json')), {
      logger: pino({ level: 'silent' }),
      pollMs: 100,
    });
    cleanup.push(() => sidecar.stop());
    await eventually(() => expect(sidecar.snapshot()?.value).toEqual({ online: 'connected' }), {
      timeout: 20_000,
    });

    const watcher = await connectBus({ servers: nats.url, prefix, logger: pino({ level: 'silent' }) });
    cleanup.push(() => watcher.drain());
    const got: Ev[] = [];
    const dec = new TextDecoder();
    watcher.nc.subscribe(watcher.names.subjects.inspect('sidecar', agentId), {
      callback: (_e, m) => {
        got.push(JSON.parse(dec.decode(m.data)));
      },
    });
    await watcher.nc.flush();
    expect(got).toEqual([]);

    const listen = JSON.stringify({ v: 1, listener: 'sc', targets: [`sidecar.${agentId}`], ttlMs: 3_000 });
    watcher.nc.publish(watcher.names.subjects.inspecting, listen);
    const again = setInterval(() => watcher.nc.publish(watcher.names.subjects.inspecting, listen), 1_000);
    cleanup.push(() => clearInterval(again));
    await eventually(() =>
      expect(got.find((e) => e.type === '@xstate.actor' && e.name === 'sidecar')).toMatchObject({
        snapshot: { value: { online: 'connected' }, context: { agentId } },
      }),
    );
    expect(got[0]!.sessionId).toMatch(new RegExp(`^sidecar:${agentId}:x:\\d+$`));

    // A task: the machine counts it received, then reported (the work dir's result file).
    const taskId = await client.submit({ title: 'for the sidecar' });
    await eventually(() => expect(got.map((e) => e.event?.type)).toContain('TASK_RECEIVED'), {
      timeout: 20_000,
    });
    await writeFile(
      join(dir, 'work', 'results', `${taskId}.json`),
      JSON.stringify({ v: 1, type: 'completed', result: { ok: true } }),
    );
    await eventually(
      () =>
        expect(
          got.find((e) => e.type === '@xstate.snapshot' && e.event?.type === 'TASK_REPORTED')?.snapshot
            ?.context,
        ).toMatchObject({ reported: 1, held: 0 }),
      { timeout: 20_000 },
    );
    await client.settle([taskId]);
  });
});
