/**
 * The Microsoft.Web mutations the remediation actions need, through the real
 * WebSiteManagementClient over HTTPS: site and slot restart, slot swap (a long-running
 * operation that moves the deploy and records slotSwapStatus and Event Grid events), App
 * Service plan updates (workers and SKU), and the scriptable health the apphost answers with
 * (until restarted, after a swap until swapped back, whatever is done, after N seconds, memory
 * pressure relieved by scaling; a bad image is bad wherever it runs).
 */
import { WebSiteManagementClient } from '@azure/arm-appservice';
import { beforeEach, describe, expect, it } from 'vitest';
import type { SandboxHandle } from '../../../sandbox/index.ts';
import { writeWorldFile } from '../../support/runbook-context.ts';
import { restErrorOf, sandboxCredential, sandboxRequest, useSandbox } from '../../support/sandbox.ts';

const SUB = '5f504e96-b142-4ec0-8e99-50424fa25005';
const RG = 'rg-kilometers-prod';
const SITE = 'app-kilometers-api-k7x2';
const PLAN = 'asp-kilometers-prod-k7x2';
const SITE_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Web/sites/${SITE}`;
const PROD_HOST = `${SITE}.azurewebsites.net`;
const STAGING_HOST = `${SITE}-staging.azurewebsites.net`;
const IMAGE_241 = 'ghcr.io/kilometers-ai/kilometers-api:2.4.1';
const IMAGE_240 = 'ghcr.io/kilometers-ai/kilometers-api:2.4.0';

const SCRIPTED_SUB = '6a6b6c6d-0000-4000-8000-000000000606';
const scriptedWorld = writeWorldFile(
  'web-scripted',
  `name: web-scripted
description: Web apps whose health the world file scripts.
tenantId: 72f988bf-0000-4000-8000-00000000a001
subscriptionId: ${SCRIPTED_SUB}
resources:
  - type: Microsoft.Web/serverfarms
    resourceGroup: rg
    name: asp-small
    location: eastus
    spec: { sku: { name: B1, tier: Basic, capacity: 1 } }
  - type: Microsoft.Web/serverfarms
    resourceGroup: rg
    name: asp-func
    location: eastus
    spec: { kind: functionapp, sku: { name: Y1, tier: Dynamic } }
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: app-stuck
    location: eastus
    spec: { serverFarm: asp-small, health: { mode: until-restart } }
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: app-bad-deploy
    location: eastus
    spec:
      serverFarm: asp-small
      healthy: false
      slots: [{ name: staging }]
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: app-memory
    location: eastus
    spec: { serverFarm: asp-small, health: { mode: memory-pressure, workers: 2, skus: [S2] } }
  - type: Microsoft.Web/sites
    resourceGroup: rg
    name: func-app
    location: eastus
    spec: { kind: functionapp, serverFarm: asp-func, healthPaths: [/api/health] }
`,
);

const sandbox = useSandbox({ worlds: ['sandbox/worlds/kilometers.yaml', scriptedWorld], postgres: false, azurite: false, lroDurationMs: 150, lroRetryAfterSeconds: 0 });
const POLL = { updateIntervalInMs: 20 };

function client(subscription = SUB): WebSiteManagementClient {
  return new WebSiteManagementClient(sandboxCredential(sandbox()), subscription, { endpoint: sandbox().baseUrl, tlsOptions: { ca: sandbox().caPem } });
}

async function probe(host: string, path = '/health'): Promise<{ status: number; body: string }> {
  const response = await sandboxRequest(sandbox(), { url: `/_hosts/${host}${path}` });
  return { status: response.status, body: response.text };
}

async function setHealth(handle: SandboxHandle, body: unknown): Promise<number> {
  return (await sandboxRequest(handle, { method: 'POST', url: '/_sandbox/health', body })).status;
}


/** Waits (real time) until the app stops answering 503 for its restart; bounded. */
async function untilServing(host: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const { body } = await probe(host);
    if (!body.includes('restarting')) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${host} still restarting after 1 s`);
}

beforeEach(async () => {
  await sandboxRequest(sandbox(), { method: 'DELETE', url: '/_sandbox/health' });
  await sandbox().clearEventGridEvents();
});

