/**
 * Storage account keys through the real StorageManagementClient (listKeys, regenerateKey), and
 * whether a key authenticates, tried with the real BlobServiceClient and a
 * StorageSharedKeyCredential against Azurite, as a consumer holding the key would: a
 * regenerated key stops working at once, the other keeps working, and with shared-key access
 * off no account key works while OAuth does.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { StorageManagementClient } from '@azure/arm-storage';
import { BlobServiceClient, StorageSharedKeyCredential, type StoragePipelineOptions } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../../sandbox/index.ts';
import { defaultProviders, StorageAccountsProvider } from '../../../sandbox/providers/index.ts';
import { sandboxCredential } from '../../support/sandbox.ts';

const SUBSCRIPTION = '6a6b6c6d-0000-4000-8000-000000000006';
const RG = 'rg-keys';

let dir = '';
let sandbox: SandboxHandle;
let client: StorageManagementClient;
const providers = defaultProviders();
const storage = providers.find((provider): provider is StorageAccountsProvider => provider instanceof StorageAccountsProvider);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'storage-keys-test-'));
  const world = path.join(dir, 'keys.yaml');
  await writeFile(
    world,
    [
      'name: keys',
      'description: Two accounts, one that allows shared keys and one that does not.',
      'tenantId: 72f988bf-0000-4000-8000-00000000a001',
      `subscriptionId: ${SUBSCRIPTION}`,
      'resources:',
      `  - { type: Microsoft.Storage/storageAccounts, resourceGroup: ${RG}, name: stkeysshared, location: westeurope, spec: { allowSharedKeyAccess: true, keysRotatedDaysAgo: { key1: 40 } } }`,
      `  - { type: Microsoft.Storage/storageAccounts, resourceGroup: ${RG}, name: stkeysoauth, location: westeurope }`,
    ].join('\n'),
  );
  sandbox = await startSandbox({ worlds: [world], providers, postgres: false });
  client = new StorageManagementClient(sandboxCredential(sandbox), SUBSCRIPTION, { endpoint: sandbox.baseUrl, tlsOptions: { ca: sandbox.caPem } });
});

afterAll(async () => {
  await sandbox.stop();
  await rm(dir, { recursive: true, force: true });
});

/** Reads the blob service properties with a shared key, as a consumer holding the key would. */
async function authenticates(account: string, key: string): Promise<boolean> {
  const options: StoragePipelineOptions & { agent: Agent } = { agent: new Agent({ ca: sandbox.caPem }), retryOptions: { maxTries: 1 } };
  const service = new BlobServiceClient(`${sandbox.azurite?.blobEndpoint ?? ''}/${account}`, new StorageSharedKeyCredential(account, key), options);
  try {
    await service.getProperties();
    return true;
  } catch (error) {
    expect((error as { statusCode?: number }).statusCode).toBe(403);
    return false;
  }
}

async function keysOf(account: string): Promise<Record<string, string>> {
  const listed = await client.storageAccounts.listKeys(RG, account);
  return Object.fromEntries((listed.keys ?? []).map((key) => [key.keyName ?? '', key.value ?? '']));
}

describe('storage account keys', () => {
  it('lists both keys as the spec shapes them, and both authenticate', async () => {
    const listed = await client.storageAccounts.listKeys(RG, 'stkeysshared');
    expect(listed.keys?.map((key) => ({ keyName: key.keyName, permissions: key.permissions }))).toEqual([
      { keyName: 'key1', permissions: 'Full' },
      { keyName: 'key2', permissions: 'Full' },
    ]);
    const account = await client.storageAccounts.getProperties(RG, 'stkeysshared');
    expect(account.allowSharedKeyAccess).toBe(true);
    expect(account.keyCreationTime?.key1?.getTime()).toBeLessThan(Date.now() - 39 * 86_400_000);
    const keys = await keysOf('stkeysshared');
    expect(await authenticates('stkeysshared', keys.key1 ?? '')).toBe(true);
    expect(await authenticates('stkeysshared', keys.key2 ?? '')).toBe(true);
    expect(await authenticates('stkeysshared', Buffer.from('not-the-key').toString('base64'))).toBe(false);
  });

  it('regenerates one key: the old value stops authenticating at once, the other key keeps working', async () => {
    const before = await keysOf('stkeysshared');
    const regenerated = await client.storageAccounts.regenerateKey(RG, 'stkeysshared', { keyName: 'key2' });
    const after = Object.fromEntries((regenerated.keys ?? []).map((key) => [key.keyName ?? '', key.value ?? '']));
    expect(after.key1).toBe(before.key1);
    expect(after.key2).not.toBe(before.key2);
    expect(await authenticates('stkeysshared', before.key2 ?? '')).toBe(false);
    expect(await authenticates('stkeysshared', after.key2 ?? '')).toBe(true);
    expect(await authenticates('stkeysshared', after.key1 ?? '')).toBe(true);
    expect(await keysOf('stkeysshared')).toEqual(after);
    expect((await client.storageAccounts.getProperties(RG, 'stkeysshared')).keyCreationTime?.key2?.getTime()).toBeGreaterThan(Date.now() - 60_000);
    // The emulated consumers' check says the same.
    expect(await storage?.checkKey('stkeysshared', before.key2 ?? '')).toMatchObject({ ok: false, reason: expect.stringMatching(/^403 /) as string });
    expect(await storage?.checkKey('stkeysshared', after.key2 ?? '')).toEqual({ ok: true });
  });

  it('refuses an unknown key name and changes nothing', async () => {
    const before = await keysOf('stkeysshared');
    await expect(client.storageAccounts.regenerateKey(RG, 'stkeysshared', { keyName: 'key3' })).rejects.toMatchObject({ statusCode: 400 });
    expect(await keysOf('stkeysshared')).toEqual(before);
    await expect(client.storageAccounts.regenerateKey(RG, 'stmissing', { keyName: 'key1' })).rejects.toMatchObject({ statusCode: 404 });
  });

  it('with shared-key access off, lists keys that do not authenticate, while OAuth does', async () => {
    expect((await client.storageAccounts.getProperties(RG, 'stkeysoauth')).allowSharedKeyAccess).toBe(false);
    const keys = await keysOf('stkeysoauth');
    expect(await authenticates('stkeysoauth', keys.key1 ?? '')).toBe(false);
    expect(await authenticates('stkeysoauth', keys.key2 ?? '')).toBe(false);
    const options: StoragePipelineOptions & { agent: Agent } = { agent: new Agent({ ca: sandbox.caPem }), retryOptions: { maxTries: 1 } };
    const oauth = new BlobServiceClient(`${sandbox.azurite?.blobEndpoint ?? ''}/stkeysoauth`, sandboxCredential(sandbox), options);
    await oauth.getContainerClient('oauth-works').create();
  });

  it('never shows a key in the state', async () => {
    const keys = await keysOf('stkeysshared');
    const state = JSON.stringify(storage?.snapshot());
    expect(state).not.toContain(keys.key1);
    expect(state).not.toContain(keys.key2);
  });
});
