/**
 * @module registration
 * The hub's record of an agent (KV bucket `<prefix>_agents`, key = agent id) and the reply to an
 * agent's hello. The registration is written by whichever hub answered the hello and read by every
 * hub, so all of them know each agent's capabilities, queues and slots; the agent's FSM snapshot is
 * kept beside it so a restarted hub restores every agent's state.
 */
import { z } from 'zod';
import { AgentHelloSchema } from './agent.js';
import { WireErrorSchema } from './errors.js';
import { AgentIdSchema } from './ids.js';

export const AgentRegistrationSchema = z
  .object({
    v: z.literal(1),
    id: AgentIdSchema,
    hello: AgentHelloSchema.describe('What the agent announced in its latest hello.'),
    registeredAt: z.int().nonnegative().describe('When the latest hello was accepted (epoch ms).'),
    hubId: z.string().max(64).optional().describe('The hub that accepted the hello.'),
    removed: z.boolean().optional().describe('Set when the agent was removed; it may not hello again.'),
  })
  .describe('An agent known to the hub.');
export type AgentRegistration = z.infer<typeof AgentRegistrationSchema>;

export const HelloReplySchema = z
  .discriminatedUnion('ok', [
    z.object({
      v: z.literal(1),
      ok: z.literal(true),
      heartbeatIntervalMs: z.int().positive().describe('How often the agent must heartbeat.'),
      inbox: z
        .object({ stream: z.string(), consumer: z.string() })
        .describe('The durable consumer holding this agent’s assignments.'),
    }),
    z.object({ v: z.literal(1), ok: z.literal(false), error: WireErrorSchema }),
  ])
  .describe('The hub’s answer to an agent’s hello.');
export type HelloReply = z.infer<typeof HelloReplySchema>;

/** The scheduler lease (KV bucket `<prefix>_leases`, key `scheduler`). */
export const LeaseSchema = z
  .object({
    v: z.literal(1),
    holder: z.string().min(1).max(64).describe('Hub id holding the lease.'),
    expiresAt: z.int().nonnegative().describe('Epoch ms after which another hub may take it.'),
  })
  .describe('Who may assign tasks right now.');
export type Lease = z.infer<typeof LeaseSchema>;

/** A hub's answer on `<p>.hub.<hubId>.alive`. */
export const HubAliveSchema = z
  .object({
    v: z.literal(1),
    hubId: z.string().min(1).max(64),
    leader: z.boolean().describe('Whether it runs the work (holds the lease) now.'),
    now: z
      .int()
      .nonnegative()
      .optional()
      .describe("The hub's clock when it answered (epoch ms): clock-skew checks."),
  })
  .describe('A hub process is up and connected.');
export type HubAlive = z.infer<typeof HubAliveSchema>;
