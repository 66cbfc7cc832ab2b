import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureSettingsSchema, type AzureSettings } from '../../../src/config/schema.ts';
import { resolveAppUrl, resolveEndpoints, resolvePostgresEndpoint } from '../../../src/azure/cloud.ts';
import {
  assertSandboxSettingsAreLoopback,
  createCredential,
  managedIdentityClientId,
  CredentialError,
  credentialKind,
  isRunningInAzure,
  SandboxCredential,
} from '../../../src/azure/credential.ts';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { startTlsServer, type TlsTestServer } from '../../support/tls-server.ts';

const sandboxSettings = (port = 8443): AzureSettings =>
  azureSettingsSchema.parse({
    resourceManagerEndpoint: `https://127.0.0.1:${port}`,
    keyVaultUrlTemplate: `https://127.0.0.1:${port}/vaults/{name}`,
    containerRegistryUrlTemplate: `https://127.0.0.1:${port}/registries/{name}`,
    blobUrlTemplate: 'https://127.0.0.1:10000/{name}',
    tableUrlTemplate: 'https://127.0.0.1:10002/{name}',
    appHostUrlTemplate: `https://127.0.0.1:${port}/_hosts/{host}`,
    postgresUrlTemplate: 'postgresql://127.0.0.1:5432',
    keyVaultChallengeResourceVerification: false,
    sandboxTokenEndpoint: `https://127.0.0.1:${port}/72f988bf-0000-4000-8000-00000000a001/oauth2/v2.0/token`,
  });

describe('credential selection', () => {
  it('detects Azure compute by its identity environment variables', () => {
    expect(isRunningInAzure({})).toBe(false);
    expect(isRunningInAzure({ IDENTITY_ENDPOINT: 'http://169.254.1.1/msi/token' })).toBe(true);
    expect(isRunningInAzure({ MSI_ENDPOINT: 'http://127.0.0.1:41741/MSI/token/' })).toBe(true);
    expect(isRunningInAzure({ WEBSITE_INSTANCE_ID: 'abc' })).toBe(true);
    expect(isRunningInAzure({ IDENTITY_ENDPOINT: '' })).toBe(false);
  });

  it('picks the sandbox credential only when sandboxTokenEndpoint is set, managed identity in Azure, else the default chain', async () => {
    const plain = azureSettingsSchema.parse({});
    expect(credentialKind(plain, {})).toBe('default');
    expect(credentialKind(plain, { IDENTITY_ENDPOINT: 'x' })).toBe('managedIdentity');
    expect(credentialKind(sandboxSettings(), { IDENTITY_ENDPOINT: 'x' })).toBe('sandbox');
    expect(await createCredential(sandboxSettings(), { env: {} })).toBeInstanceOf(SandboxCredential);
    const identity = await import('@azure/identity');
    expect(await createCredential(plain, { env: { IDENTITY_ENDPOINT: 'http://x' } })).toBeInstanceOf(identity.ManagedIdentityCredential);
    const withClientId = azureSettingsSchema.parse({ managedIdentityClientId: '0b1f3c5e-1111-4222-8333-444455556666' });
    expect(await createCredential(withClientId, { env: { IDENTITY_ENDPOINT: 'http://x' } })).toBeInstanceOf(identity.ManagedIdentityCredential);
    expect(await createCredential(plain, { env: {} })).toBeInstanceOf(identity.DefaultAzureCredential);
  });

  it('uses the user-assigned identity named by the config, else by the AZURE_CLIENT_ID app setting the template sets', () => {
    const plain = azureSettingsSchema.parse({});
    const configured = azureSettingsSchema.parse({ managedIdentityClientId: '0b1f3c5e-1111-4222-8333-444455556666' });
    expect(managedIdentityClientId(plain, {})).toBeUndefined();
    expect(managedIdentityClientId(plain, { AZURE_CLIENT_ID: ' ' })).toBeUndefined();
    expect(managedIdentityClientId(plain, { AZURE_CLIENT_ID: '9a9a9a9a-1111-4222-8333-444455556666' })).toBe('9a9a9a9a-1111-4222-8333-444455556666');
    expect(managedIdentityClientId(configured, { AZURE_CLIENT_ID: '9a9a9a9a-1111-4222-8333-444455556666' })).toBe('0b1f3c5e-1111-4222-8333-444455556666');
  });

  it('refuses the sandbox credential when any endpoint is not loopback, even if the schema was bypassed', async () => {
    const tampered: AzureSettings = { ...sandboxSettings(), resourceManagerEndpoint: 'https://management.azure.com' };
    expect(() => {
      assertSandboxSettingsAreLoopback(tampered);
    }).toThrow(CredentialError);
    await expect(createCredential(tampered, { env: {} })).rejects.toThrow(
      /resourceManagerEndpoint: expected an https loopback address, found "https:\/\/management.azure.com"/,
    );
    const missing: AzureSettings = { ...sandboxSettings(), blobUrlTemplate: undefined };
    await expect(createCredential(missing, { env: {} })).rejects.toThrow(/blobUrlTemplate: expected an https loopback address, found none/);
    // The state tables' endpoint too: without it the table client would send sandbox tokens to Azure.
    const noTables: AzureSettings = { ...sandboxSettings(), tableUrlTemplate: undefined };
    await expect(createCredential(noTables, { env: {} })).rejects.toThrow(/tableUrlTemplate: expected an https loopback address, found none/);
    expect(() => new SandboxCredential({ tokenEndpoint: 'https://login.microsoftonline.com/t/oauth2/v2.0/token' })).toThrow(CredentialError);
    expect(() => new SandboxCredential({ tokenEndpoint: 'http://127.0.0.1:1/t/oauth2/v2.0/token' })).toThrow(CredentialError);
  });

  it('fails with a message naming the setting when caFile cannot be read', async () => {
    const settings = { ...sandboxSettings(), caFile: '/nonexistent/sandbox-ca.pem' };
    await expect(createCredential(settings, { env: {} })).rejects.toThrow('azure.caFile: expected a readable PEM file at /nonexistent/sandbox-ca.pem, found ENOENT');
  });
});

