/**
 * @module redeliver
 * Has the server redeliver at once what a durable delivered and never saw acknowledged, instead of
 * after `ack_wait`: for deliveries held by a process that is known to be gone (a hub that lost its
 * lease, an agent whose new session said hello). It sends a NAK for each sequence between the
 * durable's ack floor and its last delivered one, on the durable's ack subject
 * (`$JS.ACK.<stream>.<durable>.…`, the format of ADR-15; the server ignores sequences that are not
 * pending). These are ordinary redeliveries: they count toward max_deliver, so a message that kills
 * every process handling it still ends in the DLQ. Never for a durable that a live process is
 * consuming at the same time: what it holds would be delivered twice at once.
 */
import type { Bus } from './connection.js';

/** The most sequence numbers one call asks the server to redeliver. */
export const REDELIVER_SCAN_MAX = 100_000;

/** Returns how many deliveries were pending (0 when nothing was asked). */
export async function redeliverUnacked(bus: Bus, stream: string, durable: string): Promise<number> {
  const info = await bus.jsm.consumers.info(stream, durable);
  if (info.num_ack_pending === 0) return 0;
  const first = info.ack_floor.stream_seq + 1;
  const last = Math.min(info.delivered.stream_seq, first + REDELIVER_SCAN_MAX - 1);
  // An ack subject names the delivery's stream and consumer sequences; the server checks the
  // consumer sequence only against its range, so the last delivered one serves for all.
  const dseq = info.delivered.consumer_seq;
  const nak = new TextEncoder().encode('-NAK');
  for (let seq = first; seq <= last; seq++) {
    bus.nc.publish(`$JS.ACK.${stream}.${durable}.1.${seq}.${dseq}.${Date.now()}000000.0`, nak);
  }
  await bus.nc.flush();
  bus.log.info(
    { stream, consumer: durable, ack_pending: info.num_ack_pending, first_seq: first, last_seq: last },
    'asked for the redelivery of what a previous consumer left unacknowledged',
  );
  return info.num_ack_pending;
}
