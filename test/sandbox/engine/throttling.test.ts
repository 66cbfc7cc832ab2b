/**
 * ARM, ACR and Key Vault throttling in the sandbox engine: token buckets per subscription and
 * principal (ARM), per registry (ACR) and per vault (Key Vault), 429 with Retry-After, and the
 * ratelimit headers.
 */
import { describe, expect, it } from 'vitest';
import type { SandboxProvider } from '../../../sandbox/contract.ts';
import { sandboxRequest, sandboxToken, useSandbox } from '../../support/sandbox.ts';
import { createWidgetsProvider } from '../../support/widgets-provider.ts';

const SUB = '0a0b0c0d-1111-4222-8333-444455556666';
const OTHER_SUB = '9a0b0c0d-1111-4222-8333-444455556666';
const widget = (sub: string): string => `/subscriptions/${sub}/resourceGroups/rg/providers/Test.Widgets/widgets/w?api-version=2024-01-01`;

/** A vault data plane whose secret reads are throttled as the Key Vault provider's are ('read'). */
const vaultProvider: SandboxProvider = {
  name: 'Test.ThrottledVault',
  types: [],
  seed: () => undefined,
  routes: () => [
    {
      host: 'keyvault',
      method: 'GET',
      // Not /secrets/{name}: the widgets provider serves that one, unthrottled.
      pattern: '/throttled-secrets/{name}',
      throttle: 'read',
      requiresAuth: false,
      operationId: 'Test.ThrottledVault.getSecret',
      handler: (request) => ({ status: 200, body: { id: `${request.hostName ?? ''}/${request.params.name ?? ''}`, value: 'v' } }),
    },
  ],
  snapshot: () => ({}),
};

// Refill rates are tiny so that no token comes back while a test runs.
const getSandbox = useSandbox({
  providers: [createWidgetsProvider(), vaultProvider],
  worlds: [],
  postgres: false,
  azurite: false,
  throttling: { armReadsPerSecond: 0.01, armReadBurst: 3, armWritesPerSecond: 0.01, armWriteBurst: 2, acrPerSecond: 0.01, acrBurst: 2, keyVaultPerSecond: 0.01, keyVaultBurst: 2 },
});

describe('ARM throttling', () => {
  it('counts reads down in x-ms-ratelimit-remaining-subscription-reads and answers 429 TooManyRequests when empty', async () => {
    const sandbox = getSandbox();
    const token = await sandboxToken(sandbox, 'https://management.azure.com/.default', 'reader-1');
    const remaining: (string | string[] | undefined)[] = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      const response = await sandboxRequest(sandbox, { url: widget(SUB), token });
      expect(response.status).toBe(404);
      remaining.push(response.headers['x-ms-ratelimit-remaining-subscription-reads']);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const throttled = await sandboxRequest(sandbox, { url: widget(SUB), token });
    expect(throttled.status).toBe(429);
    expect(throttled.json()).toMatchObject({ error: { code: 'TooManyRequests' } });
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(throttled.headers['x-ms-ratelimit-remaining-subscription-reads']).toBe('0');

    // Buckets are per subscription and per principal.
    expect((await sandboxRequest(sandbox, { url: widget(OTHER_SUB), token })).status).toBe(404);
    const otherPrincipal = await sandboxToken(sandbox, 'https://management.azure.com/.default', 'reader-2');
    expect((await sandboxRequest(sandbox, { url: widget(SUB), token: otherPrincipal })).status).toBe(404);

    const log = await sandbox.requests();
    const throttledEntries = log.filter((entry) => entry.throttled);
    expect(throttledEntries).toHaveLength(1);
    expect(throttledEntries[0]).toMatchObject({ status: 429, throttleClass: 'read', operationId: 'Test.Widgets/widgets.get' });
  });

  it('draws writes and deletes from the write bucket, with -writes and -deletes headers', async () => {
    const sandbox = getSandbox();
    const token = await sandboxToken(sandbox, 'https://management.azure.com/.default', 'writer-1');
    const deleted = await sandboxRequest(sandbox, { method: 'DELETE', url: widget(SUB), token });
    expect(deleted.headers['x-ms-ratelimit-remaining-subscription-writes']).toBe('1');
    expect(deleted.headers['x-ms-ratelimit-remaining-subscription-deletes']).toBe('1');
    const put = await sandboxRequest(sandbox, { method: 'PUT', url: widget(SUB), token, body: { properties: { size: 1 } } });
    expect(put.status).toBe(201);
    expect(put.headers['x-ms-ratelimit-remaining-subscription-writes']).toBe('0');
    expect(put.headers['x-ms-ratelimit-remaining-subscription-deletes']).toBeUndefined();
    const throttled = await sandboxRequest(sandbox, { method: 'PUT', url: widget(SUB), token, body: { properties: { size: 2 } } });
    expect(throttled.status).toBe(429);
    // Reads still have their own budget.
    expect((await sandboxRequest(sandbox, { url: widget(SUB), token })).status).toBe(200);
  });
});

describe('ACR throttling', () => {
  it('throttles each registry separately with 429 and Retry-After', async () => {
    const sandbox = getSandbox();
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) statuses.push((await sandboxRequest(sandbox, { url: '/registries/cra/v2/app/tags/list' })).status);
    expect(statuses).toEqual([200, 200, 429]);
    const throttled = await sandboxRequest(sandbox, { url: '/registries/cra/v2/app/tags/list' });
    expect(throttled.json()).toEqual({ errors: [{ code: 'TOOMANYREQUESTS', message: expect.any(String) as string, detail: null }] });
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await sandboxRequest(sandbox, { url: '/registries/crb/v2/app/tags/list' })).status).toBe(200);
  });
});

describe('Key Vault throttling', () => {
  it('throttles each vault separately with 429 Throttled in the Key Vault error shape and Retry-After', async () => {
    const sandbox = getSandbox();
    const read = (vault: string) => sandboxRequest(sandbox, { url: `/vaults/${vault}/throttled-secrets/s1?api-version=7.4` });
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 3; attempt++) statuses.push((await read('kv-a')).status);
    expect(statuses).toEqual([200, 200, 429]);
    const throttled = await read('kv-a');
    expect(throttled.status).toBe(429);
    expect(throttled.json()).toEqual({ error: { code: 'Throttled', message: expect.stringContaining('kv-a') as string } });
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Vault names are case-insensitive, as their DNS names are; another vault has its own bucket.
    expect((await read('KV-A')).status).toBe(429);
    expect((await read('kv-b')).status).toBe(200);
    const log = await sandbox.requests();
    expect(log.filter((entry) => entry.host === 'keyvault' && entry.throttled)).toHaveLength(3);
  });
});
