/**
 * Sandbox providers called directly through their route handlers with a fake engine context:
 * every world seeds, planted problems are visible in the shapes, and the Key Vault challenge,
 * ACR token exchange, paging and lock rules behave as the services do.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ProviderContext, RouteDefinition, SandboxProvider, SandboxRequest, SandboxResponse, VerifiedPrincipal, WorldFile } from '../../../sandbox/contract.ts';
import { defaultProviders } from '../../../sandbox/providers/index.ts';

const WORLDS = ['limpopo-connect', 'healthz-app', 'xshopai', 'lms', 'kilometers'] as const;
const BASE = 'https://127.0.0.1:9443';
const NOW = new Date('2026-03-01T12:00:00Z');

/** Tokens the fake identity "minted": token string → claims. */
const tokens = new Map<string, VerifiedPrincipal>([
  ['vault-token', { oid: 'oid-1', aud: 'https://vault.azure.net', tid: '72f988bf-0000-4000-8000-00000000a001' }],
  ['arm-token', { oid: 'oid-1', aud: 'https://management.azure.com/' }],
  ['acr-aad-token', { oid: 'oid-1', aud: 'https://containerregistry.azure.net' }],
]);

const context: ProviderContext = {
  now: () => NOW,
  realTimeAt: (sandboxTime) => sandboxTime,
  baseUrl: BASE,
  startOperation: () => {
    throw new Error('no long-running operations expected in read-only providers');
  },
  armError: (status, code, message) => ({ status, body: { error: { code, message } } }),
  postgres: undefined,
  event: () => undefined,
  verifyAccessToken: (token) => tokens.get(token),
  blobEndpointFor: (account) => `https://127.0.0.1:10000/${account}`,
};

let providers: SandboxProvider[];
let routes: RouteDefinition[];

async function loadWorld(name: string): Promise<WorldFile> {
  return parseYaml(await readFile(new URL(`../../../sandbox/worlds/${name}.yaml`, import.meta.url), 'utf8')) as WorldFile;
}

/** A tiny router: enough to find the one route a test means (exact pattern match by operationId and host). */
async function call(
  host: RouteDefinition['host'],
  method: RouteDefinition['method'],
  pattern: string,
  params: Record<string, string>,
  extra: Partial<SandboxRequest> = {},
): Promise<SandboxResponse> {
  const route = routes.find((candidate) => candidate.host === host && candidate.method === method && candidate.pattern === pattern);
  if (route === undefined) throw new Error(`no route ${host} ${method} ${pattern}`);
  const request: SandboxRequest = {
    method,
    path: pattern,
    query: new URLSearchParams(),
    headers: {},
    body: undefined,
    form: undefined,
    rawBody: Buffer.alloc(0),
    params,
    hostName: undefined,
    principal: undefined,
    ...extra,
  };
  return route.handler(request, context);
}

const ARM = '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers';
const XSHOP = { subscriptionId: '3d3e2c74-9f20-4cae-9c77-3e202d803003', resourceGroup: 'rg-xshopai-prod' };

type Body = Record<string, unknown>;
const bodyOf = (response: SandboxResponse): Body => response.body as Body;

beforeAll(async () => {
  providers = defaultProviders();
  for (const name of WORLDS) {
    const world = await loadWorld(name);
    for (const provider of providers) {
      await provider.seed(world, world.resources.filter((resource) => provider.types.includes(resource.type)), context);
    }
  }
  routes = providers.flatMap((provider) => [...provider.routes()]);
});

