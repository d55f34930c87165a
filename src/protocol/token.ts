/**
 * @module token
 * Bearer tokens of the HTTP gateway (docs/gateway.md, "Tokens"): what a token may do (its role,
 * and the agent an `agent` token speaks for) and how it is stored. A token is shown once, when it
 * is created: `agc_<id>_<secret>`. The store keeps the id, the role and a SHA-256 of the secret
 * (the secret is 32 random bytes, so a fast hash is enough: there is nothing to guess), under key
 * `<id>` of the `<p>_tokens` bucket. Revoking deletes the key; every gateway follows the bucket, so
 * a revoked token is refused at once everywhere.
 */
import { z } from 'zod';
import { AgentIdSchema } from './ids.js';
import { RateSchema } from './limits.js';

export const TOKEN_ROLES = ['admin', 'submitter', 'agent', 'read'] as const;
export const TokenRoleSchema = z
  .enum(TOKEN_ROLES)
  .describe(
    'admin: everything; submitter: submit tasks and read; agent: act as its agent only (hello, heartbeat, inbox, reports); read: read only.',
  );
export type TokenRole = z.infer<typeof TokenRoleSchema>;

export const TokenIdSchema = z
  .string()
  .regex(/^[a-z0-9]{12}$/, 'a token id is 12 lowercase letters or digits')
  .describe('Public id of a token (the part after `agc_`).');

const TokenFieldsSchema = z.object({
  v: z.literal(1),
  id: TokenIdSchema,
  name: z.string().min(1).max(100).describe('What it is for (shown in lists and logs).'),
  role: TokenRoleSchema,
  agentId: AgentIdSchema.optional().describe('With role agent: the only agent it acts as.'),
  hash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .describe('SHA-256 of the secret, hex.'),
  rate: RateSchema.optional().describe('Requests per second of this token (default: the gateway’s).'),
  createdAt: z.int().positive(),
  expiresAt: z.int().positive().nullable().describe('After this (epoch ms) it is refused; null: never.'),
});

const agentBinding = (t: { role: TokenRole; agentId?: string | undefined }, ctx: z.RefinementCtx) => {
  if ((t.role === 'agent') !== (t.agentId !== undefined))
    ctx.addIssue({
      code: 'custom',
      path: ['agentId'],
      message: 'an agent token names its agent, and only an agent token does',
    });
};

export const TokenRecordSchema = TokenFieldsSchema.superRefine(agentBinding).describe(
  'A bearer token as stored (key `<id>` of `<p>_tokens`); the secret itself is never stored.',
);
export type TokenRecord = z.infer<typeof TokenRecordSchema>;

/** A token as lists show it: everything but the hash. */
export const TokenViewSchema = TokenFieldsSchema.omit({ hash: true }).describe('A token without its hash.');

/** The token as a client sends it: `Authorization: Bearer agc_<id>_<secret>`. */
export const TOKEN_RE = /^agc_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** The id and secret of a presented token, or undefined when it does not have a token's shape. */
export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}
