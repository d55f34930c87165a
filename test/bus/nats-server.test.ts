import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, RESERVED_NATS_PORT } from '../../src/bus/nats-server.js';
import { uniqueName } from '../support/names.js';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.js';

describe('test nats-server launcher', () => {
  let server: TestNatsServer | undefined;
  afterEach(async () => {
    await server?.dispose();
    server = undefined;
  });

  it('never hands out the reserved port 4222', async () => {
    for (let i = 0; i < 20; i++) expect(await freePort()).not.toBe(RESERVED_NATS_PORT);
  });

  it('keeps JetStream state across SIGKILL and restart on the same store', async () => {
    server = await startNatsServer();
    expect(server.port).not.toBe(RESERVED_NATS_PORT);
    const stream = uniqueName('S');
    let nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    await nc.close();

    const firstPid = server.pid;
    await server.kill();
    await expect(connect({ servers: server.url, reconnect: false })).rejects.toThrow();
    await server.restart();
    expect(server.pid).not.toBe(firstPid);

    nc = await connect({ servers: server.url });
    const info = await (await jetstreamManager(nc)).streams.info(stream);
    expect(info.config.name).toBe(stream);
    await nc.close();
  });
});