describe('restart', () => {
  it('restarts the site: 200, 503 while it comes back, then an until-restart script is satisfied', async () => {
    expect(await setHealth(sandbox(), { target: SITE_ID, script: { mode: 'until-restart' } })).toBe(200);
    expect(await probe(PROD_HOST)).toEqual({ status: 503, body: '{"status":"unhealthy"}' });
    await client().webApps.restart(RG, SITE);
    const during = await probe(PROD_HOST);
    expect(during.status).toBe(503);
    expect(during.body).toContain('restarting');
    await untilServing(PROD_HOST);
    expect(await probe(PROD_HOST)).toEqual({ status: 200, body: '{"status":"healthy"}' });
    // The staging slot was never restarted and had no script.
    expect((await probe(STAGING_HOST)).status).toBe(200);
    const events = await sandbox().eventGridEvents();
    expect(events.map((event) => event.eventType)).toEqual(['Microsoft.Web.AppUpdated', 'Microsoft.Resources.ResourceActionSuccess']);
    expect(events[0]).toMatchObject({ topic: SITE_ID, subject: `/Microsoft.Web/sites/${SITE}`, data: { appEventTypeDetail: { action: 'Restarted' }, siteName: SITE, verb: 'POST' } });
    expect(events[1]).toMatchObject({ subject: SITE_ID, data: { operationName: 'Microsoft.Web/sites/restart/action', status: 'Succeeded', resourceUri: SITE_ID } });
  });

  it('restarts a slot on its own; synchronous=true answers once the app is back', async () => {
    await setHealth(sandbox(), { target: `${SITE_ID}/slots/staging`, script: { mode: 'until-restart' } });
    expect((await probe(STAGING_HOST)).status).toBe(503);
    await client().webApps.restartSlot(RG, SITE, 'staging', { synchronous: true });
    expect(await probe(STAGING_HOST)).toEqual({ status: 200, body: '{"status":"healthy"}' });
  });

  it('a world file scripts until-restart; a restart of another app does not help; 404 for an unknown site', async () => {
    const web = client(SCRIPTED_SUB);
    expect((await probe('app-stuck.azurewebsites.net')).status).toBe(503);
    await web.webApps.restart('rg', 'app-memory');
    expect((await probe('app-stuck.azurewebsites.net')).status).toBe(503);
    await web.webApps.restart('rg', 'app-stuck', { synchronous: true });
    expect((await probe('app-stuck.azurewebsites.net')).status).toBe(200);
    expect((await restErrorOf(web.webApps.restart('rg', 'app-missing'))).statusCode).toBe(404);
  });
});