describe('world seeding', () => {
  it('declares every world resource type in some provider', async () => {
    const types = new Set(providers.flatMap((provider) => provider.types));
    for (const name of [...WORLDS, 'bench/acr-bench']) {
      const world = await loadWorld(name);
      for (const resource of world.resources) expect(types.has(resource.type), `${name}: ${resource.type}`).toBe(true);
    }
  });

  it('rejects a bad spec naming the world file and resource', () => {
    const provider = defaultProviders().find((candidate) => candidate.name === 'Microsoft.Storage');
    const world: WorldFile = {
      name: 'broken',
      description: 'x',
      tenantId: '72f988bf-0000-4000-8000-00000000a001',
      subscriptionId: '3d3e2c74-9f20-4cae-9c77-3e202d803003',
      plantedProblems: [],
      resources: [],
    };
    const resource = { type: 'Microsoft.Storage/storageAccounts', resourceGroup: 'rg', name: 'stbroken', location: 'eastus', spec: { sku: 'Cheap_LRS' } };
    expect(() => provider?.seed(world, [resource], context)).toThrow(/sandbox\/worlds\/broken\.yaml.*stbroken.*spec\.sku/);
  });

  it('generates the 10,000-tag benchmark registry from a few lines of spec', async () => {
    const world = await loadWorld('bench/acr-bench');
    const acr = defaultProviders().find((candidate) => candidate.name === 'Microsoft.ContainerRegistry');
    await acr?.seed(world, world.resources, context);
    expect(acr?.snapshot()).toEqual([expect.objectContaining({ name: 'crbench', repositories: 200, tags: 10_000 })]);
  });

  it('keeps secret values and app settings out of snapshots', () => {
    const text = JSON.stringify(providers.map((provider) => provider.snapshot()));
    expect(text).not.toContain('@Microsoft.KeyVault');
    expect(text).not.toMatch(/"value"/);
    expect(text).toContain('appSettingNames');
  });
});

describe('ARM shapes', () => {
  it('pages ca-user-service revisions and reports traffic on the latest', async () => {
    const pattern = `${ARM}/Microsoft.App/containerApps/{name}/revisions`;
    const first = await call('arm', 'GET', pattern, { ...XSHOP, name: 'ca-user-service' }, { query: new URLSearchParams({ 'api-version': '2025-07-01' }) });
    const page = bodyOf(first);
    expect((page.value as unknown[]).length).toBe(10);
    expect(String(page.nextLink)).toContain('%24skiptoken=10');
    const second = await call('arm', 'GET', pattern, { ...XSHOP, name: 'ca-user-service' }, { query: new URL(String(page.nextLink)).searchParams });
    const all = [...(page.value as Body[]), ...(bodyOf(second).value as Body[])];
    expect(all).toHaveLength(12);
    const props = all.map((revision) => revision.properties as Body);
    expect(props.filter((p) => p.active === true)).toHaveLength(8);
    expect(props[0]).toMatchObject({ trafficWeight: 100, active: true, healthState: 'Healthy', runningState: 'Running' });
    expect(props.find((p) => (p.template as { containers: { image: string }[] }).containers[0]?.image.endsWith(':v1.0.3'))).toMatchObject({ active: true, trafficWeight: 0 });
  });

  it('shows kilometers PostgreSQL with 3-day retention and a late earliest restore date', async () => {
    const response = await call('arm', 'GET', `${ARM}/Microsoft.DBforPostgreSQL/flexibleServers/{name}`, {
      subscriptionId: '5f504e96-b142-4ec0-8e99-50424fa25005',
      resourceGroup: 'rg-kilometers-prod',
      name: 'psql-kilometers-prod-k7x2',
    });
    const backup = (bodyOf(response).properties as Body).backup as Body;
    expect(backup.backupRetentionDays).toBe(3);
    expect(NOW.getTime() - Date.parse(String(backup.earliestRestoreDate))).toBe(30 * 3_600_000);
  });

  it('answers 404 ResourceNotFound for an unknown site', async () => {
    const response = await call('arm', 'GET', `${ARM}/Microsoft.Web/sites/{name}`, { ...XSHOP, name: 'nope' });
    expect(response.status).toBe(404);
    expect(bodyOf(response)).toMatchObject({ error: { code: 'ResourceNotFound' } });
  });

  it('omits enablePurgeProtection on the limpopo vault, as ARM does when it is off', async () => {
    const response = await call('arm', 'GET', `${ARM}/Microsoft.KeyVault/vaults/{name}`, {
      subscriptionId: '1b1c0a52-7d0e-4a8c-9a55-1c0e0b6f1001',
      resourceGroup: 'rg-limpopo-connect-prod',
      name: 'kv-limpopo-connect',
    });
    const props = bodyOf(response).properties as Body;
    expect(props.enablePurgeProtection).toBeUndefined();
    expect(props.vaultUri).toBe(`${BASE}/vaults/kv-limpopo-connect/`);
  });
});

