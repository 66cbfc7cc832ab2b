/**
 * The sandbox engine over real HTTPS (trusting only the sandbox CA): identity, routing, ARM
 * errors, long-running operations driven by @azure/core-lro's real poller, fault injection,
 * the request log, webhooks and the clock. A tiny widgets provider stands in for Azure.
 */
import { createHttpPoller, type LroResponse } from '@azure/core-lro';
import { describe, expect, it } from 'vitest';
import type { SandboxHandle } from '../../../sandbox/index.ts';
import { sandboxRequest, sandboxToken, useSandbox, type SandboxHttpResponse } from '../../support/sandbox.ts';
import { createWidgetsProvider } from '../../support/widgets-provider.ts';

const SUB = '0a0b0c0d-1111-4222-8333-444455556666';
const WIDGETS = `/subscriptions/${SUB}/resourceGroups/rg-test/providers/Test.Widgets/widgets`;
const API = 'api-version=2024-01-01';
const ARM_SCOPE = 'https://management.azure.com/.default';

const provider = createWidgetsProvider();
const getSandbox = useSandbox({ providers: [provider], worlds: [], postgres: false, azurite: false, lroDurationMs: 150 });

function decodeClaims(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function armToken(sandbox: SandboxHandle): Promise<string> {
  return sandboxToken(sandbox, ARM_SCOPE);
}

/** Drives a long-running operation with core-lro's own HTTP poller over the sandbox. */
async function runLro(
  sandbox: SandboxHandle,
  token: string,
  request: { method: 'PUT' | 'POST'; url: string; body?: unknown },
): Promise<{ initial: SandboxHttpResponse; result: unknown }> {
  let initial: SandboxHttpResponse | undefined;
  const toLro = (response: SandboxHttpResponse): LroResponse => {
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(response.headers)) if (typeof value === 'string') headers[key] = value;
    const body: unknown = response.text === '' ? undefined : response.json();
    return { flatResponse: body, rawResponse: { statusCode: response.status, headers, body } };
  };
  const poller = await createHttpPoller(
    {
      requestMethod: request.method,
      requestPath: new URL(request.url, sandbox.baseUrl).toString(),
      sendInitialRequest: async () => {
        initial = await sandboxRequest(sandbox, { method: request.method, url: request.url, body: request.body, token });
        if (initial.status >= 300) throw new Error(`initial request failed: ${String(initial.status)} ${initial.text}`);
        return toLro(initial);
      },
      sendPollRequest: async (path) => toLro(await sandboxRequest(sandbox, { url: path, token })),
    },
    { resourceLocationConfig: 'location' },
  );
  const result = await poller.pollUntilDone();
  if (initial === undefined) throw new Error('no initial response');
  return { initial, result };
}