describe('slot swap', () => {
  it('swaps the image and settings between staging and production as a long-running operation, recording slotSwapStatus and events', async () => {
    const web = client();
    const before = await web.webApps.getConfiguration(RG, SITE);
    expect(before.linuxFxVersion).toBe(`DOCKER|${IMAGE_241}`);
    const poller = web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    await poller;
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(`DOCKER|${IMAGE_240}`);
    expect((await web.webApps.getConfigurationSlot(RG, SITE, 'staging')).linuxFxVersion).toBe(`DOCKER|${IMAGE_241}`);
    // Settings move with the deploy (the sandbox has no slot-sticky settings).
    expect((await web.webApps.listApplicationSettings(RG, SITE)).properties?.DATABASE_URL).toBeUndefined();
    expect((await web.webApps.listApplicationSettingsSlot(RG, SITE, 'staging')).properties?.DATABASE_URL).toContain('@Microsoft.KeyVault');
    const site = await web.webApps.get(RG, SITE);
    expect(site.slotSwapStatus).toMatchObject({ sourceSlotName: 'staging', destinationSlotName: 'production' });
    expect(site.slotSwapStatus?.timestampUtc).toBeInstanceOf(Date);
    expect((await web.webApps.getSlot(RG, SITE, 'staging')).slotSwapStatus).toMatchObject({ sourceSlotName: 'staging', destinationSlotName: 'production' });
    const events = await sandbox().eventGridEvents();
    expect(events.map((event) => event.eventType)).toEqual(['Microsoft.Web.SlotSwapStarted', 'Microsoft.Web.SlotSwapCompleted', 'Microsoft.Resources.ResourceActionSuccess']);
    expect(events[1]).toMatchObject({ topic: SITE_ID, subject: `/Microsoft.Web/sites/${SITE}`, dataVersion: '1', data: { siteName: SITE, sourceSlot: 'staging', targetSlot: 'production', verb: 'POST' } });
    const cloud = await sandbox().cloudEvents();
    expect(cloud[1]).toMatchObject({ specversion: '1.0', type: 'Microsoft.Web.SlotSwapCompleted', source: SITE_ID, id: events[1]?.id, data: events[1]?.data });
    // Swap back (from the slot's side), so later tests see the seeded layout.
    await web.webApps.swapSlot(RG, SITE, 'staging', { targetSlot: 'production', preserveVnet: true }, POLL);
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(`DOCKER|${IMAGE_241}`);
  });

  it('unhealthy after a swap until swapped back: the deploy the swap brings in is bad wherever it runs', async () => {
    const web = client();
    expect(await setHealth(sandbox(), { target: PROD_HOST, script: { mode: 'unhealthy-after-swap' } })).toBe(200);
    expect((await probe(PROD_HOST)).status).toBe(200);
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    expect((await probe(PROD_HOST)).status).toBe(503);
    expect((await probe(STAGING_HOST)).status).toBe(200);
    // A restart does not fix a bad deploy.
    await web.webApps.restart(RG, SITE, { synchronous: true });
    expect((await probe(PROD_HOST)).status).toBe(503);
    const state = (await sandboxRequest(sandbox(), { url: '/_sandbox/health' })).json<{ apps: { hostName: string; healthy: boolean; reason?: string }[] }>();
    expect(state.apps.find((app) => app.hostName === PROD_HOST)).toMatchObject({ healthy: false, reason: expect.stringContaining(IMAGE_240) as unknown });
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    expect((await probe(PROD_HOST)).status).toBe(200);
    // The bad image now runs in staging, and is bad there.
    expect((await probe(STAGING_HOST)).status).toBe(503);
  });

  it('a bad image marked through the control endpoint follows the swap', async () => {
    const web = client();
    expect(await setHealth(sandbox(), { image: IMAGE_240, healthy: false })).toBe(200);
    expect((await probe(STAGING_HOST)).status).toBe(503);
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    expect((await probe(PROD_HOST)).status).toBe(503);
    expect((await probe(STAGING_HOST)).status).toBe(200);
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    expect((await probe(PROD_HOST)).status).toBe(200);
  });

  it('a world file marks a code deploy bad with healthy: false; swapping it out of production helps', async () => {
    const web = client(SCRIPTED_SUB);
    expect((await probe('app-bad-deploy.azurewebsites.net')).status).toBe(503);
    expect((await probe('app-bad-deploy-staging.azurewebsites.net')).status).toBe(200);
    await web.webApps.swapSlotWithProduction('rg', 'app-bad-deploy', { targetSlot: 'staging', preserveVnet: true }, POLL);
    expect((await probe('app-bad-deploy.azurewebsites.net')).status).toBe(200);
    expect((await probe('app-bad-deploy-staging.azurewebsites.net')).status).toBe(503);
  });

  it('refuses a second swap while one runs (409), an unknown slot (404) and a slot swapped with itself (400); nothing changes', async () => {
    const web = client();
    const first = web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    await first.submitted();
    const concurrent = await restErrorOf(web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL).submitted());
    expect(concurrent.statusCode).toBe(409);
    expect(concurrent.message).toContain('already in progress');
    await first;
    expect((await restErrorOf(web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'canary', preserveVnet: true }, POLL).submitted())).statusCode).toBe(404);
    const self = await restErrorOf(web.webApps.swapSlot(RG, SITE, 'staging', { targetSlot: 'staging', preserveVnet: true }, POLL).submitted());
    expect(self.statusCode).toBe(400);
    // Put the seeded layout back.
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(`DOCKER|${IMAGE_241}`);
  });

  it('a swap whose operation fails swaps nothing and publishes SlotSwapFailed', async () => {
    const web = client();
    await sandbox().injectFault({ operationId: 'Microsoft.Web/sites.swapSlotWithProduction', failLongRunningOperation: true, status: 500 });
    await expect(web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL)).rejects.toThrow();
    expect((await web.webApps.getConfiguration(RG, SITE)).linuxFxVersion).toBe(`DOCKER|${IMAGE_241}`);
    expect((await sandbox().eventGridEvents()).map((event) => event.eventType)).toEqual(['Microsoft.Web.SlotSwapStarted', 'Microsoft.Web.SlotSwapFailed']);
  });
});