describe('Key Vault challenge', () => {
  const vault = { hostName: 'kv-xshopai-prod' };
  it('challenges a request without a token with authorization and resource', async () => {
    const response = await call('keyvault', 'GET', '/secrets', {}, vault);
    expect(response.status).toBe(401);
    expect(response.headers?.['www-authenticate']).toBe(
      `Bearer authorization="${BASE}/72f988bf-0000-4000-8000-00000000a001", resource="https://vault.azure.net"`,
    );
  });

  it('refuses an ARM-audience token and accepts a vault one', async () => {
    const wrong = await call('keyvault', 'GET', '/secrets', {}, { ...vault, headers: { authorization: 'Bearer arm-token' } });
    expect(wrong.status).toBe(401);
    const right = await call('keyvault', 'GET', '/secrets', {}, { ...vault, headers: { authorization: 'Bearer vault-token' } });
    expect(right.status).toBe(200);
    expect(String(bodyOf(right).nextLink)).toContain(`${BASE}/vaults/kv-xshopai-prod/secrets?`);
  });

  it('returns SecretNotFound and a disabled version as Forbidden', async () => {
    const auth = { ...vault, headers: { authorization: 'Bearer vault-token' } };
    const missing = await call('keyvault', 'GET', '/secrets/{secretName}', { secretName: 'nope' }, auth);
    expect(bodyOf(missing)).toMatchObject({ error: { code: 'SecretNotFound' } });
    const versions = await call('keyvault', 'GET', '/secrets/{secretName}/versions', { secretName: 'JWT-SECRET' }, auth);
    const oldId = String(((bodyOf(versions).value as Body[])[0] as Body).id);
    const old = await call('keyvault', 'GET', '/secrets/{secretName}/{version}', { secretName: 'JWT-SECRET', version: oldId.split('/').pop() ?? '' }, auth);
    expect(old.status).toBe(403);
  });
});

describe('ACR', () => {
  const registry = { hostName: 'crxshopaiprod' };
  const form = (entries: Record<string, string>): Partial<SandboxRequest> => ({ ...registry, form: new URLSearchParams(entries) });

  async function accessToken(scope: string): Promise<string> {
    const exchanged = await call('acr', 'POST', '/oauth2/exchange', {}, form({ grant_type: 'access_token', service: 'crxshopaiprod.azurecr.io', access_token: 'acr-aad-token' }));
    expect(exchanged.status).toBe(200);
    const refresh = String(bodyOf(exchanged).refresh_token);
    const token = await call('acr', 'POST', '/oauth2/token', {}, form({ grant_type: 'refresh_token', service: 'crxshopaiprod.azurecr.io', scope, refresh_token: refresh }));
    return String(bodyOf(token).access_token);
  }

  it('challenges with realm, service and the scope the operation needs', async () => {
    const response = await call('acr', 'GET', '/acr/v1/{repository*}/_tags', { repository: 'user-service' }, registry);
    expect(response.status).toBe(401);
    expect(response.headers?.['www-authenticate']).toBe(
      `Bearer realm="${BASE}/registries/crxshopaiprod/oauth2/token",service="crxshopaiprod.azurecr.io",scope="repository:user-service:metadata_read"`,
    );
  });

  it('refuses deleting a locked tag and a tag with a read-only token', async () => {
    const read = await accessToken('repository:user-service:metadata_read');
    const denied = await call('acr', 'DELETE', '/acr/v1/{repository*}/_tags/{tag}', { repository: 'user-service', tag: 'v0.9.1' }, { ...registry, headers: { authorization: `Bearer ${read}` } });
    expect(denied.status).toBe(401);
    const del = await accessToken('repository:user-service:delete');
    const lockedTag = await call('acr', 'DELETE', '/acr/v1/{repository*}/_tags/{tag}', { repository: 'user-service', tag: 'v0.1.0' }, { ...registry, headers: { authorization: `Bearer ${del}` } });
    expect(lockedTag.status).toBe(405);
    const ok = await call('acr', 'DELETE', '/acr/v1/{repository*}/_tags/{tag}', { repository: 'user-service', tag: 'v0.9.1' }, { ...registry, headers: { authorization: `Bearer ${del}` } });
    expect(ok.status).toBe(202);
  });

  it('pages tags newest first with a relative Link header', async () => {
    const token = await accessToken('repository:order-service:metadata_read');
    const response = await call(
      'acr',
      'GET',
      '/acr/v1/{repository*}/_tags',
      { repository: 'order-service' },
      { ...registry, headers: { authorization: `Bearer ${token}` }, query: new URLSearchParams({ n: '5', orderby: 'timedesc' }) },
    );
    const tags = bodyOf(response).tags as Body[];
    expect(tags.map((tag) => tag.name)).toEqual(['v1.0.40', 'v1.0.39', 'v1.0.38', 'v1.0.37', 'v1.0.36']);
    expect(response.headers?.link).toBe('</acr/v1/order-service/_tags?last=v1.0.36&n=5&orderby=timedesc>; rel="next"');
  });
});

