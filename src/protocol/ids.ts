/**
 * @module ids
 * Typed identifiers. Agent ids and queue names become NATS subject tokens and consumer names, so
 * they are restricted to characters that are safe in both (no '.', '*', '>', whitespace).
 */
import { z } from 'zod';

/** A token usable inside a subject, a consumer name and a KV key. */
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export const AgentIdSchema = z
  .string()
  .regex(TOKEN, 'agent id must be 1-64 characters of A-Z a-z 0-9 _ -')
  .brand<'AgentId'>();
export type AgentId = z.infer<typeof AgentIdSchema>;

export const TaskIdSchema = z
  .string()
  .regex(TOKEN, 'task id must be 1-64 characters of A-Z a-z 0-9 _ -')
  .brand<'TaskId'>();
export type TaskId = z.infer<typeof TaskIdSchema>;

export const QueueNameSchema = z
  .string()
  .regex(TOKEN, 'queue name must be 1-64 characters of A-Z a-z 0-9 _ -')
  .brand<'QueueName'>();
export type QueueName = z.infer<typeof QueueNameSchema>;

/**
 * An agent session: one run of an agent process (new on every process start, kept across reconnects),
 * so the hub can tell a restarted agent, which lost what it held in memory, from a reconnected one.
 */
export const SessionIdSchema = z
  .string()
  .regex(TOKEN, 'session id must be 1-64 characters of A-Z a-z 0-9 _ -')
  .describe('The agent process run (new on every process start; kept across reconnects).');
export type SessionId = z.infer<typeof SessionIdSchema>;

/** A new random session id (one per agent process start). */
export function newSessionId(): SessionId {
  return `s${randomHex(20)}`;
}

/** Seed 000's named queues; any other valid name is accepted too. */
export const WELL_KNOWN_QUEUES = ['default', 'sensory', 'cognition', 'social', 'action'] as const;

/** A capability an agent declares and a task may need, e.g. `typescript`, `gpu`, `git`. */
export const CapabilitySchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'capability must be 1-64 characters of A-Z a-z 0-9 _ . : -');
export type Capability = z.infer<typeof CapabilitySchema>;

/** Task ids are time-ordered (sortable) random ids: 12 hex chars of ms time + 12 random hex chars. */
export function newTaskId(now = Date.now()): TaskId {
  return `t${now.toString(16).padStart(12, '0')}${randomHex(12)}` as TaskId;
}

/** A short random id for correlation ids and message ids. */
export function newId(): string {
  return randomHex(20);
}

function randomHex(n: number): string {
  const bytes = new Uint8Array(Math.ceil(n / 2));
  crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s.slice(0, n);
}
