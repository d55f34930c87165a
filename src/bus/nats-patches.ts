/**
 * @module nats-patches
 * Two measured changes to nats.js 3.4 internals. One (`@nats-io/nats-core` request.js): every successful
 * request (each JetStream publish and KV write is one) ends with `RequestOne.cancel()`, which
 * builds `new RequestError("cancelled")`, stack trace included, only to reject a promise that is
 * already resolved. That was 7% of the hub's CPU under load (self time of `RequestError` in a
 * `HUB_PROF=1 npx tsx bench/hub.ts --no-peers` profile). The patch
 * rejects with one shared error instead. Behaviour is unchanged: rejecting a settled promise is a
 * no-op, and a request cancelled before its reply still rejects with a `RequestError` ("cancelled").
 * Both are applied once, on import, by connection.ts; remove the first when upstream stops
 * allocating here.
 */
import { ProtocolHandler, RequestError, RequestOne } from '@nats-io/nats-core/internal';

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

/*
 * Two: nats.js writes its outbound buffer to the socket from a microtask queued by the first
 * command after a flush, so commands issued later in the same event-loop turn (an ack that
 * follows a publish through a promise chain) leave in a second write. Flushing from
 * `setImmediate` instead sends everything a turn produced in one write. Measured with the hub
 * latency run at 500 tasks/s (`npx tsx bench/hub.ts --no-peers --no-e2e --rate 500`, strace -c on
 * the hub): write syscalls per task 3.1-3.4 -> 2.0-2.3, CPU per task -4 % in the hub and in
 * nats-server, latency unchanged. The buffer is still written at once when it passes nats.js's
 * own `pendingLimit`, and `flush()`/`drain()`/`close()` still flush directly.
 */
type ProtocolInternals = {
  outbound: { length(): number; size(): number; fill(buf: Uint8Array, ...p: Uint8Array[]): void };
  pendingLimit: number;
  flushPending(): void;
};
const protocol = ProtocolHandler.prototype as unknown as {
  sendCommand(cmd: string | Uint8Array, ...payloads: Uint8Array[]): void;
  __agentcomPatched?: boolean;
};
if (!protocol.__agentcomPatched) {
  protocol.sendCommand = function sendCommand(
    this: ProtocolInternals,
    cmd: string | Uint8Array,
    ...payloads: Uint8Array[]
  ): void {
    const len = this.outbound.length();
    // Buffer.from, not TextEncoder: a pooled slice, several times cheaper per command (envelope.ts).
    this.outbound.fill(typeof cmd === 'string' ? Buffer.from(cmd, 'utf8') : cmd, ...payloads);
    if (len === 0) setImmediate(() => this.flushPending());
    else if (this.outbound.size() >= this.pendingLimit) this.flushPending();
  };
  protocol.__agentcomPatched = true;
}
