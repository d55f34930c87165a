/** Turning authentication on or off keeps the deployment's data (store-account.ts). */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { carryStoreAcrossAuth } from '../../src/hub/store-account.js';

let store = '';
afterEach(async () => {
  if (store) await rm(store, { recursive: true, force: true });
});
const account = (name: string) => join(store, 'jetstream', name);
const make = async (name: string) => {
  await mkdir(join(account(name), 'streams'), { recursive: true });
  await writeFile(join(account(name), 'streams', 'marker'), name);
};

describe('carryStoreAcrossAuth', () => {
  it('moves the data of the global account to AGENTCOM when auth is turned on, and back', async () => {
    store = await mkdtemp(join(tmpdir(), 'agentcom-store-'));
    await make('$G');
    expect(await carryStoreAcrossAuth(store, true)).toEqual({ kind: 'moved', from: '$G', to: 'AGENTCOM' });
    expect(existsSync(join(account('AGENTCOM'), 'streams', 'marker'))).toBe(true);
    expect(existsSync(account('$G'))).toBe(false);
    expect(await carryStoreAcrossAuth(store, true)).toEqual({ kind: 'nothing' });
    expect(await carryStoreAcrossAuth(store, false)).toEqual({ kind: 'moved', from: 'AGENTCOM', to: '$G' });
  });

  it('moves nothing when both modes have data, and says which is hidden', async () => {
    store = await mkdtemp(join(tmpdir(), 'agentcom-store-'));
    await make('$G');
    await make('AGENTCOM');
    expect(await carryStoreAcrossAuth(store, true)).toEqual({
      kind: 'both',
      used: 'AGENTCOM',
      hidden: '$G',
      hiddenDir: account('$G'),
    });
    expect(existsSync(join(account('$G'), 'streams', 'marker'))).toBe(true);
  });

  it('does nothing on a new store', async () => {
    store = await mkdtemp(join(tmpdir(), 'agentcom-store-'));
    expect(await carryStoreAcrossAuth(store, true)).toEqual({ kind: 'nothing' });
  });
});