describe('identity', () => {
  it('mints RS256 JWTs with Entra-like claims for client credentials', async () => {
    const sandbox = getSandbox();
    const response = await sandboxRequest(sandbox, {
      method: 'POST',
      url: sandbox.tokenEndpoint,
      form: { grant_type: 'client_credentials', client_id: 'app-1', client_secret: 's3cret', scope: 'https://storage.azure.com/.default' },
    });
    expect(response.status).toBe(200);
    const body = response.json<{ token_type: string; expires_in: number; access_token: string }>();
    expect(body.token_type).toBe('Bearer');
    const [header] = body.access_token.split('.');
    expect(JSON.parse(Buffer.from(header ?? '', 'base64url').toString('utf8'))).toMatchObject({ alg: 'RS256', typ: 'JWT' });
    const claims = decodeClaims(body.access_token);
    expect(claims).toMatchObject({ aud: 'https://storage.azure.com', iss: `https://sts.windows.net/${sandbox.tenantId}/`, tid: sandbox.tenantId, appid: 'app-1' });
    expect(claims.oid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect((claims.exp as number) - (claims.iat as number)).toBe(3600);
    expect(claims.nbf).toBe(claims.iat);
  });

  it('rejects bad grant types, scopes and tenants with OAuth errors', async () => {
    const sandbox = getSandbox();
    const post = (url: string, form: Record<string, string>): Promise<SandboxHttpResponse> => sandboxRequest(sandbox, { method: 'POST', url, form });
    const base = { client_id: 'app-1', client_secret: 'x', scope: ARM_SCOPE };
    const grant = await post(sandbox.tokenEndpoint, { ...base, grant_type: 'password' });
    expect(grant.status).toBe(400);
    expect(grant.json()).toMatchObject({ error: 'unsupported_grant_type' });
    const scope = await post(sandbox.tokenEndpoint, { ...base, grant_type: 'client_credentials', scope: 'https://management.azure.com' });
    expect(scope.json()).toMatchObject({ error: 'invalid_scope' });
    const tenant = await post(`${sandbox.baseUrl}/11111111-2222-4333-8444-555555555555/oauth2/v2.0/token`, { ...base, grant_type: 'client_credentials' });
    expect(tenant.status).toBe(400);
    expect(tenant.json()).toMatchObject({ error: 'invalid_tenant' });
  });

  it('serves OpenID configuration and signing keys', async () => {
    const sandbox = getSandbox();
    const config = await sandboxRequest(sandbox, { url: `/${sandbox.tenantId}/v2.0/.well-known/openid-configuration` });
    expect(config.json()).toMatchObject({ token_endpoint: sandbox.tokenEndpoint });
    const keys = await sandboxRequest(sandbox, { url: `/${sandbox.tenantId}/discovery/v2.0/keys` });
    expect(keys.json<{ keys: { kty: string }[] }>().keys[0]?.kty).toBe('RSA');
  });
});

describe('ARM front door', () => {
  it('requires api-version, with ARM error shape and request ids', async () => {
    const sandbox = getSandbox();
    const response = await sandboxRequest(sandbox, { url: `${WIDGETS}/w1`, token: await armToken(sandbox), headers: { 'x-ms-correlation-request-id': 'corr-1' } });
    expect(response.status).toBe(400);
    expect(response.json()).toEqual({ error: { code: 'MissingApiVersionParameter', message: expect.any(String) as string } });
    expect(response.headers['x-ms-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers['x-ms-correlation-request-id']).toBe('corr-1');
  });

  it('answers 401 with WWW-Authenticate without a token, and for a wrong audience', async () => {
    const sandbox = getSandbox();
    const missing = await sandboxRequest(sandbox, { url: `${WIDGETS}/w1?${API}` });
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer authorization_uri=/);
    expect(missing.json()).toMatchObject({ error: { code: 'AuthenticationFailed' } });
    const forged = await sandboxRequest(sandbox, { url: `${WIDGETS}/w1?${API}`, token: 'a.b.c' });
    expect(forged.json()).toMatchObject({ error: { code: 'InvalidAuthenticationToken' } });
    const wrongAudience = await sandboxRequest(sandbox, { url: `${WIDGETS}/w1?${API}`, token: await sandboxToken(sandbox, 'https://vault.azure.net/.default') });
    expect(wrongAudience.status).toBe(401);
    expect(wrongAudience.json()).toMatchObject({ error: { code: 'InvalidAuthenticationTokenAudience' } });
    const sandboxAudience = await sandboxRequest(sandbox, { url: `${WIDGETS}/nope?${API}`, token: await sandboxToken(sandbox, `${sandbox.baseUrl}/.default`) });
    expect(sandboxAudience.status).toBe(404);
  });

  it('distinguishes unknown resource types from missing resources, and matches literals case-insensitively', async () => {
    const sandbox = getSandbox();
    const token = await armToken(sandbox);
    const unknownType = await sandboxRequest(sandbox, { url: `/subscriptions/${SUB}/resourceGroups/rg-test/providers/Test.Gadgets/gadgets/g1?${API}`, token });
    expect(unknownType.status).toBe(404);
    expect(unknownType.json()).toMatchObject({ error: { code: 'InvalidResourceType' } });
    const missing = await sandboxRequest(sandbox, { url: `/SUBSCRIPTIONS/${SUB}/RESOURCEGROUPS/rg-test/PROVIDERS/test.widgets/WIDGETS/absent?${API}`, token });
    expect(missing.status).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'ResourceNotFound', message: expect.stringContaining('absent') as string } });
    const subResource = await sandboxRequest(sandbox, { url: `${WIDGETS}/absent/parts/p1?${API}`, token });
    expect(subResource.json()).toMatchObject({ error: { code: 'ResourceNotFound' } });
  });
});

