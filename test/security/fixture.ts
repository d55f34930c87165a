/**
 * A deployment with authentication for security tests: a fresh auth directory (hub, admin and the
 * given agents, through the same code `agentcom agent add` uses), a real nats-server started with
 * its generated config, and helpers to connect as each user. Agents connect the way the SDK does:
 * their own seed and their own reply-inbox prefix.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { expect } from 'vitest';
import { AgentClient } from '../../src/agent/client.js';
import { type Bus, connectBus } from '../../src/bus/connection.js';
import { readSeedFile } from '../../src/bus/nkeys.js';
import { createAgentCredentials } from '../../src/hub/auth/agent-credentials.js';
import { AGENT_SEED_FILE, type AuthDirPaths, ensureAuthDir } from '../../src/hub/auth/auth-dir.js';
import { reloadNatsServer } from '../../src/hub/auth/reload.js';
import { checkAgentAccess, retryCheck } from '../../src/hub/auth/verify.js';
import type { AgentHelloInput } from '../../src/protocol/agent.js';
import { AgentComError, ERROR_CODES } from '../../src/protocol/errors.js';
import type { AgentId, QueueName } from '../../src/protocol/ids.js';
import { agentInboxPrefix } from '../../src/protocol/permissions.js';
import { uniqueName } from '../support/names.js';
import { startNatsServer, type TestNatsServer } from '../support/nats-server.js';

export interface AgentSpec {
  id: string;
  canSubmit?: boolean;
  /** The only queues it may submit to (implies canSubmit). */
  submitQueues?: string[];
}

export interface AuthFixture {
  readonly dir: string;
  readonly paths: AuthDirPaths;
  readonly prefix: string;
  readonly server: TestNatsServer;
  readonly url: string;
  /** Connect with the hub's or the admin's seed (full access). */
  connectAs(user: 'hub' | 'admin'): Promise<Bus>;
  /** Connect as an agent: its seed and its reply-inbox prefix. */
  connectAgent(id: string): Promise<Bus>;
  agentSeed(id: string): Promise<string>;
  /** Add an agent to a running server (config rewritten, server reloaded, credentials verified). */
  addAgent(spec: AgentSpec): Promise<void>;
  /** Every connection opened through the fixture, then the server and the directory. */
  dispose(): Promise<void>;
}

const silent = pino({ level: 'silent' });

export async function startAuthFixture(agents: AgentSpec[], tag = 'sec'): Promise<AuthFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'agentcom-auth-'));
  const prefix = uniqueName(tag).replace(/_/g, '-').toLowerCase().slice(0, 32);
  const { paths } = await ensureAuthDir(dir, {
    prefix,
    listen: '127.0.0.1:4222',
    storeDir: join(dir, 'store'),
  });
  const create = (spec: AgentSpec, servers: string) =>
    createAgentCredentials(paths, {
      id: spec.id as AgentId,
      name: `agent ${spec.id}`,
      capabilities: [],
      queues: ['default' as QueueName],
      slots: 1,
      canSubmit: spec.canSubmit === true || spec.submitQueues !== undefined,
      ...(spec.submitQueues ? { submitQueues: spec.submitQueues as QueueName[] } : {}),
      servers,
      prefix,
    });
  for (const a of agents) await create(a, 'nats://127.0.0.1:4222');
  const server = await startNatsServer({ configFile: paths.config });
  const opened: Bus[] = [];
  const keep = (b: Bus) => {
    opened.push(b);
    return b;
  };
  const agentSeed = (id: string) => readSeedFile(join(paths.agentDir(id), AGENT_SEED_FILE));
  return {
    dir,
    paths,
    prefix,
    server,
    url: server.url,
    connectAs: async (user) =>
      keep(
        await connectBus({
          servers: server.url,
          prefix,
          name: `test-${user}`,
          nkeySeed: await readSeedFile(user === 'hub' ? paths.hubSeed : paths.adminSeed),
          logger: silent,
        }),
      ),
    connectAgent: async (id) =>
      keep(
        await connectBus({
          servers: server.url,
          prefix,
          name: `test-agent-${id}`,
          nkeySeed: await agentSeed(id),
          inboxPrefix: agentInboxPrefix(id),
          waitOnFirstConnect: false,
          logger: silent,
        }),
      ),
    agentSeed,
    addAgent: async (spec) => {
      await create(spec, server.url);
      const reload = await reloadNatsServer(paths.pidFile);
      if (!reload.ok) throw new Error(reload.message);
      const seed = await agentSeed(spec.id);
      const check = await retryCheck(() =>
        checkAgentAccess({ servers: server.url, prefix, agentId: spec.id, seed }),
      );
      if (!check.ok) throw new Error(check.message);
    },
    dispose: async () => {
      await Promise.all(opened.map((b) => b.drain().catch(() => undefined)));
      await server.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An SDK agent with its own credentials, as a sidecar runs one (the caller stops it). */
export async function connectAgentClient(
  fx: AuthFixture,
  id: string,
  hello: Omit<AgentHelloInput, 'v'>,
): Promise<AgentClient> {
  return AgentClient.connect({
    agentId: id,
    connection: {
      servers: fx.url,
      prefix: fx.prefix,
      nkeySeed: await fx.agentSeed(id),
      inboxPrefix: agentInboxPrefix(id),
    },
    hello,
    logger: silent,
    helloTimeoutMs: 15_000,
  });
}

/** Resolves with the error a denied request, publish-with-ack or API call rejects with. */
export async function denial(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a permissions violation, but the operation succeeded');
}

export const PERMISSION_VIOLATION = /permissions violation/i;

/** The error is the server refusing the publish (a permissions violation), typed as `forbidden`. */
export function expectServerRefusal(err: Error, what: string): void {
  expect(err, what).toBeInstanceOf(AgentComError);
  expect((err as AgentComError).code, what).toBe(ERROR_CODES.FORBIDDEN);
  expect(err.message, what).toMatch(PERMISSION_VIOLATION);
}

/** The error is the hub's answer (the request got through the server). */
export function expectHubRefusal(err: Error, code: string, what: string): void {
  expect(err, what).toBeInstanceOf(AgentComError);
  expect((err as AgentComError).code, what).toBe(code);
  expect(err.message, what).not.toMatch(PERMISSION_VIOLATION);
}
