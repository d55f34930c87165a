import { describe, expect, it } from 'vitest';
import { agentInboxPrefix, agentPermissions } from '../../src/protocol/permissions.js';
import { names } from '../../src/protocol/subjects.js';

/** NATS subject matching (`*` one token, `>` the rest), to check what the lists allow. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
const allowed = (list: string[], subject: string) => list.some((p) => matches(p, subject));

describe('agent permissions', () => {
  const n = names('acme');
  const a = agentPermissions(n, 'a1');
  const pub = (s: string) => allowed(a.publish.allow, s);
  const sub = (s: string) => allowed(a.subscribe.allow, s);

  it('lets an agent publish its own hello, heartbeat, goodbye and reports', () => {
    for (const kind of ['hello', 'heartbeat', 'goodbye', 'report'] as const)
      expect(pub(n.subjects.agent('a1', kind)), kind).toBe(true);
  });

  it('lets it pull, inspect and ack only its own inbox durable', () => {
    expect(pub('$JS.API.CONSUMER.MSG.NEXT.ACME_INBOX.inbox-a1')).toBe(true);
    expect(pub('$JS.API.CONSUMER.INFO.ACME_INBOX.inbox-a1')).toBe(true);
    expect(pub('$JS.ACK.ACME_INBOX.inbox-a1.1.7.7.1700000000000000000.0')).toBe(true);
    expect(pub('$JS.API.CONSUMER.MSG.NEXT.ACME_INBOX.inbox-b1')).toBe(false);
    expect(pub('$JS.API.CONSUMER.INFO.ACME_INBOX.inbox-b1')).toBe(false);
    expect(pub('$JS.ACK.ACME_INBOX.inbox-b1.1.7.7.1700000000000000000.0')).toBe(false);
    expect(pub('$JS.API.CONSUMER.CREATE.ACME_INBOX')).toBe(false);
    expect(pub('$JS.API.CONSUMER.DURABLE.CREATE.ACME_INBOX.inbox-a1')).toBe(false);
    expect(pub('$JS.API.CONSUMER.DELETE.ACME_INBOX.inbox-a1')).toBe(false);
  });

  it("denies another agent's subjects, its own inbox subject, the API, streams and KV", () => {
    for (const kind of ['hello', 'heartbeat', 'goodbye', 'report', 'inbox'] as const)
      expect(pub(n.subjects.agent('b1', kind)), kind).toBe(false);
    expect(pub(n.subjects.agentInbox('a1'))).toBe(false);
    expect(pub(n.subjects.taskSubmit)).toBe(false);
    for (const endpoint of Object.values(n.subjects.api)) expect(pub(endpoint), endpoint).toBe(false);
    expect(pub('$JS.API.INFO')).toBe(false);
    expect(pub('$JS.API.STREAM.NAMES')).toBe(false);
    expect(pub('$JS.API.STREAM.PURGE.ACME_REPORTS')).toBe(false);
    expect(pub('$KV.acme_agents.b1')).toBe(false);
    expect(pub('$JS.API.DIRECT.GET.KV_acme_agents')).toBe(false);
    expect(pub(n.subjects.dlq('ACME_INBOX', 'inbox-a1'))).toBe(false);
  });

  it('allows subscribing only under its own reply-inbox prefix (and to the inspection listens)', () => {
    expect(agentInboxPrefix('a1')).toBe('_INBOX.a1');
    expect(sub('_INBOX.a1.abc.1')).toBe(true);
    expect(sub('_INBOX.b1.abc.1')).toBe(false);
    expect(sub('_INBOX.>')).toBe(false);
    expect(sub(n.subjects.agentInbox('a1'))).toBe(false);
    expect(sub(n.subjects.agentAll('report'))).toBe(false);
    expect(sub('$KV.acme_agents.a1')).toBe(false);
  });

  it('lets its sidecar read the inspection listens and publish inspection on its own subject only', () => {
    expect(sub(n.subjects.inspecting)).toBe(true);
    expect(pub(n.subjects.inspect('sidecar', 'a1'))).toBe(true);
    expect(pub(n.subjects.inspect('sidecar', 'b1'))).toBe(false);
    expect(pub(n.subjects.inspect('agent', 'a1'))).toBe(false);
    expect(pub(n.subjects.inspect('hub', 'a1'))).toBe(false);
    expect(pub(n.subjects.inspecting)).toBe(false);
    expect(sub(n.subjects.inspect('sidecar', 'b1'))).toBe(false);
  });

  it('adds task submission only with canSubmit', () => {
    const s = agentPermissions(n, 'a1', { canSubmit: true });
    // Only on its own subjects: the hub reads the submitter from them (keys and rates are per agent).
    expect(allowed(s.publish.allow, 'acme.task.submit.a1')).toBe(true);
    expect(allowed(s.publish.allow, 'acme.api.task.submit.a1')).toBe(true);
    expect(allowed(s.publish.allow, 'acme.task.submit')).toBe(false);
    expect(allowed(s.publish.allow, 'acme.api.task.submit')).toBe(false);
    expect(allowed(s.publish.allow, 'acme.task.submit.b1')).toBe(false);
    expect(allowed(s.publish.allow, 'acme.api.task.submit.b1')).toBe(false);
    expect(allowed(s.publish.allow, 'acme.api.task.cancel')).toBe(false);
    // Any queue: its own subject, with or without the queue token.
    expect(allowed(s.publish.allow, 'acme.task.submit.a1.action')).toBe(true);
    expect(allowed(s.publish.allow, 'acme.api.task.submit.a1.action')).toBe(true);
    expect(allowed(s.publish.allow, 'acme.task.submit.b1.action')).toBe(false);
    expect(s.publish.allow.filter((x) => !a.publish.allow.includes(x))).toEqual([
      'acme.task.submit.a1',
      'acme.task.submit.a1.*',
      'acme.api.task.submit.a1',
      'acme.api.task.submit.a1.*',
    ]);
  });

  it('with submitQueues, allows submitting to those queues only (inter-agent triggers)', () => {
    const s = agentPermissions(n, 'a1', { canSubmit: true, submitQueues: ['action', 'social'] });
    for (const q of ['action', 'social']) {
      expect(allowed(s.publish.allow, `acme.task.submit.a1.${q}`), q).toBe(true);
      expect(allowed(s.publish.allow, `acme.api.task.submit.a1.${q}`), q).toBe(true);
    }
    expect(allowed(s.publish.allow, 'acme.task.submit.a1')).toBe(false);
    expect(allowed(s.publish.allow, 'acme.task.submit.a1.cognition')).toBe(false);
    expect(allowed(s.publish.allow, 'acme.api.task.submit.a1')).toBe(false);
    expect(allowed(s.publish.allow, 'acme.task.submit')).toBe(false);
  });

  it('uses no wildcard that could reach past the agent', () => {
    for (const p of [...a.publish.allow, ...a.subscribe.allow]) {
      const tokens = p.split('.');
      expect(tokens.includes('*'), p).toBe(false);
      // `>` only at the end, after a token naming this agent (its ack prefix or reply inbox).
      if (tokens.includes('>'))
        expect(
          tokens.slice(0, -1).some((t) => t.includes('a1')),
          p,
        ).toBe(true);
    }
  });
});
