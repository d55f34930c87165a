/**
 * `agentcom hub`: until the hub actors land this starts the embedded nats-server (when no NATS_URL
 * is set) and waits for SIGTERM/SIGINT.
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { findNatsServer, freePort, natsServerArgs, waitForNats } from '../bus/nats-server.js';

export async function runHub(opts: { natsUrl?: string; dataDir?: string }): Promise<void> {
  const log = pino({ name: 'agentcom-hub' });
  const natsUrl = opts.natsUrl ?? process.env.NATS_URL;
  if (natsUrl) {
    log.info({ natsUrl }, 'using external NATS');
  } else {
    const storeDir = resolve(opts.dataDir ?? process.env.AGENTCOM_DATA_DIR ?? '.agentcom/nats');
    await mkdir(storeDir, { recursive: true });
    const port = await freePort();
    const child = spawn(findNatsServer(), natsServerArgs({ port, storeDir }), { stdio: 'inherit' });
    await waitForNats(port);
    log.info({ natsUrl: `nats://127.0.0.1:${port}`, storeDir }, 'embedded nats-server ready');
    const stop = () => {
      log.info('shutting down');
      child.kill('SIGTERM');
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    await new Promise((r) => child.once('exit', r));
  }
}
