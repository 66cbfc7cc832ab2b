/**
 * The client layer against the real sandbox: every factory's SDK client over verified HTTPS
 * with the sandbox CA and the sandbox credential; long-running operations; 429 and 5xx
 * handling; typed 404s; request budgets checked against the sandbox's own request log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type RequestLogEntry, type SandboxHandle } from '../../../sandbox/index.ts';
import { azureSettingsSchema, type AzureSettings } from '../../../src/config/schema.ts';
import { createAzureClients, type AzureClients } from '../../../src/azure/clients.ts';
import { SandboxCredential } from '../../../src/azure/credential.ts';
import { AzureOperationError, callAzure, ResourceNotFoundError, TransientAzureError } from '../../../src/azure/errors.ts';
import { BudgetRegistry } from '../../../src/azure/request-budget.ts';

const XSHOPAI_SUB = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const LIMPOPO_SUB = '1b1c0a52-7d0e-4a8c-9a55-1c0e0b6f1001';
const LMS_SUB = '4e4f3d85-a031-4dbf-8d88-4f313e914004';
/** The SDK's retry policy with short delays, so retry tests stay fast. */
const FAST_RETRIES = { retryDelayInMs: 20, maxRetryDelayInMs: 100 };
const RESTART_OPERATION = 'Microsoft.DBforPostgreSQL/flexibleServers.restart';

let sandbox: SandboxHandle;
let settings: AzureSettings;
let clients: AzureClients;

beforeAll(async () => {
  // Long enough that the GET right after the 202 reliably sees the transitional state, and
  // shorter than the 1 s Retry-After the pollers wait anyway.
  sandbox = await startSandbox({ postgres: false, azurite: true, lroDurationMs: 500 });
  settings = azureSettingsSchema.parse(sandbox.azureSettings());
  clients = createAzureClients(settings, { retryOptions: FAST_RETRIES });
});

afterAll(async () => {
  await clients.close();
  await sandbox.stop();
});

/** Requests logged since `since` (ISO time strings compare in order). */
async function logSince(since: number): Promise<RequestLogEntry[]> {
  return (await sandbox.requests()).filter((entry) => Date.parse(entry.time) >= since);
}

