/**
 * Every world's resources through the real Azure SDK clients over HTTPS against the sandbox:
 * ARM shapes deserialize, lists page, the Key Vault challenge and the ACR token exchange work.
 */
import { request as httpsRequest } from 'node:https';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { ContainerAppsAPIClient } from '@azure/arm-appcontainers';
import { WebSiteManagementClient } from '@azure/arm-appservice';
import { KeyVaultManagementClient } from '@azure/arm-keyvault';
import { PostgreSQLManagementFlexibleServerClient } from '@azure/arm-postgresql-flexible';
import { StorageManagementClient } from '@azure/arm-storage';
import { ContainerRegistryManagementClient } from '@azure/arm-containerregistry';
import { ContainerRegistryClient, KnownContainerRegistryAudience } from '@azure/container-registry';
import { SecretClient } from '@azure/keyvault-secrets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type SandboxHandle } from '../../../sandbox/index.ts';

const SUBSCRIPTIONS = {
  limpopo: '1b1c0a52-7d0e-4a8c-9a55-1c0e0b6f1001',
  healthz: '2c2d1b63-8e1f-4b9d-8b66-2d1f1c7f2002',
  xshopai: '3d3e2c74-9f20-4cae-9c77-3e202d803003',
  lms: '4e4f3d85-a031-4dbf-8d88-4f313e914004',
  kilometers: '5f504e96-b142-4ec0-8e99-50424fa25005',
} as const;

let sandbox: SandboxHandle;

/** Client credentials against the sandbox token endpoint, honouring a challenge's tenant. */
class SandboxCredential implements TokenCredential {
  constructor(private readonly handle: SandboxHandle) {}

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken> {
    const tenant = options?.tenantId ?? this.handle.tenantId;
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'sandbox-providers-test',
      client_secret: 'not-a-real-secret',
      scope: Array.isArray(scopes) ? scopes.join(' ') : scopes,
    }).toString();
    const text = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        `${this.handle.baseUrl}/${tenant}/oauth2/v2.0/token`,
        { method: 'POST', ca: this.handle.caPem, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const payload = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode === 200) resolve(payload);
            else reject(new Error(`token endpoint: expected 200, found ${String(res.statusCode)}: ${payload}`));
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    const parsed = JSON.parse(text) as { access_token: string; expires_in: number };
    return { token: parsed.access_token, expiresOnTimestamp: Date.now() + parsed.expires_in * 1000 };
  }
}

let credential: SandboxCredential;
const clientOptions = (): { endpoint: string; tlsOptions: { ca: string } } => ({ endpoint: sandbox.baseUrl, tlsOptions: { ca: sandbox.caPem } });

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

beforeAll(async () => {
  sandbox = await startSandbox({ postgres: false, azurite: false });
  credential = new SandboxCredential(sandbox);
});

afterAll(async () => {
  await sandbox.stop();
});

describe('Microsoft.Web through WebSiteManagementClient', () => {
  it('reads the limpopo function app and its config', async () => {
    const client = new WebSiteManagementClient(credential, SUBSCRIPTIONS.limpopo, clientOptions());
    const site = await client.webApps.get('rg-limpopo-connect-prod', 'func-limpopo-connect-prod');
    expect(site).toMatchObject({ kind: 'functionapp,linux', state: 'Running', defaultHostName: 'func-limpopo-connect-prod.azurewebsites.net' });
    expect(site.serverFarmId).toMatch(/\/serverfarms\/asp-limpopo-connect-prod$/);
    expect(site.lastModifiedTimeUtc).toBeInstanceOf(Date);
    const config = await client.webApps.getConfiguration('rg-limpopo-connect-prod', 'func-limpopo-connect-prod');
    expect(config.linuxFxVersion).toBe('NODE|20');
    const settings = await client.webApps.listApplicationSettings('rg-limpopo-connect-prod', 'func-limpopo-connect-prod');
    expect(settings.properties?.FUNCTIONS_WORKER_RUNTIME).toBe('node');
    const listed = await collect(client.webApps.listByResourceGroup('rg-limpopo-connect-prod'));
    expect(listed.map((entry) => entry.name)).toEqual(['func-limpopo-connect-prod']);
  });

  it('reads the kilometers app, its staging slot and plan', async () => {
    const client = new WebSiteManagementClient(credential, SUBSCRIPTIONS.kilometers, clientOptions());
    const slots = await collect(client.webApps.listSlots('rg-kilometers-prod', 'app-kilometers-api-k7x2'));
    expect(slots.map((slot) => slot.name)).toEqual(['app-kilometers-api-k7x2/staging']);
    const slotConfig = await client.webApps.getConfigurationSlot('rg-kilometers-prod', 'app-kilometers-api-k7x2', 'staging');
    expect(slotConfig.linuxFxVersion).toBe('DOCKER|ghcr.io/kilometers-ai/kilometers-api:2.4.0');
    const all = await collect(client.webApps.list());
    expect(all.map((site) => site.kind)).toEqual(['app,linux,container']);
    const plan = await client.appServicePlans.get('rg-kilometers-prod', 'asp-kilometers-prod-k7x2');
    expect(plan.sku).toMatchObject({ name: 'P1v3', capacity: 2 });
  });
});

