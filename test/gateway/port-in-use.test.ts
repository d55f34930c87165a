/**
 * A gateway whose port is taken fails as `listen` would (EADDRINUSE) before it builds anything:
 * no event feed, no backfill, not one message to NATS. A hub beside another on one machine retries
 * its gateway's start with backoff; building first read up to 200,000 task revisions each time.
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { connectBus, defaultTopology, provision } from '../../src/bus/index.js';
import { startGateway } from '../../src/gateway/index.js';
import { uniqueName } from '../support/names.js';
import { useNatsServer } from '../support/nats-server.js';

describe('gateway start on a port in use', () => {
  const nats = useNatsServer();
  let holder: Server | undefined;
  afterEach(() => new Promise<void>((r) => (holder ? holder.close(() => r()) : r())));

  it('fails with EADDRINUSE and sends nothing to NATS; on a free port it starts', async () => {
    const bus = await connectBus({
      servers: nats.url,
      prefix: uniqueName('p'),
      logger: pino({ level: 'silent' }),
    });
    try {
      await provision(bus, defaultTopology(bus.names, { storage: 'memory' }));
      holder = createServer();
      await new Promise<void>((r) => holder!.listen({ host: '127.0.0.1', port: 0 }, () => r()));
      const port = (holder.address() as AddressInfo).port;
      const before = bus.nc.stats().outMsgs;
      const err = await startGateway({ bus, log: pino({ level: 'silent' }), port }).catch((e: unknown) => e);
      expect((err as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
      expect(bus.nc.stats().outMsgs).toBe(before);

      await new Promise<void>((r) => holder!.close(() => r()));
      holder = undefined;
      const g = await startGateway({ bus, log: pino({ level: 'silent' }), port });
      expect(g.url).toBe(`http://127.0.0.1:${port}`);
      await g.close();
    } finally {
      await bus.drain();
    }
  });
});