describe('App Service plan updates', () => {
  it('scales out (workers) and up (SKU) through createOrUpdate, a long-running operation', async () => {
    const web = client();
    const plan = await web.appServicePlans.get(RG, PLAN);
    expect(plan.sku).toMatchObject({ name: 'P1v3', capacity: 2 });
    const out = await web.appServicePlans.createOrUpdate(RG, PLAN, { ...plan, sku: { ...plan.sku, capacity: 3 } }, POLL);
    expect(out.sku).toMatchObject({ name: 'P1v3', tier: 'PremiumV3', capacity: 3 });
    const up = await web.appServicePlans.createOrUpdate(RG, PLAN, { location: plan.location, sku: { name: 'P1v2', capacity: 3 } }, POLL);
    expect(up.sku).toMatchObject({ name: 'P1v2', tier: 'PremiumV2', capacity: 3 });
    expect((await web.appServicePlans.get(RG, PLAN)).sku).toMatchObject({ name: 'P1v2', capacity: 3 });
    const events = await sandbox().eventGridEvents();
    expect(events.map((event) => event.eventType)).toEqual(['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceWriteSuccess']);
    expect(events[0]?.data).toMatchObject({ operationName: 'Microsoft.Web/serverfarms/write', resourceUri: expect.stringMatching(/serverfarms\/asp-kilometers-prod-k7x2$/) as unknown });
    await web.appServicePlans.createOrUpdate(RG, PLAN, { location: plan.location, sku: { name: 'P1v3', capacity: 2 } }, POLL);
  });

  it('memory pressure is relieved by scaling out, or up to a listed SKU', async () => {
    const web = client(SCRIPTED_SUB);
    const host = 'app-memory.azurewebsites.net';
    expect((await probe(host)).status).toBe(503);
    const plan = await web.appServicePlans.get('rg', 'asp-small');
    await web.appServicePlans.createOrUpdate('rg', 'asp-small', { location: plan.location, sku: { name: 'B1', capacity: 2 } }, POLL);
    expect((await probe(host)).status).toBe(200);
    await web.appServicePlans.createOrUpdate('rg', 'asp-small', { location: plan.location, sku: { name: 'B1', capacity: 1 } }, POLL);
    expect((await probe(host)).status).toBe(503);
    await web.appServicePlans.createOrUpdate('rg', 'asp-small', { location: plan.location, sku: { name: 'S2', capacity: 1 } }, POLL);
    expect((await probe(host)).status).toBe(200);
    await web.appServicePlans.createOrUpdate('rg', 'asp-small', { location: plan.location, sku: { name: 'B1', capacity: 1 } }, POLL);
  });

  it('refuses too many workers, an unknown SKU, another location and scaling a Consumption plan; nothing changes', async () => {
    const web = client(SCRIPTED_SUB);
    const small = await web.appServicePlans.get('rg', 'asp-small');
    const tooMany = await restErrorOf(web.appServicePlans.createOrUpdate('rg', 'asp-small', { location: small.location, sku: { name: 'B1', capacity: 4 } }, POLL));
    expect(tooMany).toMatchObject({ statusCode: 400, message: expect.stringContaining('between 1 and 3 workers') as unknown });
    expect((await restErrorOf(web.appServicePlans.createOrUpdate('rg', 'asp-small', { location: small.location, sku: { name: 'Q9' } }, POLL))).statusCode).toBe(400);
    expect((await restErrorOf(web.appServicePlans.createOrUpdate('rg', 'asp-small', { location: 'westeurope', sku: { name: 'B2' } }, POLL))).code).toBe('InvalidResourceLocation');
    const func = await web.appServicePlans.get('rg', 'asp-func');
    expect((await restErrorOf(web.appServicePlans.createOrUpdate('rg', 'asp-func', { location: func.location, sku: { name: 'Y1', capacity: 3 } }, POLL))).statusCode).toBe(400);
    expect((await restErrorOf(web.appServicePlans.createOrUpdate('rg', 'asp-func', { location: func.location, sku: { name: 'P1v3' } }, POLL))).statusCode).toBe(400);
    expect((await web.appServicePlans.get('rg', 'asp-small')).sku).toMatchObject({ name: 'B1', capacity: 1 });
    expect((await web.appServicePlans.get('rg', 'asp-func')).sku).toMatchObject({ name: 'Y1', capacity: 1 });
    expect(await sandbox().eventGridEvents()).toEqual([]);
  });
});