describe('Microsoft.App through ContainerAppsAPIClient', () => {
  it('pages a dozen ca-user-service revisions and shows traffic on the latest', async () => {
    const client = new ContainerAppsAPIClient(credential, SUBSCRIPTIONS.xshopai, clientOptions());
    const app = await client.containerApps.get('rg-xshopai-prod', 'ca-user-service');
    expect(app.configuration?.activeRevisionsMode).toBe('Multiple');
    expect(app.configuration?.ingress?.traffic).toEqual([{ latestRevision: true, weight: 100 }]);
    expect(app.template?.containers?.[0]?.image).toBe('crxshopaiprod.azurecr.io/user-service:v1.0.12');
    const pages: number[] = [];
    for await (const page of client.containerAppsRevisions.listRevisions('rg-xshopai-prod', 'ca-user-service').byPage()) pages.push(page.length);
    expect(pages).toEqual([10, 2]);
    const revisions = await collect(client.containerAppsRevisions.listRevisions('rg-xshopai-prod', 'ca-user-service'));
    expect(revisions.filter((revision) => revision.active)).toHaveLength(8);
    expect(revisions[0]).toMatchObject({ name: app.latestRevisionName, trafficWeight: 100, healthState: 'Healthy' });
    expect(revisions[0]?.createdTime).toBeInstanceOf(Date);
    const old = await client.containerAppsRevisions.getRevision('rg-xshopai-prod', 'ca-user-service', 'ca-user-service--v1-0-3');
    expect(old).toMatchObject({ active: true, trafficWeight: 0 });
    const apps = await collect(client.containerApps.listByResourceGroup('rg-xshopai-prod'));
    expect(apps).toHaveLength(5);
  });

  it('reads the healthz app with its health probes', async () => {
    const client = new ContainerAppsAPIClient(credential, SUBSCRIPTIONS.healthz, clientOptions());
    const apps = await collect(client.containerApps.listBySubscription());
    expect(apps.map((app) => app.configuration?.ingress?.fqdn)).toEqual(['ca-webapi-prod.proudwave-7c1d2e3f.eastus.azurecontainerapps.io']);
  });
});

describe('Microsoft.DBforPostgreSQL through PostgreSQLManagementFlexibleServerClient', () => {
  it.each([
    ['lms', SUBSCRIPTIONS.lms, 'rg-lms-prod', 'psql-lms-prod', 7, 4],
    ['kilometers', SUBSCRIPTIONS.kilometers, 'rg-kilometers-prod', 'psql-kilometers-prod-k7x2', 3, 3],
    ['xshopai', SUBSCRIPTIONS.xshopai, 'rg-xshopai-prod', 'psql-xshopai-prod', 35, 35],
    ['limpopo', SUBSCRIPTIONS.limpopo, 'rg-limpopo-connect-prod', 'psql-limpopo-connect-prod', 7, 7],
  ])('reads %s server, retention and backups', async (_world, subscription, group, name, retention, backups) => {
    const client = new PostgreSQLManagementFlexibleServerClient(credential, subscription, clientOptions());
    const server = await client.servers.get(group, name);
    expect(server).toMatchObject({ state: 'Ready', backup: { backupRetentionDays: retention } });
    expect(server.backup?.earliestRestoreDate).toBeInstanceOf(Date);
    const list = await collect(client.backupsAutomaticAndOnDemand.listByServer(group, name));
    expect(list).toHaveLength(backups);
    expect(list[0]).toMatchObject({ backupType: 'Full', source: 'Automatic' });
    expect(list[0]?.completedTime).toBeInstanceOf(Date);
  });

  it('shows the stale lms backup', async () => {
    const client = new PostgreSQLManagementFlexibleServerClient(credential, SUBSCRIPTIONS.lms, clientOptions());
    const [newest] = await collect(client.backupsAutomaticAndOnDemand.listByServer('rg-lms-prod', 'psql-lms-prod'));
    const ageHours = (Date.now() - (newest?.completedTime?.getTime() ?? 0)) / 3_600_000;
    expect(ageHours).toBeGreaterThan(70);
  });
});

