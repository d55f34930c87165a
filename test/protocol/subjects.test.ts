import { describe, expect, it } from 'vitest';
import {
  API_ENDPOINTS,
  maxDeliveriesAdvisorySubject,
  names,
  parseAgentSubject,
  parseMessagingSubject,
} from '../../src/protocol/subjects.js';

describe('names()', () => {
  it('derives every subject, stream, consumer and bucket from the default prefix', () => {
    const n = names();
    expect(n.prefix).toBe('agentcom');
    expect(n.subjects.taskSubmit).toBe('agentcom.task.submit');
    expect(n.subjects.agentInbox('a1')).toBe('agentcom.agent.a1.inbox');
    expect(n.subjects.agentReport('a1')).toBe('agentcom.agent.a1.report');
    expect(n.subjects.agentHeartbeat('a1')).toBe('agentcom.agent.a1.heartbeat');
    expect(n.subjects.agentHello('a1')).toBe('agentcom.agent.a1.hello');
    expect(n.subjects.agentGoodbye('a1')).toBe('agentcom.agent.a1.goodbye');
    expect(n.subjects.agentAll('inbox')).toBe('agentcom.agent.*.inbox');
    expect(n.subjects.busStatus).toBe('agentcom.status.bus');
    expect(n.subjects.eventAll).toBe('agentcom.event.>');
    expect(n.subjects.dlq('AGENTCOM_SUBMIT', 'hub-intake')).toBe('agentcom.dlq.AGENTCOM_SUBMIT.hub-intake');
    expect(n.subjects.api['task.submit']).toBe('agentcom.api.task.submit');
    expect(n.subjects.api['dlq.purge']).toBe('agentcom.api.dlq.purge');
    expect(n.streams).toEqual({
      submit: 'AGENTCOM_SUBMIT',
      inbox: 'AGENTCOM_INBOX',
      reports: 'AGENTCOM_REPORTS',
      dlq: 'AGENTCOM_DLQ',
      advisories: 'AGENTCOM_ADVISORIES',
      field: 'AGENTCOM_FIELD',
      messages: 'AGENTCOM_MESSAGES',
    });
    expect(n.consumers.hubIntake).toBe('hub-intake');
    expect(n.consumers.hubReports).toBe('hub-reports');
    expect(n.consumers.agentInbox('a1')).toBe('inbox-a1');
    expect(n.buckets).toEqual({
      tasks: 'agentcom_tasks',
      agents: 'agentcom_agents',
      leases: 'agentcom_leases',
      config: 'agentcom_config',
      schedules: 'agentcom_schedules',
      field: 'agentcom_field',
      tokens: 'agentcom_tokens',
      alerts: 'agentcom_alerts',
      messaging: 'agentcom_messaging',
    });
    expect(n.subjects.msgDirect('a1')).toBe('agentcom.msg.direct.a1');
    expect(n.subjects.msgChannel('room')).toBe('agentcom.msg.channel.room');
    expect(n.subjects.msgKind('direct')).toBe('agentcom.msg.direct.*');
    expect(n.subjects.msgKind('broadcast')).toBe('agentcom.msg.broadcast');
    expect(n.subjects.apiMessagingAs('msg.send', 'a1')).toBe('agentcom.api.msg.send.a1');
    expect(parseMessagingSubject(n, 'msg.send', 'agentcom.api.msg.send.a1')).toBe('a1');
    expect(parseMessagingSubject(n, 'msg.send', 'agentcom.api.msg.send.a1.x')).toBeUndefined();
    expect(parseMessagingSubject(n, 'msg.send', 'agentcom.api.msg.inbox.a1')).toBeUndefined();
    expect(n.service.name).toBe('agentcom');
  });

  it('keeps two deployments apart with different prefixes', () => {
    const a = names('teama');
    const b = names('teamb');
    expect(a.streams.submit).not.toBe(b.streams.submit);
    expect(a.subjects.all).toBe('teama.>');
    expect(b.buckets.tasks).toBe('teamb_tasks');
    expect(Object.keys(a.subjects.api)).toEqual([...API_ENDPOINTS]);
  });

  it('rejects prefixes that are not one safe token', () => {
    for (const bad of ['', 'a.b', 'a*', 'a>', 'a b', 'x'.repeat(33)]) expect(() => names(bad)).toThrow();
  });

  it('builds the max-deliveries advisory subject for a stream', () => {
    expect(maxDeliveriesAdvisorySubject('AGENTCOM_SUBMIT')).toBe(
      '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.AGENTCOM_SUBMIT.*',
    );
  });
});

describe('parseAgentSubject()', () => {
  const n = names('px');
  it('takes the agent id and kind from the subject', () => {
    expect(parseAgentSubject(n, 'px.agent.a-1.report')).toEqual({ agentId: 'a-1', kind: 'report' });
    expect(parseAgentSubject(n, 'px.agent.a-1.inbox')).toEqual({ agentId: 'a-1', kind: 'inbox' });
  });
  it('returns null for foreign prefixes, unknown kinds and extra tokens', () => {
    expect(parseAgentSubject(n, 'other.agent.a.report')).toBeNull();
    expect(parseAgentSubject(n, 'px.agent.a.unknown')).toBeNull();
    expect(parseAgentSubject(n, 'px.agent.a.report.x')).toBeNull();
    expect(parseAgentSubject(n, 'px.agent..report')).toBeNull();
  });
});
