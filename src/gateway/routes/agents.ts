/**
 * @module gateway/routes/agents
 * Agents for operators: list, one agent, remove (tasks reclaimed at once) and restore, suspend.
 */
import { z } from 'zod';
import {
  AgentListReplySchema,
  AgentRemoveReplySchema,
  AgentRestoreReplySchema,
  AgentSuspendReplySchema,
  AgentSuspendRequestSchema,
} from '../../protocol/api.js';
import { AgentComError, ERROR_CODES } from '../../protocol/errors.js';
import { AgentIdSchema } from '../../protocol/ids.js';
import { forward, type RouteDef, route } from '../route.js';

const AgentParams = z.object({ agentId: AgentIdSchema });
const AgentEntrySchema = AgentListReplySchema.shape.agents.element;
const AgentReplySchema = z
  .object({ v: z.literal(1), agent: AgentEntrySchema })
  .describe('One registered agent with its AgentFSM state.');

export const agentRoutes: RouteDef[] = [
  forward({
    method: 'GET',
    url: '/api/agents',
    tag: 'agents',
    summary: 'Every registered agent with its state and the tasks it holds, and the suspended ones.',
    roles: ['read', 'submitter'],
    reply: AgentListReplySchema,
    endpoint: 'agent.list',
  }),
  route({
    method: 'GET',
    url: '/api/agents/:agentId',
    tag: 'agents',
    summary: 'One agent (an agent token: itself only).',
    roles: ['read', 'submitter', 'agent'],
    params: AgentParams,
    reply: AgentReplySchema,
    errors: [404],
    handler: async (ctx) => {
      const { agentId } = ctx.params;
      if (ctx.principal.role === 'agent' && ctx.principal.agentId !== agentId)
        throw new AgentComError(ERROR_CODES.FORBIDDEN, `this token acts as ${ctx.principal.agentId} only`);
      const all = await ctx.call('agent.list', { v: 1 }, AgentListReplySchema);
      const agent = all.agents.find((a) => a.id === agentId);
      if (!agent) throw new AgentComError(ERROR_CODES.NOT_FOUND, `agent ${agentId} is not registered`);
      return { v: 1 as const, agent };
    },
  }),
  forward({
    method: 'DELETE',
    url: '/api/agents/:agentId',
    tag: 'agents',
    summary: 'Remove an agent: its tasks are reclaimed at once and its hellos refused until restored.',
    roles: [],
    params: AgentParams,
    reply: AgentRemoveReplySchema,
    errors: [404],
    endpoint: 'agent.remove',
    input: (ctx) => ({ v: 1, id: ctx.params.agentId }),
  }),
  forward({
    method: 'POST',
    url: '/api/agents/:agentId/restore',
    tag: 'agents',
    summary: 'Let a removed or suspended agent hello again.',
    roles: [],
    params: AgentParams,
    reply: AgentRestoreReplySchema,
    endpoint: 'agent.restore',
    input: (ctx) => ({ v: 1, id: ctx.params.agentId }),
  }),
  forward({
    method: 'POST',
    url: '/api/agents/:agentId/suspend',
    tag: 'agents',
    summary:
      'Suspend an agent for `forMs`: forgotten at once on every hub (tasks reclaimed), hellos refused.',
    roles: [],
    params: AgentParams,
    body: AgentSuspendRequestSchema.omit({ v: true, id: true }),
    reply: AgentSuspendReplySchema,
    errors: [404],
    endpoint: 'agent.suspend',
    input: (ctx) => ({ v: 1, ...ctx.body, id: ctx.params.agentId }),
  }),
];
