/**
 * What credential rotation needs of the sandbox, through the real SDKs and pg: Key Vault
 * UpdateSecret (tags, enabled, exp) and its Event Grid events pushed to a subscriber when the
 * clock reaches 30 days before exp; Limpopo Connect's coherent seed credentials (the vault's
 * PostgresAdminPassword logs in, DatabaseUrl names the real server, StorageAccountKey is key1);
 * and an app whose health depends on the credentials it holds, picking new values up only on a
 * restart or the documented references refresh.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PostgreSQLManagementFlexibleServerClient } from '@azure/arm-postgresql-flexible';
import { StorageManagementClient } from '@azure/arm-storage';
import { SecretClient } from '@azure/keyvault-secrets';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restErrorOf, sandboxCredential, sandboxRequest, useSandbox } from '../../support/sandbox.ts';

const SUBSCRIPTION = '1b1c0a52-7d0e-4a8c-9a55-1c0e0b6f1001';
const RG = 'rg-limpopo-connect-prod';
const SERVER = 'psql-limpopo-connect-prod';
const FQDN = `${SERVER}.postgres.database.azure.com`;
const APP = 'func-limpopo-connect-prod';
const SITE_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}/providers/Microsoft.Web/sites/${APP}`;
const DAY = 86_400_000;

const sandbox = useSandbox({ worlds: ['sandbox/worlds/limpopo-connect.yaml'], lroDurationMs: 200, lroRetryAfterSeconds: 0 });

function secrets(): SecretClient {
  return new SecretClient(`${sandbox().baseUrl}/vaults/kv-limpopo-connect`, sandboxCredential(sandbox()), { disableChallengeResourceVerification: true, tlsOptions: { ca: sandbox().caPem } });
}

async function login(password: string): Promise<string> {
  const client = new pg.Client({ host: '127.0.0.1', port: sandbox().postgres?.frontDoorPort ?? 0, user: 'limpopoadmin', password, database: 'limpopo', ssl: { ca: sandbox().caPem, servername: FQDN } });
  try {
    await client.connect();
    return (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]?.db ?? '';
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function health(): Promise<number> {
  return (await sandboxRequest(sandbox(), { url: `/_hosts/${APP}.azurewebsites.net/api/health` })).status;
}

/** Waits (real time) until the app has come back from a restart. */
async function settled(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 300));
}

