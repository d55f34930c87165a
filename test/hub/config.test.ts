import { describe, expect, it } from 'vitest';
import { loadHubConfig } from '../../src/hub/config.js';
import { AgentComError } from '../../src/protocol/errors.js';

describe('loadHubConfig', () => {
  it('applies defaults, reads the environment, and lets flags win', () => {
    const c = loadHubConfig(
      { prefix: 'flagged' },
      { AGENTCOM_PREFIX: 'fromenv', AGENTCOM_MISSED_BEATS: '5' },
    );
    expect(c.prefix).toBe('flagged');
    expect(c.missedBeats).toBe(5);
    expect(c.heartbeatIntervalMs).toBe(5_000);
    expect(c.natsPort).toBe(4223);
    expect(c.natsUrl).toBeUndefined();
    expect(c.retentionMs).toBe(7 * 24 * 60 * 60_000);
    expect(loadHubConfig({}, { AGENTCOM_RETENTION_COUNT: '10' }).retentionCount).toBe(10);
    expect(c.dlqMaxAgeMs).toBe(30 * 24 * 60 * 60_000);
    expect(c.dlqMaxMsgs).toBe(100_000);
    expect(c.dlqMaxBytes).toBeUndefined();
    const dlq = loadHubConfig(
      {},
      { AGENTCOM_DLQ_MAX_AGE_MS: '60000', AGENTCOM_DLQ_MAX_MSGS: '10', AGENTCOM_DLQ_MAX_BYTES: '1048576' },
    );
    expect([dlq.dlqMaxAgeMs, dlq.dlqMaxMsgs, dlq.dlqMaxBytes]).toEqual([60_000, 10, 1_048_576]);
  });

  it('rejects bad values with a structured error naming the option', () => {
    const bad = (flags: Record<string, unknown>, env: Record<string, string> = {}) => {
      try {
        loadHubConfig(flags, env);
      } catch (e) {
        return e as AgentComError;
      }
      throw new Error('expected a validation error');
    };
    const e1 = bad({ natsUrl: 'http://example' });
    expect(e1).toBeInstanceOf(AgentComError);
    expect(e1.code).toBe('invalid_payload');
    expect(e1.path).toEqual(['natsUrl']);
    expect(bad({}, { AGENTCOM_HEARTBEAT_INTERVAL_MS: '-1' }).path).toEqual(['heartbeatIntervalMs']);
    expect(bad({ prefix: 'Has.Dots' }).path).toEqual(['prefix']);
    expect(bad({ logLevel: 'loud' }).path).toEqual(['logLevel']);
    expect(bad({}, { AGENTCOM_RETENTION_COUNT: '0' }).path).toEqual(['retentionCount']);
    expect(bad({}, { AGENTCOM_RETENTION_MS: '1.5' }).path).toEqual(['retentionMs']);
    expect(bad({}, { AGENTCOM_DLQ_MAX_BYTES: '0' }).path).toEqual(['dlqMaxBytes']);
    expect(bad({}, { AGENTCOM_DLQ_MAX_MSGS: '-5' }).path).toEqual(['dlqMaxMsgs']);
    expect(bad({}, { AGENTCOM_DLQ_MAX_AGE_MS: 'a month' }).path).toEqual(['dlqMaxAgeMs']);
  });
});