describe('client factories against the sandbox', () => {
  it('uses the sandbox credential and the ARM audience', async () => {
    expect(await clients.credential()).toBeInstanceOf(SandboxCredential);
    expect(clients.endpoints.resourceManagerScope).toBe('https://management.azure.com/.default');
  });

  it('webClient reads a function app, and its health endpoint answers through httpsGet', async () => {
    const web = await clients.webClient(LIMPOPO_SUB);
    const site = await web.webApps.get('rg-limpopo-connect-prod', 'func-limpopo-connect-prod');
    expect(site.name).toBe('func-limpopo-connect-prod');
    expect(site.kind).toContain('functionapp');
    const host = site.defaultHostName;
    if (host === undefined) throw new Error('expected a defaultHostName on the site');
    const url = clients.appUrl(host, '/api/health');
    expect(url.startsWith(`${sandbox.baseUrl}/_hosts/`)).toBe(true);
    const health = await clients.httpsGet(url, { timeoutMs: 5000 });
    expect(health.status).toBe(200);
  });

  it('containerAppsClient, postgresClient, storageClient and keyVaultManagementClient read the xshopai estate', async () => {
    const apps = await clients.containerAppsClient(XSHOPAI_SUB);
    const app = await apps.containerApps.get('rg-xshopai-prod', 'ca-user-service');
    expect(app.name).toBe('ca-user-service');
    const revisions: string[] = [];
    for await (const revision of apps.containerAppsRevisions.listRevisions('rg-xshopai-prod', 'ca-user-service')) {
      if (revision.name !== undefined) revisions.push(revision.name);
    }
    expect(revisions.length).toBeGreaterThanOrEqual(10);

    const postgres = await clients.postgresClient(XSHOPAI_SUB);
    const server = await postgres.servers.get('rg-xshopai-prod', 'psql-xshopai-prod');
    expect(server.backup?.backupRetentionDays).toBe(35);

    const storage = await clients.storageClient(XSHOPAI_SUB);
    const account = await storage.storageAccounts.getProperties('rg-xshopai-prod', 'stxshopaiprod');
    expect(account.name).toBe('stxshopaiprod');

    const vaults = await clients.keyVaultManagementClient(XSHOPAI_SUB);
    const vault = await vaults.vaults.get('rg-xshopai-prod', 'kv-xshopai-prod');
    expect(vault.properties.enablePurgeProtection).toBe(true);
  });

  it('secretClient passes the Key Vault challenge (401, then the token for the challenged resource)', async () => {
    const since = Date.now();
    const secrets = await clients.secretClient('kv-xshopai-prod');
    const names: string[] = [];
    for await (const properties of secrets.listPropertiesOfSecrets()) names.push(properties.name);
    expect(names).toEqual(expect.arrayContaining(['JWT-SECRET', 'POSTGRES-PASSWORD']));
    const secret = await secrets.getSecret('POSTGRES-PASSWORD');
    expect(typeof secret.value).toBe('string');
    const vaultRequests = (await logSince(since)).filter((entry) => entry.host === 'keyvault');
    expect(vaultRequests[0]?.status).toBe(401);
    expect(vaultRequests.slice(1).every((entry) => entry.status === 200)).toBe(true);
    expect(clients.budgets.keyVault('kv-xshopai-prod').stats().requests).toBe(vaultRequests.length);
  });

  it('registryClient exchanges the AAD token for ACR tokens and lists repositories and tags', async () => {
    const since = Date.now();
    const registry = await clients.registryClient('crxshopaiprod');
    const repositories: string[] = [];
    for await (const name of registry.listRepositoryNames()) repositories.push(name);
    expect(repositories).toEqual(expect.arrayContaining(['user-service', 'auth-service', 'web-bff']));
    const tags: string[] = [];
    for await (const manifest of registry.getRepository('user-service').listManifestProperties()) tags.push(...manifest.tags);
    expect(tags).toContain('v1.0.12');
    const acr = (await logSince(since)).filter((entry) => entry.host === 'acr');
    const operations = acr.map((entry) => entry.operationId);
    expect(operations).toContain('ContainerRegistry.exchangeAadAccessTokenForAcrRefreshToken');
    expect(operations).toContain('ContainerRegistry.exchangeAcrRefreshTokenForAcrAccessToken');
    expect(acr.filter((entry) => entry.operationId?.startsWith('ContainerRegistry.exchange') === true).every((entry) => entry.status === 200)).toBe(true);
    expect(clients.budgets.acr('crxshopaiprod').stats().requests).toBe(acr.length);
  });

  it('blobServiceClient reaches Azurite over HTTPS trusting the sandbox CA, with an OAuth token', async () => {
    const blobs = await clients.blobServiceClient('stxshopaiprod');
    expect(blobs.url.startsWith('https://127.0.0.1:')).toBe(true);
    const container = blobs.getContainerClient(`azure-clients-${Date.now()}`);
    await container.create();
    await container.getBlockBlobClient('probe.txt').upload('ok', 2);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat()) names.push(blob.name);
    expect(names).toEqual(['probe.txt']);
    await container.delete();
  });

  it('blob requests draw on the storage account budget, once each, from every derived client', async () => {
    const budgets = new BudgetRegistry(settings.requestBudget);
    const counted = createAzureClients(settings, { budgets, retryOptions: FAST_RETRIES });
    const blobs = await counted.blobServiceClient('stxshopaiprod');
    const budget = budgets.storage('stxshopaiprod');
    const name = `budget-${Date.now()}`;
    const container = blobs.getContainerClient(name);
    await container.create();
    await container.getBlockBlobClient('one.txt').upload('1', 1);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat()) names.push(blob.name);
    expect(names).toEqual(['one.txt']);
    expect(budget.stats().requests).toBe(3);
    // A second container client and a blob client derived from it share the one HTTP client.
    const again = blobs.getContainerClient(name);
    await again.getBlockBlobClient('two.txt').upload('2', 1);
    expect(budget.stats().requests).toBe(4);
    // A full blob service URL (run-record stores) lands on the same account budget.
    const byUrl = await counted.blobServiceClient(blobs.url);
    await byUrl.getContainerClient(name).delete();
    expect(budget.stats().requests).toBe(5);
    expect(budgets.all().map((entry) => entry.key)).toEqual(['storage:stxshopaiprod']);
    await counted.close();
  });

  it('keeps TLS verification on: without caFile the same clients refuse the sandbox certificate', async () => {
    const credential = await clients.credential();
    const untrusting = createAzureClients({ ...settings, caFile: undefined }, { credential, retryOptions: FAST_RETRIES });
    const web = await untrusting.webClient(LIMPOPO_SUB);
    const resourceId = `/subscriptions/${LIMPOPO_SUB}/resourceGroups/rg-limpopo-connect-prod/providers/Microsoft.Web/sites/func-limpopo-connect-prod`;
    await expect(callAzure({ resourceId, operation: 'get web app' }, () => web.webApps.get('rg-limpopo-connect-prod', 'func-limpopo-connect-prod'))).rejects.toThrow(
      /certificate/i,
    );
    const blobs = await untrusting.blobServiceClient('stxshopaiprod');
    await expect(blobs.getProperties()).rejects.toThrow(/certificate/i);
    await expect(untrusting.httpsGet(`${sandbox.baseUrl}/_hosts/x/`, { timeoutMs: 5000 })).rejects.toThrow(/certificate/i);
    await untrusting.close();
  });

  it('polls a long-running operation to completion (PostgreSQL restart: Ready, Restarting, Ready)', async () => {
    const since = Date.now();
    const postgres = await clients.postgresClient(XSHOPAI_SUB);
    const poller = await postgres.servers.beginRestart('rg-xshopai-prod', 'psql-xshopai-prod', { updateIntervalInMs: 50 });
    // The operation lasts lroDurationMs (500 ms) after the 202; the server says so meanwhile.
    expect((await postgres.servers.get('rg-xshopai-prod', 'psql-xshopai-prod')).state).toBe('Restarting');
    await poller.pollUntilDone();
    expect(poller.getOperationState().status).toBe('succeeded');
    expect((await postgres.servers.get('rg-xshopai-prod', 'psql-xshopai-prod')).state).toBe('Ready');
    const log = await logSince(since);
    const start = log.find((entry) => entry.method === 'POST' && entry.path.endsWith('/flexibleServers/psql-xshopai-prod/restart'));
    expect(start?.status).toBe(202);
    expect(start?.operationId).toBe(RESTART_OPERATION);
    expect(log.some((entry) => /operation(Statuses|Results)/.test(entry.path) && entry.status === 200)).toBe(true);
  });

  it('ends a failed restart as a typed error and returns the server to Ready', async () => {
    await sandbox.injectFault({ operationId: RESTART_OPERATION, failLongRunningOperation: true, count: 1 });
    const postgres = await clients.postgresClient(XSHOPAI_SUB);
    const resourceId = `/subscriptions/${XSHOPAI_SUB}/resourceGroups/rg-xshopai-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-xshopai-prod`;
    const error = await callAzure({ resourceId, operation: 'restart PostgreSQL server' }, () =>
      postgres.servers.beginRestartAndWait('rg-xshopai-prod', 'psql-xshopai-prod', { updateIntervalInMs: 50 }),
    ).catch((e: unknown) => e);
    await sandbox.clearFaults();
    expect(error).toBeInstanceOf(AzureOperationError);
    expect((error as AzureOperationError).resourceId).toBe(resourceId);
    expect((await postgres.servers.get('rg-xshopai-prod', 'psql-xshopai-prod')).state).toBe('Ready');
  });
});