describe('long-running operations', () => {
  it('accepts a PUT with ARM async headers and applies the mutation when the real poller sees Succeeded', async () => {
    const sandbox = getSandbox();
    const token = await armToken(sandbox);
    const { initial, result } = await runLro(sandbox, token, { method: 'PUT', url: `${WIDGETS}/w-put?${API}`, body: { properties: { size: 7 } } });
    expect(initial.status).toBe(201);
    expect(initial.headers['azure-asyncoperation']).toMatch(
      new RegExp(`^${sandbox.baseUrl}/subscriptions/${SUB}/providers/Test.Widgets/locations/global/operationStatuses/[0-9a-f-]{36}\\?api-version=2024-01-01$`),
    );
    expect(initial.headers.location).toMatch(/\/operationResults\/[0-9a-f-]{36}\?api-version=2024-01-01$/);
    expect(initial.headers['retry-after']).toBe('1');
    expect(initial.json()).toMatchObject({ properties: { provisioningState: 'Creating' } });
    // For a PUT the poller reads the final state from the resource itself.
    expect(result).toMatchObject({ name: 'w-put', properties: { size: 7, provisioningState: 'Succeeded' } });
    const status = await sandboxRequest(sandbox, { url: initial.headers['azure-asyncoperation'] as string, token });
    expect(status.json()).toMatchObject({ status: 'Succeeded', name: expect.any(String) as string, startTime: expect.any(String) as string, endTime: expect.any(String) as string });
  });

  it('reports InProgress with Retry-After while running and serves the POST result at the Location URL', async () => {
    const sandbox = getSandbox();
    const token = await armToken(sandbox);
    await runLro(sandbox, token, { method: 'PUT', url: `${WIDGETS}/w-post?${API}`, body: { properties: { size: 1 } } });
    const accepted = await sandboxRequest(sandbox, { method: 'POST', url: `${WIDGETS}/w-post/resize?size=3&${API}`, token });
    expect(accepted.status).toBe(202);
    const running = await sandboxRequest(sandbox, { url: accepted.headers['azure-asyncoperation'] as string, token });
    expect(running.json()).toMatchObject({ status: 'InProgress' });
    expect(running.headers['retry-after']).toBe('1');
    const location = await sandboxRequest(sandbox, { url: accepted.headers.location as string, token });
    expect(location.status).toBe(202);
    const { result } = await runLro(sandbox, token, { method: 'POST', url: `${WIDGETS}/w-post/resize?size=5&${API}` });
    expect(result).toEqual({ size: 5 });
    expect(provider.widgets.get(`${WIDGETS}/w-post`.toLowerCase())?.size).toBe(5);
  });

  it('ends Failed with an error and no mutation when a fault fails the operation', async () => {
    const sandbox = getSandbox();
    const token = await armToken(sandbox);
    await runLro(sandbox, token, { method: 'PUT', url: `${WIDGETS}/w-fail?${API}`, body: { properties: { size: 2 } } });
    await sandbox.injectFault({ operationId: 'Test.Widgets/widgets.resize', failLongRunningOperation: true, errorCode: 'ResizeConflict', message: 'injected resize failure' });
    // core-lro puts the ARM error's code and message into its error message.
    await expect(runLro(sandbox, token, { method: 'POST', url: `${WIDGETS}/w-fail/resize?size=9&${API}` })).rejects.toThrow(
      /has failed\. ResizeConflict\. injected resize failure/,
    );
    expect(provider.widgets.get(`${WIDGETS}/w-fail`.toLowerCase())?.size).toBe(2);
    // The fault was used up: the next resize succeeds.
    const { result } = await runLro(sandbox, token, { method: 'POST', url: `${WIDGETS}/w-fail/resize?size=4&${API}` });
    expect(result).toEqual({ size: 4 });
  });

  it('ends Failed when the provider mutation throws', async () => {
    const sandbox = getSandbox();
    const token = await armToken(sandbox);
    await runLro(sandbox, token, { method: 'PUT', url: `${WIDGETS}/w-throw?${API}`, body: { properties: { size: 2 } } });
    await expect(runLro(sandbox, token, { method: 'POST', url: `${WIDGETS}/w-throw/resize?size=-1&${API}` })).rejects.toThrow(/has failed\. OperationFailed\. .*expected a size >= 0, found -1/);
    const state = (await sandboxRequest(sandbox, { url: '/_sandbox/state' })).json<{ operations: { operationId: string; status: string; resourceId: string }[] }>();
    expect(state.operations.filter((operation) => operation.resourceId.endsWith('/w-throw') && operation.status === 'Failed')).toHaveLength(1);
  });
});

describe('fault injection', () => {
  it('answers matching requests with the injected status, Retry-After and count', async () => {
    const sandbox = getSandbox();
    const token = await armToken(sandbox);
    await runLro(sandbox, token, { method: 'PUT', url: `${WIDGETS}/w-fault?${API}`, body: { properties: { size: 1 } } });
    await sandbox.injectFault({ operationId: 'Test.Widgets/widgets.get', status: 503, count: 2, retryAfterSeconds: 7 });
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const response = await sandboxRequest(sandbox, { url: `${WIDGETS}/w-fault?${API}`, token });
      statuses.push(response.status);
      if (response.status === 503) {
        expect(response.headers['retry-after']).toBe('7');
        expect(response.json()).toMatchObject({ error: { code: 'ServiceUnavailable' } });
      }
    }
    expect(statuses).toEqual([503, 503, 200]);
  });

  it('matches by path pattern and method, uses the host error shape, and can be cleared', async () => {
    const sandbox = getSandbox();
    await sandbox.injectFault({ pathPattern: '^/registries/crtest/v2/', method: 'GET', status: 500, count: 5, errorCode: 'UNKNOWN' });
    const faulted = await sandboxRequest(sandbox, { url: '/registries/crtest/v2/webapi/tags/list' });
    expect(faulted.status).toBe(500);
    expect(faulted.json()).toEqual({ errors: [{ code: 'UNKNOWN', message: expect.any(String) as string, detail: null }] });
    await sandbox.clearFaults();
    const healthy = await sandboxRequest(sandbox, { url: '/registries/crtest/v2/webapi/tags/list' });
    expect(healthy.status).toBe(200);
  });

  it('refuses malformed faults', async () => {
    const sandbox = getSandbox();
    await expect(sandbox.injectFault({ status: 500 })).rejects.toThrow(/operationId or pathPattern/);
    await expect(sandbox.injectFault({ pathPattern: '(', status: 500 })).rejects.toThrow(/regular expression/);
  });
});

