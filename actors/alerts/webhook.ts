/**
 * @module alerts/webhook
 * Delivering one alert event to one webhook: an HTTP POST of the event's JSON (Node's fetch), with
 * `X-AgentCom-Signature: sha256=<hex HMAC-SHA256 of the body>` when the webhook has a secret and
 * `X-AgentCom-Event: <id>`. A 2xx answer delivers it; anything else (another status, a timeout, a
 * network error) is retried after an exponential delay (runtime/backoff.ts), up to
 * `delivery.attempts` POSTs, then given up (logged). Aborting `signal` (the hub stops leading) ends
 * it at once, as `aborted`: the event stays in the rule's outbox for the next leader.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { AlertEvent, Delivery, Webhook } from '../../src/protocol/alert.js';
import { exponentialDelay } from '../../src/runtime/backoff.js';

export type DeliveryOutcome = 'delivered' | 'gave_up' | 'aborted';

export const SIGNATURE_HEADER = 'X-AgentCom-Signature';
export const EVENT_HEADER = 'X-AgentCom-Event';

/** The signature header's value for `body` (what a receiver recomputes to check it). */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Whether `event` goes to `hook` (its `rules` filter). */
export function wants(hook: Webhook, event: AlertEvent): boolean {
  return !hook.rules || hook.rules.includes(event.rule);
}

/** The url without credentials, query or fragment: what logs may show. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export async function deliver(
  hook: Webhook,
  event: AlertEvent,
  delivery: Delivery,
  signal: AbortSignal,
  log: Logger,
): Promise<DeliveryOutcome> {
  const body = JSON.stringify(event);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'agentcom-alerts',
    [EVENT_HEADER]: event.id,
  };
  if (hook.secret) headers[SIGNATURE_HEADER] = signature(hook.secret, body);
  const where = { url: safeUrl(hook.url), event_id: event.id, rule: event.rule };
  for (let attempt = 0; attempt < delivery.attempts; attempt++) {
    if (signal.aborted) return 'aborted';
    let problem: string;
    try {
      const res = await fetch(hook.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'error',
        signal: AbortSignal.any([signal, AbortSignal.timeout(delivery.timeoutMs)]),
      });
      // The body is not wanted; reading it frees the connection.
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        log.info({ ...where, phase: 'webhook_delivered', attempt: attempt + 1 }, 'alert delivered');
        return 'delivered';
      }
      problem = `HTTP ${res.status}`;
    } catch (err) {
      if (signal.aborted) return 'aborted';
      problem = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    if (attempt + 1 >= delivery.attempts) {
      log.error(
        { ...where, phase: 'webhook_gave_up', attempts: attempt + 1, problem },
        'alert not delivered; giving up',
      );
      return 'gave_up';
    }
    const waitMs = Math.round(
      exponentialDelay(attempt, { min: delivery.backoffMinMs, max: delivery.backoffMaxMs }, { jitter: 0.2 }),
    );
    log.warn(
      { ...where, phase: 'webhook_retry', attempt: attempt + 1, problem, retry_ms: waitMs },
      'alert delivery failed; retrying',
    );
    await sleep(waitMs, signal);
  }
  return signal.aborted ? 'aborted' : 'gave_up';
}
