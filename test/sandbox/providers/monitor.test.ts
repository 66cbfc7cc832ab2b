/**
 * The sandbox's Microsoft.Insights provider over HTTPS with a real ARM token: metric alert rules
 * and action groups of the seed worlds, listed (paged, 10 a page), read one by one, and a rule
 * enabled with MetricAlerts_Update; also through the product's client layer
 * (src/azure/monitor.ts, on the subscription's request budget), which never keeps the webhook's key.
 */
import { describe, expect, it } from 'vitest';
import { createAzureClients } from '../../../src/azure/clients.ts';
import { getActionGroup, listMetricAlerts } from '../../../src/azure/monitor.ts';
import { loadConfigFile } from '../../../src/config/load.ts';
import { sandboxRequest, sandboxToken, useSandbox, worldConfigFile } from '../../support/sandbox.ts';

const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml', 'sandbox/worlds/xshopai.yaml'], postgres: false, azurite: false });
const KM = '5f504e96-b142-4ec0-8e99-50424fa25005';
const XS = '3d3e2c74-9f20-4cae-9c77-3e202d803003';
const RULES = 'providers/Microsoft.Insights/metricAlerts';

async function arm(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const token = await sandboxToken(sandbox(), 'https://management.azure.com/.default');
  const res = await sandboxRequest(sandbox(), { method, url: path, token, ...(body === undefined ? {} : { body }) });
  return { status: res.status, json: res.text === '' ? {} : res.json<Record<string, unknown>>() };
}

describe('Microsoft.Insights in the sandbox', () => {
  it('lists rules by subscription (pages of 10) and gets one, shaped as MetricAlertResource', async () => {
    const first = await arm('GET', `/subscriptions/${XS}/${RULES}?api-version=2018-03-01`);
    expect(first.status).toBe(200);
    expect((first.json.value as unknown[]).length).toBe(10);
    // Exactly one full page (the sandbox pages by 10): no nextLink.
    expect(first.json.nextLink).toBeUndefined();
    const skipped = await arm('GET', `/subscriptions/${XS}/${RULES}?api-version=2018-03-01&$skiptoken=5`);
    expect((skipped.json.value as unknown[]).length).toBe(5);
    const one = await arm('GET', `/subscriptions/${KM}/resourceGroups/rg-kilometers-prod/${RULES}/opsap-asp-kilometers-prod-k7x2-memory?api-version=2018-03-01`);
    expect(one.json).toMatchObject({
      name: 'opsap-asp-kilometers-prod-k7x2-memory',
      type: 'Microsoft.Insights/metricAlerts',
      properties: {
        enabled: false,
        scopes: [`/subscriptions/${KM}/resourceGroups/rg-kilometers-prod/providers/Microsoft.Web/serverfarms/asp-kilometers-prod-k7x2`],
        criteria: { 'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria', allOf: [{ metricName: 'MemoryPercentage', threshold: 80 }] },
        actions: [{ actionGroupId: `/subscriptions/${KM}/resourceGroups/rg-kilometers-prod/providers/Microsoft.Insights/actionGroups/ag-opsap-kilometers` }],
      },
    });
    expect((await arm('GET', `/subscriptions/${KM}/resourceGroups/rg-kilometers-prod/${RULES}/nope?api-version=2018-03-01`)).status).toBe(404);
  });

  it('enables a disabled rule with MetricAlerts_Update and refuses a bad body', async () => {
    const path = `/subscriptions/${KM}/resourceGroups/rg-kilometers-prod/${RULES}/opsap-asp-kilometers-prod-k7x2-cpu?api-version=2018-03-01`;
    const off = await arm('PATCH', path, { properties: { enabled: false } });
    expect(off.status).toBe(200);
    expect((off.json.properties as { enabled: boolean }).enabled).toBe(false);
    const on = await arm('PATCH', path, { properties: { enabled: true } });
    expect((on.json.properties as { enabled: boolean }).enabled).toBe(true);
    expect((await arm('PATCH', path, { properties: { enabled: 'yes' } })).status).toBe(400);
  });

  it('reads through the client layer and its budget: action groups without their key', async () => {
    const config = await loadConfigFile(worldConfigFile(sandbox(), 'xshopai'));
    const clients = createAzureClients(config.azure);
    try {
      const { rules, truncated } = await listMetricAlerts(clients, XS);
      expect(truncated).toBe(false);
      expect(rules).toHaveLength(10);
      expect(rules.every((rule) => rule.enabled && rule.actionGroupIds.length === 1)).toBe(true);
      const group = await getActionGroup(clients, rules[0]?.actionGroupIds[0] ?? '');
      expect(group).toEqual({
        id: `/subscriptions/${XS}/resourceGroups/rg-xshopai-prod/providers/Microsoft.Insights/actionGroups/ag-opsap-xshopai`,
        name: 'ag-opsap-xshopai',
        enabled: true,
        webhooks: [{ name: 'ops-autopilot-alerts', endpoint: 'https://func-opsap-xshopai.azurewebsites.net/api/alerts', useCommonAlertSchema: true }],
      });
      expect(clients.armBudget(XS).stats().requests).toBeGreaterThanOrEqual(2);
    } finally {
      await clients.close();
    }
  });
});
