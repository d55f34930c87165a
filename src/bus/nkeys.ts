/**
 * @module nkeys
 * NKey user key pairs for NATS authentication: a fresh seed (the secret, `SU...`) and its public
 * key (`U...`, what the server config lists). It does not store, print or log anything: the caller
 * writes the seed to a 0600 file and puts only the public key in configs.
 */
import { createUser } from '@nats-io/nkeys';

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
