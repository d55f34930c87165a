/**
 * @module subscribe
 * Typed core NATS subscriptions and requests, for traffic that is not durable by design
 * (heartbeats, hellos, goodbyes): at-most-once, nothing is stored, a message published while no
 * one listens is gone. Payloads are validated like everything else; an invalid one is answered
 * with a structured error when the sender asked for a reply, and otherwise logged and dropped.
 * Handlers may be async; they run concurrently and their failures are logged, never thrown.
 */
import type { z } from 'zod';
import { decodePayload, encodePayload } from '../protocol/envelope.js';
import { AgentComError, ERROR_CODES, type WireError } from '../protocol/errors.js';
import { abandonAfterMs, DeadlineError, withDeadline } from '../runtime/deadline.js';
import type { Bus } from './connection.js';

export interface CoreMessageContext {
  subject: string;
  /** Answer a request (no-op when the sender did not ask for a reply). */
  respond(payload: unknown): void;
}

export interface CoreSubscription {
  unsubscribe(): void;
}

export function subscribeTyped<T>(
  bus: Bus,
  subject: string,
  schema: z.ZodType<T>,
  handler: (payload: T, ctx: CoreMessageContext) => void | Promise<void>,
  opts: { queue?: string; onInvalid?: (error: WireError, subject: string) => void } = {},
): CoreSubscription {
  const sub = bus.nc.subscribe(subject, {
    ...(opts.queue ? { queue: opts.queue } : {}),
    callback: (err, m) => {
      if (err) {
        bus.log.warn({ err, subject }, 'subscription error');
        return;
      }
      const ctx: CoreMessageContext = {
        subject: m.subject,
        respond: (payload) => {
          if (m.reply) m.respond(JSON.stringify(payload));
        },
      };
      const r = decodePayload(schema, m.data);
      if (!r.ok) {
        opts.onInvalid?.(r.error, m.subject);
        bus.log.debug({ subject: m.subject, error: r.error }, 'invalid core message dropped');
        ctx.respond({ v: 1, ok: false, error: r.error });
        return;
      }
      try {
        const p = handler(r.value, ctx);
        if (p) p.catch((e) => bus.log.error({ err: e, subject: m.subject }, 'core handler failed'));
      } catch (e) {
        bus.log.error({ err: e, subject: m.subject }, 'core handler threw');
      }
    },
  });
  return { unsubscribe: () => sub.unsubscribe() };
}

/** Core publish of a validated payload (dropped silently by nats.js while disconnected). */
export function publishCore<T>(bus: Bus, subject: string, schema: z.ZodType<T>, payload: T): void {
  bus.nc.publish(subject, encodePayload(schema, payload));
}

/**
 * Request/reply on a core subject with validated input and output.
 * @throws AgentComError `timeout`, `unavailable` (no responders), or `invalid_payload` for a bad reply.
 */
export async function requestTyped<I, O>(
  bus: Bus,
  subject: string,
  inputSchema: z.ZodType<I>,
  input: I,
  outputSchema: z.ZodType<O>,
  timeoutMs = 5_000,
): Promise<O> {
  let reply: Awaited<ReturnType<typeof bus.nc.request>>;
  try {
    // The timeout is a deadline that does not count this process's stalls (runtime/deadline.ts):
    // a standby whose loop was held must still read the "no responders" that says a leader is
    // gone. The client's own timer (abandonAfterMs) only ends a request given up on.
    const request = bus.nc.request(subject, encodePayload(inputSchema, input), {
      timeout: abandonAfterMs(timeoutMs),
    });
    reply = await withDeadline(request, timeoutMs, subject);
  } catch (err) {
    const timeout = err instanceof DeadlineError || (err as Error).name === 'TimeoutError';
    throw new AgentComError(
      timeout ? ERROR_CODES.TIMEOUT : ERROR_CODES.UNAVAILABLE,
      `${subject}: ${timeout ? 'timed out' : (err as Error).message}`,
      { cause: err },
    );
  }
  const r = decodePayload(outputSchema, reply.data);
  if (!r.ok) throw AgentComError.fromWire(r.error);
  return r.value;
}

/**
 * Request/reply to every responder at once: the replies that arrive within `waitMs`, each
 * validated (an invalid one is skipped, not fatal: one bad responder must not hide the others).
 * None is an empty list, not an error.
 */
export async function requestAllTyped<I, O>(
  bus: Bus,
  subject: string,
  inputSchema: z.ZodType<I>,
  input: I,
  outputSchema: z.ZodType<O>,
  waitMs: number,
): Promise<{ reply: O; at: number }[]> {
  const out: { reply: O; at: number }[] = [];
  try {
    const replies = await bus.nc.requestMany(subject, encodePayload(inputSchema, input), {
      strategy: 'timer',
      maxWait: waitMs,
    });
    for await (const m of replies) {
      const r = decodePayload(outputSchema, m.data);
      if (r.ok) out.push({ reply: r.value, at: Date.now() });
    }
  } catch (err) {
    // No responders at all: nobody answers, which is the caller's finding, not an error.
    if ((err as Error).name !== 'NoRespondersError' && !/no responders/i.test((err as Error).message))
      throw err;
  }
  return out;
}
