/**
 * @module gateway/routes/tokens
 * Tokens for admins over HTTP (the same operations as `agentcom token add|list|revoke`): a new
 * token's secret is in the reply once and never again; lists show ids, names and roles only.
 */
import { z } from 'zod';
import { AgentComError, ERROR_CODES, fromZodError } from '../../protocol/errors.js';
import { AgentIdSchema } from '../../protocol/ids.js';
import { RateSchema } from '../../protocol/limits.js';
import { TokenIdSchema, type TokenRecord, TokenRoleSchema, TokenViewSchema } from '../../protocol/token.js';
import { type RouteDef, route } from '../route.js';
import { createToken, listTokens, openTokensKv, revokeToken } from '../tokens.js';

const view = ({ hash: _hash, ...t }: TokenRecord) => t;

const NewTokenSchema = z
  .object({
    name: z.string().min(1).max(100),
    role: TokenRoleSchema,
    agentId: AgentIdSchema.optional(),
    rate: RateSchema.optional(),
    ttlMs: z
      .int()
      .min(1_000)
      .max(10 * 365 * 86_400_000)
      .optional()
      .describe('Lifetime; absent: no expiry.'),
  })
  .describe('A token to create.');

export const tokenRoutes: RouteDef[] = [
  route({
    method: 'GET',
    url: '/api/tokens',
    tag: 'tokens',
    summary: 'Every token (never a secret or its hash).',
    roles: [],
    reply: z.object({ v: z.literal(1), tokens: z.array(TokenViewSchema) }),
    handler: async (ctx) => ({
      v: 1 as const,
      tokens: (await listTokens(await openTokensKv(ctx.bus))).map(view),
    }),
  }),
  route({
    method: 'POST',
    url: '/api/tokens',
    tag: 'tokens',
    summary: 'Create a token; the reply holds its secret, shown this once.',
    roles: [],
    body: NewTokenSchema,
    reply: z.object({ v: z.literal(1), token: z.string(), record: TokenViewSchema }),
    status: 201,
    handler: async (ctx) => {
      const { token, record } = await createToken(await openTokensKv(ctx.bus), ctx.body).catch((err) => {
        throw err instanceof z.ZodError ? fromZodError(err, 'body') : err;
      });
      ctx.log.info({ token_id: record.id, role: record.role, by: ctx.principal.name }, 'token created');
      return { v: 1 as const, token, record: view(record) };
    },
  }),
  route({
    method: 'DELETE',
    url: '/api/tokens/:id',
    tag: 'tokens',
    summary: 'Revoke a token: refused by every gateway at once.',
    roles: [],
    params: z.object({ id: TokenIdSchema }),
    reply: z.object({ v: z.literal(1), id: TokenIdSchema }),
    errors: [404],
    handler: async (ctx) => {
      if (!(await revokeToken(await openTokensKv(ctx.bus), ctx.params.id)))
        throw new AgentComError(ERROR_CODES.NOT_FOUND, `no token ${ctx.params.id}`);
      ctx.log.info({ token_id: ctx.params.id, by: ctx.principal.name }, 'token revoked');
      return { v: 1 as const, id: ctx.params.id };
    },
  }),
];