describe('scripted health through the control endpoint', () => {
  it('unhealthy whatever is done: restart, swap and scaling do not help', async () => {
    const web = client();
    await setHealth(sandbox(), { target: SITE_ID, script: { mode: 'unhealthy' } });
    await web.webApps.restart(RG, SITE, { synchronous: true });
    expect((await probe(PROD_HOST)).status).toBe(503);
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    expect((await probe(PROD_HOST)).status).toBe(503);
    await web.webApps.swapSlotWithProduction(RG, SITE, { targetSlot: 'staging', preserveVnet: true }, POLL);
    expect((await probe(PROD_HOST)).status).toBe(503);
    expect((await probe(STAGING_HOST)).status).toBe(200);
  });

  it('healthy after N seconds of the sandbox clock', async () => {
    await setHealth(sandbox(), { target: SITE_ID, script: { mode: 'healthy-after', seconds: 120 } });
    expect((await probe(PROD_HOST)).status).toBe(503);
    await sandbox().advanceClock(119_000);
    expect((await probe(PROD_HOST)).status).toBe(503);
    await sandbox().advanceClock(2_000);
    expect((await probe(PROD_HOST)).status).toBe(200);
  });

  it('answers with the scripted status and body, on the scripted paths only', async () => {
    await setHealth(sandbox(), {
      target: 'func-app.azurewebsites.net',
      script: { mode: 'unhealthy', response: { status: 200, body: { status: 'degraded', database: 'unreachable' } }, paths: ['/api/health'] },
    });
    expect(await probe('func-app.azurewebsites.net', '/api/health')).toEqual({ status: 200, body: '{"status":"degraded","database":"unreachable"}' });
    expect(await probe('func-app.azurewebsites.net', '/')).toEqual({ status: 200, body: 'ok' });
    expect((await probe('func-app.azurewebsites.net', '/other')).status).toBe(404);
  });

  it('refuses a bad script or an unknown target with 400 naming what was expected; DELETE restores the world', async () => {
    const bad = await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body: { target: SITE_ID, script: { mode: 'sometimes' } } });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('InvalidControlRequest');
    const pressure = await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body: { target: SITE_ID, script: { mode: 'memory-pressure' } } });
    expect(pressure.text).toContain('expected workers, replicas or skus');
    const unknown = await sandboxRequest(sandbox(), { method: 'POST', url: '/_sandbox/health', body: { target: 'nope.azurewebsites.net', script: null } });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('found nope.azurewebsites.net');
    await setHealth(sandbox(), { target: 'app-stuck.azurewebsites.net', script: null });
    expect((await probe('app-stuck.azurewebsites.net')).status).toBe(200);
    expect((await sandboxRequest(sandbox(), { method: 'DELETE', url: '/_sandbox/health' })).status).toBe(204);
    // The world's until-restart script is back (set at seeding, before the restart an earlier test did).
    const state = (await sandboxRequest(sandbox(), { url: '/_sandbox/health' })).json<{ scripts: { target: string }[] }>();
    expect(state.scripts.map((script) => script.target)).toContain(`/subscriptions/${SCRIPTED_SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/app-stuck`);
  });
});