describe('Limpopo Connect seed credentials', () => {
  it('the vault PostgresAdminPassword logs in; DatabaseUrl names the sandbox server with that password; StorageAccountKey is key1', async () => {
    const kv = secrets();
    const password = (await kv.getSecret('PostgresAdminPassword')).value ?? '';
    expect(await login(password)).toBe(SERVER);
    const url = new URL((await kv.getSecret('DatabaseUrl')).value ?? '');
    expect(url.hostname).toBe(FQDN);
    expect(decodeURIComponent(url.password)).toBe(password);
    const key = await kv.getSecret('StorageAccountKey');
    expect(key.properties.tags).toEqual({ CredentialId: 'key1' });
    const storage = new StorageManagementClient(sandboxCredential(sandbox()), SUBSCRIPTION, { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
    const keys = (await storage.storageAccounts.listKeys(RG, 'stlimpopoconnect')).keys ?? [];
    expect(keys.find((entry) => entry.keyName === 'key1')?.value).toBe(key.value);
    expect(await health()).toBe(200);
  });
});

describe('Key Vault UpdateSecret', () => {
  it('changes tags, enabled and exp of one version, never its value; a disabled version cannot be read', async () => {
    const kv = secrets();
    const set = await kv.setSecret('RotationScratch', 'scratch-value-1', { tags: { state: 'pending' } });
    const version = set.properties.version ?? '';
    const expiresOn = new Date(Date.now() + 90 * DAY);
    const updated = await kv.updateSecretProperties('RotationScratch', version, { tags: { state: 'active' }, expiresOn });
    expect(updated.tags).toEqual({ state: 'active' });
    expect(Math.floor((updated.expiresOn?.getTime() ?? 0) / 1000)).toBe(Math.floor(expiresOn.getTime() / 1000));
    expect((await kv.getSecret('RotationScratch', { version })).value).toBe('scratch-value-1');
    await kv.updateSecretProperties('RotationScratch', version, { enabled: false });
    expect(await restErrorOf(kv.getSecret('RotationScratch', { version }))).toMatchObject({ statusCode: 403 });
    const missing = await restErrorOf(kv.updateSecretProperties('RotationScratch', '0123456789abcdef0123456789abcdef', { enabled: true }));
    expect(missing.statusCode).toBe(404);
  });
});

describe('Key Vault expiry events, pushed to a subscriber', () => {
  let server: http.Server;
  const received: { eventType: string; data: { ObjectName: string; Version: string; EXP: number | null } }[] = [];
  beforeAll(async () => {
    server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push(...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof received));
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => {
    server.close();
  });

  it('sends nothing at seeding; SecretNearExpiry 30 days before exp and SecretExpired at exp, once each, for the current version', async () => {
    const port = (server.address() as AddressInfo).port;
    await sandbox().subscribeEventGrid({ name: 'test', endpoint: `http://127.0.0.1:${String(port)}/events`, eventTypes: ['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired'] });
    await sandbox().advanceClock(1000);
    // The seed's expired StorageAccountKey and the long-lived versions send nothing.
    expect(received).toEqual([]);
    const clock = await sandboxRequest(sandbox(), { url: '/_sandbox/clock' });
    const now = new Date(clock.json<{ now: string }>().now);
    const created = await secrets().setSecret('ExpiringSoon', 'x', { expiresOn: new Date(now.getTime() + 32 * DAY) });
    await sandbox().advanceClock(DAY);
    expect(received).toEqual([]);
    await sandbox().advanceClock(1.5 * DAY);
    expect(received.map((event) => [event.eventType, event.data.ObjectName, event.data.Version])).toEqual([['Microsoft.KeyVault.SecretNearExpiry', 'ExpiringSoon', created.properties.version]]);
    await sandbox().advanceClock(DAY);
    expect(received).toHaveLength(1);
    await sandbox().advanceClock(30 * DAY);
    expect(received.map((event) => event.eventType)).toEqual(['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretExpired']);
    const deliveries = await sandbox().eventGridDeliveries();
    expect(deliveries.map((delivery) => delivery.status)).toEqual([200, 200]);
  });
});

describe('an app holds the credentials it resolved at start', () => {
  it('a reset password breaks it; a new DatabaseUrl version reaches it only through the refresh or a restart', async () => {
    const kv = secrets();
    const pgClient = new PostgreSQLManagementFlexibleServerClient(sandboxCredential(sandbox()), SUBSCRIPTION, { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
    const next = 'Limpopo-Next-2026-Pg2';
    await pgClient.servers.beginUpdateAndWait(RG, SERVER, { administratorLoginPassword: next }, { updateIntervalInMs: 20 });
    expect(await login(next)).toBe(SERVER);
    expect(await health()).toBe(503);
    await kv.setSecret('DatabaseUrl', `postgresql://limpopoadmin:${next}@${FQDN}:5432/limpopo?sslmode=require`);
    // App Service keeps what it resolved until something makes it fetch again.
    expect(await health()).toBe(503);
    const refresh = await sandboxRequest(sandbox(), { method: 'POST', url: `${SITE_ID}/config/configreferences/appsettings/refresh?api-version=2024-11-01`, token: await sandboxToken() });
    expect(refresh.status).toBe(200);
    expect(await health()).toBe(200);
  });

  it('a regenerated key1 breaks it; a StorageAccountKey version holding key2 works after a restart', async () => {
    const kv = secrets();
    const storage = new StorageManagementClient(sandboxCredential(sandbox()), SUBSCRIPTION, { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
    const keys = (await storage.storageAccounts.regenerateKey(RG, 'stlimpopoconnect', { keyName: 'key1' })).keys ?? [];
    expect(await health()).toBe(503);
    await kv.setSecret('StorageAccountKey', keys.find((entry) => entry.keyName === 'key2')?.value ?? '', { tags: { CredentialId: 'key2' } });
    expect(await health()).toBe(503);
    const restart = await sandboxRequest(sandbox(), { method: 'POST', url: `${SITE_ID}/restart?api-version=2024-11-01`, token: await sandboxToken() });
    expect(restart.status).toBe(200);
    await settled();
    expect(await health()).toBe(200);
  });
});

async function sandboxToken(): Promise<string> {
  const token = await sandboxCredential(sandbox()).getToken('https://management.azure.com/.default');
  return token?.token ?? '';
}
