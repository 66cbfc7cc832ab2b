/**
 * The engine's control surface added for issue 9: minted identity tokens (claims, lifetime,
 * v1/v2 issuer, forged signatures), signing-key rotation published in the JWKS, the Event Grid
 * outbox in both schemas, and provider control routes under `/_sandbox/`.
 */
import { createPublicKey, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SandboxProvider } from '../../../sandbox/contract.ts';
import { ACTION_GROUPS_APP_ID, startSandbox } from '../../../sandbox/index.ts';
import { sandboxRequest, useSandbox } from '../../support/sandbox.ts';

const TENANT = '72f988bf-0000-4000-8000-00000000a001';

/** A provider that publishes an event on a control call and serves a control route of its own. */
function createNoticeProvider(controlName = 'notices'): SandboxProvider {
  return {
    name: 'Test.Notices',
    types: [],
    seed: () => undefined,
    routes: () => [],
    controlRoutes: () => [
      {
        method: 'POST',
        name: controlName,
        handler: (request, context) => {
          context.publishEvent?.({ topic: '/subscriptions/s/resourceGroups/rg', subject: 'notice', eventType: 'Test.Notice', dataVersion: '1', data: { segments: request.segments, body: request.body } });
          return { status: 202, body: { accepted: true } };
        },
      },
    ],
    snapshot: () => ({}),
  };
}

const sandbox = useSandbox({ providers: [createNoticeProvider()], worlds: [], postgres: false, azurite: false });

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function jwks(): Promise<{ keys: ({ kid: string } & Record<string, unknown>)[] }> {
  return (await sandboxRequest(sandbox(), { url: `/${TENANT}/discovery/v2.0/keys` })).json();
}

function signedBy(token: string, keys: readonly ({ kid: string } & Record<string, unknown>)[]): string | undefined {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  return keys.find((key) => verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), createPublicKey({ key: key, format: 'jwk' }), Buffer.from(signature, 'base64url')))?.kid;
}

describe('minted tokens', () => {
  it('carries the chosen audience and roles as a v1 application token from action groups by default', async () => {
    const token = await sandbox().mintToken({ audience: 'api://ops-autopilot', roles: ['ActionGroupsSecureWebhook'] });
    const claims = claimsOf(token);
    expect(claims).toMatchObject({ aud: 'api://ops-autopilot', iss: `https://sts.windows.net/${TENANT}/`, appid: ACTION_GROUPS_APP_ID, roles: ['ActionGroupsSecureWebhook'], tid: TENANT, ver: '1.0', idtyp: 'app' });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(3600);
    expect(signedBy(token, (await jwks()).keys)).toBeDefined();
  });

  it('mints v2, expired, not-yet-valid and role-less tokens, and forged ones no published key verifies', async () => {
    const v2 = claimsOf(await sandbox().mintToken({ audience: 'aud', version: '2.0', appId: 'my-app' }));
    expect(v2).toMatchObject({ iss: `${sandbox().baseUrl}/${TENANT}/v2.0`, azp: 'my-app', ver: '2.0' });
    expect(v2.appid).toBeUndefined();
    expect(v2.roles).toBeUndefined();
    const expired = claimsOf(await sandbox().mintToken({ audience: 'aud', expiresInSeconds: -600 }));
    expect(Number(expired.exp)).toBeLessThan(Date.now() / 1000);
    expect(Number(expired.nbf)).toBeLessThan(Number(expired.exp));
    const early = claimsOf(await sandbox().mintToken({ audience: 'aud', notBeforeInSeconds: 900 }));
    expect(Number(early.nbf)).toBeGreaterThan(Date.now() / 1000 + 800);
    const forged = await sandbox().mintToken({ audience: 'aud', signWith: 'foreign' });
    expect(signedBy(forged, (await jwks()).keys)).toBeUndefined();
  });

  it('refuses an unknown field, a missing audience and a foreign tenant with 400', async () => {
    for (const body of [{ audience: 'a', colour: 'red' }, { roles: [] }, { audience: 'a', tenantId: '00000000-0000-4000-8000-000000000000' }]) {
      const response = await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/identity/tokens', body });
      expect(response.status).toBe(400);
      expect(response.text).toContain('InvalidControlRequest');
    }
  });

  it('rotates the signing key: the JWKS publishes the new key beside the old, and new tokens use it', async () => {
    const before = await sandbox().mintToken({ audience: 'aud' });
    const oldKid = signedBy(before, (await jwks()).keys);
    const kid = await sandbox().rotateSigningKey();
    expect(kid).not.toBe(oldKid);
    const keys = (await jwks()).keys.map((key) => key.kid);
    expect(keys).toEqual(expect.arrayContaining([oldKid, kid]));
    const after = await sandbox().mintToken({ audience: 'aud' });
    expect(signedBy(after, (await jwks()).keys)).toBe(kid);
    expect(JSON.parse(Buffer.from(after.split('.')[0] ?? '', 'base64url').toString('utf8'))).toMatchObject({ alg: 'RS256', kid });
  });
});

describe('Event Grid outbox and provider control routes', () => {
  it('serves a provider control route and keeps what it publishes, in both schemas, until cleared', async () => {
    const response = await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/notices/a%20b/c', body: { n: 1 } });
    expect(response.status).toBe(202);
    const [event] = await sandbox().eventGridEvents();
    expect(event).toMatchObject({ eventType: 'Test.Notice', subject: 'notice', dataVersion: '1', metadataVersion: '1', data: { segments: ['a b', 'c'], body: { n: 1 } } });
    expect(event?.id).toMatch(/^[0-9a-f-]{36}$/);
    const [cloud] = await sandbox().cloudEvents();
    expect(cloud).toEqual({ specversion: '1.0', id: event?.id, source: event?.topic, subject: 'notice', type: 'Test.Notice', time: event?.eventTime, datacontenttype: 'application/json', data: event?.data });
    expect((await sandboxRequest(sandbox(), { url: '/_sandbox/eventgrid?schema=xml' })).status).toBe(400);
    expect((await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/notices', headers: { 'content-type': 'application/json' }, body: undefined })).status).toBe(202);
    const notJson = await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/notices', headers: { 'content-type': 'application/json' }, form: { a: '1' } });
    expect(notJson.status).toBe(400);
    await sandbox().clearEventGridEvents();
    expect(await sandbox().eventGridEvents()).toEqual([]);
  });

  it('refuses a provider that claims an engine control name', async () => {
    await expect(startSandbox({ providers: [createNoticeProvider('faults')], worlds: [], postgres: false, azurite: false })).rejects.toThrow('/_sandbox/faults');
  });
});
