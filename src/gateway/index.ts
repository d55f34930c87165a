/**
 * @module gateway
 * Starting the HTTP gateway: inside a hub (src/hub/tree.ts, on every hub) or alone (`agentcom
 * gateway`). `startGateway` listens and returns the URL; a port in use is reported as such (a
 * hub keeps running without its gateway, see tree.ts).
 */
import { type AddressInfo, createServer } from 'node:net';
import { buildGateway, type Gateway, type GatewayOptions } from './app.js';

export { buildGateway, type Gateway, type GatewayOptions, toWireError } from './app.js';

export interface GatewayListenOptions extends GatewayOptions {
  /** Address to bind (default 127.0.0.1: not reachable from other machines unless asked). */
  host?: string;
  /** 0: any free port. */
  port: number;
}

export interface RunningGateway {
  readonly url: string;
  readonly gateway: Gateway;
  close(): Promise<void>;
}

export async function startGateway(opts: GatewayListenOptions): Promise<RunningGateway> {
  const host = opts.host ?? '127.0.0.1';
  await probePort(host, opts.port);
  const gateway = await buildGateway(opts);
  try {
    await gateway.app.listen({ host, port: opts.port });
  } catch (err) {
    await gateway.close();
    throw err;
  }
  const addr = gateway.app.server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { url: `http://${shown}:${addr.port}`, gateway, close: () => gateway.close() };
}

/**
 * Fails as `listen` would (EADDRINUSE) before anything is built. Building starts the event feeds,
 * whose backfill reads up to 200,000 task revisions: a hub beside another on one machine and port
 * retried its start every few seconds and threw that work away each time, taking CPU from the
 * leader beside it (bench:scale). Someone taking the port between the probe and the listen is
 * still reported by the listen.
 */
function probePort(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
