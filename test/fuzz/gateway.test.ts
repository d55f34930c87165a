/**
 * The gateway fuzzer, short and seeded, inside `npm test` (`npm run fuzz:gateway` sends 100,000):
 * requests drawn from the OpenAPI document against a hub process's gateway while an agent works
 * through tasks submitted over HTTP. Every answer is the structured error (or the documented
 * success), the hub stays up, real work is done once, nothing the fuzz could name changes.
 */
import { describe, expect, it } from 'vitest';
import { runGatewayFuzz } from './gateway-run.js';

describe('gateway fuzz (short, seeded)', () => {
  it('answers every request with a structured error or its documented success, and stays up', {
    timeout: 180_000,
  }, async () => {
    const r = await runGatewayFuzz({ requests: 3_000, seed: 16, concurrency: 16 });
    expect(r.error).toBeUndefined();
    expect(r.violations.samples).toEqual([]);
    expect(r.hub.alive).toBe(true);
    expect(r.gateway).toEqual({ healthz: 200, readyz: 200, validRequestAfter: 200, taskDoneAfter: true });
    expect(r.realTasks.submitted).toBeGreaterThan(0);
    expect(r.realTasks.done).toBe(r.realTasks.submitted);
    expect(r.realTasks.doneOnce).toBe(r.realTasks.submitted);
    expect(r.sentinels).toEqual({ unchanged: true, changed: [] });
    expect(r.rateLimit).toMatchObject({ retryAfterOk: true, recoveredAfterRetryAfter: true });
    // Every operation of the document was reached, and each refusal the pipeline makes was seen.
    expect(Object.keys(r.byRoute).filter((k) => k !== 'RAW')).toHaveLength(r.operations);
    for (const status of ['200', '400', '401', '403', '404', '413', '415'])
      expect(r.byStatus[status], `status ${status}`).toBeGreaterThan(0);
    expect(r.ok).toBe(true);
  });
});