describe('failures and throttling against the sandbox', () => {
  it('types a 404 as ResourceNotFoundError carrying the resource id', async () => {
    const web = await clients.webClient(LIMPOPO_SUB);
    const resourceId = `/subscriptions/${LIMPOPO_SUB}/resourceGroups/rg-limpopo-connect-prod/providers/Microsoft.Web/sites/func-does-not-exist`;
    const error = await callAzure({ resourceId, operation: 'get web app' }, () => web.webApps.get('rg-limpopo-connect-prod', 'func-does-not-exist')).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ResourceNotFoundError);
    const typed = error as ResourceNotFoundError;
    expect(typed.resourceId).toBe(resourceId);
    expect(typed.statusCode).toBe(404);
    expect(typed.code).toBe('ResourceNotFound');
    expect(typed.requestId).toMatch(/\S/);
    expect(typed.message).toMatch(new RegExp(`^get web app on ${resourceId.replace(/[/.]/g, '\\$&')} failed: expected the resource to exist, found HTTP 404 ResourceNotFound: `));
  });

  it('retries a 5xx through the SDK retry once and succeeds', async () => {
    await sandbox.injectFault({ operationId: 'Microsoft.App/containerApps.get', status: 503, count: 1 });
    const since = Date.now();
    const apps = await clients.containerAppsClient(XSHOPAI_SUB);
    const app = await apps.containerApps.get('rg-xshopai-prod', 'ca-auth-service');
    expect(app.name).toBe('ca-auth-service');
    const gets = (await logSince(since)).filter((entry) => entry.operationId === 'Microsoft.App/containerApps.get');
    expect(gets.map((entry) => entry.status)).toEqual([503, 200]);
  });

  it('reports a persistent 5xx as TransientAzureError after the SDK gave up', async () => {
    const fresh = createAzureClients(settings, { budgets: new BudgetRegistry(settings.requestBudget), retryOptions: FAST_RETRIES });
    await sandbox.injectFault({ operationId: 'Microsoft.Storage/storageAccounts.getProperties', status: 500, count: 10, errorCode: 'InternalServerError' });
    const storage = await fresh.storageClient(LMS_SUB);
    const resourceId = `/subscriptions/${LMS_SUB}/resourceGroups/rg-lms-prod/providers/Microsoft.Storage/storageAccounts/stlmsprod`;
    // Short SDK retry delays keep this fast; the retry count is still the SDK's default of 3.
    const error = await callAzure({ resourceId, operation: 'get storage account' }, () => storage.storageAccounts.getProperties('rg-lms-prod', 'stlmsprod')).catch(
      (e: unknown) => e,
    );
    await sandbox.clearFaults();
    await fresh.close();
    expect(error).toBeInstanceOf(TransientAzureError);
    expect((error as TransientAzureError).statusCode).toBe(500);
    // One try plus the SDK's three retries; the budget adds none.
    expect(fresh.armBudget(LMS_SUB).stats().requests).toBe(4);
  }, 30_000);

  it('honours Retry-After on a 429 by pausing the whole budget, and the SDK retries once', async () => {
    const budgets = new BudgetRegistry({ ...settings.requestBudget, maxConcurrency: 1 });
    const throttledClients = createAzureClients(settings, { budgets, retryOptions: FAST_RETRIES });
    const web = await throttledClients.webClient(LIMPOPO_SUB);
    await web.webApps.get('rg-limpopo-connect-prod', 'func-limpopo-connect-prod');
    await sandbox.injectFault({ operationId: 'Microsoft.Web/sites.get', status: 429, retryAfterSeconds: 1, count: 1 });
    const since = Date.now();
    const throttled = web.webApps.get('rg-limpopo-connect-prod', 'func-limpopo-connect-prod');
    // Another call on the same budget, issued while the first is throttled: it must wait too.
    const other = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return web.webApps.getConfiguration('rg-limpopo-connect-prod', 'func-limpopo-connect-prod');
    })();
    const [site] = await Promise.all([throttled, other]);
    await throttledClients.close();
    expect(site.name).toBe('func-limpopo-connect-prod');
    const log = (await logSince(since)).filter((entry) => entry.host === 'arm');
    const first429 = log.find((entry) => entry.status === 429);
    if (first429 === undefined) throw new Error('expected the injected 429 in the request log');
    const pauseStart = Date.parse(first429.time);
    const during = log.filter((entry) => entry !== first429 && Date.parse(entry.time) >= pauseStart && Date.parse(entry.time) < pauseStart + 1000);
    expect(during).toEqual([]);
    expect(log.filter((entry) => entry.operationId === 'Microsoft.Web/sites.get').map((entry) => entry.status)).toEqual([429, 200]);
    const stats = budgets.arm(LIMPOPO_SUB, 'default').stats();
    expect(stats.throttledResponses).toBe(1);
    expect(stats.waits).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('never exceeds a small budget (5/s, burst 5) in any 1-second window of the sandbox log', async () => {
    // One request in flight at a time: the log records arrival times, and with more in flight a
    // slow connection could hold early requests back until they arrive among later ones. With
    // one in flight, arrivals interleave with sends, so a 1 s window of arrivals holds at most
    // the sends of a 1 s window (burst + rate) plus the one request already on its way.
    const budgets = new BudgetRegistry({ ...settings.requestBudget, armReadsPerSecond: 5, armReadBurst: 5, maxConcurrency: 1 });
    const limited = createAzureClients(settings, { budgets });
    const apps = await limited.containerAppsClient(XSHOPAI_SUB);
    const names = ['ca-user-service', 'ca-auth-service', 'ca-cart-service', 'ca-order-service', 'ca-web-bff'];
    const since = Date.now();
    const results = await Promise.all(Array.from({ length: 15 }, (_, i) => apps.containerApps.get('rg-xshopai-prod', names[i % names.length]!)));
    await limited.close();
    expect(results).toHaveLength(15);
    const times = (await logSince(since))
      .filter((entry) => entry.host === 'arm' && entry.principal !== undefined)
      .map((entry) => Date.parse(entry.time))
      .sort((a, b) => a - b);
    expect(times).toHaveLength(15);
    const worstWindow = Math.max(...times.map((start) => times.filter((t) => t >= start && t < start + 1000).length));
    expect(worstWindow).toBeLessThanOrEqual(5 + 5 + 1);
    const stats = budgets.arm(XSHOPAI_SUB, 'default').stats();
    expect(stats.requests).toBe(15);
    expect(stats.waits).toBeGreaterThanOrEqual(10);
    expect(stats.peakInFlight).toBe(1);
  }, 30_000);
});
