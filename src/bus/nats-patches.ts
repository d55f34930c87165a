/**
 * @module nats-patches
 * One measured workaround for nats.js 3.4 (`@nats-io/nats-core` request.js): every successful
 * request (each JetStream publish and KV write is one) ends with `RequestOne.cancel()`, which
 * builds `new RequestError("cancelled")`, stack trace included, only to reject a promise that is
 * already resolved. That was 7% of the hub's CPU under load (self time of `RequestError` in a
 * `HUB_PROF=1 npx tsx bench/hub.ts --no-peers` profile). The patch
 * rejects with one shared error instead. Behaviour is unchanged: rejecting a settled promise is a
 * no-op, and a request cancelled before its reply still rejects with a `RequestError` ("cancelled").
 * Applied once, on import, by connection.ts; remove when upstream stops allocating here.
 */
import { RequestError, RequestOne } from '@nats-io/nats-core/internal';

type RequestOneInternals = {
  timer?: { cancel(): void };
  mux: { cancel(r: unknown): void };
  deferred: { reject(err: Error): void };
};

const CANCELLED = new RequestError('cancelled');
const proto = RequestOne.prototype as unknown as { cancel(err?: Error): void; __agentcomPatched?: boolean };

if (!proto.__agentcomPatched) {
  proto.cancel = function cancel(this: RequestOneInternals, err?: Error): void {
    this.timer?.cancel();
    this.mux.cancel(this);
    this.deferred.reject(err ?? CANCELLED);
  };
  proto.__agentcomPatched = true;
}
