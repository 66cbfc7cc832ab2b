/**
 * PostgreSQL flexible server compute changes (Servers_Update with a SKU) through the real
 * PostgreSQLManagementFlexibleServerClient: a long-running operation during which the server is
 * Updating, refusals that change nothing, and the ResourceWriteSuccess event.
 */
import { PostgreSQLManagementFlexibleServerClient } from '@azure/arm-postgresql-flexible';
import { describe, expect, it } from 'vitest';
import { restErrorOf, sandboxCredential, useSandbox } from '../../support/sandbox.ts';

const KILOMETERS = '5f504e96-b142-4ec0-8e99-50424fa25005';
const XSHOP = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml', 'sandbox/worlds/xshopai.yaml'], postgres: false, azurite: false, lroDurationMs: 200, lroRetryAfterSeconds: 0 });
const POLL = { updateIntervalInMs: 20 };

function client(subscription: string): PostgreSQLManagementFlexibleServerClient {
  return new PostgreSQLManagementFlexibleServerClient(sandboxCredential(sandbox()), subscription, { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
}


describe('Servers_Update with a SKU', () => {
  it('scales the server up as a long-running operation: Updating while it runs, the new SKU after', async () => {
    const pg = client(KILOMETERS);
    const poller = await pg.servers.beginUpdate('rg-kilometers-prod', 'psql-kilometers-prod-k7x2', { sku: { name: 'Standard_D2ds_v5', tier: 'GeneralPurpose' } }, POLL);
    expect((await pg.servers.get('rg-kilometers-prod', 'psql-kilometers-prod-k7x2')).state).toBe('Updating');
    // A second change while one runs is refused: the server is not Ready.
    const busy = await restErrorOf(pg.servers.beginUpdateAndWait('rg-kilometers-prod', 'psql-kilometers-prod-k7x2', { sku: { name: 'Standard_D4ds_v5' } }, POLL));
    expect(busy).toMatchObject({ statusCode: 409, code: 'ServerIsNotReady' });
    const updated = await poller.pollUntilDone();
    expect(updated).toMatchObject({ state: 'Ready', sku: { name: 'Standard_D2ds_v5', tier: 'GeneralPurpose' } });
    // A name alone is enough: the tier follows from it.
    const down = await pg.servers.beginUpdateAndWait('rg-kilometers-prod', 'psql-kilometers-prod-k7x2', { sku: { name: 'Standard_B2ms' } }, POLL);
    expect(down.sku).toEqual({ name: 'Standard_B2ms', tier: 'Burstable' });
    const events = await sandbox().eventGridEvents();
    expect(events.filter((event) => event.eventType === 'Microsoft.Resources.ResourceWriteSuccess').map((event) => event.data.operationName)).toEqual([
      'Microsoft.DBforPostgreSQL/flexibleServers/write',
      'Microsoft.DBforPostgreSQL/flexibleServers/write',
    ]);
  });

  it('refuses an unknown SKU, a tier that does not match, and Burstable with high availability; nothing changes', async () => {
    const pg = client(XSHOP);
    const unknown = await restErrorOf(pg.servers.beginUpdateAndWait('rg-xshopai-prod', 'psql-xshopai-prod', { sku: { name: 'Standard_Q9', tier: 'GeneralPurpose' } }, POLL));
    expect(unknown).toMatchObject({ statusCode: 400, code: 'InvalidSkuName' });
    const mismatch = await restErrorOf(pg.servers.beginUpdateAndWait('rg-xshopai-prod', 'psql-xshopai-prod', { sku: { name: 'Standard_E4ds_v5', tier: 'GeneralPurpose' } }, POLL));
    expect(mismatch.message).toContain('belongs to the MemoryOptimized tier');
    const burstable = await restErrorOf(pg.servers.beginUpdateAndWait('rg-xshopai-prod', 'psql-xshopai-prod', { sku: { name: 'Standard_B2ms', tier: 'Burstable' } }, POLL));
    expect(burstable.code).toBe('HighAvailabilityNotSupportedForBurstable');
    const server = await pg.servers.get('rg-xshopai-prod', 'psql-xshopai-prod');
    expect(server).toMatchObject({ state: 'Ready', sku: { name: 'Standard_D2ds_v5', tier: 'GeneralPurpose' } });
  });

  it('a failed operation leaves the SKU as it was and the server Ready', async () => {
    const pg = client(KILOMETERS);
    await sandbox().injectFault({ operationId: 'Microsoft.DBforPostgreSQL/flexibleServers.update', failLongRunningOperation: true, status: 500 });
    const before = await pg.servers.get('rg-kilometers-prod', 'psql-kilometers-prod-k7x2');
    await expect(pg.servers.beginUpdateAndWait('rg-kilometers-prod', 'psql-kilometers-prod-k7x2', { sku: { name: 'Standard_D8ds_v5' } }, POLL)).rejects.toThrow();
    const after = await pg.servers.get('rg-kilometers-prod', 'psql-kilometers-prod-k7x2');
    expect(after).toMatchObject({ state: 'Ready', sku: before.sku });
  });
});