describe('SandboxCredential against a local token endpoint', () => {
  let tls: TlsTestServer;
  let port = 0;
  let ca = '';
  const received: URLSearchParams[] = [];
  let now = 1_000_000;

  beforeAll(async () => {
    tls = await startTlsServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        received.push(form);
        res.setHeader('content-type', 'application/json');
        if (form.get('scope') === 'https://denied/.default') {
          res.statusCode = 400;
          res.end(JSON.stringify({ error: 'invalid_scope', error_description: 'AADSTS1002012: bad scope' }));
          return;
        }
        if (form.get('scope') === 'https://trickle/.default') {
          // Headers at once, then one byte of body every 50 ms, never finishing: a socket idle
          // timeout never fires, only a deadline on the whole exchange does.
          res.flushHeaders();
          const timer = setInterval(() => res.write(' '), 50);
          res.on('close', () => {
            clearInterval(timer);
          });
          return;
        }
        res.end(JSON.stringify({ token_type: 'Bearer', expires_in: 3600, access_token: `token-${received.length}` }));
      });
    }, 'credential test CA');
    port = tls.port;
    ca = tls.ca;
  });

  afterAll(async () => {
    await tls.close();
  });

  it('posts client_credentials over verified TLS and caches one token per scope until shortly before expiry', async () => {
    const credential = new SandboxCredential({ tokenEndpoint: `https://127.0.0.1:${port}/tenant/oauth2/v2.0/token`, ca, clientId: 'app-1', now: () => now });
    const [a, b] = await Promise.all([
      credential.getToken('https://management.azure.com/.default'),
      credential.getToken(['https://management.azure.com/.default']),
    ]);
    expect(a.token).toBe(b.token);
    expect(credential.tokenRequests).toBe(1);
    expect(received).toHaveLength(1);
    expect(received[0]!.get('grant_type')).toBe('client_credentials');
    expect(received[0]!.get('client_id')).toBe('app-1');
    expect(received[0]!.get('scope')).toBe('https://management.azure.com/.default');
    expect(a.expiresOnTimestamp).toBe(now + 3_600_000);
    const vault = await credential.getToken('https://vault.azure.net/.default');
    expect(vault.token).not.toBe(a.token);
    expect(received).toHaveLength(2);
    now += 3_600_000 - 6 * 60_000;
    expect((await credential.getToken('https://management.azure.com/.default')).token).toBe(a.token);
    now += 2 * 60_000;
    expect((await credential.getToken('https://management.azure.com/.default')).token).not.toBe(a.token);
    expect(received).toHaveLength(3);
  });

  it('does not trust the endpoint without the CA (TLS verification stays on)', async () => {
    const credential = new SandboxCredential({ tokenEndpoint: `https://127.0.0.1:${port}/tenant/oauth2/v2.0/token` });
    await expect(credential.getToken('https://management.azure.com/.default')).rejects.toThrow(/expected a response, found .*certificate/i);
  });

  it('reports token endpoint errors with the OAuth code, typed', async () => {
    const credential = new SandboxCredential({ tokenEndpoint: `https://127.0.0.1:${port}/tenant/oauth2/v2.0/token`, ca });
    const error = await credential.getToken('https://denied/.default').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toContain('expected HTTP 200 with a token, found HTTP 400 invalid_scope: AADSTS1002012: bad scope');
  });

  it('bounds the whole token request, body included: a server trickling its body fails at the deadline', async () => {
    const credential = new SandboxCredential({ tokenEndpoint: `https://127.0.0.1:${port}/tenant/oauth2/v2.0/token`, ca, timeoutMs: 400 });
    const started = Date.now();
    const error = await credential.getToken('https://trickle/.default').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialError);
    expect((error as Error).message).toContain('failed: expected a response, found no response within 400 ms');
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 10_000);
});

