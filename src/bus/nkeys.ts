/**
 * @module nkeys
 * NKey user credentials for NATS authentication: a fresh key pair (the seed, `SU...`, is the
 * secret; the public key, `U...`, is what the server config lists), and reading a seed back from
 * its file. It does not write, print or log anything: the caller stores the seed in a 0600 file
 * and puts only the public key in configs.
 */
import { readFile } from 'node:fs/promises';
import { createUser } from '@nats-io/nkeys';
import { AgentComError, ERROR_CODES } from '../protocol/errors.js';

export interface UserKeyPair {
  /** The secret: whoever holds it connects as this user. */
  seed: string;
  /** Not secret: listed in the server config. */
  publicKey: string;
}

export function createUserKeyPair(): UserKeyPair {
  const kp = createUser();
  const seed = new TextDecoder().decode(kp.getSeed());
  const publicKey = kp.getPublicKey();
  // Wipe the key pair's private material; our copy lives on only in `seed`.
  kp.clear();
  return { seed, publicKey };
}

/**
 * The user seed in a seed file (`.nk`: the first line starting with `SU`; other lines, such as
 * comments, are ignored). Error messages name the file, never its content.
 * @throws AgentComError `not_found` (unreadable) or `invalid_payload` (no user seed in it).
 */
export async function readSeedFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AgentComError(
      ERROR_CODES.NOT_FOUND,
      `cannot read the NKey seed file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: err },
    );
  }
  const seed = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.startsWith('SU'));
  if (!seed)
    throw new AgentComError(
      ERROR_CODES.INVALID_PAYLOAD,
      `${path} holds no NKey user seed (a line starting with SU)`,
    );
  return seed;
}
