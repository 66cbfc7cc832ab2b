/**
 * The inventory runbook over every seed world, through the real sandbox and the real SDK
 * clients: the values Azure (the sandbox) reports, the planted problems visible in them, one
 * failing target never stopping the others, and the run record it produces.
 */
import { describe, expect, it } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import type { EstateConfig } from '../../../src/config/schema.ts';
import { inventoryEntryCount, runInventory, type InventoryResult } from '../../../src/runbooks/inventory.ts';
import { replicationOfSku } from '../../../src/runbooks/shared/storage-sku.ts';
import { useSandbox } from '../../support/sandbox.ts';

const WORLDS = ['healthz-app', 'kilometers', 'limpopo-connect', 'lms', 'xshopai'];

describe('inventory over every seed world', () => {
  const sandbox = useSandbox({ postgres: false, azurite: false });

  async function inventoryOf(world: string, edit?: (config: EstateConfig) => EstateConfig): Promise<InventoryResult> {
    const entry = sandbox().worlds.find((candidate) => candidate.name === world);
    if (entry === undefined) throw new Error(`world ${world} is not loaded`);
    const loaded = await loadConfigFile(entry.configFile);
    const config = edit === undefined ? loaded : edit(loaded);
    const clients = createAzureClients(config.azure);
    try {
      return await runInventory(config, clients, { trigger: 'cli' });
    } finally {
      await clients.close();
    }
  }

  it('reads every target of every world without errors and records a read-only run', async () => {
    expect(sandbox().worlds.map((world) => world.name).sort()).toEqual(WORLDS);
    for (const world of WORLDS) {
      const result = await inventoryOf(world);
      expect(result.errors, world).toEqual([]);
      const config = await loadConfigFile(sandbox().worlds.find((entry) => entry.name === world)?.configFile ?? '');
      expect(inventoryEntryCount(result), world).toBe(config.targets.length);
      expect(result.record).toMatchObject({ runbook: 'inventory', trigger: 'cli', estate: world, status: 'succeeded' });
      expect(result.record.targets).toHaveLength(config.targets.length);
      const outcomes = new Set(result.record.targets.flatMap((target) => target.actions.map((action) => action.outcome)));
      expect([...outcomes], world).toEqual(['applied']);
    }
  });

  it('lms: the newest backup is about 74 hours old (stale), retention 7 days', async () => {
    const result = await inventoryOf('lms');
    const server = result.postgresServers.find((entry) => entry.name === 'psql-lms-prod');
    expect(server).toMatchObject({ state: 'Ready', version: '15', backupRetentionDays: 7, geoRedundantBackup: 'Disabled', backupCount: 4 });
    expect(server?.newestBackupAgeHours).toBeGreaterThanOrEqual(73.5);
    expect(server?.newestBackupAgeHours).toBeLessThanOrEqual(74.5);
    expect(result.storageAccounts[0]).toMatchObject({ name: 'stlmsprod', replication: 'ZRS', blobSoftDelete: { enabled: true, days: 7 } });
  });

  it('kilometers: 3-day retention with an earliest restore point 30 hours back; the staging slot runs the previous image', async () => {
    const result = await inventoryOf('kilometers');
    const server = result.postgresServers[0];
    expect(server).toMatchObject({ name: 'psql-kilometers-prod-k7x2', backupRetentionDays: 3 });
    expect(server?.restoreWindowHours).toBeGreaterThanOrEqual(29.5);
    expect(server?.restoreWindowHours).toBeLessThanOrEqual(30.5);
    expect(result.webApps[0]).toMatchObject({
      name: 'app-kilometers-api-k7x2',
      state: 'Running',
      kind: 'app,linux,container',
      defaultHostName: 'app-kilometers-api-k7x2.azurewebsites.net',
      images: ['ghcr.io/kilometers-ai/kilometers-api:2.4.1'],
      slots: [{ name: 'staging', images: ['ghcr.io/kilometers-ai/kilometers-api:2.4.0'] }],
    });
    expect(result.keyVaults[0]?.nearestExpiry?.name).toBe('ApiKey-Payments');
  });

  it('xshopai: a dozen revisions on ca-user-service, the old deployed image in use, JWT-SECRET expiring in 5 days', async () => {
    const result = await inventoryOf('xshopai');
    const users = result.containerApps.find((app) => app.name === 'ca-user-service');
    expect(users).toMatchObject({ revisionCount: 12, activeRevisionCount: 8, latestRevisionName: 'ca-user-service--v1-0-12' });
    expect(users?.traffic).toEqual([{ latestRevision: true, weight: 100 }]);
    expect(users?.revisions[0]).toMatchObject({ name: 'ca-user-service--v1-0-12', active: true, trafficWeight: 100 });
    expect(result.containerApps).toHaveLength(5);

    const registry = result.registries[0];
    expect(registry).toMatchObject({ name: 'crxshopaiprod', loginServer: 'crxshopaiprod.azurecr.io', repositoryCount: 5, untaggedManifestCount: 5 });
    const oldImage = registry?.imagesInUse.find((image) => image.image === 'crxshopaiprod.azurecr.io/user-service:v1.0.3');
    expect(oldImage).toEqual({
      image: 'crxshopaiprod.azurecr.io/user-service:v1.0.3',
      repository: 'user-service',
      reference: 'v1.0.3',
      usedBy: ['ca-user-service (revision ca-user-service--v1-0-3)'],
      present: true,
    });
    expect(registry?.repositories.find((repository) => repository.name === 'user-service')?.lockedCount).toBe(1);

    const vault = result.keyVaults[0];
    expect(vault?.nearestExpiry?.name).toBe('JWT-SECRET');
    expect(vault?.nearestExpiry?.days).toBeGreaterThan(4.5);
    expect(vault?.nearestExpiry?.days).toBeLessThanOrEqual(5.1);
    expect(vault).toMatchObject({ softDeleteEnabled: true, purgeProtectionEnabled: true });
    expect(result.postgresServers[0]).toMatchObject({ backupRetentionDays: 35, geoRedundantBackup: 'Enabled' });
  });

  it('limpopo-connect: expired StorageAccountKey, purge protection off, LRS storage with soft delete off', async () => {
    const result = await inventoryOf('limpopo-connect');
    const vault = result.keyVaults[0];
    expect(vault?.purgeProtectionEnabled).toBe(false);
    expect(vault?.expired.map((secret) => secret.name)).toEqual(['StorageAccountKey']);
    expect(vault?.expired[0]?.days).toBeLessThan(0);
    expect(result.storageAccounts[0]).toMatchObject({
      name: 'stlimpopoconnect',
      sku: 'Standard_LRS',
      replication: 'LRS',
      blobSoftDelete: { enabled: false },
      containerSoftDelete: { enabled: false },
      versioning: false,
    });
    expect(result.webApps[0]).toMatchObject({ name: 'func-limpopo-connect-prod', kind: 'functionapp,linux', slots: [] });
    expect(result.postgresServers[0]?.backupRetentionDays).toBe(7);
  });

  it('healthz-app: the live image is in use and present; the rollback revision is inactive', async () => {
    const result = await inventoryOf('healthz-app');
    const app = result.containerApps[0];
    expect(app).toMatchObject({ name: 'ca-webapi-prod', revisionCount: 3, activeRevisionCount: 1, images: ['crwebapiprod.azurecr.io/webapi:e52a9c4'] });
    expect(app?.revisions.map((revision) => revision.name)).toEqual(['ca-webapi-prod--e52a9c4', 'ca-webapi-prod--3f9c2a1', 'ca-webapi-prod--8b41d07']);
    const registry = result.registries[0];
    // The live image, and the two inactive revisions' (the rollback targets, keepInactiveRevisions 2 by default).
    expect(registry?.imagesInUse).toEqual([
      { image: 'crwebapiprod.azurecr.io/webapi:3f9c2a1', repository: 'webapi', reference: '3f9c2a1', usedBy: ['ca-webapi-prod (inactive revision ca-webapi-prod--3f9c2a1, kept for rollback)'], present: true },
      { image: 'crwebapiprod.azurecr.io/webapi:8b41d07', repository: 'webapi', reference: '8b41d07', usedBy: ['ca-webapi-prod (inactive revision ca-webapi-prod--8b41d07, kept for rollback)'], present: true },
      { image: 'crwebapiprod.azurecr.io/webapi:e52a9c4', repository: 'webapi', reference: 'e52a9c4', usedBy: ['ca-webapi-prod'], present: true },
    ]);
    expect(registry?.repositories.map((repository) => repository.name)).toEqual(['webapi', 'webapi/db-migrations']);
    expect(registry?.tagCount).toBeGreaterThan(20);
  });

  it('records a failing target with its ID and a clear message, and still reads the others', async () => {
    const result = await inventoryOf('xshopai', (config) => ({
      ...config,
      targets: [
        ...config.targets,
        { id: config.targets[0]?.id.replace('ca-user-service', 'ca-does-not-exist') ?? '', runbooks: {} },
        {
          id: `/subscriptions/3d3e2c74-9f20-4cae-9c77-3e202d803003/resourceGroups/rg-xshopai-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-gone`,
          runbooks: {},
        },
      ],
    }));
    expect(result.containerApps).toHaveLength(5);
    expect(result.postgresServers).toHaveLength(1);
    // The registry's images in use cannot be known while a configured app cannot be read: its
    // entry fails too (closed, as image-purge's plan would), naming the app.
    expect(result.errors.map((error) => [error.targetId.split('/').at(-1), error.error.name, error.error.statusCode])).toEqual([
      ['crxshopaiprod', 'InUseResolutionError', undefined],
      ['ca-does-not-exist', 'ResourceNotFoundError', 404],
      ['psql-gone', 'ResourceNotFoundError', 404],
    ]);
    for (const error of result.errors) expect(error.error.message).toContain(error.targetId);
    expect(result.errors[0]?.error.message).toContain('ca-does-not-exist');
    expect(result.record.status).toBe('partial');
    expect(result.record.summary.targetsFailed).toBe(3);
  });

  it('survives an authorization failure on one target', async () => {
    await sandbox().injectFault({ operationId: 'Microsoft.Storage/storageAccounts.getProperties', status: 403, count: 100, errorCode: 'AuthorizationFailed' });
    try {
      const result = await inventoryOf('lms');
      expect(result.postgresServers).toHaveLength(1);
      expect(result.storageAccounts).toHaveLength(0);
      expect(result.errors).toHaveLength(1);
      expect(result.errors[0]?.error).toMatchObject({ name: 'AuthorizationFailedError', statusCode: 403, code: 'AuthorizationFailed' });
      expect(result.errors[0]?.targetId).toMatch(/\/stlmsprod$/);
    } finally {
      await sandbox().clearFaults();
    }
  });
});

describe('inventory helpers', () => {
  it('reads the replication of a storage SKU', () => {
    expect(replicationOfSku('Standard_RAGRS')).toBe('RAGRS');
    expect(replicationOfSku('Premium_ZRS')).toBe('ZRS');
    expect(replicationOfSku(undefined)).toBeUndefined();
  });
});
