/**
 * The client layer's bounds end to end: the real SDK clients over HTTPS against the sandbox. A
 * 429 asking for a day and a long-running operation asking to be polled hourly both fail at
 * once with a ServerDelayAboveCapError naming the resource and the asked-for delay (the
 * sandbox's request log shows that nothing was retried); an attempt the server does not answer
 * in time fails as ETIMEDOUT and the SDK retries it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type RequestLogEntry, type SandboxHandle } from '../../../sandbox/index.ts';
import { createAzureClients, type AzureClients } from '../../../src/azure/clients.ts';
import { callAzure, ServerDelayAboveCapError, TransientAzureError } from '../../../src/azure/errors.ts';
import { BudgetRegistry } from '../../../src/azure/request-budget.ts';
import { azureSettingsSchema } from '../../../src/config/schema.ts';

const LIMPOPO_SUB = '1b1c0a52-7d0e-4a8c-9a55-1c0e0b6f1001';
const XSHOPAI_SUB = '3d3e2c74-9f20-4cae-9c77-3e202d803003';

let sandbox: SandboxHandle;
let clients: AzureClients;

beforeAll(async () => {
  // Every long-running operation answers with `Retry-After: 3600`.
  sandbox = await startSandbox({ postgres: false, azurite: false, lroRetryAfterSeconds: 3600, lroDurationMs: 200 });
  clients = createAzureClients(azureSettingsSchema.parse(sandbox.azureSettings()), { retryOptions: { retryDelayInMs: 20, maxRetryDelayInMs: 100 } });
});

afterAll(async () => {
  await clients.close();
  await sandbox.stop();
});

async function logSince(since: number): Promise<RequestLogEntry[]> {
  return (await sandbox.requests()).filter((entry) => Date.parse(entry.time) >= since);
}

describe('server-supplied delays above the cap, against the sandbox', () => {
  it('a 429 with Retry-After: 86400 fails the call within seconds, typed, and is not retried', async () => {
    const web = await clients.webClient(LIMPOPO_SUB);
    await sandbox.injectFault({ operationId: 'Microsoft.Web/sites.get', status: 429, retryAfterSeconds: 86_400, count: 1 });
    const resourceId = `/subscriptions/${LIMPOPO_SUB}/resourceGroups/rg-limpopo-connect-prod/providers/Microsoft.Web/sites/func-limpopo-connect-prod`;
    const since = Date.now();
    const error = await callAzure({ resourceId, operation: 'get web app' }, () => web.webApps.get('rg-limpopo-connect-prod', 'func-limpopo-connect-prod')).catch(
      (e: unknown) => e,
    );
    const elapsed = Date.now() - since;
    await sandbox.clearFaults();
    expect(error).toBeInstanceOf(ServerDelayAboveCapError);
    const typed = error as ServerDelayAboveCapError;
    expect(typed.resourceId).toBe(resourceId);
    expect(typed.askedDelayMs).toBe(86_400_000);
    expect(typed.message).toBe(
      `get web app on ${resourceId} failed: expected a server-supplied delay of at most 60 s, found HTTP 429 with Retry-After: 86400 (24 h); not waiting`,
    );
    expect(elapsed).toBeLessThan(10_000);
    const gets = (await logSince(since)).filter((entry) => entry.operationId === 'Microsoft.Web/sites.get');
    expect(gets.map((entry) => entry.status)).toEqual([429]);
    // The budget paused for the cap at most, not for a day.
    const pausedUntil = clients.armBudget(LIMPOPO_SUB).stats().pausedUntil ?? 0;
    expect(pausedUntil - since).toBeLessThanOrEqual(60_000 + elapsed);
  });

  it('a long-running operation that asks to be polled hourly fails instead of sleeping an hour, and says the operation may be running', async () => {
    const budgets = createAzureClients(azureSettingsSchema.parse(sandbox.azureSettings()));
    const postgres = await budgets.postgresClient(XSHOPAI_SUB);
    const resourceId = `/subscriptions/${XSHOPAI_SUB}/resourceGroups/rg-xshopai-prod/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql-xshopai-prod`;
    const since = Date.now();
    const error = await callAzure({ resourceId, operation: 'restart PostgreSQL server' }, () =>
      postgres.servers.beginRestartAndWait('rg-xshopai-prod', 'psql-xshopai-prod'),
    ).catch((e: unknown) => e);
    await budgets.close();
    expect(error).toBeInstanceOf(ServerDelayAboveCapError);
    const typed = error as ServerDelayAboveCapError;
    expect(typed.resourceId).toBe(resourceId);
    expect(typed.statusCode).toBe(202);
    expect(typed.askedDelayMs).toBe(3_600_000);
    expect(typed.message).toContain('found HTTP 202 with Retry-After: 3600 (60 min); not waiting (the service accepted the request: the operation may still be running)');
    expect(Date.now() - since).toBeLessThan(10_000);
    const restarts = (await logSince(since)).filter((entry) => entry.path.endsWith('/flexibleServers/psql-xshopai-prod/restart'));
    expect(restarts.map((entry) => entry.status)).toEqual([202]);
  });
});

describe('the timeout of one attempt, against the sandbox', () => {
  const FAST_RETRIES = { retryDelayInMs: 20, maxRetryDelayInMs: 100 };
  const resourceId = `/subscriptions/${LIMPOPO_SUB}/resourceGroups/rg-limpopo-connect-prod/providers/Microsoft.Web/sites/func-limpopo-connect-prod`;

  it('an attempt that gets no answer in time fails as ETIMEDOUT and the SDK retries it', async () => {
    const settings = azureSettingsSchema.parse(sandbox.azureSettings());
    const timed = createAzureClients(settings, { budgets: new BudgetRegistry(settings.requestBudget, { attemptTimeoutMs: 300 }), retryOptions: FAST_RETRIES });
    const web = await timed.webClient(LIMPOPO_SUB);
    await sandbox.injectFault({ operationId: 'Microsoft.Web/sites.get', latencyMs: 3000, count: 1 });
    const since = Date.now();
    const site = await web.webApps.get('rg-limpopo-connect-prod', 'func-limpopo-connect-prod');
    expect(site.name).toBe('func-limpopo-connect-prod');
    expect(Date.now() - since).toBeLessThan(2500);
    expect(timed.armBudget(LIMPOPO_SUB).stats().requests).toBe(2);

    await sandbox.injectFault({ operationId: 'Microsoft.Web/sites.get', latencyMs: 3000, count: 4 });
    const error = await callAzure({ resourceId, operation: 'get web app' }, () => web.webApps.get('rg-limpopo-connect-prod', 'func-limpopo-connect-prod')).catch(
      (e: unknown) => e,
    );
    await sandbox.clearFaults();
    await timed.close();
    expect(error).toBeInstanceOf(TransientAzureError);
    expect((error as TransientAzureError).code).toBe('ETIMEDOUT');
    expect((error as Error).message).toBe(
      `get web app on ${resourceId} failed: expected a successful response, found network error ETIMEDOUT: expected a response within 300 ms, found none`,
    );
    // One try and the SDK's three retries, each cut off at 300 ms.
    expect(timed.armBudget(LIMPOPO_SUB).stats().requests).toBe(2 + 4);
  }, 20_000);
});
