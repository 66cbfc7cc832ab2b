/**
 * Secure Webhook tokens against the sandbox identity's real signing keys (OpenID configuration
 * and JWKS over verified TLS): valid v1 and v2 tokens, wrong audience, missing role, expired,
 * not yet valid, another caller, another issuer, a forged signature, `alg` tricks, missing and
 * malformed headers; the key cache (one fetch for many verifications, concurrent ones
 * included), a refresh on key rotation that is rate-limited, stale keys when a refresh fails,
 * and a bounded fetch that fails closed with 503 when no keys can be read.
 */
import { describe, expect, it } from 'vitest';
import { ACTION_GROUPS_APP_ID, SecureWebhookError, SecureWebhookVerifier, type SecureWebhookOptions } from '../../../src/alerts/secure-webhook.ts';
import { tlsSettingsWithCa } from '../../../src/azure/https-exchange.ts';
import { ACTION_GROUPS_APP_ID as SANDBOX_ACTION_GROUPS_APP_ID, type MintTokenOptions } from '../../../sandbox/index.ts';
import { sandboxRequest, useSandbox } from '../../support/sandbox.ts';
import { startTlsServer } from '../../support/tls-server.ts';

const AUDIENCE = 'api://ops-autopilot';
const ROLE = 'ActionGroupsSecureWebhook';
const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml'], postgres: false, azurite: false });

function verifier(options: Partial<SecureWebhookOptions> = {}): SecureWebhookVerifier {
  return new SecureWebhookVerifier({
    tenantId: sandbox().tenantId,
    audiences: [AUDIENCE, '00000000-0000-4000-8000-0000000000ab'],
    authorityHost: sandbox().baseUrl,
    tlsSettings: tlsSettingsWithCa(sandbox().caPem),
    ...options,
  });
}

async function bearer(options: Partial<MintTokenOptions> = {}): Promise<string> {
  return `Bearer ${await sandbox().mintToken({ audience: AUDIENCE, roles: [ROLE], ...options })}`;
}

async function refusal(promise: Promise<unknown>): Promise<SecureWebhookError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof SecureWebhookError)) throw new Error(`expected a SecureWebhookError, found ${outcome === undefined ? 'a verified token' : outcome instanceof Error ? `${outcome.name}: ${outcome.message}` : JSON.stringify(outcome)}`);
  return outcome;
}

/** How often the verifier fetched the keys and the OpenID configuration. */
async function keyFetches(): Promise<{ configuration: number; keys: number }> {
  const log = await sandbox().requests();
  return { configuration: log.filter((entry) => entry.operationId === 'Identity.openidConfiguration').length, keys: log.filter((entry) => entry.operationId === 'Identity.keys').length };
}

function forged(header: Record<string, unknown>, claims: Record<string, unknown>, signature = ''): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `Bearer ${part(header)}.${part(claims)}.${signature}`;
}