describe('Microsoft.Storage and Microsoft.KeyVault through their management clients', () => {
  it('reads the limpopo account as LRS with soft delete off', async () => {
    const client = new StorageManagementClient(credential, SUBSCRIPTIONS.limpopo, clientOptions());
    const account = await client.storageAccounts.getProperties('rg-limpopo-connect-prod', 'stlimpopoconnect');
    expect(account.sku).toMatchObject({ name: 'Standard_LRS' });
    expect(account.creationTime).toBeInstanceOf(Date);
    const blob = await client.blobServices.getServiceProperties('rg-limpopo-connect-prod', 'stlimpopoconnect');
    expect(blob.deleteRetentionPolicy?.enabled).toBe(false);
    expect(blob.containerDeleteRetentionPolicy?.enabled).toBe(false);
    const xshop = new StorageManagementClient(credential, SUBSCRIPTIONS.xshopai, clientOptions());
    const accounts = await collect(xshop.storageAccounts.listByResourceGroup('rg-xshopai-prod'));
    expect(accounts.map((entry) => entry.sku?.name)).toEqual(['Standard_GRS']);
  });

  it('reads every vault with its protection settings', async () => {
    const limpopo = new KeyVaultManagementClient(credential, SUBSCRIPTIONS.limpopo, clientOptions());
    const vault = await limpopo.vaults.get('rg-limpopo-connect-prod', 'kv-limpopo-connect');
    expect(vault.properties).toMatchObject({ enableSoftDelete: true, tenantId: sandbox.tenantId, vaultUri: `${sandbox.baseUrl}/vaults/kv-limpopo-connect/` });
    expect(vault.properties.enablePurgeProtection ?? false).toBe(false);
    const kilometers = new KeyVaultManagementClient(credential, SUBSCRIPTIONS.kilometers, clientOptions());
    const vaults = await collect(kilometers.vaults.listByResourceGroup('rg-kilometers-prod'));
    expect(vaults.map((entry) => entry.properties.enablePurgeProtection)).toEqual([true]);
  });
});

describe('Microsoft.ContainerRegistry through ContainerRegistryManagementClient', () => {
  it('gets a registry with its login server as the 2025-11-01 spec shapes it, lists by group and subscription, and 404s elsewhere', async () => {
    const client = new ContainerRegistryManagementClient(credential, SUBSCRIPTIONS.xshopai, clientOptions());
    const registry = await client.registries.get('rg-xshopai-prod', 'crxshopaiprod');
    expect(registry).toMatchObject({
      id: `/subscriptions/${SUBSCRIPTIONS.xshopai}/resourceGroups/rg-xshopai-prod/providers/Microsoft.ContainerRegistry/registries/crxshopaiprod`,
      name: 'crxshopaiprod',
      type: 'Microsoft.ContainerRegistry/registries',
      loginServer: 'crxshopaiprod.azurecr.io',
      provisioningState: 'Succeeded',
      adminUserEnabled: false,
      publicNetworkAccess: 'Enabled',
    });
    expect(registry.sku.name).toBeDefined();
    expect(registry.creationDate).toBeInstanceOf(Date);
    // Case-insensitive, as ARM.
    expect((await client.registries.get('RG-XSHOPAI-PROD', 'CRXSHOPAIPROD')).name).toBe('crxshopaiprod');
    expect((await collect(client.registries.listByResourceGroup('rg-xshopai-prod'))).map((entry) => entry.name)).toEqual(['crxshopaiprod']);
    expect((await collect(client.registries.list())).map((entry) => entry.name)).toEqual(['crxshopaiprod']);
    // The same registry name under another subscription is not there.
    const elsewhere = new ContainerRegistryManagementClient(credential, SUBSCRIPTIONS.lms, clientOptions());
    await expect(elsewhere.registries.get('rg-xshopai-prod', 'crxshopaiprod')).rejects.toMatchObject({ statusCode: 404, code: 'ResourceNotFound' });
  });
});

describe('Key Vault secrets through SecretClient', () => {
  const secretClient = (vault: string): SecretClient =>
    new SecretClient(`${sandbox.baseUrl}/vaults/${vault}`, credential, {
      disableChallengeResourceVerification: true,
      tlsOptions: { ca: sandbox.caPem },
    });

  it('passes the challenge, pages secrets and reads expiry', async () => {
    const client = secretClient('kv-xshopai-prod');
    const pages: number[] = [];
    for await (const page of client.listPropertiesOfSecrets().byPage({ maxPageSize: 10 })) pages.push(page.length);
    expect(pages).toEqual([10, 10, 10, 1]);
    const jwt = await client.getSecret('JWT-SECRET');
    expect(jwt.value).toMatch(/^[\w-]{43}$/);
    const daysLeft = ((jwt.properties.expiresOn?.getTime() ?? 0) - Date.now()) / 86_400_000;
    expect(daysLeft).toBeGreaterThan(4);
    expect(daysLeft).toBeLessThan(6);
    const versions = await collect(client.listPropertiesOfSecretVersions('JWT-SECRET'));
    expect(versions.map((version) => version.enabled)).toEqual([false, true]);
    const cert = await client.getSecret('api-xshopai-com');
    expect(cert.properties).toMatchObject({ managed: true, contentType: 'application/x-pkcs12' });
    expect(cert.properties.certificateKeyId).toContain('/keys/api-xshopai-com/');
    const backup = await client.backupSecret('JWT-SECRET');
    expect(backup?.byteLength).toBeGreaterThan(32);
  });

  it('reports the expired limpopo StorageAccountKey and SecretNotFound', async () => {
    const client = secretClient('kv-limpopo-connect');
    const properties = await collect(client.listPropertiesOfSecrets());
    const key = properties.find((entry) => entry.name === 'StorageAccountKey');
    expect(key?.expiresOn?.getTime()).toBeLessThan(Date.now());
    await expect(client.getSecret('NoSuchSecret')).rejects.toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
  });
});

