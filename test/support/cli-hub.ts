/**
 * One hub for a CLI test file: a nats-server, a hub with a unique prefix, a client, the typed API,
 * and `cli(...args)` running the real command against them. Ready once the API answers (a moment
 * after startHub resolves: the API runs on the hub holding the leader lease).
 */
import { afterAll, beforeAll } from 'vitest';
import { HubClient } from '../../src/bus/hub-client.js';
import type { HubHandle } from '../../src/hub/main.js';
import { type CliResult, runCli } from './cli.js';
import { eventually } from './eventually.js';
import { startTestHub, type TestClient, testClient } from './hub.js';
import { uniqueName } from './names.js';
import { useNatsServer } from './nats-server.js';

export interface CliHub {
  readonly url: string;
  readonly prefix: string;
  readonly client: TestClient;
  readonly api: HubClient;
  /** The real `agentcom` with these args plus `--nats-url` and `--prefix` of this hub. */
  cli(...args: string[]): Promise<CliResult>;
}

export function useCliHub(tag: string): CliHub {
  const nats = useNatsServer();
  let hub: HubHandle | undefined;
  let client: TestClient | undefined;
  let api: HubClient | undefined;
  let prefix = '';
  beforeAll(async () => {
    prefix = uniqueName(tag).replace(/_/g, '-').toLowerCase();
    hub = await startTestHub(nats.url, prefix);
    client = await testClient(nats.url, prefix);
    api = new HubClient(client.bus, 10_000);
    await eventually(() => api!.stats(), { timeout: 15_000, interval: 50 });
  });
  afterAll(async () => {
    await client?.close();
    await hub?.stop();
  });
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`useCliHub: ${what} used outside a test`);
    return v;
  };
  return {
    get url() {
      return nats.url;
    },
    get prefix() {
      return prefix;
    },
    get client() {
      return need(client, 'client');
    },
    get api() {
      return need(api, 'api');
    },
    cli: (...args) => runCli([...args, '--nats-url', nats.url, '--prefix', prefix]),
  };
}