describe('app health endpoints', () => {
  it('answers healthy for a running app, 404 for an unknown host', async () => {
    const ok = await call('apphost', 'GET', '/{path*}', { path: 'health' }, { hostName: 'app-kilometers-api-k7x2.azurewebsites.net', path: '/health' });
    expect(ok).toMatchObject({ status: 200, body: { status: 'healthy' } });
    const readyz = await call('apphost', 'GET', '/{path*}', { path: 'readyz' }, { hostName: 'ca-webapi-prod.proudwave-7c1d2e3f.eastus.azurecontainerapps.io', path: '/readyz' });
    expect(readyz.status).toBe(200);
    const unknown = await call('apphost', 'GET', '/{path*}', { path: 'health' }, { hostName: 'nope.example.com', path: '/health' });
    expect(unknown.status).toBe(404);
  });
});

describe('broken apps from the world spec', () => {
  it('answers 503 for an unhealthy container app and a stopped site', async () => {
    const isolated = defaultProviders();
    const world: WorldFile = {
      name: 'broken-apps',
      description: 'apps broken on purpose',
      tenantId: '72f988bf-0000-4000-8000-00000000a001',
      subscriptionId: '3d3e2c74-9f20-4cae-9c77-3e202d803003',
      plantedProblems: [],
      resources: [
        {
          type: 'Microsoft.App/containerApps',
          resourceGroup: 'rg',
          name: 'ca-sick',
          location: 'eastus',
          spec: { environment: 'cae', environmentDomain: 'x.eastus.azurecontainerapps.io', revisions: [{ suffix: 'a', image: 'r/i:1', active: true, healthy: false }] },
        },
        { type: 'Microsoft.Web/sites', resourceGroup: 'rg', name: 'app-stopped', location: 'eastus', spec: { serverFarm: 'asp', state: 'Stopped' } },
      ],
    };
    for (const provider of isolated) await provider.seed(world, world.resources.filter((resource) => provider.types.includes(resource.type)), context);
    const route = isolated.flatMap((provider) => [...provider.routes()]).find((candidate) => candidate.host === 'apphost' && candidate.method === 'GET' && candidate.pattern === '/{path*}');
    if (route === undefined) throw new Error('expected an apphost GET route, found none');
    const ask = async (hostName: string): Promise<number> =>
      (
        await route.handler(
          { method: 'GET', path: '/health', query: new URLSearchParams(), headers: {}, body: undefined, form: undefined, rawBody: Buffer.alloc(0), params: { path: 'health' }, hostName, principal: undefined },
          context,
        )
      ).status;
    expect(await ask('ca-sick.x.eastus.azurecontainerapps.io')).toBe(503);
    expect(await ask('app-stopped.azurewebsites.net')).toBe(503);
  });
});
