import { describe, expect, it } from 'vitest';
import { createUserKeyPair } from '../../../src/bus/nkeys.js';
import { quote, renderNatsConfig } from '../../../src/hub/auth/nats-config.js';
import {
  type AuthRegistry,
  natsConfigInput,
  withAgent,
  withoutAgent,
} from '../../../src/hub/auth/registry.js';
import type { AgentId, QueueName } from '../../../src/protocol/ids.js';

const hub = createUserKeyPair().publicKey;
const admin = createUserKeyPair().publicKey;
const registry: AuthRegistry = {
  v: 1,
  prefix: 'acme',
  listen: '127.0.0.1:4223',
  storeDir: '/var/lib/agentcom "store"',
  serverName: 'agentcom-hub1',
  hub: { publicKey: hub },
  admin: { publicKey: admin },
  agents: [],
};
const agent = (id: string, canSubmit = false) => ({
  id: id as AgentId,
  name: `Agent ${id}`,
  capabilities: ['ts'],
  queues: ['default' as QueueName],
  slots: 1,
  canSubmit,
  publicKey: createUserKeyPair().publicKey,
  dir: `agents/${id}`,
  createdAt: 1,
});

describe('nats-server config rendering', () => {
  it('quotes every value and refuses control characters', () => {
    expect(quote('a "b" \\c')).toBe('"a \\"b\\" \\\\c"');
    expect(quote('$JS.API.INFO')).toBe('"$JS.API.INFO"');
    expect(() => quote('line\nbreak')).toThrow(/control character/);
  });

  it('lists the hub and admin with full access and each agent with its permissions', () => {
    const b = agent('b', true);
    const reg = withAgent(withAgent(registry, agent('a')), b);
    const text = renderNatsConfig(natsConfigInput(reg, '/run/nats.pid'));
    expect(text).toContain('listen: "127.0.0.1:4223"');
    expect(text).toContain('server_name: "agentcom-hub1"');
    expect(text).toContain('pid_file: "/run/nats.pid"');
    expect(text).toContain('jetstream { store_dir: "/var/lib/agentcom \\"store\\"" }');
    expect(text).toContain(`{ nkey: "${hub}" }`);
    expect(text).toContain(`{ nkey: "${admin}" }`);
    expect(text.match(/permissions: \{/g)).toHaveLength(2);
    expect(text).toContain('subscribe: { allow: ["_INBOX.a.>", "acme.inspecting"] }');
    expect(text).toContain('"acme.agent.b.report"');
    // Only b may submit.
    expect(text.match(/"acme\.task\.submit\.b"/g)).toHaveLength(1);
    expect(text).not.toContain('"acme.task.submit"');
    expect(text.indexOf('# agent a')).toBeLessThan(text.indexOf('# agent b'));
    // Same input, same bytes (a rewrite that changes nothing changes no byte).
    expect(renderNatsConfig(natsConfigInput(reg, '/run/nats.pid'))).toBe(text);
    expect(renderNatsConfig(natsConfigInput(withoutAgent(reg, 'b'), '/run/nats.pid'))).not.toContain(
      b.publicKey,
    );
  });

  it('refuses a malformed key or label rather than writing it', () => {
    const input = natsConfigInput(registry, '/run/nats.pid');
    expect(() => renderNatsConfig({ ...input, users: [{ nkey: 'SUAAAA', label: 'x' }] })).toThrow(
      /not a public user NKey/,
    );
    expect(() => renderNatsConfig({ ...input, users: [{ nkey: hub, label: 'x\n}' }] })).toThrow(
      /unsafe user label/,
    );
  });

  it('keeps agents sorted and replaces one with the same id', () => {
    const reg = withAgent(withAgent(withAgent(registry, agent('c')), agent('a')), {
      ...agent('c'),
      name: 'New c',
    });
    expect(reg.agents.map((x) => [x.id, x.name])).toEqual([
      ['a', 'Agent a'],
      ['c', 'New c'],
    ]);
  });
});
