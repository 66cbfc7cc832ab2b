/**
 * `POST /api/alerts` as a Secure Webhook, THROUGH THE LOCAL HOST against the sandbox identity's
 * real signing keys: with OPS_AUTOPILOT_SECURE_WEBHOOK_AUDIENCES set, a call needs the function
 * key AND the action group's bearer token; a valid token is accepted, a wrong audience, a missing
 * role, an expired or forged token and no token are refused with 401 and start nothing.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../local-host/clock.ts';
import { startLocalHost, type LocalHost } from '../../../local-host/local-host.ts';
import type { MintTokenOptions } from '../../../sandbox/index.ts';
import { useSandbox } from '../../support/sandbox.ts';

const AUDIENCE = 'api://ops-autopilot-alerts';
const ROLE = 'ActionGroupsSecureWebhook';
const keys = { master: 'swh-master', function: 'swh-function' };
const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml'], postgres: false, azurite: false });
let host: LocalHost;
let body: string;

beforeAll(async () => {
  const world = sandbox().worlds.find((entry) => entry.name === 'kilometers');
  if (world === undefined) throw new Error('kilometers world not loaded');
  body = await readFile('test/fixtures/alerts/metric-static.json', 'utf8');
  host = await startLocalHost({
    entryPoint: 'src/functions/index.ts',
    port: 0,
    clock: new VirtualClock(new Date('2026-03-02T03:00:00Z')),
    keys,
    enableTimers: false,
    settings: { OPS_AUTOPILOT_CONFIG_FILE: world.configFile, OPS_AUTOPILOT_SECURE_WEBHOOK_AUDIENCES: `${AUDIENCE}, 00000000-0000-4000-8000-0000000000ab`, OPS_AUTOPILOT_SECURE_WEBHOOK_TENANT_ID: sandbox().tenantId },
  });
}, 60_000);
afterAll(async () => {
  await host.stop();
});

async function post(token: string | undefined, alertId: string): Promise<{ status: number; json: Record<string, unknown>; wwwAuthenticate: string | null }> {
  const alert = JSON.parse(body) as { data: { essentials: Record<string, unknown> } };
  alert.data.essentials.alertId = alertId;
  const response = await fetch(`${host.baseUrl}/api/alerts`, {
    method: 'POST',
    headers: { 'x-functions-key': keys.function, 'content-type': 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(alert),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown>, wwwAuthenticate: response.headers.get('www-authenticate') };
}

const mint = (options: Partial<MintTokenOptions> = {}): Promise<string> => sandbox().mintToken({ audience: AUDIENCE, roles: [ROLE], ...options });

describe('Secure Webhook on POST /api/alerts', () => {
  it('accepts the action group with a valid token (v1 and v2)', async () => {
    expect((await post(await mint(), '/subscriptions/x/providers/Microsoft.AlertsManagement/alerts/swh-1')).status).toBe(202);
    expect((await post(await mint({ version: '2.0' }), '/subscriptions/x/providers/Microsoft.AlertsManagement/alerts/swh-2')).status).toBe(202);
  });

  it('refuses a wrong audience, a missing role, an expired or forged token and no token with 401, starting nothing', async () => {
    const before = host.durable.listInstances().length;
    const cases: [string, string | undefined, string][] = [
      ['wrong audience', await mint({ audience: 'api://someone-else' }), 'audience'],
      ['missing role', await mint({ roles: [] }), 'role'],
      ['expired', await mint({ expiresInSeconds: -3600 }), 'expired'],
      ['forged', await mint({ signWith: 'foreign' }), 'signature'],
      ['another caller', await mint({ appId: '00000000-0000-4000-8000-00000000dead' }), 'caller'],
      ['no token', undefined, 'missing'],
    ];
    for (const [what, token, reason] of cases) {
      const answer = await post(token, `/subscriptions/x/providers/Microsoft.AlertsManagement/alerts/swh-${what.replace(/ /g, '-')}`);
      expect(answer.status, what).toBe(401);
      expect((answer.json.error as { reason: string }).reason, what).toBe(reason);
      expect(answer.wwwAuthenticate, what).toContain('invalid_token');
    }
    await host.idle();
    expect(host.durable.listInstances().length).toBe(before);
  });
});