describe('ACR through ContainerRegistryClient', () => {
  const registryClient = (name: string): ContainerRegistryClient =>
    new ContainerRegistryClient(`${sandbox.baseUrl}/registries/${name}`, credential, {
      audience: KnownContainerRegistryAudience.AzureResourceManagerPublicCloud,
      tlsOptions: { ca: sandbox.caPem },
    });

  it('exchanges tokens, pages repositories and tags, and keeps the deployed tag', async () => {
    const client = registryClient('crxshopaiprod');
    const pages: string[][] = [];
    for await (const page of client.listRepositoryNames().byPage({ maxPageSize: 2 })) pages.push(page);
    expect(pages.flat()).toEqual(['auth-service', 'cart-service', 'order-service', 'user-service', 'web-bff']);
    expect(pages).toHaveLength(3);
    const repository = client.getRepository('user-service');
    const properties = await repository.getProperties();
    expect(properties).toMatchObject({ name: 'user-service', tagCount: 44, manifestCount: 48 });
    const manifests = await collect(repository.listManifestProperties({ order: 'LastUpdatedOnDescending' }));
    expect(manifests[0]?.tags).toEqual(['latest', 'v1.0.12']);
    const deployed = await client.getArtifact('user-service', 'v1.0.3').getTagProperties('v1.0.3');
    expect(deployed.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const locked = await client.getArtifact('user-service', 'v0.1.0').getTagProperties('v0.1.0');
    expect(locked).toMatchObject({ canDelete: false, canWrite: false });
    // The SDK lists every tag of the repository here (it sends no digest filter); pages of 15 follow the Link header.
    const pageSizes: number[] = [];
    const tags: string[] = [];
    for await (const page of client.getArtifact('order-service', 'v1.0.40').listTagProperties({ order: 'LastUpdatedOnDescending' }).byPage({ maxPageSize: 15 })) {
      pageSizes.push(page.length);
      tags.push(...page.map((tag) => tag.name));
    }
    expect(pageSizes).toEqual([15, 15, 10]);
    expect(tags.slice(0, 3)).toEqual(['v1.0.40', 'v1.0.39', 'v1.0.38']);
    expect(new Set(tags).size).toBe(40);
  });

  it('deletes an unlocked tag, refuses a locked one, and handles multi-level repositories', async () => {
    const client = registryClient('crwebapiprod');
    const names = await collect(client.listRepositoryNames());
    expect(names).toEqual(['webapi', 'webapi/db-migrations']);
    const nested = client.getRepository('webapi/db-migrations');
    expect((await nested.getProperties()).tagCount).toBe(2);
    await client.getArtifact('webapi/db-migrations', '3f9c2a1').deleteTag('3f9c2a1');
    expect((await nested.getProperties()).tagCount).toBe(1);
    const xshop = registryClient('crxshopaiprod');
    await expect(xshop.getArtifact('user-service', 'v0.1.0').deleteTag('v0.1.0')).rejects.toMatchObject({ statusCode: 405 });
    const untagged = (await collect(xshop.getRepository('user-service').listManifestProperties())).find((manifest) => manifest.tags.length === 0);
    await xshop.getArtifact('user-service', untagged?.digest ?? '').delete();
    expect((await xshop.getRepository('user-service').getProperties()).manifestCount).toBe(47);
  });
});

describe('app health endpoints', () => {
  it('answers the configured health paths by host name', async () => {
    const get = (host: string, path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        httpsRequest(`${sandbox.baseUrl}/_hosts/${host}${path}`, { ca: sandbox.caPem }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    expect(await get('ca-user-service.calmsea-5e2c91ab.eastus2.azurecontainerapps.io', '/health')).toBe(200);
    expect(await get('app-kilometers-api-k7x2-staging.azurewebsites.net', '/health')).toBe(200);
    expect(await get('func-limpopo-connect-prod.azurewebsites.net', '/api/health')).toBe(200);
    expect(await get('unknown.azurewebsites.net', '/health')).toBe(404);
  });
});