describe('hosts', () => {
  it('hands Key Vault requests to the provider with the principal, without an engine 401', async () => {
    const sandbox = getSandbox();
    const anonymous = await sandboxRequest(sandbox, { url: '/vaults/kv-test/secrets/Db?api-version=7.5' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('resource="https://vault.azure.net"');
    const token = await sandboxToken(sandbox, 'https://vault.azure.net/.default');
    const authorised = await sandboxRequest(sandbox, { url: '/vaults/kv-test/secrets/Db?api-version=7.5', token });
    expect(authorised.json()).toMatchObject({ vault: 'kv-test', name: 'Db', oid: decodeClaims(token).oid as string });
  });

  it('routes ACR repository names with slashes and app host paths', async () => {
    const sandbox = getSandbox();
    const tags = await sandboxRequest(sandbox, { url: '/registries/crtest/v2/team/webapi/tags/list' });
    expect(tags.json()).toEqual({ registry: 'crtest', name: 'team/webapi', tags: ['v1'] });
    const app = await sandboxRequest(sandbox, { url: '/_hosts/app.example.net/api/health' });
    expect(app.status).toBe(200);
    expect(app.text).toBe('app.example.net api/health');
  });
});

describe('control endpoints', () => {
  it('logs requests (not control calls) with operation, host, status, class and principal', async () => {
    const sandbox = getSandbox();
    const token = await armToken(sandbox);
    await sandbox.clearRequests();
    await sandboxRequest(sandbox, { url: `${WIDGETS}/logged?${API}`, token });
    await sandboxRequest(sandbox, { url: '/_hosts/app.example.net/healthz' });
    await sandboxRequest(sandbox, { url: '/_sandbox/state' });
    const log = await sandbox.requests();
    expect(log.map((entry) => [entry.method, entry.path, entry.operationId, entry.host, entry.status, entry.throttleClass])).toEqual([
      ['GET', `${WIDGETS}/logged`, 'Test.Widgets/widgets.get', 'arm', 404, 'read'],
      ['GET', '/_hosts/app.example.net/healthz', 'Test.App.get', 'apphost', 200, 'none'],
    ]);
    expect(log[0]?.principal).toBe(decodeClaims(token).oid);
    expect(log[0]?.query).toBe(API);
    expect(log[0]?.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('captures webhook bodies by name', async () => {
    const sandbox = getSandbox();
    await sandboxRequest(sandbox, { method: 'POST', url: '/_sandbox/webhooks/teams', body: { text: 'run failed' } });
    await sandboxRequest(sandbox, { method: 'POST', url: '/_sandbox/webhooks/slack', body: { text: 'hello' } });
    expect((await sandbox.webhooks('teams')).map((hook) => hook.body)).toEqual([{ text: 'run failed' }]);
    expect((await sandbox.webhooks()).map((hook) => hook.name)).toEqual(['teams', 'slack']);
  });

  it('shifts the sandbox clock and shows state', async () => {
    const sandbox = getSandbox();
    const before = (await sandboxRequest(sandbox, { url: '/_sandbox/state' })).json<{ clock: { offsetMs: number } }>();
    await sandbox.advanceClock(3 * 86_400_000);
    const after = (await sandboxRequest(sandbox, { url: '/_sandbox/state' })).json<{ clock: { offsetMs: number; now: string }; providers: Record<string, unknown> }>();
    expect(after.clock.offsetMs - before.clock.offsetMs).toBe(3 * 86_400_000);
    expect(new Date(after.clock.now).getTime()).toBeGreaterThan(Date.now() + 2 * 86_400_000);
    expect(Object.keys(after.providers)).toEqual(['Test.Widgets']);
    const bad = await sandboxRequest(sandbox, { method: 'POST', url: '/_sandbox/clock', body: { advanceMs: 'soon' } });
    expect(bad.status).toBe(400);
  });
});