describe('endpoint resolution per cloud', () => {
  it('uses the public cloud by default', () => {
    const endpoints = resolveEndpoints(azureSettingsSchema.parse({}));
    expect(endpoints.resourceManager).toBe('https://management.azure.com');
    expect(endpoints.resourceManagerScope).toBe('https://management.azure.com/.default');
    expect(endpoints.authorityHost).toBe('https://login.microsoftonline.com');
    expect(endpoints.keyVaultUrl('kv-xshopai-prod')).toBe('https://kv-xshopai-prod.vault.azure.net');
    expect(endpoints.containerRegistryUrl('crWebApiProd')).toBe('https://crwebapiprod.azurecr.io');
    expect(endpoints.containerRegistryAudience).toBe('https://management.azure.com');
    expect(endpoints.blobUrl('stlmsprod')).toBe('https://stlmsprod.blob.core.windows.net');
  });

  it('uses US Government endpoints', () => {
    const endpoints = resolveEndpoints(azureSettingsSchema.parse({ cloud: 'AzureUSGovernment' }));
    expect(endpoints.resourceManager).toBe('https://management.usgovcloudapi.net');
    expect(endpoints.resourceManagerScope).toBe('https://management.usgovcloudapi.net/.default');
    expect(endpoints.authorityHost).toBe('https://login.microsoftonline.us');
    expect(endpoints.keyVaultUrl('kv')).toBe('https://kv.vault.usgovcloudapi.net');
    expect(endpoints.containerRegistryUrl('cr')).toBe('https://cr.azurecr.us');
    expect(endpoints.containerRegistryAudience).toBe('https://management.usgovcloudapi.net');
    expect(endpoints.blobUrl('st')).toBe('https://st.blob.core.usgovcloudapi.net');
  });

  it('uses China endpoints', () => {
    const endpoints = resolveEndpoints(azureSettingsSchema.parse({ cloud: 'AzureChinaCloud' }));
    expect(endpoints.resourceManager).toBe('https://management.chinacloudapi.cn');
    expect(endpoints.authorityHost).toBe('https://login.chinacloudapi.cn');
    expect(endpoints.keyVaultUrl('kv')).toBe('https://kv.vault.azure.cn');
    expect(endpoints.containerRegistryUrl('cr')).toBe('https://cr.azurecr.cn');
    expect(endpoints.containerRegistryAudience).toBe('https://management.chinacloudapi.cn');
    expect(endpoints.blobUrl('st')).toBe('https://st.blob.core.chinacloudapi.cn');
  });

  it('applies overrides but keeps the cloud audience for tokens', () => {
    const endpoints = resolveEndpoints(sandboxSettings(9443));
    expect(endpoints.resourceManager).toBe('https://127.0.0.1:9443');
    expect(endpoints.resourceManagerScope).toBe('https://management.azure.com/.default');
    expect(endpoints.keyVaultUrl('kv-lms')).toBe('https://127.0.0.1:9443/vaults/kv-lms');
    expect(endpoints.containerRegistryUrl('crwebapiprod')).toBe('https://127.0.0.1:9443/registries/crwebapiprod');
    expect(endpoints.blobUrl('stlmsprod')).toBe('https://127.0.0.1:10000/stlmsprod');
    expect(() => endpoints.keyVaultUrl('../evil')).toThrow(/expected a vault name/);
  });

  it('resolves app URLs for health checks', () => {
    expect(resolveAppUrl(azureSettingsSchema.parse({}), 'ca-webapi-prod.example.azurecontainerapps.io', '/healthz')).toBe(
      'https://ca-webapi-prod.example.azurecontainerapps.io/healthz',
    );
    expect(resolveAppUrl(sandboxSettings(9443), 'func-limpopo-connect-prod.azurewebsites.net', 'api/health')).toBe(
      'https://127.0.0.1:9443/_hosts/func-limpopo-connect-prod.azurewebsites.net/api/health',
    );
    expect(() => resolveAppUrl(azureSettingsSchema.parse({}), 'evil.com/x', '/')).toThrow(/expected an app host name/);
  });

  it('resolves a flexible server FQDN to the address to connect to, TLS always verifying the FQDN', () => {
    const fqdn = 'psql-limpopo-connect-prod.postgres.database.azure.com';
    expect(resolvePostgresEndpoint(azureSettingsSchema.parse({}), fqdn)).toEqual({ host: fqdn, port: 5432, servername: fqdn });
    expect(resolvePostgresEndpoint(azureSettingsSchema.parse({ postgresUrlTemplate: 'postgresql://{host}:6432' }), fqdn.toUpperCase())).toEqual({ host: fqdn, port: 6432, servername: fqdn });
    expect(resolvePostgresEndpoint(sandboxSettings(9443), fqdn)).toEqual({ host: '127.0.0.1', port: 5432, servername: fqdn });
    expect(() => resolvePostgresEndpoint(sandboxSettings(), 'evil.com:1/x')).toThrow(/expected a server FQDN/);
    for (const bad of ['https://{host}:5432', 'postgresql://{host}', 'postgresql://u:p@{host}:5432', 'postgresql://{host}:5432/db', 'postgresql://{host}:5432?sslmode=disable']) {
      expect(azureSettingsSchema.safeParse({ postgresUrlTemplate: bad }).success, bad).toBe(false);
    }
  });

  it('refuses the sandbox credential with a PostgreSQL address that is not loopback', async () => {
    await expect(createCredential({ ...sandboxSettings(), postgresUrlTemplate: 'postgresql://{host}:5432' }, { env: {} })).rejects.toThrow(
      /postgresUrlTemplate: expected a postgresql:\/\/ loopback address, found "postgresql:\/\/\{host\}:5432"/,
    );
    await expect(createCredential({ ...sandboxSettings(), postgresUrlTemplate: undefined }, { env: {} })).rejects.toThrow(/postgresUrlTemplate: expected a postgresql:\/\/ loopback address, found none/);
    expect(azureSettingsSchema.safeParse({ ...sandboxSettings(), postgresUrlTemplate: 'postgresql://db.example.com:5432' }).success).toBe(false);
  });

  it('caches one client per key and builds ARM clients against the configured endpoint', async () => {
    const clients = createAzureClients(sandboxSettings(9443), {
      credential: { getToken: () => Promise.resolve({ token: 't', expiresOnTimestamp: Date.now() + 3_600_000 }) },
    });
    const a = await clients.containerAppsClient('2c2d1b63-8e1f-4b9d-8b66-2d1f1c7f2002');
    expect(await clients.containerAppsClient('2C2D1B63-8E1F-4B9D-8B66-2D1F1C7F2002')).toBe(a);
    expect(a.$host).toBe('https://127.0.0.1:9443');
    expect(await clients.secretClient('kv-a')).toBe(await clients.secretClient('KV-A'));
    expect((await clients.secretClient('kv-a')).vaultUrl).toBe('https://127.0.0.1:9443/vaults/kv-a');
    expect(clients.armBudget('2c2d1b63-8e1f-4b9d-8b66-2d1f1c7f2002')).toBe(clients.budgets.arm('2c2d1b63-8e1f-4b9d-8b66-2d1f1c7f2002', 'default'));
    await clients.close();
  });
});