describe('tokens', () => {
  it('the action group constant matches the sandbox identity default', () => {
    expect(ACTION_GROUPS_APP_ID).toBe(SANDBOX_ACTION_GROUPS_APP_ID);
  });

  it('accepts a v1 token of action groups with the role, for either audience, and a v2 token', async () => {
    const check = verifier();
    const caller = await check.verify(await bearer());
    expect(caller).toMatchObject({ appId: ACTION_GROUPS_APP_ID, tenantId: sandbox().tenantId, roles: [ROLE], audience: AUDIENCE, issuer: `https://sts.windows.net/${sandbox().tenantId}/`, tokenVersion: '1.0' });
    expect(caller.expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect((await check.verify(await bearer({ audience: '00000000-0000-4000-8000-0000000000ab' }))).audience).toBe('00000000-0000-4000-8000-0000000000ab');
    const v2 = await check.verify(await bearer({ version: '2.0' }));
    expect(v2).toMatchObject({ issuer: `${sandbox().baseUrl}/${sandbox().tenantId}/v2.0`, tokenVersion: '2.0', appId: ACTION_GROUPS_APP_ID });
  });

  const refusals: { name: string; token: () => Promise<string>; reason: SecureWebhookError['reason']; message: RegExp }[] = [
    { name: 'wrong audience', token: () => bearer({ audience: 'api://someone-else' }), reason: 'audience', message: /expected audience api:\/\/ops-autopilot or .*found "api:\/\/someone-else"/ },
    { name: 'missing role', token: () => bearer({ roles: [] }), reason: 'role', message: /expected the caller to hold app role ActionGroupsSecureWebhook, found no roles/ },
    { name: 'another role', token: () => bearer({ roles: ['Reader'] }), reason: 'role', message: /found roles Reader/ },
    { name: 'expired', token: () => bearer({ expiresInSeconds: -3600 }), reason: 'expired', message: /expected an unexpired token, found one that expired at 20/ },
    { name: 'not yet valid', token: () => bearer({ notBeforeInSeconds: 3600 }), reason: 'not-yet-valid', message: /valid from 20/ },
    { name: 'another caller', token: () => bearer({ appId: '11111111-2222-4333-8444-555555555555' }), reason: 'caller', message: /expected a token of 461e8683.*found caller "11111111/ },
    { name: 'another issuer', token: () => bearer({ issuer: 'https://sts.windows.net/00000000-0000-4000-8000-000000000bad/' }), reason: 'issuer', message: /found issuer "https:\/\/sts.windows.net\/00000000-0000-4000-8000-000000000bad\/"/ },
    { name: 'a forged signature (a key the tenant does not publish)', token: () => bearer({ signWith: 'foreign' }), reason: 'signature', message: /which the tenant does not publish/ },
    {
      name: 'a signature from another token',
      token: async () => {
        const real = (await bearer()).split('.');
        const tampered = JSON.parse(Buffer.from(real[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
        tampered.roles = [ROLE, 'Admin'];
        return `${real[0] ?? ''}.${Buffer.from(JSON.stringify(tampered)).toString('base64url')}.${real[2] ?? ''}`;
      },
      reason: 'signature',
      message: /signature that does not verify/,
    },
    { name: 'alg none', token: () => Promise.resolve(forged({ alg: 'none', typ: 'JWT' }, { aud: AUDIENCE, roles: [ROLE] })), reason: 'algorithm', message: /expected a token signed with RS256, found alg "none"/ },
    { name: 'alg HS256', token: () => Promise.resolve(forged({ alg: 'HS256', typ: 'JWT' }, { aud: AUDIENCE }, 'c2ln')), reason: 'algorithm', message: /found alg "HS256"/ },
    { name: 'no header', token: () => Promise.resolve(''), reason: 'missing', message: /found none/ },
    { name: 'basic auth', token: () => Promise.resolve('Basic dXNlcjpwYXNz'), reason: 'malformed', message: /found scheme "Basic"/ },
    { name: 'a bearer value that is not a JWT', token: () => Promise.resolve('Bearer opaque-token'), reason: 'malformed', message: /not a JWT/ },
  ];
  for (const entry of refusals) {
    it(`refuses ${entry.name} with 401`, async () => {
      const error = await refusal(verifier().verify(await entry.token()));
      expect(error.reason).toBe(entry.reason);
      expect(error.status).toBe(401);
      expect(error.message).toMatch(entry.message);
      expect(error.wwwAuthenticate()).toBe(`Bearer error="invalid_token", error_description="${entry.reason}"`);
    });
  }

  it('never puts the token in its messages', async () => {
    const token = await bearer({ audience: 'api://wrong' });
    const error = await refusal(verifier().verify(token));
    expect(error.message).not.toContain(token.slice(7, 40));
    expect(JSON.stringify(error)).not.toContain(token.slice(7, 40));
  });
});

describe('the signing keys', () => {
  it('fetches the OpenID configuration and the JWKS once for many verifications, concurrent ones included', async () => {
    await sandbox().clearRequests();
    const check = verifier();
    const tokens = await Promise.all(Array.from({ length: 10 }, () => bearer()));
    await Promise.all(tokens.map((token) => check.verify(token)));
    for (const token of tokens) await check.verify(token);
    expect(await keyFetches()).toEqual({ configuration: 1, keys: 1 });
  });

  it('refreshes on a rotated key, at most once per refresh interval', async () => {
    let now = Date.now();
    const check = verifier({ now: () => now });
    await check.verify(await bearer());
    await sandbox().rotateSigningKey();
    const rotated = await bearer();
    await sandbox().clearRequests();
    // Within the interval an unknown key is not fetched for: a flood of forged kids cannot make us fetch.
    now += 60_000;
    expect((await refusal(check.verify(rotated))).reason).toBe('signature');
    expect(await keyFetches()).toEqual({ configuration: 0, keys: 0 });
    now += 5 * 60_000;
    expect((await check.verify(rotated)).roles).toEqual([ROLE]);
    expect(await keyFetches()).toEqual({ configuration: 1, keys: 1 });
  });

  it('keeps verifying with the keys it holds when a refresh fails, and fails closed (503) with none', async () => {
    // A stand-in authority that serves the sandbox's documents until it is told to fail.
    let failing = false;
    const jwks = (await sandboxRequest(sandbox(), { url: `/${sandbox().tenantId}/discovery/v2.0/keys` })).text;
    const authority = await startTlsServer((request, response) => {
      if (failing) {
        response.writeHead(500).end();
        return;
      }
      const base = `https://127.0.0.1:${String((request.socket.address() as { port: number }).port)}`;
      const body = request.url?.endsWith('openid-configuration') === true ? JSON.stringify({ issuer: `${base}/${sandbox().tenantId}/v2.0`, jwks_uri: `${base}/${sandbox().tenantId}/discovery/v2.0/keys` }) : jwks;
      response.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    try {
      let now = Date.now();
      const check = verifier({ authorityHost: authority.baseUrl, tlsSettings: tlsSettingsWithCa(authority.ca), now: () => now, cacheTtlMs: 60_000 });
      await check.verify(await bearer());
      failing = true;
      now += 10 * 60_000;
      // The cache is stale and the refresh fails: the keys held still verify what they signed.
      expect((await check.verify(await bearer())).appId).toBe(ACTION_GROUPS_APP_ID);
      const fresh = verifier({ authorityHost: authority.baseUrl, tlsSettings: tlsSettingsWithCa(authority.ca) });
      const error = await refusal(fresh.verify(await bearer()));
      expect(error).toMatchObject({ reason: 'keys-unavailable', status: 503 });
      expect(error.message).toContain('found status 500');
    } finally {
      await authority.close();
    }
  });

  it('bounds the key fetch: a silent authority fails within the deadline, an untrusted one is refused', async () => {
    const silent = await startTlsServer(() => undefined);
    try {
      const started = Date.now();
      const error = await refusal(verifier({ authorityHost: silent.baseUrl, tlsSettings: tlsSettingsWithCa(silent.ca), fetchTimeoutMs: 300 }).verify(await bearer()));
      expect(error).toMatchObject({ reason: 'keys-unavailable', status: 503 });
      expect(error.message).toContain('no response within 300 ms');
      expect(Date.now() - started).toBeLessThan(3000);
      // Without its CA the sandbox is not trusted: TLS verification stays on.
      const untrusted = await refusal(verifier({ tlsSettings: undefined }).verify(await bearer()));
      expect(untrusted.reason).toBe('keys-unavailable');
    } finally {
      await silent.close();
    }
  });

  it('refuses an unknown tenant as keys unavailable, and a verifier without audiences at construction', async () => {
    const error = await refusal(verifier({ tenantId: '00000000-0000-4000-8000-000000000bad' }).verify(await bearer()));
    expect(error).toMatchObject({ reason: 'keys-unavailable', status: 503 });
    expect(() => verifier({ audiences: [] })).toThrow('expected at least one accepted audience');
  });
});
