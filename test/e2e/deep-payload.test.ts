/**
 * A payload nested deeper than the stack (inside a free-form field, whose size refine measures it
 * with JSON.stringify) is refused like any invalid payload: over the API with a structured error,
 * on the submit stream by a dead letter. It once killed the hub process (found by the gateway fuzzer).
 */
import { describe, expect, it } from 'vitest';
import { request } from '../../src/bus/service.js';
import { DlqListResponseSchema } from '../../src/protocol/dlq.js';
import { validatePayload } from '../../src/protocol/envelope.js';
import { TaskSubmitSchema } from '../../src/protocol/task.js';
import { eventually } from '../support/eventually.js';
import { useHubHarness } from '../support/hub.js';

const deep = (n: number) => `{"v":1,"title":"deep","metadata":{"a":${'['.repeat(n)}${']'.repeat(n)}}}`;
const h = useHubHarness('deep');

describe('deeply nested payloads', () => {
  it('are invalid payloads, never a throw', () => {
    const r = validatePayload(TaskSubmitSchema, JSON.parse(deep(20_000)));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe('invalid_payload');
  });

  it('are refused by the API and dead-lettered from the stream, and the hub carries on', async () => {
    const client = await h.setup([{ agentId: 'deep-a1', workMs: 10 }]);
    const reply = await client.bus.nc.request(
      `${client.bus.names.subjects.apiPrefix}.task.submit`,
      deep(20_000),
      {
        timeout: 10_000,
      },
    );
    expect(JSON.parse(new TextDecoder().decode(reply.data))).toMatchObject({ code: 'invalid_payload' });
    await client.bus.js.publish(client.bus.names.subjects.taskSubmit, deep(20_000));
    await eventually(async () => {
      const page = await request(client.bus, 'dlq.list', { v: 1 }, DlqListResponseSchema);
      expect(page.items.map((i) => i.reason.code)).toContain('invalid_payload');
    });
    const id = await client.submit({ title: 'after the deep ones' });
    await client.settle([id]);
  });
});
