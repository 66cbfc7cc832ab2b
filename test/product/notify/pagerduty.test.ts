/**
 * PagerDuty Events API v2 escalations through the sandbox's webhook capture: the generated
 * config points the events URL at the capture, the routing key is read from the world's Key
 * Vault and appears only in the request body, trigger and resolve share the incident's dedup
 * key, the payload has the Events API v2 shape, and no message carries the key, not even when a
 * server echoes it back. The schema refuses a real PagerDuty URL under the sandbox credential.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureClients, type AzureClients } from '../../../src/azure/clients.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { estateConfigSchema, type EstateConfig } from '../../../src/config/schema.ts';
import { incidentDedupKey, pagerDutyBody, sendPagerDutyEvent } from '../../../src/notify/pagerduty.ts';
import { writeWorldFile } from '../../support/runbook-context.ts';
import { useSandbox, worldConfigFile } from '../../support/sandbox.ts';
import { startTlsServer, type TlsTestServer } from '../../support/tls-server.ts';

const SUB = '8c8d8e8f-0000-4000-8000-000000000c0c';
const APP_ID = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/app-paged`;
const dir = mkdtempSync(path.join(os.tmpdir(), 'pagerduty-'));
const example = path.join(dir, 'paged.yaml');
writeFileSync(
  example,
  `version: 1
estate: paged
targets:
  - id: ${APP_ID}
notifications:
  pagerduty:
    - name: pd-oncall
      routingKey: { vault: kv-paged, secret: PagerDuty-RoutingKey }
      severity: error
`,
);
const world = writeWorldFile(
  'paged',
  `name: paged
description: An app whose escalations page PagerDuty.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SUB}
exampleConfig: ${example}
resources:
  - type: Microsoft.Web/serverfarms
    resourceGroup: rg
    name: asp
    location: eastus
    spec: { sku: { name: B1, tier: Basic } }
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: app-paged
    location: eastus
    spec: { serverFarm: asp }
  - type: Microsoft.KeyVault/vaults
    resourceGroup: rg
    name: kv-paged
    location: eastus
    spec: { secrets: [{ name: PagerDuty-RoutingKey }] }
`,
);

const sandbox = useSandbox({ worlds: [world], postgres: false, azurite: false });
let config: EstateConfig;
let clients: AzureClients;
let routingKey: string;
let echo: TlsTestServer;
beforeAll(async () => {
  config = await loadConfigFile(worldConfigFile(sandbox(), 'paged'));
  clients = createAzureClients(config.azure);
  routingKey = (await (await clients.secretClient('kv-paged')).getSecret('PagerDuty-RoutingKey')).value ?? '';
  // A hostile or broken endpoint that echoes what it got into its error.
  echo = await startTlsServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      response.writeHead(400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ status: 'invalid event', echo: Buffer.concat(chunks).toString('utf8') }));
    });
  });
});
afterAll(async () => {
  await clients.close();
  await echo.close();
});

describe('PagerDuty escalations', () => {
  it('the generated config sends to the sandbox capture and keeps the key a vault reference', () => {
    expect(config.notifications.pagerduty).toEqual([
      { name: 'pd-oncall', routingKey: { vault: 'kv-paged', secret: 'PagerDuty-RoutingKey' }, eventsUrl: `${sandbox().baseUrl}/_sandbox/webhooks/pd-oncall`, severity: 'error' },
    ]);
    expect(routingKey.length).toBeGreaterThan(8);
  });

  it('triggers and resolves one incident under one dedup key, in the Events API v2 shape', async () => {
    await sandbox().clearRequests();
    const dedupKey = incidentDedupKey('paged', APP_ID, 'alert-123');
    expect(dedupKey).toBe(incidentDedupKey('paged', APP_ID.toUpperCase(), 'alert-123'));
    expect(dedupKey).not.toBe(incidentDedupKey('paged', APP_ID, 'alert-124'));
    const trigger = await sendPagerDutyEvent(config, clients, 'pd-oncall', {
      action: 'trigger',
      dedupKey,
      summary: 'app-paged still unhealthy after restart and swap-back',
      source: APP_ID,
      timestamp: '2026-12-02T02:00:00.000Z',
      group: 'paged',
      class: 'API Downtime',
      details: { actions: [{ action: 'restart', outcome: 'applied', verified: false }], probe: '/health: expected HTTP 200, found 503' },
      links: [{ href: 'https://portal.azure.com/#resource' + APP_ID, text: 'app in the portal' }],
    });
    expect(trigger).toMatchObject({ target: 'pd-oncall', action: 'trigger', dedupKey, outcome: 'applied' });
    const resolve = await sendPagerDutyEvent(config, clients, 'pd-oncall', { action: 'resolve', dedupKey });
    expect(resolve.outcome).toBe('applied');
    const posts = await sandbox().webhooks('pd-oncall');
    expect(posts.map((post) => post.body)).toEqual([
      {
        routing_key: routingKey,
        event_action: 'trigger',
        dedup_key: dedupKey,
        client: 'Ops Autopilot',
        payload: {
          summary: 'app-paged still unhealthy after restart and swap-back',
          source: APP_ID,
          severity: 'error',
          timestamp: '2026-12-02T02:00:00.000Z',
          group: 'paged',
          class: 'API Downtime',
          custom_details: { actions: [{ action: 'restart', outcome: 'applied', verified: false }], probe: '/health: expected HTTP 200, found 503' },
        },
        links: [{ href: `https://portal.azure.com/#resource${APP_ID}`, text: 'app in the portal' }],
      },
      { routing_key: routingKey, event_action: 'resolve', dedup_key: dedupKey },
    ]);
    // The key is read once per page from the vault, and is in no result.
    expect(JSON.stringify([trigger, resolve])).not.toContain(routingKey);
    expect((await sandbox().requests()).filter((entry) => entry.operationId === 'KeyVault.getSecret')).toHaveLength(2);
  });

  it('masks secrets in details, bounds the summary and the details', () => {
    const body = pagerDutyBody('rk', {
      action: 'trigger',
      dedupKey: 'k',
      summary: 'x'.repeat(2000),
      source: 's',
      details: { connection: 'Server=db;Password=Canary-Pw-123;', big: 'y'.repeat(20_000) },
    }, { severity: 'critical' });
    const payload = body.payload as { summary: string; custom_details: Record<string, string> };
    expect(payload.summary).toHaveLength(1024);
    expect(JSON.stringify(body)).not.toContain('Canary-Pw-123');
    expect(payload.custom_details.big).toBeUndefined();
    expect(payload.custom_details.omitted).toContain('1 detail field');
    expect(() => pagerDutyBody('rk', { action: 'resolve', dedupKey: '' }, { severity: 'critical' })).toThrow(RangeError);
  });

  it('a failure is a result, never a throw, and never carries the routing key (even echoed back)', async () => {
    const echoing = { ...config, notifications: { ...config.notifications, pagerduty: [{ ...config.notifications.pagerduty[0]!, eventsUrl: `${echo.baseUrl}/v2/enqueue` }] } };
    const { Agent } = await import('node:https');
    const result = await sendPagerDutyEvent(echoing, clients, 'pd-oncall', { action: 'trigger', dedupKey: 'k1', summary: 's', source: APP_ID }, { agent: new Agent({ ca: echo.ca }) });
    expect(result.outcome).toBe('failed');
    expect(result.message).toContain('expected a 2xx response, found 400');
    expect(result.message).not.toContain(routingKey);
    const missing = await sendPagerDutyEvent(config, clients, 'pd-nobody', { action: 'resolve', dedupKey: 'k1' });
    expect(missing).toMatchObject({ outcome: 'failed', message: expect.stringContaining('found pd-oncall') as unknown });
    const noSecret = { ...config, notifications: { ...config.notifications, pagerduty: [{ ...config.notifications.pagerduty[0]!, routingKey: { vault: 'kv-paged', secret: 'Missing' } }] } };
    const unreadable = await sendPagerDutyEvent(noSecret, clients, 'pd-oncall', { action: 'resolve', dedupKey: 'k1' });
    expect(unreadable).toMatchObject({ outcome: 'failed', message: expect.stringContaining('the routing key could not be read') as unknown });
  });

  it('with the sandbox credential the schema refuses the default (real) PagerDuty URL', () => {
    const raw = { version: 1, estate: 'paged', azure: { ...sandbox().azureSettings() }, targets: [{ id: APP_ID }], notifications: { pagerduty: [{ name: 'pd', routingKey: { vault: 'kv-paged', secret: 'K' } }] } };
    const parsed = estateConfigSchema.safeParse(raw);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((issue) => [issue.path.join('.'), issue.message])).toContainEqual(['notifications.pagerduty.0.eventsUrl', 'expected a loopback address when sandboxTokenEndpoint is set, found "https://events.pagerduty.com/…"']);
  });
});
