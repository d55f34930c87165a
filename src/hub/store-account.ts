/**
 * @module store-account
 * Keeps a deployment's data when authentication is turned on or off. nats-server keeps each
 * account's JetStream data in its own directory of the store (`jetstream/$G` without accounts,
 * `jetstream/AGENTCOM` with the auth directory's account), so a hub restarted in the other mode
 * would start empty and the tasks submitted before would seem gone. Before its embedded server
 * starts, the hub moves the other mode's directory over when the mode it starts in has none. When
 * both exist it moves nothing and says which data is not visible. Only for the embedded server,
 * whose store the hub owns; it does NOT touch a server it did not start.
 */
import { existsSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENTCOM_ACCOUNT } from './auth/nats-config.js';

/** nats-server's global account: where clients land when the server has no accounts. */
export const GLOBAL_ACCOUNT = '$G';

export type StoreCarry =
  | { kind: 'nothing' }
  | { kind: 'moved'; from: string; to: string }
  | { kind: 'both'; used: string; hidden: string; hiddenDir: string };

export async function carryStoreAcrossAuth(storeDir: string, auth: boolean): Promise<StoreCarry> {
  const to = auth ? AGENTCOM_ACCOUNT : GLOBAL_ACCOUNT;
  const from = auth ? GLOBAL_ACCOUNT : AGENTCOM_ACCOUNT;
  const fromDir = join(storeDir, 'jetstream', from);
  const toDir = join(storeDir, 'jetstream', to);
  if (!existsSync(fromDir)) return { kind: 'nothing' };
  if (existsSync(toDir)) return { kind: 'both', used: to, hidden: from, hiddenDir: fromDir };
  await rename(fromDir, toDir);
  return { kind: 'moved', from, to };
}
